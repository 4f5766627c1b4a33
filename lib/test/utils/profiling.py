"""Speed and size of a tracker network and of the whole tracker (``tracking/profile_model.py``).

Figures: parameter count; MACs of one forward pass (thop, which counts module calls such as Linear,
Conv and LayerNorm but not the functional attention products, like the official
``tracking/profile_model.py``; fvcore's count, which includes them, when fvcore is installed);
model-only forward latency (warm-up, synchronised timing, median of many); and the frames per second
of the tracker on a real sequence (crop, preprocessing, forward and post-processing; frames decoded
beforehand).
"""

from __future__ import annotations

import copy
import importlib
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from lib.utils.misc import autocast_context

__all__ = ["example_inputs", "count_parameters", "count_macs", "time_forward", "time_tracker", "hardware_info",
           "LatencyStats", "load_sequence_frames"]


@dataclass
class LatencyStats:
    """Latencies in milliseconds of ``n`` timed calls."""

    times_ms: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times_ms)

    @property
    def p90(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    def summary(self) -> str:
        return (f"median {self.median:.2f} ms (mean {self.mean:.2f}, p90 {self.p90:.2f}, min {min(self.times_ms):.2f}, "
                f"n={len(self.times_ms)}) = {1000.0 / self.median:.2f} forward passes/s")


def example_inputs(script: str, cfg, device, batch_size: int = 1) -> Tuple[Any, ...]:
    """Positional inputs of one forward pass of the network of ``script``.

    Uses the network package's ``example_inputs(cfg, batch_size, device)`` when it has one; otherwise
    random normalised ``(template, search)`` crops of ``TEST.TEMPLATE_SIZE`` / ``TEST.SEARCH_SIZE``.
    """
    from lib.models import NETWORK_MODULES

    module = importlib.import_module(NETWORK_MODULES[script])
    fn = getattr(module, "example_inputs", None)
    if fn is not None:
        return tuple(fn(cfg, batch_size=batch_size, device=device))
    zs, xs = int(cfg.TEST.TEMPLATE_SIZE), int(cfg.TEST.SEARCH_SIZE)
    return (torch.randn(batch_size, 3, zs, zs, device=device), torch.randn(batch_size, 3, xs, xs, device=device))


def count_parameters(net: nn.Module) -> int:
    """Number of parameter elements (buffers excluded)."""
    return sum(p.numel() for p in net.parameters())


def count_macs(net: nn.Module, inputs: Sequence[Any]) -> Dict[str, float]:
    """Multiply-accumulates of one forward pass: ``{'thop': ..., 'fvcore': ...}`` (each only if installed).

    thop runs on a deep copy (it attaches counters to the modules).
    """
    out: Dict[str, float] = {}
    try:
        with warnings.catch_warnings():  # thop uses distutils' deprecated LooseVersion
            warnings.simplefilter("ignore", DeprecationWarning)
            from thop import profile
    except ImportError:
        profile = None
    if profile is not None:
        model = copy.deepcopy(net)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            macs, _ = profile(model, inputs=tuple(inputs), verbose=False)
        out["thop"] = float(macs)
        del model
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        FlopCountAnalysis = None
    if FlopCountAnalysis is not None:
        with torch.no_grad():
            analysis = FlopCountAnalysis(net, tuple(inputs))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            out["fvcore"] = float(analysis.total())
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(net: nn.Module, inputs: Sequence[Any], device: torch.device, precision: str = "fp32",
                 warmup: int = 10, iters: int = 50) -> LatencyStats:
    """Latency of ``net(*inputs)``: ``warmup`` untimed calls, then ``iters`` calls each timed between
    device synchronisations (``time.perf_counter``), under ``torch.inference_mode`` and autocast."""
    stats = LatencyStats()
    with torch.inference_mode(), autocast_context(device, precision):
        for _ in range(warmup):
            net(*inputs)
        _sync(device)
        for _ in range(iters):
            t0 = time.perf_counter()
            net(*inputs)
            _sync(device)
            stats.times_ms.append((time.perf_counter() - t0) * 1000.0)
    return stats


def load_sequence_frames(path: str, max_frames: Optional[int] = None,
                         init_box: Optional[Sequence[float]] = None) -> Tuple[List[np.ndarray], List[float]]:
    """Frames (RGB) and first box of a sequence folder, for speed measurements.

    ``path`` is an OTB-style folder (``img/`` and ``groundtruth_rect.txt``, comma/tab/space separated) or
    any folder of images (then ``init_box`` is required).

    Raises:
        FileNotFoundError / ValueError: no such folder, no images, or no first box.
    """
    from lib.test.utils.video import open_frame_source

    img_dir = os.path.join(path, "img") if os.path.isdir(os.path.join(path, "img")) else path
    source = open_frame_source(img_dir)
    if init_box is None:
        gt = os.path.join(path, "groundtruth_rect.txt")
        if not os.path.isfile(gt):
            raise ValueError(f"'{path}' has no groundtruth_rect.txt: give the first box (--init_box)")
        with open(gt) as f:
            first = f.readline().replace(",", " ").replace("\t", " ").split()
        init_box = [float(v) for v in first[:4]]
    frames = []
    for frame in source:
        frames.append(frame)
        if max_frames is not None and len(frames) >= max_frames:
            break
    return frames, list(init_box)


def time_tracker(tracker, frames: Sequence[np.ndarray], init_box: Sequence[float], warmup: int = 2
                 ) -> Tuple[float, LatencyStats]:
    """Frames per second of ``tracker.track`` over ``frames[1:]`` after ``initialize`` on ``frames[0]``.

    The first ``warmup`` tracked frames are not timed. Returns ``(fps over the timed frames, per-frame stats)``.
    """
    tracker.initialize(frames[0], {"init_bbox": list(init_box)})
    stats = LatencyStats()
    device = getattr(tracker, "device", torch.device("cpu"))
    for i, frame in enumerate(frames[1:]):
        t0 = time.perf_counter()
        tracker.track(frame)
        _sync(device)
        if i >= warmup:
            stats.times_ms.append((time.perf_counter() - t0) * 1000.0)
    if not stats.times_ms:
        raise ValueError(f"time_tracker: {len(frames)} frames leave none to time after {warmup} warm-up frames")
    return 1000.0 * len(stats.times_ms) / sum(stats.times_ms), stats


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info(device: torch.device) -> Dict[str, str]:
    """Device name, CPU, core count, torch version, intra-op threads and load average."""
    info = {
        "device": str(device),
        "cpu": f"{_cpu_name()} ({os.cpu_count()} logical cores)",
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(os, "getloadavg"):
        info["load average (1/5/15 min)"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return info
