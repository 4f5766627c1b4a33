"""A tracker for the VOT toolkit: a TraX server the toolkit starts for every sequence (``trackers.ini``'s command).

    python tracking/vot_tracker.py <tracker> <config> --checkpoint PATH [--device DEV] [--precision fp32|fp16|bf16]
        [--dataset vot18|vot20|vot22] [--random_weights] [--trax_log]

It answers the toolkit's TraX requests (rectangle or polygon regions; polygons reduced to their axis-aligned
min/max box, as the VOT loaders reduce them) with rectangles, until the toolkit quits; see
``lib/test/toolkits/vot.py``. ``tracking/make_vot_workspace.py`` writes a workspace and a ``trackers.ini`` that
runs this script. It is not meant to be run by hand: on a terminal it waits for a TraX client.
"""

import argparse
import sys

import _init_paths  # noqa: F401

from lib.utils.errors import run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tracker_name", help="registered tracker name (ostrack, grm, stark_s, stark_st, aiatrack, sparsett)")
    parser.add_argument("tracker_param", help="config name (experiments/<script>/<name>.yaml) or a YAML path")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: the trainer's output path)")
    parser.add_argument("--random_weights", action="store_true", help="untrained network (tests only)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--dataset", default=None,
                        help="per-benchmark settings (e.g. vot20 for STARK-ST's update interval; default none)")
    parser.add_argument("--trax_log", action="store_true", help="log the TraX protocol on standard error")
    args = parser.parse_args(argv)

    from lib.api import load_tracker
    from lib.test.toolkits.vot import require_trax, serve

    require_trax()  # before the network is built: a missing library is the first thing to say
    tracker = load_tracker(args.tracker_name, args.tracker_param, checkpoint=args.checkpoint, device=args.device,
                           precision=args.precision, dataset=args.dataset, random_weights=args.random_weights)
    serve(tracker, name=f"{args.tracker_name}_{args.tracker_param}", log=args.trax_log)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="vot_tracker.py"))
