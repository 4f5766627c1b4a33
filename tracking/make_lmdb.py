"""Convert a training dataset folder into the lmdb layout read by ``--use_lmdb 1``.

    python tracking/make_lmdb.py --dataset got10k --src /data/got10k --dst /data/got10k_lmdb
    python tracking/make_lmdb.py --dataset lasot --src /data/lasot --dst /data/lasot_lmdb
    python tracking/make_lmdb.py --dataset trackingnet --src /data/trackingnet --dst /data/trackingnet_lmdb
    python tracking/make_lmdb.py --dataset coco --src /data/coco --dst /data/coco_lmdb
    python tracking/make_lmdb.py --dataset vid --src /data/vid --dst /data/vid_lmdb

Then point the matching ``*_lmdb_dir`` field of lib/train/admin/local.py at ``--dst``.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from lib.train.dataset.make_lmdb import LMDB_DATASETS, make_lmdb
from lib.utils.errors import UserError, add_verbose_argument, is_user_error, run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=LMDB_DATASETS)
    parser.add_argument("--src", required=True, help="dataset folder (as named by its *_dir field in local.py)")
    parser.add_argument("--dst", required=True, help="output lmdb (TrackingNet: folder of per-chunk lmdbs)")
    parser.add_argument("--coco_version", default="2017")
    parser.add_argument("--coco_split", default="train")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    try:
        counts = make_lmdb(args.dataset, args.src, args.dst, version=args.coco_version, split=args.coco_split)
    except OSError as exc:  # an unreadable source or unwritable destination: the message names it
        if is_user_error(exc):
            raise
        raise UserError(str(exc)) from exc
    for path, n in counts.items():
        print(f"wrote {n} keys to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="make_lmdb.py"))
