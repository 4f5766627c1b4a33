"""--compile / --cuda_graph (lib/models/acceleration.py): the CPU error paths, the CUDA graph wrapper's
capture/replay logic against a stand-in of the torch.cuda graph API (no GPU here), and a compiled tracker
step (dynamo with the eager backend: the inductor C++ build takes ~30 s cold) giving the same boxes."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import lib.models.acceleration as accel
from lib.models.acceleration import CUDAGraphStep, GraphCaptureError, accelerate_step, check_compile_support
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams
from lib.test.utils.profiling import load_sequence_frames
from tests.conftest import FakeCUDAGraph, need_shared, recording_step


def test_cuda_graph_on_the_cpu_fails_clearly():
    with pytest.raises(GraphCaptureError, match="needs a CUDA device"):
        CUDAGraphStep(lambda x: x, "cpu")
    with pytest.raises(GraphCaptureError, match="needs a CUDA device"):
        accelerate_step(lambda x: x, "cpu", cuda_graph=True)
    assert accelerate_step(len, "cpu") is len  # nothing asked: the function itself


def test_tracker_with_cuda_graph_on_the_cpu_fails_clearly():
    with pytest.raises(ValueError, match="needs a CUDA device; tracker 'stark_s' would run on 'cpu'"):
        TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, device="cpu", cuda_graph=True)
    # tracking/test.py passes the flags through extra: they land in the fields
    params = TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, device="cpu", compile=True)
    assert params.compile and not params.cuda_graph and "compile" not in params.extra
    # parameters built by hand still fail at the first frame, naming the step
    frames, box = load_sequence_frames(str(need_shared("data", "otb", "Crossing")), 2)
    params = TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, device="cpu")
    params.cuda_graph = True
    tracker = get_tracker_class("stark_s")(params, "otb")
    tracker.initialize(frames[0], {"init_bbox": box})
    with pytest.raises(GraphCaptureError, match="needs a CUDA device, 'stark_s whole-frame step' runs on 'cpu'"):
        tracker.track(frames[1])
    params.extra["frame_graph"] = False  # the per-call network step fails the same way
    tracker = get_tracker_class("stark_s")(params, "otb")
    tracker.initialize(frames[0], {"init_bbox": box})
    with pytest.raises(GraphCaptureError, match="needs a CUDA device, 'stark_s search backbone"):
        tracker.track(frames[1])


def test_compile_without_a_compiler_fails_clearly(monkeypatch):
    monkeypatch.setattr(accel.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs a C\\+\\+ compiler"):
        check_compile_support(torch.device("cpu"))
    check_compile_support(torch.device("cuda"))  # no host compiler needed for the check on CUDA


# -- the graph wrapper against a stand-in of torch.cuda's graph API (tests/conftest.py: fake_cuda) -------------
def test_graph_step_copies_inputs_into_static_buffers_and_replays(fake_cuda):
    calls = []

    def body(x, parts):
        calls.append(1)
        return {"sum": x * 2 + parts[0], "n": x.sum(-1)}

    step = CUDAGraphStep(recording_step(body), "cuda", warmup=2)
    x1, y1 = torch.arange(6.0).view(2, 3), torch.ones(2, 3)
    out1 = step(x1, [y1])
    assert step.captures == 1 and len(calls) == 4  # 2 warm-ups, the captured call, the (stand-in's) replay
    torch.testing.assert_close(out1["sum"], x1 * 2 + y1)
    x2, y2 = torch.full((2, 3), 5.0), torch.zeros(2, 3)
    out2 = step(x2, [y2])
    assert step.captures == 1 and out2["sum"] is out1["sum"]  # static outputs, overwritten by the replay
    torch.testing.assert_close(out2["sum"], x2 * 2 + y2)
    torch.testing.assert_close(out2["n"], x2.sum(-1))
    x1[:] = -1  # the caller's tensors are copied, never captured by reference
    torch.testing.assert_close(step(x2, [y2])["sum"], x2 * 2 + y2)
    # a new shape is a new signature: captured once more, the first graph kept
    out3 = step(torch.ones(4, 3), [torch.ones(4, 3)])
    assert step.captures == 2 and out3["sum"].shape == (4, 3)
    assert len(step._graphs) == 2


def test_graph_capture_errors_name_the_step(fake_cuda):
    def reads_the_host(x):
        if FakeCUDAGraph.capturing is not None:
            raise RuntimeError("operation not permitted when stream is capturing")
        return x + 1

    step = CUDAGraphStep(reads_the_host, "cuda", warmup=1)
    with pytest.raises(GraphCaptureError, match="cannot capture 'test_graph_capture_errors_name_the_step.<locals>"
                                                ".reads_the_host'.*static shapes"):
        step(torch.ones(3))


# -- compile --------------------------------------------------------------------------------------
def test_compiled_tracker_step_gives_the_same_boxes(monkeypatch):
    frames, box = load_sequence_frames(str(need_shared("data", "otb", "Crossing")), 3)
    compiled = []

    def eager_compile(fn, **kwargs):
        compiled.append(fn)
        return torch.compile.__wrapped_original__(fn, backend="eager", dynamic=False)

    eager_compile.__wrapped_original__ = torch.compile
    monkeypatch.setattr(torch, "compile", functools.partial(eager_compile))
    torch.compile.__wrapped_original__ = eager_compile.__wrapped_original__
    boxes = []
    for flag in (False, True):
        torch.manual_seed(0)
        params = TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, device="cpu", compile=flag)
        tracker = get_tracker_class("stark_s")(params, "otb")
        tracker.initialize(frames[0], {"init_bbox": box})
        boxes.append([tracker.track(f)["target_bbox"] for f in frames[1:]])
    assert len(compiled) == 1 and compiled[0].__name__ == "_search_step"
    np.testing.assert_allclose(boxes[1], boxes[0], rtol=0, atol=1e-4)


def test_capture_runs_without_the_autocast_weight_cache(fake_cuda):
    """Under autocast (fp16/bf16 tracking) the warm-up and the capture run with autocast's cast cache off, so
    the weight casts are captured (a cached cast made outside the graph would be freed under it when the
    autocast context ends); the cache setting is restored after, also when the capture fails."""
    seen = []

    def step(x):
        seen.append(torch.is_autocast_cache_enabled())
        return x * 2

    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_cache_enabled()
        graph, out = accel.capture_graph(recording_step(step), (torch.ones(2),), "cuda", warmup=2, name="scaled")
        assert torch.is_autocast_cache_enabled()
        assert seen == [False, False, False]  # 2 warm-ups and the capture

        def reads_the_host(x):
            raise RuntimeError("operation not permitted when stream is capturing")

        with pytest.raises(GraphCaptureError, match="cannot capture 'reading'"):
            accel.capture_graph(reads_the_host, (torch.ones(2),), "cuda", warmup=0, name="reading")
        assert torch.is_autocast_cache_enabled()
    torch.testing.assert_close(out, torch.full((2,), 2.0))
