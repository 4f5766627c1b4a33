"""Every tracker at batch 1 on one device: model-step ms, end-to-end fps, host CPU ms per frame and box deviation,
for fp32 eager, fp32 + CUDA graph, fp16 + CUDA graph and bf16 + CUDA graph (issue 15).

    python tracking/benchmark_gpu.py --device cuda
    python tracking/benchmark_gpu.py --device cuda --trackers ostrack:vitb_256_mae_ce_32x4_ep300 \
        --checkpoint ostrack:vitb_256_mae_ce_32x4_ep300=ck256.pth.tar --modes fp32 fp32+graph fp16+graph
    python tracking/benchmark_gpu.py --device cpu --trackers stark_s:tiny_cpu --modes fp32 --frames 5 --warmup 1

Protocol: the frames are decoded beforehand (``--sequence``, default ../shared/data/otb/Crossing; a sequence
shorter than warm-up + timed calls is walked forth and back); ``initialize`` on frame 0, then ``--warmup``
untimed and ``--frames`` timed ``track()`` calls, each between device synchronisations. Per mode it prints:

* ``step``: the tracker's per-frame network step (what ``--cuda_graph`` captures: :meth:`BaseTracker.accelerated`;
  for OSTrack and GRM with a graph the whole-frame step, crop to clipped box: ``lib/test/tracker/frame_graph.py``),
  timed with CUDA events around each call (on the CPU: wall clock), median ms;
* ``e2e``: median wall ms per ``track()`` and fps = 1000 / median;
* ``host``: mean process CPU time per ``track()`` (all threads; on CUDA the host should stay below the GPU time);
* ``ops``: aten operations dispatched by one eager ``track()`` (a device-free proxy of kernel launches);
* ``dev``: max box difference (px, xywh) against fp32 eager over all calls, and the first call over 0.5 px.

Random weights (seed 0, the same for every mode) unless ``--checkpoint NAME:CONFIG=PATH``: random weights leave
score maps on near-ties, where any rounding moves the arg-max; compare boxes on a checkpoint with decisive
score maps (OSTrack: ``../shared/bench/bench_e2e.py --make_checkpoint``). Every line names the device, torch and
CUDA versions and the precision.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import _init_paths  # noqa: F401

DEFAULT_TRACKERS = ["ostrack:vitb_256_mae_ce_32x4_ep300", "ostrack:vitb_384_mae_ce_32x4_ep300", "grm:vitb_256_ep300",
                    "stark_s:baseline", "stark_st:baseline", "aiatrack:baseline", "sparsett:sparsett_swin_fulldata"]
MODES = ["fp32", "fp32+graph", "fp16+graph", "bf16+graph"]


def parse_args(argv=None):
    from lib.config import PROJECT_ROOT

    shared = os.environ.get("TRACKING_SHARED_DIR", os.path.join(PROJECT_ROOT.parent, "shared"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default %(default)s)")
    p.add_argument("--trackers", nargs="+", default=DEFAULT_TRACKERS, metavar="NAME:CONFIG",
                   help="trackers to run (default: every tracker's main config)")
    p.add_argument("--modes", nargs="+", default=MODES, choices=MODES + ["fp16", "bf16"],
                   help="precision[+graph] modes; fp32 eager always runs first as the reference")
    p.add_argument("--checkpoint", nargs="*", default=[], metavar="NAME:CONFIG=PATH",
                   help="checkpoint of one tracker config (NAME:CONFIG=PATH) or of every config of a tracker "
                        "(NAME=PATH); default: random weights, seed 0")
    p.add_argument("--sequence", default=os.path.join(shared, "data", "otb", "Crossing"),
                   help="OTB-style sequence folder (default %(default)s)")
    p.add_argument("--warmup", type=int, default=20, help="untimed track() calls (default %(default)s)")
    p.add_argument("--frames", type=int, default=100, help="timed track() calls (default %(default)s)")
    p.add_argument("--no_ops", action="store_true", help="skip the aten operation count")
    args = p.parse_args(argv)
    if args.frames < 1 or args.warmup < 0:
        p.error("--frames must be >= 1 and --warmup >= 0")
    for item in args.trackers:
        if ":" not in item:
            p.error(f"--trackers: '{item}' is not NAME:CONFIG")
    for item in args.checkpoint:
        if "=" not in item:
            p.error(f"--checkpoint: '{item}' is not NAME:CONFIG=PATH or NAME=PATH")
    return args


def schedule(length: int, calls: int):
    """Frame index of each track() call after frame 0: 1, 2, ..., L-1, L-2, ..., 0, 1, ... (continuous motion)."""
    out, pos, step = [], 0, 1
    for _ in range(calls):
        if not 0 <= pos + step < length:
            step = -step
        pos += step
        out.append(pos)
    return out


def run_mode(name, config, mode, checkpoint, device, frames, box, order, warmup, count_ops):
    """Build the tracker for ``mode``, track ``order``; returns a dict of figures and the boxes."""
    import numpy as np
    import torch

    from lib.test.tracker import get_tracker_class
    from lib.test.tracker.base import BaseTracker, TrackerParams
    from lib.test.utils.profiling import count_track_ops

    precision, _, graph = mode.partition("+")
    cuda = device.type == "cuda"
    step_events = []
    original = BaseTracker.accelerated

    def timed_accelerated(self, fn, step_name="per-frame step"):
        step = fn if self is None else original(self, fn, step_name)

        def call(*a, **k):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = step(*a, **k)
                end.record()
                step_events.append((start, end))
            else:
                t0 = time.perf_counter()
                out = step(*a, **k)
                step_events.append(time.perf_counter() - t0)
            return out
        return call

    from lib.test.tracker.frame_graph import FrameGraph

    original_execute = FrameGraph.execute

    def timed_execute(self):  # the whole-frame graph (crop to clipped box) is the step of those modes
        timed_accelerated(None, lambda: original_execute(self))()

    BaseTracker.accelerated = timed_accelerated
    FrameGraph.execute = timed_execute
    try:
        torch.manual_seed(0)
        params = TrackerParams.create(name, config, checkpoint=checkpoint, require_checkpoint=False, device=device,
                                      precision=precision, cuda_graph=bool(graph))
        tracker = get_tracker_class(name)(params, "otb")
        tracker.initialize(frames[0], {"init_bbox": list(box)})
        boxes, wall, host = [], [], []
        for i, idx in enumerate(order):
            if i == warmup:
                step_events.clear()
            if cuda:
                torch.cuda.synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
            out = tracker.track(frames[idx])
            if cuda:
                torch.cuda.synchronize(device)
            t1, c1 = time.perf_counter(), time.process_time()
            boxes.append([float(v) for v in out["target_bbox"]])
            if i >= warmup:
                wall.append((t1 - t0) * 1e3)
                host.append((c1 - c0) * 1e3)
        if cuda:
            step_ms = [s.elapsed_time(e) for s, e in step_events]
        else:
            step_ms = [t * 1e3 for t in step_events]
        ops = count_track_ops(tracker, frames[order[-1]]) if count_ops else None
    finally:
        BaseTracker.accelerated = original
        FrameGraph.execute = original_execute
    e2e = float(np.median(wall))
    return {"step_ms": float(np.median(step_ms)) if step_ms else float("nan"), "e2e_ms": e2e, "fps": 1e3 / e2e,
            "host_ms": float(np.mean(host)), "ops": ops}, np.asarray(boxes, dtype=np.float64)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    from lib.test.utils.profiling import hardware_info, load_sequence_frames
    from lib.utils.misc import resolve_device

    device = resolve_device(args.device)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    frames, box = load_sequence_frames(args.sequence)
    order = schedule(len(frames), args.warmup + args.frames)
    info = hardware_info(device)
    hw = info.get("gpu", info["cpu"])
    ctx = (f"{hw} | torch {torch.__version__} | CUDA {torch.version.cuda or 'none'} | "
           f"{os.path.basename(os.path.normpath(args.sequence))} {args.warmup}+{args.frames} calls")
    print(f"# benchmark_gpu: {ctx} | batch 1 | frames decoded beforehand", flush=True)
    modes = ["fp32"] + [m for m in args.modes if m != "fp32"]
    started = time.perf_counter()
    for item in args.trackers:
        name, config = item.split(":", 1)
        checkpoint = checkpoints.get(item, checkpoints.get(name))
        weights = os.path.basename(checkpoint) if checkpoint else "random weights (seed 0)"
        reference = None
        for mode in modes:
            label = f"{name} {config} {mode:<10s}"
            try:
                figs, boxes = run_mode(name, config, mode, checkpoint, device, frames, box, order, args.warmup,
                                       count_ops=(mode == "fp32" and not args.no_ops))
            except Exception as exc:  # one mode failing (e.g. a capture) must not hide the others
                print(f"{label} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", flush=True)
                continue
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            if reference is None and mode == "fp32":
                reference, dev = boxes, "reference"
            elif reference is not None:
                diff = np.abs(boxes - reference).max(axis=1)
                over = np.nonzero(diff > 0.5)[0]
                dev = f"max {diff.max():.4g} px" + (f", first > 0.5 px at call {over[0]}" if len(over) else "")
            else:
                dev = "n/a"
            ops = f" | ops {figs['ops']}" if figs["ops"] is not None else ""
            print(f"{label} step {figs['step_ms']:7.3f} ms | e2e {figs['e2e_ms']:7.3f} ms = {figs['fps']:7.1f} fps | "
                  f"host {figs['host_ms']:7.3f} ms{ops} | dev vs fp32 eager: {dev} | {weights} | {ctx} | "
                  f"threads {torch.get_num_threads()}", flush=True)
    print(f"# done in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    from lib.utils.errors import run_cli

    sys.exit(run_cli(main, prog="benchmark_gpu"))
