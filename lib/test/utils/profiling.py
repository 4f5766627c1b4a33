"""Speed and size of a tracker network and of the whole tracker (``tracking/profile_model.py``).

Figures: parameter count; MACs of one per-frame step (thop, which counts module calls such as Linear,
Conv and LayerNorm but not the functional attention products, like the official
``tracking/profile_model.py``; fvcore's count, which includes them, when fvcore is installed);
forward latency of the per-frame step (warm-up, synchronised timing, median of many, with the process
CPU time); the once-per-sequence / per-update calls; and the frames per second of the tracker on a real
sequence (crop, preprocessing, forward and post-processing; frames decoded beforehand).

The per-frame step is what the tracker runs on each frame, from the network package's
``profiling_step`` hook (:mod:`lib.models.profiling`): OSTrack's full forward, STARK's search backbone and
transformer over cached templates, AiATrack's search encoding and decoding against cached references,
SparseTT's ``track`` phase with the template memory.
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

from lib.models.profiling import ProfileStep
from lib.utils.misc import autocast_context

__all__ = ["profiling_step", "count_parameters", "count_macs", "time_forward", "time_calls", "time_tracker",
           "hardware_info", "LatencyStats", "load_sequence_frames", "append_csv_row", "load_average"]


@dataclass
class LatencyStats:
    """Latencies in milliseconds of ``n`` timed calls, with the process CPU time of each (all threads)."""

    times_ms: List[float] = field(default_factory=list)
    cpu_ms: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times_ms)

    @property
    def p10(self) -> float:
        return float(np.percentile(self.times_ms, 10))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else float("nan")

    def summary(self) -> str:
        cpu = f"; process CPU time median {self.cpu_median:.2f} ms" if self.cpu_ms else ""
        return (f"median {self.median:.2f} ms (p10 {self.p10:.2f}, p90 {self.p90:.2f}, mean {self.mean:.2f}, "
                f"min {min(self.times_ms):.2f}, n={len(self.times_ms)}) = {1000.0 / self.median:.2f} /s{cpu}")


def profiling_step(script: str, net: nn.Module, cfg, device, dataset_name: Optional[str] = None) -> ProfileStep:
    """The per-frame network call of the tracker of ``script``.

    The network package's ``profiling_step(net, cfg, device, dataset_name)`` when it has one; otherwise
    ``net(*inputs)`` with the package's ``example_inputs(cfg, batch_size=1, device=device)``, or random
    normalised ``(template, search)`` crops of ``TEST.TEMPLATE_SIZE`` / ``TEST.SEARCH_SIZE``.
    """
    from lib.models import NETWORK_MODULES

    module = importlib.import_module(NETWORK_MODULES[script])
    hook = getattr(module, "profiling_step", None)
    if hook is not None:
        return hook(net, cfg, device=device, dataset_name=dataset_name)
    fn = getattr(module, "example_inputs", None)
    if fn is not None:
        inputs = tuple(fn(cfg, batch_size=1, device=device))
    else:
        zs, xs = int(cfg.TEST.TEMPLATE_SIZE), int(cfg.TEST.SEARCH_SIZE)
        inputs = (torch.randn(1, 3, zs, zs, device=device), torch.randn(1, 3, xs, xs, device=device))
    return ProfileStep("network forward on the template and search crops", net, inputs)


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
    device synchronisations (``time.perf_counter`` and ``time.process_time``), under
    ``torch.inference_mode`` and autocast."""
    stats = LatencyStats()
    with torch.inference_mode(), autocast_context(device, precision):
        for _ in range(warmup):
            net(*inputs)
        _sync(device)
        for _ in range(iters):
            t0, c0 = time.perf_counter(), time.process_time()
            net(*inputs)
            _sync(device)
            stats.times_ms.append((time.perf_counter() - t0) * 1000.0)
            stats.cpu_ms.append((time.process_time() - c0) * 1000.0)
    return stats


def time_calls(calls: Dict[str, Any], device: torch.device, precision: str = "fp32", warmup: int = 2,
               iters: int = 10) -> Dict[str, LatencyStats]:
    """:func:`time_forward` of each zero-argument call (the ``once`` calls of a :class:`ProfileStep`)."""
    out = {}
    for label, call in calls.items():
        out[label] = time_forward(call, (), device, precision, warmup=warmup, iters=iters)
    return out


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
        t0, c0 = time.perf_counter(), time.process_time()
        tracker.track(frame)
        _sync(device)
        if i >= warmup:
            stats.times_ms.append((time.perf_counter() - t0) * 1000.0)
            stats.cpu_ms.append((time.process_time() - c0) * 1000.0)
    if not stats.times_ms:
        raise ValueError(f"time_tracker: {len(frames)} frames leave none to time after {warmup} warm-up frames")
    return 1000.0 * len(stats.times_ms) / sum(stats.times_ms), stats


def count_track_ops(tracker, frame: np.ndarray) -> int:
    """aten operations dispatched by one ``tracker.track(frame)`` call (the tracker already initialised).

    On a GPU at batch 1 every operation is roughly one kernel launch, so this is a device-free proxy of the
    per-frame launch overhead (a captured CUDA graph replays its operations with one launch).
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += 1
            return func(*args, **(kwargs or {}))

    counter = _Count()
    with torch.no_grad(), counter:
        tracker.track(frame)
    return counter.n


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
    """Device name, CPU, core count, torch and CUDA versions, intra-op threads and load average."""
    info = {
        "device": str(device),
        "cpu": f"{_cpu_name()} ({os.cpu_count()} logical cores)",
        "torch": torch.__version__,
        "cuda": (f"{torch.version.cuda} (runtime of the torch build; "
                 f"{'available' if torch.cuda.is_available() else 'no GPU visible'})"
                 if torch.version.cuda else "none"),
        "threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(os, "getloadavg"):
        info["load average (1/5/15 min)"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return info


def load_average() -> str:
    """The 1/5/15-minute load average (``os.getloadavg``), or ``n/a``: speed figures on a shared machine
    are read against it."""
    if hasattr(os, "getloadavg"):
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    return "n/a"


def append_csv_row(path: str, row: Dict[str, Any]) -> None:
    """Append ``row`` to the CSV file ``path`` (header written with the first row), atomically.

    Raises:
        ValueError: the file exists with other columns (the message names the file and both headers).
    """
    import csv
    import io

    from lib.utils.misc import atomic_write

    columns = list(row)
    previous = ""
    if os.path.isfile(path):
        with open(path, newline="") as f:
            previous = f.read()
        header = next(csv.reader(io.StringIO(previous)), None)
        if header is not None and header != columns:
            raise ValueError(f"{path}: CSV columns {header} differ from this profiler's {columns}; "
                             f"write to another file")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    if not previous:
        writer.writeheader()
    writer.writerow(row)
    if previous and not previous.endswith("\n"):
        previous += "\n"
    with atomic_write(path, "w") as f:
        f.write(previous + buf.getvalue())
