"""Batched evaluation (``--batch_sequences B``): B sequences in lockstep with one batched forward per step.

On the first 10 frames of the shared OTB sequences, with deterministic random weights (``torch.manual_seed(0)``)
saved to a checkpoint, B = 3 must give the boxes of B = 1 for OSTrack (candidate elimination with the official
CTR_POINT template range, and without CE) and GRM: the written result files (integer boxes) equal, the
in-memory float boxes within 1e-3 pixels (batched matrix products round differently from single ones:
network outputs differ by ~1e-6, see the report in lib/test/evaluation/batched.py). Also: the batched
network outputs equal per-sample outputs (and CE removes the same tokens), slots refill when sequences end at
different frames, a broken frame fails only its sequence, a rerun skips finished sequences, and trackers
without the protocol are refused with a message listing those that have it.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lib.config import load_config
from lib.models import build_network
from lib.test.evaluation.batched import track_sequences_batched
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.otbdataset import OTBDataset
from lib.test.evaluation.running import SetupError, run_dataset, run_tracker
from lib.test.evaluation.tracker import Tracker, track_sequence
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import (BatchingNotSupportedError, collate_network_inputs,
                                   split_batch_outputs)
from lib.utils.checkpoint import save_checkpoint_atomic
from tests.conftest import PROJECT_ROOT, need_shared, tiny_config

N_FRAMES = 10
BOX_ATOL = 1e-3  # pixels: in-memory float boxes of B=3 vs B=1


CONFIGS = {
    # OSTrack-style CE with the official template range (CTR_POINT needs the 8x8 template grid: 128 pixels)
    "ostrack_ce": ("ostrack", "ostrack", {"MODEL.BACKBONE.CE_TEMPLATE_RANGE": "CTR_POINT", "DATA.TEMPLATE.SIZE": 128,
                                          "TEST.TEMPLATE_SIZE": 128}),
    "ostrack_noce": ("ostrack", "ostrack", {"MODEL.BACKBONE.CE_LOC": [], "MODEL.BACKBONE.CE_KEEP_RATIO": []}),
    # GT_BOX (no official config): masks of different sizes cannot share the batched row selection
    "ostrack_gtbox": ("ostrack", "ostrack", {"MODEL.BACKBONE.CE_TEMPLATE_RANGE": "GT_BOX", "DATA.TEMPLATE.SIZE": 128,
                                             "TEST.TEMPLATE_SIZE": 128}),
    "grm": ("grm", "grm", {}),
}


@pytest.fixture(scope="module")
def setups(tmp_path_factory):
    """name -> (tracker name, config path, checkpoint path) with weights from torch.manual_seed(0)."""
    root = tmp_path_factory.mktemp("batched_cfg")
    out = {}
    for name, (tracker, script, changes) in CONFIGS.items():
        cfg_path = tiny_config(root, script, name, **changes)
        torch.manual_seed(0)
        net = build_network(script, load_config(script, cfg_path))
        ckpt = root / f"{name}.pth.tar"
        save_checkpoint_atomic({"net": net.state_dict()}, ckpt)
        out[name] = (tracker, cfg_path, str(ckpt))
    return out


@pytest.fixture(scope="module")
def otb_sequences():
    """The shared OTB sequences cut to their first N_FRAMES frames (paths into ../shared, nothing copied)."""
    root = need_shared("data", "otb")
    seqs = OTBDataset(base_path=str(root), missing="skip").get_sequence_list()
    assert len(seqs) >= 3
    return [_cut(s, N_FRAMES) for s in seqs]


def _cut(seq, n, name=None):
    return Sequence(name or seq.name, list(seq.frames[:n]), seq.dataset, seq.ground_truth_rect[:n])


def _tracker(setup, results, **kw):
    name, cfg, ckpt = setup
    return Tracker(name, cfg, "otb", checkpoint=ckpt, results_path=str(results), device="cpu", **kw)


def _read(trk, seq):
    files = trk.result_files(seq)
    return np.loadtxt(files["boxes"], delimiter="\t"), np.loadtxt(files["time"])


def _batched_in_memory(trk, seqs, batch):
    done, failed = {}, {}
    params = trk.get_parameters(device="cpu")
    track_sequences_batched(lambda: trk.create_tracker(params), seqs, batch,
                            on_done=lambda s, o: done.__setitem__(s.name, o),
                            on_failed=lambda s, e, tb: failed.__setitem__(s.name, e))
    return done, failed


def _single_in_memory(trk, seqs):
    params = trk.get_parameters(device="cpu")
    return {s.name: track_sequence(trk.create_tracker(params), s) for s in seqs}


# -- the pieces ----------------------------------------------------------------------------------------
def test_collate_and_split():
    a = {"template": torch.ones(1, 3, 2, 2), "search": torch.zeros(1, 3, 4, 4), "mask": None, "threshold": 0.4}
    b = {"template": 2 * torch.ones(1, 3, 2, 2), "search": torch.ones(1, 3, 4, 4), "mask": None, "threshold": 0.4}
    batch = collate_network_inputs([a, b])
    assert batch["template"].shape == (2, 3, 2, 2) and batch["mask"] is None and batch["threshold"] == 0.4
    assert torch.equal(batch["template"][1], b["template"][0])
    with pytest.raises(ValueError, match="'threshold' differs"):
        collate_network_inputs([a, dict(b, threshold=0.5)])
    with pytest.raises(ValueError, match="'mask' is a tensor for some"):
        collate_network_inputs([a, dict(b, mask=torch.ones(1, 4))])
    out = {"score_map": torch.arange(8.).view(2, 1, 2, 2), "removed": [torch.tensor([[1., 2.], [3., 4.]]), None],
           "boxes": np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32), "attn": None, "shared": torch.ones(3)}
    parts = split_batch_outputs(out, 2)
    assert parts[1]["score_map"].shape == (1, 1, 2, 2) and torch.equal(parts[1]["score_map"], out["score_map"][1:])
    assert parts[1]["removed"][0].tolist() == [[3., 4.]] and parts[1]["removed"][1] is None
    assert parts[0]["boxes"].tolist() == [[1, 2, 3, 4]] and parts[0]["shared"] is out["shared"]


@pytest.mark.parametrize("name", ["ostrack_ce", "ostrack_gtbox", "grm"])
def test_batched_network_outputs_equal_per_sample(setups, otb_sequences, name):
    """forward_batch on 3 prepared steps == forward_step on each; CE removes the same tokens per sample (GT_BOX
    masks of different sizes: one sample at a time inside forward_batch)."""
    from lib.utils.image import imread_rgb

    trk = _tracker(setups[name], "unused")
    lead = trk.create_tracker(trk.get_parameters(device="cpu"))
    trackers, inputs = [], []
    for k, seq in enumerate(otb_sequences[:3]):
        t = lead.new_slot()
        x, y, w, h = seq.init_info()["init_bbox"]
        if name == "ostrack_gtbox" and k == 2:  # a wide box: its GT_BOX mask covers other cells than the tall ones
            x, y, w, h = x - w, y + h / 3, 3 * w, h / 3
        t.initialize(imread_rgb(seq.frames[0]), {"init_bbox": [x, y, w, h]})
        trackers.append(t)
        inputs.append(t.prepare_step(imread_rgb(seq.frames[1]), {}))
    batched = type(lead).forward_batch(trackers, inputs)
    for t, inp, out in zip(trackers, inputs, batched):
        single = t.forward_step(inp)
        for key in ("score_map", "size_map", "offset_map", "response"):
            assert out[key].shape == single[key].shape
            torch.testing.assert_close(out[key], single[key], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["boxes_norm"], single["boxes_norm"], rtol=0, atol=1e-5)
        if name.startswith("ostrack"):
            if name == "ostrack_ce":
                # CTR_POINT: the index of the one centre token of the 8x8 template grid (static shape)
                assert inp["network"]["ce_template_mask"].tolist() == [[3 * 8 + 3]]
            assert len(single["removed_indexes_s"]) == 2
            for r_b, r_s in zip(out["removed_indexes_s"], single["removed_indexes_s"]):
                assert r_b.shape == r_s.shape and torch.equal(r_b, r_s)
    if name == "ostrack_gtbox":
        assert len({int(i["network"]["ce_template_mask"].sum()) for i in inputs}) > 1
    results = [t.finish_step(o) for t, o in zip(trackers, batched)]
    assert all(len(r["target_bbox"]) == 4 for r in results)
    with pytest.raises(RuntimeError, match="without a prepare_step"):
        trackers[0].finish_step(batched[0])
    other = trk.create_tracker(trk.get_parameters(device="cpu"))  # its own network
    with pytest.raises(ValueError, match="share one network"):
        type(lead).forward_batch([trackers[0], other], inputs[:2])


# -- B=3 vs B=1 on real frames ---------------------------------------------------------------------------
@pytest.fixture
def captured(monkeypatch):
    """Every output the runner saves, in memory: {(results dir, sequence): {'target_bbox', 'time'}}."""
    from lib.test.evaluation import running

    outputs = {}
    original = running.save_tracker_output

    def save(seq, tracker, output):
        outputs[(tracker.results_dir, seq.name)] = output
        original(seq, tracker, output)

    monkeypatch.setattr(running, "save_tracker_output", save)
    return outputs


@pytest.mark.parametrize("name", ["ostrack_ce", "ostrack_noce", "grm"])
def test_batch_of_three_equals_one_at_a_time(setups, otb_sequences, tmp_path, captured, name):
    """4 sequences, B=3 (the 4th sequence refills the first free slot) vs B=1 through the runner."""
    seqs = otb_sequences
    one = _tracker(setups[name], tmp_path / "b1")
    three = _tracker(setups[name], tmp_path / "b3")
    res1 = run_dataset(seqs, [one], progress=False)
    res3 = run_dataset(seqs, [three], progress=False, batch_sequences=3)
    assert [r.status for r in res1] == ["done"] * len(seqs)
    assert sorted(r.status for r in res3) == ["done"] * len(seqs)
    for seq in seqs:
        boxes1, times1 = _read(one, seq)
        boxes3, times3 = _read(three, seq)
        assert boxes3.shape == (N_FRAMES, 4) and times3.shape == (N_FRAMES,) and (times3 > 0).all()
        assert np.array_equal(boxes1, boxes3), seq.name  # the written (integer) results are identical
        # in memory: float boxes within BOX_ATOL pixels (batched BLAS sums in another order)
        single = captured[(one.results_dir, seq.name)]["target_bbox"]
        batched = captured[(three.results_dir, seq.name)]["target_bbox"]
        assert batched[0] == single[0]  # the init box
        np.testing.assert_allclose(batched, single, rtol=0, atol=BOX_ATOL, err_msg=seq.name)


def test_slots_refill_when_sequences_end_at_different_frames(setups, otb_sequences):
    """Lengths 10, 3, 6, 1, 5 with B=2: finished slots take the next sequence; every sequence matches B=1."""
    lengths = [10, 3, 6, 1, 5]
    seqs = [_cut(otb_sequences[k % len(otb_sequences)], n, name=f"s{k}_{n}") for k, n in enumerate(lengths)]
    trk = _tracker(setups["ostrack_noce"], "unused")
    order = []
    done, failed = {}, {}
    params = trk.get_parameters(device="cpu")
    track_sequences_batched(lambda: trk.create_tracker(params), seqs, 2,
                            on_done=lambda s, o: (order.append(s.name), done.__setitem__(s.name, o)),
                            on_failed=lambda s, e, tb: failed.__setitem__(s.name, e))
    assert not failed
    # steps track frames 1..; slots s0 (10 frames: steps 1-9) and s1 (3: steps 1-2); s2 (6) starts after step 2
    # and tracks in steps 3-7; s3 (1 frame) is done at its initialisation; s4 (5) tracks in steps 8-11
    assert order == ["s1_3", "s2_6", "s3_1", "s0_10", "s4_5"]
    single = _single_in_memory(trk, seqs)
    for s, n in zip(seqs, lengths):
        assert len(done[s.name]["target_bbox"]) == n and len(done[s.name]["time"]) == n
        np.testing.assert_allclose(done[s.name]["target_bbox"], single[s.name]["target_bbox"], rtol=0, atol=BOX_ATOL)


def test_broken_frame_fails_its_sequence_only_and_rerun_resumes(setups, otb_sequences, tmp_path, captured):
    broken_frame = tmp_path / "broken.jpg"
    broken_frame.write_bytes(b"not a jpeg at all")
    good = otb_sequences[:3]
    frames = list(otb_sequences[3].frames)
    frames[6] = str(broken_frame)
    bad = Sequence("Broken", frames, "otb", otb_sequences[3].ground_truth_rect)
    seqs = [good[0], bad, good[1], good[2]]
    trk = _tracker(setups["ostrack_ce"], tmp_path / "results")
    res = {r.sequence: r for r in run_dataset(seqs, [trk], progress=False, batch_sequences=3)}
    assert res["Broken"].status == "failed" and "broken.jpg" in res["Broken"].error
    log = trk.result_files(bad)["error_log"]
    assert "FrameReadError" in open(log).read()
    assert not os.path.exists(trk.result_files(bad)["boxes"])
    assert all(res[s.name].status == "done" and res[s.name].frames == N_FRAMES for s in good)
    assert (trk.results_dir, "Broken") not in captured

    # rerun: finished sequences are skipped (files untouched); the repaired one is tracked, its log removed
    mtimes = {s.name: os.path.getmtime(trk.result_files(s)["boxes"]) for s in good}
    boxes = {s.name: _read(trk, s)[0] for s in good}
    os.remove(trk.result_files(good[1])["boxes"])
    repaired = _cut(otb_sequences[3], N_FRAMES, name="Broken")
    res = {r.sequence: r for r in run_dataset([good[0], repaired, good[1], good[2]], [trk], progress=False,
                                              batch_sequences=3)}
    assert {n: r.status for n, r in res.items()} == {good[0].name: "skipped", "Broken": "done",
                                                     good[1].name: "done", good[2].name: "skipped"}
    assert not os.path.exists(log)
    for s in (good[0], good[2]):
        assert os.path.getmtime(trk.result_files(s)["boxes"]) == mtimes[s.name]
    assert np.array_equal(_read(trk, good[1])[0], boxes[good[1].name])  # tracked with another batch partner


def test_worker_processes_batch_their_share(setups, otb_sequences, tmp_path, captured):
    """threads=2, B=2: each spawned worker batches its round-robin share; results as with B=1 in-process."""
    seqs = [_cut(s, 3) for s in otb_sequences]
    one = _tracker(setups["ostrack_noce"], tmp_path / "b1")
    two = _tracker(setups["ostrack_noce"], tmp_path / "b2")
    run_dataset(seqs, [one], progress=False)
    res = run_dataset(seqs, [two], progress=False, batch_sequences=2, threads=2)
    assert sorted((r.sequence, r.status, r.frames) for r in res) == sorted((s.name, "done", 3) for s in seqs)
    for s in seqs:
        assert np.array_equal(_read(one, s)[0], _read(two, s)[0]), s.name


def test_init_failure_frees_the_slot(setups, otb_sequences):
    zero = Sequence("zero_box", list(otb_sequences[0].frames[:5]), "otb", [[10, 10, 0, 5]] * 5)
    short = _cut(otb_sequences[1], 4)
    trk = _tracker(setups["ostrack_noce"], "unused")
    done, failed = _batched_in_memory(trk, [zero, short], 2)
    assert "cannot initialise" in str(failed["zero_box"]) and list(done) == [short.name]
    assert len(done[short.name]["target_bbox"]) == 4


# -- refusals ------------------------------------------------------------------------------------------------
def test_unsupported_tracker_is_refused_with_the_supported_list(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "results"))
    monkeypatch.delenv("TRACKING_TRACKER_MODULES", raising=False)  # restored after (--tracker_module sets it)
    assert get_tracker_class("ostrack").supports_batching and get_tracker_class("grm").supports_batching
    with pytest.raises(SetupError) as err:  # a tracker class without the protocol (tests/dummy_trackers.py)
        run_tracker("dummy_static", "x", batch_sequences=4, progress=False, tracker_modules=["tests.dummy_trackers"])
    msg = str(err.value)
    assert "'dummy_static' does not support batched evaluation" in msg and "ostrack" in msg and "grm" in msg
    assert "dummy_static" not in msg.split("Trackers that do:")[1]
    # the others batch through the whole-frame step
    assert "with --cuda_graph also aiatrack, sparsett, stark_s, stark_st" in msg
    with pytest.raises(BatchingNotSupportedError):
        run_dataset([], [Tracker("dummy_static", "x", results_path=str(tmp_path))], batch_sequences=2,
                    progress=False)
    # STARK-S batches only through the whole-frame step: refused without it, before any sequence
    checkpoint = tmp_path / "STARKS_ep0020.pth.tar"
    save_checkpoint_atomic({"net": build_network("stark_s", "tiny_cpu").state_dict()}, checkpoint)
    with pytest.raises(SetupError, match="'stark_s' batches sequences .* only through the whole-frame step: add "
                                         "--cuda_graph"):
        run_tracker("stark_s", "tiny_cpu", batch_sequences=2, checkpoint=str(checkpoint), device="cpu",
                    progress=False)
    with pytest.raises(SetupError, match="cannot be combined"):
        run_tracker("ostrack", "tiny_cpu", batch_sequences=2, debug=1, progress=False)
    proc = subprocess.run([sys.executable, "tracking/test.py", "dummy_static", "x", "--batch_sequences", "2",
                           "--tracker_module", "tests.dummy_trackers"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TRACKING_RESULTS_PATH=str(tmp_path / "results")))
    assert proc.returncode == 2 and "'dummy_static' does not support batched evaluation" in proc.stderr
