"""Result files one row short or long (issue 14, section 4), on copies of the shared OTB-100 ATOM results.

pytracking pads a short file with zero boxes (failures) and ignores the extra rows of a long one (a short file is an
error on LaSOT only); the LaSOT toolkit cuts a long file and stops at a short one; pysot's OPE benchmark and the
GOT-10k toolkit accept neither. Each accepted file gives one warning naming it and both row counts, and the
scores equal those computed by hand from the per-frame errors; ``--skip_missing`` still concerns missing files only.
"""

import shutil
import warnings

import numpy as np
import pytest

from lib.test.analysis import ResultFileError, compute_scores, external_tracker_results, extract_results
from lib.test.evaluation.data import Sequence, SequenceList
from lib.test.evaluation.otbdataset import OTBDataset

from .conftest import need_shared

# Board and Twinnings: MDNet's published OTB-2015 results are one row short there (their last ground-truth row is
# [0, 0, 0, 0], invalid: a failure whatever the box); Crossing's last frame is valid
SHORT = ("Board", "Twinnings", "Crossing")
LONG = "Basketball"


@pytest.fixture(scope="module")
def otb():
    return OTBDataset(str(need_shared("data", "otb100_anno"))).get_sequence_list()


@pytest.fixture(scope="module")
def atom_copies(tmp_path_factory):
    """The ATOM results as they are (``full/ATOM``) and with Board, Twinnings and Crossing one row short and
    Basketball one row long (``cut/ATOM``)."""
    src = need_shared("data", "results", "otb100", "ATOM")
    root = tmp_path_factory.mktemp("atom")
    shutil.copytree(src, root / "full" / "ATOM")
    shutil.copytree(src, root / "cut" / "ATOM")
    for name in SHORT:
        path = root / "cut" / "ATOM" / f"{name[0].lower() + name[1:]}.txt"
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:-1]) + "\n")
    path = root / "cut" / "ATOM" / f"{LONG[0].lower() + LONG[1:]}.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[-1]]) + "\n")
    return root


def _iou_plus_one(a, b):
    """IoU of two xywh boxes with pytracking's +1 pixel convention, written out."""
    w = max(0.0, min(a[0] + a[2] - 1, b[0] + b[2] - 1) - max(a[0], b[0]) + 1)
    h = max(0.0, min(a[1] + a[3] - 1, b[1] + b[3] - 1) - max(a[1], b[1]) + 1)
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def _center_error(a, b):
    ca = np.array([a[0] + (a[2] - 1) / 2, a[1] + (a[3] - 1) / 2])
    cb = np.array([b[0] + (b[2] - 1) / 2, b[1] + (b[3] - 1) / 2])
    return float(np.linalg.norm(ca - cb))


