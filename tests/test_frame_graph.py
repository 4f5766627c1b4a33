"""The whole frame in one step (``lib/test/tracker/frame_graph.py``; issue 15): crop geometry and box arithmetic on
the device give the host functions' numbers, the whole-frame step tracks exactly as the per-call device-crop path
(bit-identical boxes on real OTB frames, tiny networks with seed-0 weights), batched rows are reused as sequences
end, and the step has no data-dependent operation (``FakeTensorMode``), so it captures into a CUDA graph.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.config import load_config
from lib.models import build_network
from lib.test.evaluation.batched import track_sequences_batched
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.tracker import Tracker, track_sequence
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams
from lib.test.utils.profiling import load_sequence_frames
from lib.utils.checkpoint import save_checkpoint_atomic
from lib.utils.crop import (clip_box, clip_box_batch, crop_square, crop_square_tensor, map_box_back,
                            map_box_back_batch, sample_target, sample_target_batch, sample_target_tensor,
                            scale_crop_boxes, scale_crop_boxes_tensor)
from tests.conftest import FakeCUDAGraph, need_shared, tiny_config
from tests.test_capture_safety import fake_run

CTR_POINT = {"MODEL.BACKBONE.CE_TEMPLATE_RANGE": "CTR_POINT", "DATA.TEMPLATE.SIZE": 128, "TEST.TEMPLATE_SIZE": 128}
# STARK-ST updates its dynamic template every 3rd frame when confident (the score head's bias is raised below)
TRACKERS = {"ostrack_ce": ("ostrack", "ostrack", CTR_POINT), "grm": ("grm", "grm", {}),
            "stark_s": ("stark_s", "stark_s", {}),
            "stark_st": ("stark_st", "stark_st2", {"DATA.MAX_SAMPLE_INTERVAL": [3]}),
            "aiatrack": ("aiatrack", "aiatrack", {}), "sparsett": ("sparsett", "sparsett", {})}


def _random_boxes(rng, H, W, n):
    boxes = []
    for _ in range(n):
        w, h = rng.uniform(1.5, W * 0.9), rng.uniform(1.5, H * 0.9)
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)  # centres up to the borders: crops straddle them
        boxes.append([cx - w / 2, cy - h / 2, w, h])
    return boxes


def test_crop_geometry_on_the_device_is_the_host_geometry():
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 480, 640, 300) + [[10.3, 20.7, 0.4, 3.1], [-5.5, 3.25, 17.5, 12.5]]
    for factor in (2.0, 4.0, 5.0):
        x1, y1, side = crop_square_tensor(torch.tensor(boxes, dtype=torch.float64), factor)
        got = list(zip(x1.tolist(), y1.tolist(), side.tolist()))
        assert got == [tuple(float(v) for v in crop_square(b, factor)) for b in boxes]


def test_sample_target_batch_equals_the_device_crop_and_the_cv2_crop():
    """Frames of three sizes in one batch, boxes inside and across every border: the batched crop equals
    sample_target_tensor's pixels (and is within 1 grey level of cv2's), with the host's resize factor."""
    rng = np.random.default_rng(0)
    shapes = [(120, 160), (97, 211), (240, 320)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]
    pixels = max(im.size for im in images) + 17
    for trial in range(12):
        order = [(trial + b) % 3 for b in range(3)]
        frames = torch.zeros(3, pixels, dtype=torch.uint8)
        sizes = torch.tensor([shapes[k] for k in order], dtype=torch.int64)
        boxes = []
        for b, k in enumerate(order):
            frames[b, :images[k].size] = torch.from_numpy(images[k].reshape(-1))
            boxes += _random_boxes(rng, *shapes[k], 1)
        for size, factor in ((256, 4.0), (128, 2.0), (96, 5.0)):
            crop, resize_factor = sample_target_batch(frames, sizes, torch.tensor(boxes, dtype=torch.float64),
                                                      factor, size)
            assert crop.shape == (3, 3, size, size) and crop.dtype == torch.float32
            for b, k in enumerate(order):
                ref, ref_factor, _ = sample_target_tensor(torch.from_numpy(images[k]), boxes[b], factor, size)
                assert torch.equal(crop[b], ref[0]), (trial, b, size)
                assert float(resize_factor[b]) == ref_factor == size / crop_square(boxes[b], factor)[2]
                patch = sample_target(images[k], boxes[b], factor, size)[0]
                assert np.abs(crop[b].permute(1, 2, 0).numpy() - patch).max() <= 1


