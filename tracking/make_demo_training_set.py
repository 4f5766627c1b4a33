"""Lay out real benchmark sequences from ../shared/data as a small GOT-10k + LaSOT training set (by links),
for a quick train -> test -> analyse run without downloading the training datasets.

    python tracking/make_demo_training_set.py --shared ../shared/data --dst ./data/demo

It prints the TRACKING_* variables that point training at it (or copy the paths into
lib/train/admin/local.py). OTB Crossing and Basketball are kept out of the training set.
"""
import argparse
import sys
from pathlib import Path

import _init_paths  # noqa: F401

from lib.train.dataset.demo_layout import make_demo_training_set
from lib.utils.errors import UserError, add_verbose_argument, run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default="../shared/data", help="the shared data folder (OTB, UAV123, VOT)")
    parser.add_argument("--dst", default="./data/demo", help="output folder (must not exist)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    dst = Path(args.dst)
    if dst.exists():
        raise UserError(f"--dst '{dst}' exists already (give a new folder)")
    if not (Path(args.shared) / "otb").is_dir():
        raise UserError(f"--shared '{args.shared}' holds no otb/ folder (expected ../shared/data)")
    paths = make_demo_training_set(Path(args.shared), dst)
    for field, path in paths.items():
        print(f"export TRACKING_{field.upper()}={Path(path).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="make_demo_training_set.py"))
