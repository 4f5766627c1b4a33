"""Write lib/train/admin/local.py and lib/test/evaluation/local.py with default paths.

    python tracking/create_default_local_file.py --workspace_dir . --data_dir ./data --save_dir ./output

Existing files are kept unless --overwrite is given.
"""
import argparse

import _init_paths  # noqa: F401

from lib.utils.errors import add_verbose_argument, run_cli

from lib.test.evaluation.environment import create_default_local_file as create_test
from lib.train.admin.environment import create_default_local_file as create_train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace_dir", required=True, help="project / workspace folder")
    parser.add_argument("--data_dir", required=True, help="folder holding the datasets (lasot/, got10k/, otb/, ...)")
    parser.add_argument("--save_dir", required=True, help="folder for checkpoints, results and plots")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing local.py files")
    group.add_argument("--keep_existing", action="store_true", help="keep existing local.py files (the default)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    for name, fn in (("train", create_train), ("test", create_test)):
        written = fn(args.workspace_dir, args.data_dir, args.save_dir, overwrite=args.overwrite)
        print(f"{name}: wrote {written}" if written else f"{name}: kept the existing local.py")


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="create_default_local_file.py"))