def test_box_arithmetic_on_the_device_is_the_host_arithmetic():
    rng = np.random.default_rng(2)
    n, S = 200, 256
    norm = rng.uniform(-0.2, 1.2, (n, 4)).astype(np.float32)
    prev = np.array(_random_boxes(rng, 360, 480, n))
    factors = S / rng.integers(20, 900, n).astype(np.float64)
    sizes = torch.tensor([[360, 480]] * n, dtype=torch.int64)
    scaled = scale_crop_boxes_tensor(torch.from_numpy(norm), S, torch.from_numpy(factors))
    mapped = map_box_back_batch(scaled, torch.from_numpy(prev), S, torch.from_numpy(factors))
    clipped = clip_box_batch(mapped, sizes, margin=10)
    for i in range(n):
        host = scale_crop_boxes(norm[i], S, float(factors[i]), "cpu")
        assert scaled[i].tolist() == host.tolist()
        back = map_box_back(host.tolist(), prev[i].tolist(), S, float(factors[i]))
        assert mapped[i].tolist() == back
        assert clipped[i].tolist() == [float(v) for v in clip_box(back, 360, 480, margin=10)]


@pytest.fixture(scope="module")
def frames():
    return load_sequence_frames(str(need_shared("data", "otb", "Crossing")), 16)


def _make(name, cfg, **extra):
    torch.manual_seed(0)
    params = TrackerParams.create(name, cfg, require_checkpoint=False, device="cpu", **extra)
    tracker = get_tracker_class(name)(params, "otb")
    _confident(name, tracker.network)
    return tracker


def _confident(name, network):
    """STARK-ST: confident, so the template updates happen; AiATrack: predicted IoU above the threshold, a new
    reference every frame."""
    with torch.no_grad():
        if name == "stark_st":
            network.cls_head.layers[-1].bias.add_(20.0)
        if name == "aiatrack":
            network.iou_head.iou_predictor.bias.add_(1.0)


@pytest.mark.parametrize("key", sorted(TRACKERS))
def test_whole_frame_step_tracks_exactly_as_the_device_crop(key, frames, tmp_path):
    """15 tracked frames (the target walks to the image border, so clipping acts), and a second sequence whose
    first box lies mostly outside the image (its first frame takes the regular path, then the graph's row is
    rewritten): boxes bit-identical to the per-call device crop (the template crop is the same device crop).
    STARK-ST: the confidences too, and the dynamic templates updated at the same frames."""
    from lib.test.tracker.frame_graph import FrameGraph

    name, script, changes = TRACKERS[key]
    cfg = tiny_config(tmp_path, script, f"{script}_frame", **changes)
    images, box = frames
    regular = _make(name, cfg, device_crop=True, frame_graph=False)
    whole = _make(name, cfg, device_crop=True, frame_graph=True)
    H, W = images[0].shape[:2]
    far = [W - 2.0, 30.0, 400.0, 4.0]  # centre 198 px right of the image: its search crop misses the image
    for init in (box, far):
        regular.initialize(images[0], {"init_bbox": init})
        whole.initialize(images[0], {"init_bbox": init})
        # the first frame of the far box takes the regular path (SparseTT's SiamFC window pads anywhere: never)
        regular_first = init is far and name != "sparsett"
        assert whole.regular_search_crop(images[0].shape) != regular_first
        ref = [regular.track(im) for im in images[1:]]
        rows = []
        original = FrameGraph.run
        FrameGraph.run = lambda self, trackers, imgs: rows.append(len(trackers)) or original(self, trackers, imgs)
        try:
            got = [whole.track(im) for im in images[1:]]
        finally:
            FrameGraph.run = original
        assert [[float(v) for v in r["target_bbox"]] for r in ref] == [r["target_bbox"] for r in got]
        assert len(rows) == len(images) - 1 - regular_first
        if name == "stark_st":
            assert [r["conf_score"] for r in ref] == [r["conf_score"] for r in got]
            assert whole.update_frames == regular.update_frames and whole.update_frames[0] >= 12
        if name == "sparsett":
            assert [r["best_score"] for r in ref] == [r["best_score"] for r in got]
        if name == "sparsett":
            assert [r["best_score"] for r in ref] == [r["best_score"] for r in got]
        if name == "aiatrack":
            assert [r["pred_iou"] for r in ref] == [r["pred_iou"] for r in got]
            assert [r.frame_id for r in whole.refer_list] == [r.frame_id for r in regular.refer_list]
            assert len(whole.refer_cache) == len(images)  # the first frame and every tracked one
    graph = whole._shared_steps["frame_graph"]
    assert graph.captures == 0 and not graph.use_graph  # eager on the CPU: the same step a graph replays
    state = whole.frame_state_values()
    for bad in (images[1].astype(np.float32), images[1][..., :2], images[1][..., 0]):
        with pytest.raises(ValueError, match=r"frame must be an \(H, W, 3\) uint8 array"):
            whole.track(bad)
    assert whole.frame_state_values() == state  # nothing tracked