def test_pytracking_pads_short_files_with_failures_and_cuts_long_ones(otb, atom_copies):
    full_trk = external_tracker_results(str(atom_copies / "full"), ["ATOM"])
    full = extract_results(full_trk, otb, "pytracking", "otb", verbose=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cut = extract_results(external_tracker_results(str(atom_copies / "cut"), ["ATOM"]), otb, "pytracking", "otb",
                              verbose=False)
    messages = [str(w.message) for w in record if "rows for" in str(w.message)]
    assert len(messages) == 4, messages  # one per file
    names = [s.name for s in otb]
    for name in SHORT:
        n = len(otb[names.index(name)].ground_truth_rect)
        [msg] = [m for m in messages if f"sequence '{name}'" in m]
        assert f"{n - 1} rows for {n} frames: padded with zero boxes (failures)" in msg and ".txt" in msg
    [msg] = [m for m in messages if f"sequence '{LONG}'" in m]
    assert "extra rows ignored" in msg
    assert cut.valid_sequence.all()

    # by hand: the last frame of each short sequence scores the zero box [0, 0, 0, 0] instead of ATOM's box
    success, precision = full.success.astype(np.float64).copy(), full.precision.astype(np.float64).copy()
    thr_o, thr_c = full.thresholds_overlap, full.thresholds_center
    changed = []
    for name in SHORT:
        s = names.index(name)
        seq = otb[s]
        gt, n = seq.ground_truth_rect[-1], len(seq.ground_truth_rect)
        if not (gt[2] > 0 and gt[3] > 0):  # invalid ground truth: a failure whatever the box, nothing changes
            np.testing.assert_array_equal(cut.success[s], full.success[s])
            continue
        changed.append(name)
        atom_box = np.loadtxt(atom_copies / "full" / "ATOM" / f"{name[0].lower() + name[1:]}.txt", delimiter=",")[-1]
        zero = np.zeros(4)
        success[s, 0] += ((_iou_plus_one(zero, gt) > thr_o).astype(float) - (_iou_plus_one(atom_box, gt) > thr_o)) / n
        precision[s, 0] += ((_center_error(zero, gt) <= thr_c).astype(float)
                            - (_center_error(atom_box, gt) <= thr_c)) / n
    assert changed == ["Crossing"]
    auc_hand = success[:, 0].mean(axis=1).mean() * 100
    prec_hand = precision[:, 0, 20].mean() * 100
    scores, before = compute_scores(cut).loc["ATOM"], compute_scores(full).loc["ATOM"]
    assert scores["auc"] == pytest.approx(auc_hand, abs=1e-4) and scores["auc"] < before["auc"]
    assert scores["precision"] == pytest.approx(prec_hand, abs=1e-4)
    # the long file's extra row changes nothing
    s = names.index(LONG)
    np.testing.assert_array_equal(cut.success[s], full.success[s])
    np.testing.assert_array_equal(cut.precision[s], full.precision[s])


def test_pysot_and_got10k_stop_at_another_length_skip_missing_does_not_apply(otb, atom_copies):
    trackers = external_tracker_results(str(atom_copies / "cut"), ["ATOM"])
    for skip in (False, True):
        with pytest.raises(ResultFileError) as err:
            extract_results(trackers, otb, "official", "otb", skip_missing=skip, verbose=False)
        msg = str(err.value)
        assert "protocol 'pysot_ope' cannot score" in msg and ".txt: tracker 'ATOM', sequence '" in msg
        assert "boxes for" in msg and "\n" not in msg
    d = atom_copies / "got" / "GOT-10k_Val_000001"
    d.mkdir(parents=True)
    (d / "cover.label").write_text("8\n" * 5)
    (d / "meta_info.ini").write_text("[METAINFO]\nresolution: (640, 480)\n")
    seq = Sequence(d.name, [str(d / f"{i:08d}.jpg") for i in range(1, 6)], "got10k", np.array([[10.0, 10, 20, 20]] * 5))
    (atom_copies / "got" / "R" / "T").mkdir(parents=True)
    np.savetxt(atom_copies / "got" / "R" / "T" / f"{d.name}.txt", np.array([[10.0, 10, 20, 20]] * 4), delimiter=",")
    trackers = external_tracker_results(str(atom_copies / "got" / "R"))
    with pytest.raises(ResultFileError, match="4 boxes for 5 frames of ground truth: protocol 'got10k'"):
        extract_results(trackers, SequenceList([seq]), "official", verbose=False)
    with pytest.warns(UserWarning, match="4 rows for 5 frames: padded with zero boxes"):
        ed = extract_results(trackers, SequenceList([seq]), "pytracking", verbose=False)
    assert ed.got_frames[0, 0] == 4 and ed.got_iou_sum[0, 0] == pytest.approx(3.0)  # frames 1-3 hit, 4 a zero box


def _lasot_seq(n=6):
    gt = np.array([[10.0 + i, 10, 20, 20] for i in range(n)])
    return Sequence("cat-1", [f"/x/{i}.jpg" for i in range(n)], "lasot", gt, target_visible=np.ones(n, bool))


@pytest.mark.parametrize("protocol", ["pytracking", "official"])
def test_lasot_cuts_long_files_and_refuses_short_ones(protocol, tmp_path):
    seq = _lasot_seq()
    gt = seq.ground_truth_rect
    (tmp_path / "T").mkdir()
    path = tmp_path / "T" / "cat-1.txt"
    np.savetxt(path, np.vstack([gt, [[500.0, 500, 5, 5]]]), delimiter=",")  # the monkey-17 case
    with pytest.warns(UserWarning, match="7 rows for 6 frames: extra rows ignored"):
        ed = extract_results(external_tracker_results(str(tmp_path)), SequenceList([seq]), protocol, verbose=False)
    assert ed.success[0, 0, 0] == pytest.approx(1.0)
    np.savetxt(path, gt[:5], delimiter=",")
    with pytest.raises(ResultFileError, match="5 boxes for 6 frames of ground truth"):
        extract_results(external_tracker_results(str(tmp_path)), SequenceList([seq]), protocol, skip_missing=True,
                        verbose=False)
