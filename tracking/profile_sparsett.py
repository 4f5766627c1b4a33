"""SparseTT speed: model latency of the two test-time phases and tracker frames/s on a real sequence.

    python tracking/profile_sparsett.py --config sparsett_swin_fulldata --device cpu --threads 2

Prints the median latency of ``net(template, phase="feature")`` (run once per sequence) and of
``net(search, memory, phase="track")`` (run every frame), then the frames per second of the whole tracker
(crop, normalisation, forward, post-processing; frames decoded beforehand) over the first ``--frames`` frames
of a sequence (default ``../shared/data/otb/Crossing``). Random weights unless ``--checkpoint`` is given (the
speed does not depend on them).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext

import _init_paths  # noqa: F401
import torch

from lib.config import PROJECT_ROOT, load_config
from lib.models import build_network
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams
from lib.utils.image import imread_rgb
from lib.utils.misc import resolve_device

SHARED = os.environ.get("TRACKING_SHARED_DIR", os.path.join(PROJECT_ROOT.parent, "shared"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def time_calls(fn, device, warmup: int, iters: int):
    """Wall-clock and process CPU milliseconds of ``iters`` calls of ``fn`` after ``warmup`` untimed ones.

    The CPU time (all threads of this process) shows the compute cost when other processes share the cores.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    wall, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall.append(1000.0 * (time.perf_counter() - t0))
        cpu.append(1000.0 * (time.process_time() - c0))
    return wall, cpu


def _summary(times: list, cpu: list = None) -> str:
    med = statistics.median(times)
    text = f"median {med:.1f} ms (min {min(times):.1f}, max {max(times):.1f}, n={len(times)}) = {1000 / med:.2f} /s"
    if cpu:
        text += f"; process CPU time median {statistics.median(cpu):.1f} ms"
    return text


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="sparsett_swin_fulldata")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--sequence", default=os.path.join(SHARED, "data", "otb", "Crossing"),
                   help="OTB-layout folder (img/, groundtruth_rect.txt)")
    p.add_argument("--frames", type=int, default=40, help="tracked frames (0 skips the tracker)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = load_config("sparsett", args.config)
    print(f"== sparsett / {args.config}")
    print(f"device {device}; cpu {_cpu_name()} ({os.cpu_count()} logical cores); torch {torch.__version__}; "
          f"threads {torch.get_num_threads()}; precision {args.precision}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    net = build_network("sparsett", cfg, checkpoint=args.checkpoint, device=device)
    zs, xs = int(cfg.TEST.TEMPLATE_SIZE), int(cfg.TEST.SEARCH_SIZE)
    z = torch.randn(1, 3, zs, zs, device=device)
    x = torch.randn(1, 3, xs, xs, device=device)
    with torch.inference_mode(), _autocast(device, args.precision):
        memory = net(z, phase="feature")
        feat = time_calls(lambda: net(z, phase="feature"), device, args.warmup, args.iters)
        track = time_calls(lambda: net(x, *memory, phase="track"), device, args.warmup, args.iters)
    print(f"template feature (phase 'feature', {zs}x{zs}): {_summary(*feat)}")
    print(f"track step      (phase 'track', {xs}x{xs}):  {_summary(*track)}")
    del net

    if args.frames <= 0:
        return
    img_dir = os.path.join(args.sequence, "img")
    gt_file = os.path.join(args.sequence, "groundtruth_rect.txt")
    if not (os.path.isdir(img_dir) and os.path.isfile(gt_file)):
        print(f"tracker speed skipped: '{args.sequence}' has no img/ and groundtruth_rect.txt")
        return
    names = sorted(os.listdir(img_dir))[:args.frames + 1]
    frames = [imread_rgb(os.path.join(img_dir, n)) for n in names]
    with open(gt_file) as f:
        init = [float(v) for v in f.readline().replace(",", " ").split()[:4]]
    params = TrackerParams.create("sparsett", args.config, checkpoint=args.checkpoint, device=device,
                                  precision=args.precision, require_checkpoint=False)
    tracker = get_tracker_class("sparsett")(params, "otb")
    t0 = time.perf_counter()
    tracker.initialize(frames[0], {"init_bbox": init})
    _sync(device)
    init_ms = 1000.0 * (time.perf_counter() - t0)
    times, cpu = [], []
    for frame in frames[1:]:
        t0, c0 = time.perf_counter(), time.process_time()
        tracker.track(frame)
        _sync(device)
        times.append(1000.0 * (time.perf_counter() - t0))
        cpu.append(1000.0 * (time.process_time() - c0))
    h, w = frames[0].shape[:2]
    print(f"tracker on '{args.sequence}' ({w}x{h}): initialize {init_ms:.1f} ms; track {_summary(times, cpu)}; "
          f"{1000.0 * len(times) / sum(times):.2f} frames/s over {len(times)} frames "
          f"({1000.0 * len(frames) / (sum(times) + init_ms):.2f} frames/s with the first frame)")


if __name__ == "__main__":
    sys.exit(main())
