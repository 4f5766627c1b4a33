"""Parameters, MACs, model-only latency and end-to-end tracker speed of a network.

    python tracking/profile_model.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --device cpu --precision fp32

The network has random weights unless --checkpoint is given (speed does not depend on them). The
tracker runs on a real sequence (default ../shared/data/otb/Crossing) with frames decoded beforehand.
"""
import argparse
import os

import _init_paths  # noqa: F401
import torch

from lib.config import PROJECT_ROOT, load_config
from lib.models import NETWORK_MODULES, build_network
from lib.test.tracker import get_tracker_class, get_tracker_entry, list_trackers
from lib.test.tracker.base import TrackerParams
from lib.test.utils.profiling import (count_macs, count_parameters, example_inputs, hardware_info,
                                      load_sequence_frames, time_forward, time_tracker)
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
    parser.add_argument("--warmup", type=int, default=10, help="untimed forward passes")
    parser.add_argument("--iters", type=int, default=50, help="timed forward passes (the median is reported)")
    parser.add_argument("--tracker", default=None, help="tracker name (default: the one reading --script configs)")
    parser.add_argument("--sequence", default=DEFAULT_SEQUENCE,
                        help="sequence folder for the tracker speed (OTB layout or an image folder with --init_box)")
    parser.add_argument("--init_box", type=float, nargs=4, default=None, metavar=("X", "Y", "W", "H"))
    parser.add_argument("--frames", type=int, default=60, help="frames of the sequence to track (0: skip)")
    parser.add_argument("--no_macs", action="store_true", help="skip the MAC count")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = load_config(args.script, args.config)
    net = build_network(args.script, cfg, checkpoint=args.checkpoint, device=device)
    inputs = example_inputs(args.script, cfg, device)

    print(f"== {args.script} / {args.config}")
    for key, value in hardware_info(device).items():
        print(f"{key:>26}: {value}")
    print(f"{'precision':>26}: {args.precision}")
    shapes = ", ".join(str(tuple(t.shape)) for t in inputs if isinstance(t, torch.Tensor))
    print(f"{'inputs':>26}: {shapes}")
    print(f"{'parameters':>26}: {count_parameters(net):,} ({count_parameters(net) / 1e6:.2f} M)")
    if not args.no_macs:
        for tool, macs in count_macs(net, inputs).items():
            note = " (module calls only, as the official script)" if tool == "thop" else ""
            print(f"{'MACs ' + tool:>26}: {macs / 1e9:.3f} G{note}")
    stats = time_forward(net, inputs, device, args.precision, warmup=args.warmup, iters=args.iters)
    print(f"{'model forward latency':>26}: {stats.summary()}")

    if args.frames:
        name = args.tracker or tracker_for_script(args.script)
        if name is None:
            print("no tracker registered for this script: tracker speed skipped")
            return stats
        try:
            frames, init_box = load_sequence_frames(args.sequence, args.frames + 1, args.init_box)
        except (FileNotFoundError, ValueError) as exc:
            print(f"tracker speed skipped: {exc}")
            return stats
        params = TrackerParams.create(name, args.config, checkpoint=args.checkpoint, device=device,
                                      precision=args.precision, require_checkpoint=False)
        tracker = get_tracker_class(name)(params, "profile")
        fps, tstats = time_tracker(tracker, frames, init_box)
        print(f"{'tracker end-to-end':>26}: {fps:.2f} frames/s over {len(tstats.times_ms)} frames of "
              f"'{args.sequence}' (median {tstats.median:.2f} ms/frame; frames decoded beforehand)")
    return stats


if __name__ == "__main__":
    main()
