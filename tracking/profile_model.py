"""Parameters, MACs, per-frame forward latency and end-to-end tracker speed of any tracker's network.

    python tracking/profile_model.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --device cpu --precision fp32
    python tracking/profile_model.py --script stark_st2 --config baseline_R101 --threads 2 --csv speed.csv
    python tracking/profile_model.py --script aiatrack --config baseline --dataset lasot
    python tracking/profile_model.py --script sparsett --config sparsett_swin_fulldata --frames 0

The latency is that of the tracker's per-frame network step (the network package's ``profiling_step``):
OSTrack's forward on template and search region; STARK's search backbone and transformer over the cached
template features; AiATrack's search encoding and decoding against the cached reference memories;
SparseTT's ``track`` phase with the template memory. The work done once per sequence or per template /
memory update is timed on its own lines. ``--dataset`` picks the per-benchmark settings that change the
step (STARK-ST update intervals = number of templates, AiATrack's number of references). The network has
random weights unless --checkpoint is given (speed does not depend on them). The tracker runs on a real
sequence (default ../shared/data/otb/Crossing) with frames decoded beforehand. ``--csv FILE`` appends
one row of the figures to FILE.

Every figure line ends with its context: CPU/GPU, torch and CUDA versions, precision, intra-op threads,
batch (1: one sequence), ``--compile`` / ``--cuda_graph`` and the load average at the time of the
measurement (the machine may be shared). Latencies are timed between device synchronisations, warm-up
excluded, as the median with the p10/p90 spread and the process CPU time (all threads).

    python tracking/profile_model.py --script stark_s --config baseline --threads 1 --frames 60
    python tracking/profile_model.py --script ostrack --device cuda --precision bf16 --cuda_graph
    python tracking/profile_model.py --script aiatrack --compile      # torch.compile (CPU: needs a C++ compiler)
    python tracking/profile_model.py --script ostrack --backend onnxruntime --threads 1   # ONNX Runtime (CPU, fp32)

With ``--backend onnxruntime`` the per-frame step is exported to ONNX (lib/models/onnx_export.py) and timed in
ONNX Runtime, and the tracker runs its network steps there too; the MAC count and the once-per-sequence
lines stay PyTorch's.
"""
import argparse
import datetime
import os

import _init_paths  # noqa: F401
import torch

from lib.config import PROJECT_ROOT, load_config
from lib.models import NETWORK_MODULES, build_network
from lib.test.tracker import get_tracker_class, get_tracker_entry, list_trackers
from lib.test.tracker.base import TrackerParams
from lib.models.acceleration import accelerate_step
from lib.test.utils.profiling import (append_csv_row, count_macs, count_parameters, hardware_info, load_average,
                                      load_sequence_frames, profiling_step, time_calls, time_forward, time_tracker,
                                      count_track_ops)
from lib.utils.errors import add_verbose_argument, check_positive, run_cli
from lib.utils.misc import resolve_device

SHARED_DIR = os.environ.get("TRACKING_SHARED_DIR", os.path.join(PROJECT_ROOT.parent, "shared"))
DEFAULT_SEQUENCE = os.path.join(SHARED_DIR, "data", "otb", "Crossing")