@pytest.mark.parametrize("key", ["ostrack_ce", "stark_s", "stark_st", "sparsett", "aiatrack"])
def test_frame_graph_rows_are_reused_in_batched_evaluation(key, frames, tmp_path):
    """5 sequences of different lengths through 2 rows (finished sequences hand their row on) equal each sequence
    tracked alone with the regular path, within the batched-rounding tolerance of test_batched_eval. STARK and
    SparseTT batch only through the whole-frame step (FrameGraphBatching)."""
    name, script, changes = TRACKERS[key]
    cfg = tiny_config(tmp_path, script, "rows", **changes)
    torch.manual_seed(0)
    ckpt = tmp_path / "w.pth.tar"
    network = build_network(script, load_config(script, cfg))
    _confident(name, network)  # the updates after a frame happen in the batched step too
    save_checkpoint_atomic({"net": network.state_dict()}, ckpt)
    otb = need_shared("data", "otb", "Crossing")
    from lib.test.evaluation.otbdataset import OTBDataset

    base = [s for s in OTBDataset(base_path=str(otb.parent), missing="skip").get_sequence_list()]
    lengths = [8, 3, 6, 1, 5]
    seqs = [Sequence(f"s{k}", list(base[k % len(base)].frames[:n]), "otb", base[k % len(base)].ground_truth_rect[:n])
            for k, n in enumerate(lengths)]
    batched = Tracker(name, cfg, "otb", checkpoint=str(ckpt), results_path=str(tmp_path / "r"), device="cpu",
                      extra={"device_crop": True, "frame_graph": True})
    single = Tracker(name, cfg, "otb", checkpoint=str(ckpt), results_path=str(tmp_path / "s"), device="cpu",
                     extra={"device_crop": True, "frame_graph": False})
    done, failed, leads = {}, {}, []

    def factory():
        leads.append(batched.create_tracker(batched.get_parameters(device="cpu")))
        return leads[-1]

    track_sequences_batched(factory, seqs, 2, on_done=lambda s, o: done.__setitem__(s.name, o),
                            on_failed=lambda s, e, tb: failed.__setitem__(s.name, e))
    assert not failed
    graph = leads[0]._shared_steps["frame_graph"]
    assert graph.capacity == 2
    params = single.get_parameters(device="cpu")
    for s, n in zip(seqs, lengths):
        ref = track_sequence(single.create_tracker(params), s)["target_bbox"]
        assert len(done[s.name]["target_bbox"]) == n
        np.testing.assert_allclose(done[s.name]["target_bbox"], ref, rtol=0, atol=1e-3, err_msg=s.name)


@pytest.mark.parametrize("key", sorted(TRACKERS))
def test_whole_frame_step_has_no_data_dependent_operation(key, frames, tmp_path):
    """frame_step (crop geometry, crop, network, decoding, mapping back, clipping) under FakeTensorMode, batch 2
    (1 for the trackers without batched evaluation); the check is not vacuous: a host read of the state, as the
    regular path's geometry does, fails it."""
    name, script, changes = TRACKERS[key]
    images, box = frames
    tracker = _make(name, tiny_config(tmp_path, script, f"{script}_fake", **changes), device_crop=True,
                    frame_graph=True)
    tracker.initialize(images[0], {"init_bbox": box})
    tracker.track(images[1])
    graph = tracker._shared_steps["frame_graph"]
    B = 2 if tracker.supports_batching else 1
    consts = {k: (None if v is None else torch.cat([v] * B)) for k, v in tracker.frame_constants().items()}
    args = (graph.frames.expand(B, -1).contiguous(), graph.sizes.expand(B, -1).contiguous(),
            graph.state.expand(B, -1).contiguous(), consts)
    err = fake_run(tracker.frame_step, args, {})
    assert err is None, f"{type(err).__name__}: {err}"

    def host_geometry(frames_, sizes, state, constants):
        sample_target_tensor(frames_[0, :int(sizes[0, 0] * sizes[0, 1] * 3)].view(int(sizes[0, 0]), -1, 3),
                             state[0].tolist(), 4.0, 64)
    assert fake_run(host_geometry, args, {}) is not None


