"""Partial copies of a benchmark (BaseDataset's ``missing`` policy): the shared OTB and UAV123@10fps folders,
generated partial layouts of every benchmark class, the runner (runs what is there and says so once) and
the analysis (strict by default, ``--skip_missing`` reports over the present sequences)."""

import json
import os

import cv2
import numpy as np
import pytest

from lib.test.evaluation.annotations import load_packaged_list
from lib.test.evaluation.data import MissingSequencesError
from lib.test.evaluation.datasets import load_dataset
from lib.test.evaluation.running import SetupError, run_tracker
from lib.test.tracker import TRACKER_MODULES_ENV, add_tracker_module
from tests.conftest import PROJECT_ROOT, need_shared

OTB_PRESENT = ["Basketball", "Couple", "Crossing", "Football1"]  # ../shared/data/otb, in the info list's order


# -- the shared folders ----------------------------------------------------------------------------------
def test_shared_otb_folder_is_strict_by_default_and_partial_on_request():
    root = str(need_shared("data", "otb"))
    with pytest.raises(MissingSequencesError) as err:
        load_dataset("otb", base_path=root).get_sequence_list()
    msg = str(err.value)
    assert "96 of the benchmark's 100 sequences are missing" in msg and root in msg and "--skip_missing" in msg
    assert "Biker/groundtruth_rect.txt' does not exist" in msg
    assert err.value.total == 100 and len(err.value.missing) == 96 and "Couple" not in err.value.missing

    ds = load_dataset("otb", base_path=root, missing="skip")
    seqs = ds.get_sequence_list()
    assert seqs.names() == OTB_PRESENT and len(ds) == 100
    # tab-separated (Couple, Crossing) and comma-separated (Basketball, Football1) files; Football1 has 81
    # images but its info list range (and ground truth) is 1..74
    assert [len(s.ground_truth_rect) for s in seqs] == [725, 140, 120, 74]
    assert [len(s.frames) for s in seqs] == [725, 140, 120, 74]
    assert seqs["Couple"].ground_truth_rect[0].tolist() == [51, 47, 25, 62]
    assert seqs["Football1"].ground_truth_rect[0].tolist() == [153, 105, 26, 43]
    assert all(os.path.isfile(s.frames[-1]) for s in seqs)
    report = ds.missing_report()
    assert report.startswith("otb: 96 of the benchmark's 100 sequences are missing in '" + root)
    assert "using the 4 present: Basketball, Couple, Crossing, Football1" in report
    # an index counts in the present sequences; a name that is absent says where it was looked for
    assert ds.get_sequence(1).name == "Couple" and ds.get_sequence("Crossing").name == "Crossing"
    with pytest.raises(MissingSequencesError, match=r"sequence 'Biker' is not in .*Biker/groundtruth_rect.txt' does "
                                                    r"not exist\); present: Basketball, Couple, Crossing, Football1"):
        ds.get_sequence("Biker")


def test_shared_uav10fps_person11():
    root = str(need_shared("data", "uav123_10fps"))
    with pytest.raises(MissingSequencesError, match="122 of the benchmark's 123 sequences are missing"):
        load_dataset("uav123_10fps", base_path=root).get_sequence_list()
    ds = load_dataset("uav123_10fps", base_path=root, missing="skip")
    (seq,) = ds.get_sequence_list()
    assert seq.name == "uav10fps_person11" and len(seq.frames) == 241 and seq.ground_truth_rect.shape == (241, 4)
    assert os.path.isfile(seq.frames[0]) and seq.frames[-1].endswith("person11/000241.jpg")
    assert "using the 1 present: uav10fps_person11" in ds.missing_report()


# -- generated partial layouts of every benchmark ----------------------------------------------------------
def _write_boxes(path, n):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rows = np.tile([10, 20, 30, 40], (n, 1)) + np.arange(n)[:, None]
    np.savetxt(path, rows, fmt="%d", delimiter=",")


def _write_flags(path, n):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(",".join(["0"] * n) + "\n")


def _info_frames(ds, name):
    info = (getattr(ds, "infos", None) or getattr(ds, "_infos"))[name]
    return info["endFrame"] - info["startFrame"] + 1


def _seq_files(key, ds, name):
    """Write the annotation files of one sequence of ``ds`` (ground truth first)."""
    if key in ("otb", "uav", "uav10fps", "nfs", "tc128"):
        _write_boxes(ds.annotation_path(name), _info_frames(ds, name))
    elif key in ("lasot", "lasot_extension_subset"):
        anno = ds.annotation_path(name)
        _write_boxes(anno, 6)
        for flags in ("full_occlusion.txt", "out_of_view.txt"):
            _write_flags(os.path.join(os.path.dirname(anno), flags), 6)
    elif key == "avist":
        _write_boxes(ds.annotation_path(name), 5)
        _write_flags(os.path.join(ds.base_path, "full_occlusion", f"{name}_full_occlusion.txt"), 5)
        _write_flags(os.path.join(ds.base_path, "out_of_view", f"{name}_out_of_view.txt"), 5)
    else:  # vot*, got10k_val
        _write_boxes(ds.annotation_path(name), 5)


@pytest.mark.parametrize("key", ["otb", "lasot", "lasot_extension_subset", "uav", "uav10fps", "nfs", "tc128",
                                 "avist", "vot18", "vot20", "vot22", "got10k_val"])