def tracker_for_script(script):
    """The registered tracker whose configs are those of ``script`` (ostrack -> ostrack, stark_st2 -> stark_st)."""
    for name in list_trackers():
        if get_tracker_entry(name).script == script:
            return name
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", default="ostrack", choices=sorted(NETWORK_MODULES), help="network script")
    parser.add_argument("--config", default="vitb_256_mae_ce_32x4_ep300", help="experiment config name")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--checkpoint", default=None, help="optional weights (speed does not depend on them)")
    parser.add_argument("--dataset", default="otb",
                        help="benchmark whose per-dataset settings apply (STARK-ST templates, AiATrack references)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed forward passes")
    parser.add_argument("--iters", type=int, default=50, help="timed forward passes (the median is reported)")
    parser.add_argument("--tracker", default=None, help="tracker name (default: the one reading --script configs)")
    parser.add_argument("--sequence", default=DEFAULT_SEQUENCE,
                        help="sequence folder for the tracker speed (OTB layout or an image folder with --init_box)")
    parser.add_argument("--init_box", type=float, nargs=4, default=None, metavar=("X", "Y", "W", "H"))
    parser.add_argument("--frames", type=int, default=60, help="frames of the sequence to track (0: skip)")
    parser.add_argument("--no_macs", action="store_true", help="skip the MAC count")
    parser.add_argument("--csv", default=None, metavar="FILE", help="append a row of the figures to this CSV file")
    parser.add_argument("--compile", action="store_true", help="torch.compile the per-frame step (model and tracker)")
    parser.add_argument("--cuda_graph", action="store_true",
                        help="capture the per-frame step into a CUDA graph (CUDA only; model and tracker)")
    parser.add_argument("--device_crop", choices=["auto", "on", "off"], default="auto",
                        help="tracker crops on the device (auto: on CUDA) or with cv2 on the host")
    parser.add_argument("--backend", default="pytorch", choices=("pytorch", "onnxruntime"),
                        help="who runs the per-frame step and the tracker's network steps (onnxruntime: fp32, CPU)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    check_positive(args.iters, "--iters")
    check_positive(args.warmup, "--warmup", minimum=0)
    check_positive(args.threads, "--threads")
    check_positive(args.frames, "--frames", minimum=0)
    return args


def context_line(hardware, args, precision: str) -> str:
    """The settings every figure is read with (printed after each figure)."""
    from lib.test.utils.profiling import load_average

    where = hardware.get("gpu", hardware["cpu"])
    return (f"[{where} | torch {hardware['torch']}, CUDA {hardware['cuda'].split(' ')[0]} | {precision} | "
            f"threads {torch.get_num_threads()} | batch 1 | compile {'on' if args.compile else 'off'} | "
            f"cuda_graph {'on' if args.cuda_graph else 'off'} | backend {args.backend} | load {load_average()}]")


def onnx_profiling_step(step, args):
    """The per-frame step exported to ONNX (a temporary folder) and run by ONNX Runtime with torch's thread
    count; exported here, outside the timing's inference mode.

    Raises:
        ValueError: --precision other than fp32, --compile / --cuda_graph, or a device that is not the CPU.
    """
    import tempfile

    from lib.models.onnx_export import OnnxStep

    if args.precision != "fp32" or args.compile or args.cuda_graph or resolve_device(args.device).type != "cpu":
        raise ValueError("--backend onnxruntime profiles the fp32 export on the CPU: no --precision fp16/bf16, "
                         "--compile, --cuda_graph or CUDA device")
    folder = tempfile.mkdtemp(prefix="profile_onnx_")
    module = OnnxStep(step.module, f"{args.script}_step", folder, owner=step.module, threads=torch.get_num_threads())
    with torch.no_grad():
        module(*step.inputs)
    return module


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        cores = os.cpu_count() or 1
        if args.threads > cores:
            print(f"note: --threads {args.threads} is above the {cores} CPU cores; torch runs {args.threads} "
                  f"intra-op threads as asked (the figures will show the oversubscription)")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = load_config(args.script, args.config)
    net = build_network(args.script, cfg, checkpoint=args.checkpoint, device=device)
    step = profiling_step(args.script, net, cfg, device, dataset_name=args.dataset)
    hardware = hardware_info(device)

    print(f"== {args.script} / {args.config}")
    for key, value in hardware.items():
        print(f"{key:>26}: {value}")
    print(f"{'precision':>26}: {args.precision}")
    print(f"{'batch':>26}: 1")
    print(f"{'compile / cuda_graph':>26}: {'on' if args.compile else 'off'} / {'on' if args.cuda_graph else 'off'}")
    print(f"{'per-frame step':>26}: {step.description}")
    shapes = ", ".join(str(tuple(t.shape)) for t in step.inputs if isinstance(t, torch.Tensor))
    print(f"{'inputs':>26}: {shapes}")
    params = count_parameters(net)
    print(f"{'parameters':>26}: {params:,} ({params / 1e6:.2f} M)")
    macs = {} if args.no_macs else count_macs(step.module, step.inputs)
    for tool, value in macs.items():
        note = " (module calls only, as the official script)" if tool == "thop" else ""
        print(f"{'MACs ' + tool:>26}: {value / 1e9:.3f} G{note}")
    if args.backend == "onnxruntime":
        module = onnx_profiling_step(step, args)
    else:
        module = accelerate_step(step.module, device, compile=args.compile, cuda_graph=args.cuda_graph,
                                 name=f"{args.script} profiling step")
    stats = time_forward(module, step.inputs, device, args.precision, warmup=max(args.warmup, 1 if (
        args.compile or args.cuda_graph) else 0), iters=args.iters)
    print(f"{'model forward latency':>26}: {stats.summary()} {context_line(hardware, args, args.precision)}")
    for label, once in time_calls(step.once, device, args.precision, warmup=min(args.warmup, 2),
                                  iters=max(1, min(args.iters, 10))).items():
        print(f"{'once':>26}: {label}: median {once.median:.2f} ms")

    fps, tstats, sequence = None, None, ""
    if args.frames:
        name = args.tracker or tracker_for_script(args.script)
        try:
            if name is None:
                raise ValueError("no tracker registered for this script")
            frames, init_box = load_sequence_frames(args.sequence, args.frames + 1, args.init_box)
        except (FileNotFoundError, ValueError) as exc:
            print(f"tracker speed skipped: {exc}")
        else:
            crop = {} if args.device_crop == "auto" else {"device_crop": args.device_crop == "on"}
            params_t = TrackerParams.create(name, args.config, checkpoint=args.checkpoint, device=device,
                                            precision=args.precision, require_checkpoint=False, compile=args.compile,
                                            cuda_graph=args.cuda_graph, backend=args.backend, **crop)
            tracker = get_tracker_class(name)(params_t, args.dataset)
            fps, tstats = time_tracker(tracker, frames, init_box)
            sequence = args.sequence
            path = ("whole frame in one step, lib/test/tracker/frame_graph.py" if tracker.frame_graph_enabled()
                    else f"{'device' if tracker.use_device_crop else 'cv2'} crop")
            print(f"{'tracker end-to-end':>26}: {fps:.2f} frames/s over {len(tstats.times_ms)} frames of "
                  f"'{args.sequence}' (median {tstats.median:.2f} ms/frame, p10 {tstats.p10:.2f}, p90 "
                  f"{tstats.p90:.2f}, process CPU time median {tstats.cpu_median:.2f} ms; frames decoded "
                  f"beforehand; {path}) "
                  f"{context_line(hardware, args, args.precision)}")
            print(f"{'aten ops per track()':>26}: {count_track_ops(tracker, frames[-1])} "
                  f"({path}; about one kernel launch each on a GPU, a CUDA graph replays its step's share with "
                  f"one launch)")

    if args.csv:
        row = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "script": args.script,
               "config": args.config, "dataset": args.dataset, "device": str(device),
               "hardware": hardware.get("gpu", hardware["cpu"]), "torch": torch.__version__,
               "cuda": torch.version.cuda or "", "precision": args.precision, "threads": torch.get_num_threads(),
               "batch": 1, "compile": int(args.compile), "cuda_graph": int(args.cuda_graph), "backend": args.backend,
               "load_avg": load_average(), "params": params,
               "macs_thop_g": round(macs["thop"] / 1e9, 3) if "thop" in macs else "",
               "macs_fvcore_g": round(macs["fvcore"] / 1e9, 3) if "fvcore" in macs else "",
               "step_ms_median": round(stats.median, 3), "step_ms_p10": round(stats.p10, 3),
               "step_ms_p90": round(stats.p90, 3), "step_cpu_ms_median": round(stats.cpu_median, 3),
               "tracker_fps": round(fps, 3) if fps is not None else "",
               "tracker_ms_median": round(tstats.median, 3) if tstats is not None else "",
               "tracker_cpu_ms_median": round(tstats.cpu_median, 3) if tstats is not None else "",
               "tracker_frames": len(tstats.times_ms) if tstats is not None else 0, "sequence": sequence}
        append_csv_row(args.csv, row)
        print(f"{'csv':>26}: row appended to {args.csv}")
    return stats


if __name__ == "__main__":
    def _cli() -> int:
        main()
        return 0

    raise SystemExit(run_cli(_cli, prog="profile_model.py"))
