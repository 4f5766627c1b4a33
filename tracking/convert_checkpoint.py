"""Convert a checkpoint of another toolkit into this toolkit's (the official) layout.

    python tracking/convert_checkpoint.py --from mmtracking --tracker stark_st2 IN.pth OUT.pth.tar

Sources:
  mmtracking   STARK-ST50 files of open-mmlab/mmtracking: stage 2 (stark_st2_r50_50e_*) with
               --tracker stark_st2; stage 1 (stark_st1_r50_500e_*) has no score head and fits
               --tracker stark_s. ``--checkpoint`` of the test and train scripts also reads these
               files directly.

The output is a plain-data file {'net': state_dict, 'net_type', ...}, written atomically, checked
strictly against the network of experiments/<script>/<config>.yaml.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from lib.models.stark.mmtracking import convert_mmtracking_checkpoint
from lib.utils.errors import run_cli

#: source format -> (converter(src, dst, script, config) -> summary dict, scripts it serves).
CONVERTERS = {
    "mmtracking": (convert_mmtracking_checkpoint, ("stark_s", "stark_st1", "stark_st2")),
}


def _script_of(tracker: str) -> str:
    """A network script, or the script of a registered tracker name (``stark_st`` -> ``stark_st2``)."""
    from lib.models import NETWORK_MODULES
    from lib.test.tracker import UnknownTrackerError, get_tracker_entry

    if tracker in NETWORK_MODULES:
        return tracker
    try:
        return get_tracker_entry(tracker).script
    except UnknownTrackerError:
        return tracker


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, choices=sorted(CONVERTERS),
                        help="toolkit that wrote the input file")
    parser.add_argument("--tracker", required=True, help="network script (stark_st2) or tracker name (stark_st)")
    parser.add_argument("--config", default="baseline", help="experiment config whose network must fit (baseline)")
    parser.add_argument("input", help="checkpoint to convert")
    parser.add_argument("output", help="where to write the converted checkpoint")
    args = parser.parse_args(argv)

    converter, scripts = CONVERTERS[args.source]
    script = _script_of(args.tracker)
    if script not in scripts:
        parser.error(f"--from {args.source} converts networks of {', '.join(scripts)}, not '{args.tracker}'")
    summary = converter(args.input, args.output, script, args.config)  # CheckpointError: exit status 2
    print(f"wrote {args.output}: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="convert_checkpoint.py"))