def test_generated_partial_layouts(tmp_path, key):
    root = tmp_path / key
    root.mkdir()
    if key == "got10k_val":
        names = [f"GOT-10k_Val_{i:06d}" for i in range(1, 6)]
        (root / "val").mkdir()
        (root / "val" / "list.txt").write_text("\n".join(names) + "\n")
    empty = load_dataset(key, base_path=str(root), missing="skip")
    names = empty.sequence_names()
    with pytest.raises(MissingSequencesError, match=f"none of the benchmark's {len(names)} sequences is present"):
        empty.get_sequence_list()  # nothing there: an error even with missing='skip'

    picked = [names[-1], names[len(names) // 2]]  # written out of order: the official order is kept
    for name in picked:
        _seq_files(key, empty, name)
    expected = [n for n in names if n in picked]
    n_missing = len(names) - 2

    with pytest.raises(MissingSequencesError) as err:
        load_dataset(key, base_path=str(root)).get_sequence_list()
    assert f"{n_missing} of the benchmark's {len(names)} sequences" in str(err.value)
    assert str(root) in str(err.value) and sorted(err.value.missing) == sorted(set(names) - set(picked))

    ds = load_dataset(key, base_path=str(root), missing="skip")
    assert ds.get_sequence_list().names() == expected and len(ds) == len(names)
    assert ds.present_sequence_names() == expected
    assert f"using the 2 present: {expected[0]}, {expected[1]}" in ds.missing_report()
    assert [ds.get_sequence(i).name for i in (0, 1)] == expected
    with pytest.raises(ValueError, match="missing must be one of error, skip"):
        load_dataset(key, base_path=str(root), missing="ignore")


def test_complete_folder_has_no_report(tmp_path):
    root = tmp_path / "vot"
    for name in load_packaged_list("vot")["by_year"]["vot18"]:
        _write_boxes(str(root / name / "groundtruth.txt"), 3)
    ds = load_dataset("vot18", base_path=str(root), missing="skip")
    assert ds.missing_report() is None and len(ds.get_sequence_list()) == 60


# -- runner and analysis ---------------------------------------------------------------------------------
@pytest.fixture
def otb_two(tmp_path, monkeypatch):
    """OTB layout holding only Deer (71 frames) and Skiing (81 frames): tiny solid frames."""
    root = tmp_path / "otb"
    for name, n in (("Deer", 71), ("Skiing", 81)):
        (root / name / "img").mkdir(parents=True)
        frame = np.full((24, 32, 3), 90, np.uint8)
        for i in range(1, n + 1):
            cv2.imwrite(str(root / name / "img" / f"{i:04d}.jpg"), frame)
        np.savetxt(root / name / "groundtruth_rect.txt", np.tile([4, 5, 10, 8], (n, 1)), fmt="%d", delimiter="\t")
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "results"))
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "plots"))
    monkeypatch.setenv(TRACKER_MODULES_ENV, "tests.dummy_trackers")
    add_tracker_module("tests.dummy_trackers")
    return root


def test_runner_runs_the_present_sequences_and_says_so_once(otb_two, capsys):
    results = run_tracker("dummy_static", "cfg", dataset_name="otb", dataset_path=str(otb_two), progress=False)
    assert sorted((r.sequence, r.status, r.frames) for r in results) == [("Deer", "done", 71), ("Skiing", "done", 81)]
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "missing" in line]
    assert len(notes) == 1, err
    assert notes[0].startswith(f"note: otb: 98 of the benchmark's 100 sequences are missing in '{otb_two}'")
    assert notes[0].endswith("using the 2 present: Deer, Skiing")
    out_dir = otb_two.parent / "results" / "dummy_static" / "cfg"
    assert sorted(os.listdir(out_dir)) == ["Deer.txt", "Deer_time.txt", "Skiing.txt", "Skiing_time.txt",
                                           "_provenance.json"]

    with pytest.raises(SetupError, match=r"sequence 'Biker' is not in .*present: Deer, Skiing"):
        run_tracker("dummy_static", "cfg", dataset_name="otb", dataset_path=str(otb_two), sequence="Biker",
                    progress=False)
    empty = otb_two.parent / "empty"
    empty.mkdir()
    with pytest.raises(SetupError, match="none of the benchmark's 100 sequences is present"):
        run_tracker("dummy_static", "cfg", dataset_name="otb", dataset_path=str(empty), progress=False)


def _analysis(argv):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_analysis_results", PROJECT_ROOT / "tracking" / "analysis_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from lib.utils.errors import run_cli

    return run_cli(module.main, prog="analysis_results.py", argv=argv)


def test_analysis_is_strict_unless_skip_missing(otb_two, tmp_path, capsys):
    run_tracker("dummy_static", "cfg", dataset_name="otb", dataset_path=str(otb_two), progress=False)
    capsys.readouterr()
    args = ["--tracker_name", "dummy_static", "--tracker_param", "cfg", "--dataset", "otb",
            "--dataset_path", str(otb_two)]
    assert _analysis(args) == 2
    err = capsys.readouterr().err
    assert "98 of the benchmark's 100 sequences are missing" in err and "--skip_missing" in err

    out_json = tmp_path / "scores.json"
    with pytest.warns(UserWarning, match=r"98 of the benchmark's 100 sequences are missing .* not the benchmark's"):
        assert _analysis(args + ["--skip_missing", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "Reporting results over 2 / 100 sequences" in out
    summary = json.loads(out_json.read_text())
    assert summary["num_sequences"] == 2 and summary["num_sequences_total"] == 100
    # the dummy keeps the init box, shifted by round(90 / 64) = 1 px: IoU 9 * 8 / (11 * 8) = 0.82 on frames 1..
    assert 75 < summary["trackers"]["dummy_static_cfg"]["auc"] < 90
