"""Compiled and graph-captured per-frame network steps (``--compile``, ``--cuda_graph``; issue 10).

A tracker's per-frame network work is a function of tensors (search crop, its mask, cached template
features or memories) returning tensors. Two accelerations wrap such a function without changing what it
computes:

* :func:`compile_step`: ``torch.compile`` (inductor). On the CPU inductor generates C++ and needs a C++
  compiler; without one the first call fails, and :func:`check_compile_support` says so up front.
* :class:`CUDAGraphStep`: captures the function once per input signature (shapes, dtypes, devices and the
  non-tensor structure of the arguments) into a ``torch.cuda.CUDAGraph``, then for every call copies the
  inputs into the captured static buffers, replays the graph and returns the static outputs. This removes
  the per-kernel launch cost (the bottleneck of batch-1 tracking on a fast GPU). Only networks whose
  shapes and control flow do not depend on tensor values can be captured (OSTrack with candidate
  elimination keeps a fixed number of tokens per stage; GRM, STARK, AiATrack with a fixed number of
  references and SparseTT qualify); an operation that needs the host during capture (``.item()``,
  ``nonzero``, a Python branch on a tensor) raises :class:`GraphCaptureError` naming the function.

The returned outputs of a graph step are its static buffers: the next call overwrites them. A caller that
keeps an output beyond the frame (AiATrack's reference memory) must ``clone()`` it.

:func:`accelerate_step` applies what a :class:`~lib.test.tracker.base.TrackerParams` asks for.

Sources: PyTorch documentation, "CUDA Graphs" (``torch.cuda.graph``, warm-up on a side stream, static
inputs/outputs, memory pools) and ``torch.compile``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from lib.utils.errors import register_user_error

__all__ = ["CUDAGraphStep", "capture_graph", "GraphCaptureError", "compile_step", "check_compile_support",
           "accelerate_step"]


@register_user_error
class GraphCaptureError(RuntimeError):
    """A step cannot be captured into a CUDA graph (not on CUDA, or data-dependent shapes / host reads)."""


def check_compile_support(device: torch.device) -> None:
    """Raise a clear error where ``torch.compile`` cannot work: on the CPU inductor needs a C++ compiler.

    Raises:
        RuntimeError: no ``c++``/``g++``/``clang++``/``cc`` on the PATH for a CPU device.
    """
    if torch.device(device).type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++", "cc")):
        raise RuntimeError("--compile on the CPU needs a C++ compiler (torch.compile's inductor backend generates "
                           "C++): none of c++, g++, clang++, cc is on the PATH. Install one (e.g. apt-get install "
                           "g++) or run without --compile.")


def compile_step(fn: Callable[..., Any], device: torch.device, **compile_kwargs) -> Callable[..., Any]:
    """``torch.compile(fn, dynamic=False, **compile_kwargs)`` after :func:`check_compile_support`.

    Compilation happens at the first call (seconds to minutes); shapes are specialised, a new input shape
    recompiles.
    """
    check_compile_support(device)
    return torch.compile(fn, dynamic=False, **compile_kwargs)


@dataclass
class _Captured:
    graph: Any
    static_inputs: List[torch.Tensor]
    static_outputs: Any


def capture_graph(fn: Callable[..., Any], args: Tuple = (), device=None, warmup: int = 3, pool=None,
                  name: str = "step") -> Tuple[Any, Any]:
    """Capture ``fn(*args)`` into a ``torch.cuda.CUDAGraph``: ``warmup`` eager calls on a side stream first
    (cuDNN/cuBLAS autotuning and lazy initialisation must happen outside the capture), then the capture.

    ``args`` (tensors) are the graph's static inputs as they are: write new values into them and replay. A
    step that mutates its buffers runs ``warmup + 1`` times here (the capture itself executes nothing): a
    caller that must not see the warm-up calls' effects saves and restores what they change.

    Returns:
        ``(graph, outputs)``: the graph and the static outputs its replays overwrite.

    Raises:
        GraphCaptureError: the step cannot be captured (host reads, data-dependent shapes), naming ``name``.
    """
    device = torch.device(device if device is not None else "cuda")
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    # Autocast's cache of low-precision weight copies must not feed the graph: a cached copy made outside the
    # capture is read by the graph but freed when the autocast context ends, and its memory reused. With the
    # cache off during warm-up and capture, the casts are part of the graph and their outputs live in its pool.
    cache_was_on = torch.is_autocast_cache_enabled()
    torch.set_autocast_cache_enabled(False)
    torch.clear_autocast_cache()
    try:
        with torch.cuda.stream(side):
            for _ in range(int(warmup)):
                fn(*args)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            outputs = fn(*args)
    except RuntimeError as exc:
        raise GraphCaptureError(
            f"cannot capture '{name}' into a CUDA graph: {exc}. The step must have static shapes and no "
            f"host reads (.item(), .tolist(), nonzero, Python branches on tensor values); run without "
            f"--cuda_graph") from exc
    finally:
        torch.set_autocast_cache_enabled(cache_was_on)
    return graph, outputs


class CUDAGraphStep:
    """Capture ``fn(*args, **kwargs)`` into a CUDA graph per input signature and replay it.

    Args:
        fn: the per-frame step; its tensor arguments and results may be nested in tuples, lists and dicts
            (``None`` and Python numbers are part of the signature, not inputs).
        device: the CUDA device the step runs on.
        warmup: untimed eager calls on a side stream before the capture (cuDNN/cuBLAS autotuning and lazy
            initialisation must happen outside the capture).
        max_graphs: captured signatures kept (each holds its own static buffers).

    Raises:
        GraphCaptureError: at construction for a non-CUDA device; at a capture for a step that reads
            tensors on the host or has data-dependent shapes (the message names the step and the cause).
    """

    def __init__(self, fn: Callable[..., Any], device, warmup: int = 3, max_graphs: int = 4):
        device = torch.device(device)
        if device.type != "cuda":
            raise GraphCaptureError(f"--cuda_graph needs a CUDA device, the tracker runs on '{device}' "
                                    f"(CUDA graphs capture CUDA kernels; use --compile on the CPU)")
        self.fn = fn
        self.device = device
        self.warmup = int(warmup)
        self.max_graphs = int(max_graphs)
        self.pool = None  # one memory pool shared by this step's graphs
        self._graphs: Dict[Tuple, _Captured] = {}
        self.captures = 0

    @staticmethod
    def _signature(leaves: List[Any], spec) -> Tuple:
        sig = []
        for leaf in leaves:
            if isinstance(leaf, torch.Tensor):
                sig.append(("T", tuple(leaf.shape), leaf.dtype, str(leaf.device)))
            else:
                sig.append(("C", repr(leaf)))
        return (str(spec), tuple(sig))

    def _run(self, leaves: List[Any], spec):
        args, kwargs = tree_unflatten(leaves, spec)
        return self.fn(*args, **kwargs)

    def _capture(self, leaves: List[Any], spec) -> _Captured:
        static_inputs = [leaf.detach().clone() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        graph, static_outputs = capture_graph(lambda: self._run(static_inputs, spec), (), self.device,
                                              warmup=self.warmup, pool=self.pool, name=name)
        if self.pool is None:
            self.pool = graph.pool()
        self.captures += 1
        return _Captured(graph, [t for t in static_inputs if isinstance(t, torch.Tensor)], static_outputs)

    def __call__(self, *args, **kwargs):
        leaves, spec = tree_flatten((args, kwargs))
        key = self._signature(leaves, spec)
        captured = self._graphs.get(key)
        if captured is None:
            if len(self._graphs) >= self.max_graphs:
                self._graphs.pop(next(iter(self._graphs)))
            captured = self._graphs[key] = self._capture(leaves, spec)
        for static, leaf in zip(captured.static_inputs, (x for x in leaves if isinstance(x, torch.Tensor))):
            static.copy_(leaf)
        captured.graph.replay()
        return captured.static_outputs


def accelerate_step(fn: Callable[..., Any], device, compile: bool = False, cuda_graph: bool = False,
                    name: str = "step") -> Callable[..., Any]:
    """``fn`` with the accelerations asked for: compiled first (``torch.compile``), then captured
    (:class:`CUDAGraphStep`); unchanged when neither is asked.

    Raises:
        GraphCaptureError: ``cuda_graph`` on a non-CUDA device.
        RuntimeError: ``compile`` on a CPU without a C++ compiler.
    """
    device = torch.device(device)
    step = fn
    if cuda_graph and device.type != "cuda":
        raise GraphCaptureError(f"--cuda_graph needs a CUDA device, '{name}' runs on '{device}'")
    if compile:
        step = compile_step(step, device)
    if cuda_graph:
        step = CUDAGraphStep(step, device)
    return step