def test_captured_whole_frame_step_replays_the_eager_steps(frames, tmp_path, monkeypatch, fake_cuda):
    """The capture logic against a stand-in of torch.cuda's graph API (``fake_cuda``, tests/conftest.py): the
    warm-up calls and the capture advance the device states, which are put back, so every replay (one per
    frame, one capture in all) gives the eager boxes."""
    from lib.test.tracker.frame_graph import FrameGraph

    original_step = FrameGraph._step

    def recorded_step(self):  # what a capture records: the step on the graph's buffers (no inputs or outputs)
        if FakeCUDAGraph.capturing is not None:
            g = FakeCUDAGraph.capturing
            g.fn, g.args, g.out = (lambda: original_step(self)), (), ()
        original_step(self)

    monkeypatch.setattr(FrameGraph, "_step", recorded_step)
    name, script, changes = TRACKERS["ostrack_ce"]
    cfg = tiny_config(tmp_path, script, "replay", **changes)
    images, box = frames
    eager = _make(name, cfg, device_crop=True, frame_graph=True)
    captured = _make(name, cfg, device_crop=True, frame_graph=True)
    for t in (eager, captured):
        t.initialize(images[0], {"init_bbox": box})
    ref = [eager.track(im)["target_bbox"] for im in images[1:]]
    got = [captured.track(images[1])["target_bbox"]]
    fg = captured._shared_steps["frame_graph"]
    fg.use_graph = True  # from the second frame on: capture once, then replay (a CUDA device on a GPU machine)
    got += [captured.track(im)["target_bbox"] for im in images[2:]]
    assert got == ref
    assert fg.captures == 1 and fg.graph.replays == len(images) - 2


def test_test_py_crop_option_reaches_the_tracker(tmp_path):
    """``tracking/test.py --crop cv2|device`` sets ``device_crop`` for the run (recorded in the run's provenance);
    an unknown value stops the run before any sequence."""
    import json

    from lib.test.evaluation.running import SetupError, run_tracker

    otb = need_shared("data", "otb")
    torch.manual_seed(0)
    checkpoint = tmp_path / "STARKS_ep0020.pth.tar"
    save_checkpoint_atomic({"net": build_network("stark_s", "tiny_cpu").state_dict(), "net_type": "STARKS"}, checkpoint)
    for run_id, crop in ((1, "cv2"), (2, "device")):
        (result,) = run_tracker("stark_s", "tiny_cpu", dataset_name="otb", sequence="Football1", run_id=run_id,
                                checkpoint=str(checkpoint), device="cpu", dataset_path=str(otb), progress=False,
                                results_path=str(tmp_path / "results"), crop=crop)
        assert result.status == "done", result.error
        folder = tmp_path / "results" / "stark_s" / f"tiny_cpu_{run_id:03d}"
        assert len((folder / "Football1.txt").read_text().splitlines()) == 74
        record = json.loads((folder / "_provenance.json").read_text())
        (options,) = {json.dumps(r["options"], sort_keys=True) for r in record["records"].values()}
        assert json.loads(options)["extra"]["device_crop"] is (crop == "device")
    with pytest.raises(SetupError, match="--crop must be auto, cv2 or device"):
        run_tracker("stark_s", "tiny_cpu", dataset_name="otb", sequence="Football1", checkpoint=str(checkpoint),
                    dataset_path=str(otb), results_path=str(tmp_path / "results"), crop="gpu")


def test_host_checks_of_a_cuda_graph_run_use_the_run_device(tmp_path, monkeypatch):
    """``test.py --cuda_graph`` on a CUDA machine: the pre-flight checkpoint check, the provenance record and the
    batching check build the parameters on the run's device (here a stand-in CUDA default), not on the CPU, where
    ``cuda_graph`` is refused; on a machine without CUDA the run stops with the clear device message."""
    import lib.test.tracker.base as base
    from lib.test.evaluation.preflight import check_checkpoints
    from lib.test.evaluation.provenance import make_record
    from lib.test.evaluation.running import SetupError, check_batching, run_tracker

    torch.manual_seed(0)
    checkpoint = tmp_path / "STARKS_ep0020.pth.tar"
    save_checkpoint_atomic({"net": build_network("stark_s", "tiny_cpu").state_dict()}, checkpoint)
    trk = Tracker("stark_s", "tiny_cpu", "otb", checkpoint=str(checkpoint), results_path=str(tmp_path / "r"),
                  extra={"cuda_graph": True})
    with pytest.raises(SetupError, match="needs a CUDA device"):  # this machine: no CUDA
        run_tracker("stark_s", "tiny_cpu", checkpoint=str(checkpoint), cuda_graph=True, progress=False,
                    results_path=str(tmp_path / "r"))
    monkeypatch.setattr(base, "resolve_device", lambda d=None: torch.device("cuda" if d in (None, "cuda") else d))
    check_checkpoints([trk])  # refused before: its parameters were built for the CPU
    assert make_record(trk)["options"]["cuda_graph"] is True
    check_batching("stark_s", trk.get_parameters())  # STARK-S batches through the whole-frame step with a graph
