"""Make ``python -m visdom.server`` work without internet: fetch visdom's web assets (JavaScript, CSS,
fonts, MathJax) from the npm registry, place them where the server looks, and verify them.

    python tracking/visdom_assets.py                  # fetch with npm (skipped if already verified), place, verify
    python tracking/visdom_assets.py --check          # verify only (exit 1 if incomplete)
    python tracking/visdom_assets.py --download_to D  # only fetch the tarballs into D (on a machine with npm)
    python tracking/visdom_assets.py --tarballs D     # place from tarballs fetched elsewhere (no npm needed)

Exit codes: 0 done and verified, 1 failed, 3 npm missing (install.sh warns and goes on).
See lib/vis/visdom_assets.py for what is placed and how it is checked.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from lib.utils.errors import add_verbose_argument, run_cli

from lib.vis.visdom_assets import (PACKAGES, AssetError, NpmMissingError, fetch_tarballs, install_assets,
                                   verify_assets, visdom_package_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visdom_dir", default=None, help="visdom package folder (default: the installed one)")
    parser.add_argument("--tarballs", default=None, help="folder with the `npm pack` tarballs (no npm needed)")
    parser.add_argument("--download_to", default=None, help="only fetch the tarballs into this folder")
    parser.add_argument("--npm", default="npm", help="npm executable")
    parser.add_argument("--check", action="store_true", help="verify the installed assets only")
    parser.add_argument("--force", action="store_true", help="re-install even when the assets verify")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)

    try:
        if args.download_to:
            found = fetch_tarballs(args.download_to, npm=args.npm)
            print(f"visdom_assets: {len(found)} tarballs in {args.download_to}; "
                  f"place them with --tarballs {args.download_to}")
            return 0
        vdir = args.visdom_dir or visdom_package_dir()
        if args.check or not args.force:
            problems = verify_assets(vdir)
            if not problems:
                print(f"visdom_assets: the web assets under {vdir} are complete and verified "
                      f"({sum(len(p.files) for p in PACKAGES)} named files + the MathJax tree); "
                      f"python -m visdom.server starts offline")
                return 0
            if args.check:
                print("visdom_assets: incomplete:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
        install_assets(vdir, tarball_dir=args.tarballs, npm=args.npm)
        return 0
    except NpmMissingError as exc:
        print(f"visdom_assets: {exc}", file=sys.stderr)
        return 3
    except AssetError as exc:
        print(f"visdom_assets: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="visdom_assets.py"))
