"""Analyse raw tracking results: success AUC / OP50 / OP75, precision, normalized precision (and GOT-10k
AO / SR) under the ``pytracking`` or ``official`` protocol. No file editing needed.

Own results (``<results_path>/<tracker>/<param>[_NNN]/<seq>.txt``, as tracking/test.py writes them)::

    python tracking/analysis_results.py --tracker_name ostrack --tracker_param vitb_256_mae_ce_32x4_ep300 \\
        --dataset lasot [--runids 0 1 2] [--protocol official] [--plot] [--json out.json]

External raw results (one sub-folder per tracker, one ``<seq>.txt`` per sequence; names matched ignoring
case and ``-``/``_``)::

    python tracking/analysis_results.py --results_dir ../shared/data/results/otb100 --trackers ATOM SiamRPN++ \\
        --dataset otb --dataset_path ../shared/data/otb100_anno --protocol official

Output (tables, plots, the eval_data.npz cache) goes to ``<result_plot_path>/<report_name>`` (local.py); without
``--report_name`` the cache goes to ``<result_plot_path>/<dataset>`` and the plots of each run to a folder of their
own below it, ``run_<YYYYmmdd-HHMMSS>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from lib.test.analysis import PROTOCOLS, analyse, external_tracker_results, own_tracker_results  # noqa: E402
from lib.test.analysis.run import new_run_folder  # noqa: E402
from lib.test.evaluation.datasets import ALIASES, list_datasets, load_dataset  # noqa: E402
from lib.utils.errors import UserError, add_verbose_argument, is_user_error, run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    own = p.add_argument_group("own results")
    own.add_argument("--tracker_name", nargs="+", default=[], help="tracker name(s), e.g. ostrack")
    own.add_argument("--tracker_param", nargs="+", default=[],
                     help="parameter (config) name(s); one per tracker name, or one for all")
    own.add_argument("--runids", nargs="+", type=int, default=None, help="run ids (folders <param>_NNN)")
    own.add_argument("--display_name", default=None, help="display name replacing <tracker>_<param>")
    ext = p.add_argument_group("external results")
    ext.add_argument("--results_dir", default=None, help="folder with one sub-folder of <seq>.txt files per tracker")
    ext.add_argument("--trackers", nargs="+", default=None, help="sub-folders of --results_dir to use (default: all)")
    p.add_argument("--dataset", required=True,
                   help=f"dataset: {', '.join(list_datasets())} (aliases: {', '.join(sorted(ALIASES))})")
    p.add_argument("--dataset_path", default=None, help="dataset root for this run (overrides local.py)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="pytracking",
                   help="pytracking: rules of pytracking's/OSTrack's analysis code (default); official: each "
                        "benchmark's own toolkit")
    p.add_argument("--report_name", default=None, help="sub-folder of result_plot_path for cache and plots (default: cache in <dataset>, "
                        "plots in <dataset>/run_<time>, one folder per run)")
    p.add_argument("--plot", action="store_true", help="write success/precision/norm-precision plots (PNG, PDF)")
    p.add_argument("--per_attribute", action="store_true", help="per-attribute tables (LaSOT, OTB)")
    p.add_argument("--per_sequence", action="store_true", help="per-sequence AUC table")
    p.add_argument("--json", default=None, metavar="FILE", help="write the scores as JSON")
    p.add_argument("--skip_missing", action="store_true",
                   help="leave out (with a warning) sequences absent from the dataset folder, and sequences whose "
                        "result file is missing for any tracker; the report says over how many of the "
                        "benchmark's sequences it is (a result file one row short or long is not missing: "
                        "the protocol's own rule applies, see README)")
    p.add_argument("--force_evaluation", action="store_true", help="recompute even if eval_data.npz matches")
    add_verbose_argument(p)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.tracker_name and not args.results_dir:
        raise UserError("give --tracker_name/--tracker_param (own results) or --results_dir (external results)")
    if args.trackers and not args.results_dir:
        raise UserError("--trackers selects sub-folders of --results_dir; give --results_dir")
    if args.tracker_name and len(args.tracker_param) not in (1, len(args.tracker_name)):
        raise UserError("give one --tracker_param for all tracker names or one per name")
    from lib.test.evaluation.environment import env_settings

    try:
        env = env_settings()
        trackers = []
        if args.tracker_name:
            params = args.tracker_param * len(args.tracker_name) if len(args.tracker_param) == 1 else args.tracker_param
            results_path = env.require("results_path", must_exist=False, what="raw tracking results")
            for name, param in zip(args.tracker_name, params):
                trackers += own_tracker_results(results_path, name, param, args.runids, args.display_name)
        if args.results_dir:
            trackers += external_tracker_results(args.results_dir, args.trackers)
        dataset = load_dataset(args.dataset, base_path=args.dataset_path,
                               missing="skip" if args.skip_missing else "error")
        sequences = dataset.get_sequence_list()
        report = dataset.missing_report()
        if report:
            warnings.warn(f"{report}. The scores below are over these sequences only, not the benchmark's "
                          f"(--skip_missing)")
        dataset_name = ALIASES.get(args.dataset.lower(), args.dataset.lower())
        plot_root = env.require("result_plot_path", must_exist=False, what="analysis output")
        report_dir = os.path.join(plot_root, args.report_name or dataset_name)
        # a named report keeps its folder; an unnamed run plots into a folder of its own (the cache stays shared)
        plot_dir = report_dir if args.report_name or not args.plot else new_run_folder(report_dir)
        analyse(trackers, sequences, dataset_name, protocol=args.protocol, report_dir=report_dir,
                skip_missing=args.skip_missing, force=args.force_evaluation, plot=args.plot,
                per_attribute=args.per_attribute, per_sequence=args.per_sequence, json_path=args.json,
                num_sequences_total=len(dataset), plot_dir=plot_dir)
    except OSError as exc:
        if is_user_error(exc):
            raise
        raise UserError(str(exc)) from exc  # an unreadable or unwritable file or folder: the message names it
    return 0


if __name__ == "__main__":
    warnings.simplefilter("always", UserWarning)
    warnings.formatwarning = lambda msg, *args, **kwargs: f"warning: {msg}\n"
    sys.exit(run_cli(main, prog="analysis_results.py"))
