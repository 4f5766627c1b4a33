"""Issue-10 fast paths of every tracker (OSTrack, GRM, STARK-S/ST, AiATrack, SparseTT) (small ``tiny_cpu`` networks with
deterministic random weights, real OTB frames): the device-side crop gives the boxes of the cv2 crop, and a
tracked frame reads the device at most once (box and any score together)."""

from __future__ import annotations

import contextlib

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


@pytest.mark.parametrize("name,config", TRACKERS)
def test_device_crop_gives_the_boxes_of_the_cv2_crop(name, config, sequence):
    frames, box = sequence
    reference = _tracker(name, config)
    fast = _tracker(name, config, device_crop=True)
    assert not reference.use_device_crop and fast.use_device_crop
    ref_boxes, fast_boxes = _run(reference, frames, box), _run(fast, frames, box)
    diff = np.abs(np.asarray(ref_boxes) - np.asarray(fast_boxes))
    assert diff.max() < 0.5, f"{name}: device crop moved a box by {diff.max():.3f} px"


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
