"""Issue-10 fast paths of every tracker (OSTrack, GRM, STARK-S/ST, AiATrack, SparseTT) (small ``tiny_cpu`` networks with
deterministic random weights, real OTB frames): the device-side crop gives the crops of the cv2 crop, and a
tracked frame reads the device at most once (box and any score together)."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch

from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams
from lib.test.utils.profiling import load_sequence_frames
from tests.conftest import need_shared

TRACKERS = [("ostrack", "tiny_cpu"), ("grm", "tiny_cpu"), ("stark_s", "tiny_cpu"), ("stark_st", "tiny_cpu"), ("aiatrack", "tiny_cpu"), ("sparsett", "tiny_cpu")]


@pytest.fixture(scope="module")
def sequence():
    frames, box = load_sequence_frames(str(need_shared("data", "otb", "Crossing")), 5)
    return frames, box


def _tracker(name, config, **extra):
    torch.manual_seed(0)
    params = TrackerParams.create(name, config, require_checkpoint=False, device="cpu", **extra)
    return get_tracker_class(name)(params, "otb")


def _run(tracker, frames, box):
    tracker.initialize(frames[0], {"init_bbox": box})
    return [tracker.track(f)["target_bbox"] for f in frames[1:]]


def _record_crops(tracker, name):
    """Wrap the tracker's crop call (``crop_normalized``; SparseTT's ``_crop``) to record
    ``(arguments, output)`` of every crop it makes."""
    calls = []
    method = "_crop" if name == "sparsett" else "crop_normalized"
    original = getattr(tracker, method)

    def wrapper(frame, *args, **kwargs):
        out = original(frame, *args, **kwargs)
        key = tuple(tuple(np.round(np.asarray(a, dtype=float).ravel(), 3).tolist())
                    if isinstance(a, (list, tuple, np.ndarray)) else a
                    for a in args if not hasattr(a, "normalize"))  # the preprocessor is no argument of note
        calls.append((key, out))
        return out

    setattr(tracker, method, wrapper)
    return calls


def _assert_same_crop(name, ref, fast):
    """cv2 crop vs device crop of the same box: same scale and mask, pixels within one grey level."""
    if name == "sparsett":  # (crop in grey levels: (S,S,3) array from cv2, (1,3,S,S) tensor on the device; scale)
        assert fast[1] == pytest.approx(ref[1], rel=1e-9)
        host = torch.from_numpy(np.ascontiguousarray(ref[0])).float().permute(2, 0, 1).unsqueeze(0)
        diff = (fast[0].float().reshape(host.shape) - host).abs()
    else:  # (normalised img (1,3,S,S), mask (1,S,S), resize_factor, patch)
        assert fast[2] == pytest.approx(ref[2], rel=1e-9) and torch.equal(fast[1], ref[1])
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        diff = ((fast[0] - ref[0]) * std * 255).abs()
    assert float(diff.max()) <= 1.0 + 1e-3 and float((diff > 1e-3).float().mean()) < 0.01, float(diff.max())


@pytest.mark.parametrize("name,config", TRACKERS)
def test_device_crop_gives_the_crops_of_the_cv2_crop(name, config, sequence):
    """The device-crop path of each tracker crops what the cv2 path crops, frame after frame.

    Compared are the crops (what the change affects), not the trajectories: with random weights the score map is
    nearly flat and a one-grey-level crop difference may flip its arg-max. Both trackers are kept on the same
    state (the reference's box after each frame), and every crop both made with the same arguments is compared."""
    frames, box = sequence
    reference = _tracker(name, config)
    fast = _tracker(name, config, device_crop=True)
    assert not reference.use_device_crop and fast.use_device_crop
    ref_calls, fast_calls = _record_crops(reference, name), _record_crops(fast, name)
    reference.initialize(frames[0], {"init_bbox": box})
    fast.initialize(frames[0], {"init_bbox": box})
    compared = 0
    for frame in [None] + list(frames[1:]):
        if frame is not None:
            reference.track(frame)
            fast.track(frame)
        fast_by_key = {key: out for key, out in fast_calls}
        for key, out in ref_calls:
            if key in fast_by_key:
                _assert_same_crop(name, out, fast_by_key[key])
                compared += 1
        searches = len(ref_calls)
        ref_calls.clear()
        fast_calls.clear()
        fast.state = copy.deepcopy(reference.state)  # the next crops are taken around the same box
        assert searches >= 1
    assert compared >= len(frames), f"{name}: only {compared} crops could be compared"


class _ReadCounter:
    """Counts Tensor -> host reads (``item``, ``tolist``, ``cpu``, ``numpy``, ``float``, ``bool``, ``int``)."""

    METHODS = ("item", "tolist", "cpu", "numpy", "__float__", "__bool__", "__int__", "__index__")

    def __init__(self):
        self.calls = []

    @contextlib.contextmanager
    def patched(self, monkeypatch):
        with monkeypatch.context() as m:
            for meth in self.METHODS:
                original = getattr(torch.Tensor, meth)

                def wrapper(t, *a, _orig=original, _name=meth, **k):
                    if t.numel() > 0:
                        self.calls.append(_name)
                    return _orig(t, *a, **k)

                m.setattr(torch.Tensor, meth, wrapper)
            yield self


@pytest.mark.parametrize("name,config", TRACKERS)
def test_one_device_read_per_frame(name, config, sequence, monkeypatch):
    frames, box = sequence
    tracker = _tracker(name, config, device_crop=True)
    tracker.initialize(frames[0], {"init_bbox": box})
    counter = _ReadCounter()
    for frame in frames[1:4]:
        counter.calls.clear()
        with counter.patched(monkeypatch):
            tracker.track(frame)
        assert len(counter.calls) == 1, f"{name}: reads per frame {counter.calls}"


class _Sink:
    def __init__(self):
        self.views = []

    def register(self, data, mode, level, title, **kwargs):
        self.views.append((title, mode, data))

    def frame_done(self):
        pass


@pytest.mark.parametrize("name", ["ostrack", "stark_st", "sparsett"])
def test_debug_views_get_host_images_with_the_device_crop(name, sequence):
    frames, box = sequence
    tracker = _tracker(name, "tiny_cpu", device_crop=True, debug=1)
    tracker.debug_sink = _Sink()
    tracker.initialize(frames[0], {"init_bbox": box})
    tracker.track(frames[1])
    images = [(t, d) for t, mode, d in tracker.debug_sink.views if mode == "image"]
    assert {"template", "search_region"} <= {t for t, _ in images}
    for title, data in images:
        assert isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 3, title
