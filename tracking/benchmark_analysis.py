"""Time the analysis of LaSOT (280 sequences) for one tracker and print the figures.

    python tracking/benchmark_analysis.py [--dataset_path ../shared/data/lasot]
        [--results_dir ../shared/data/results/lasot] [--tracker ATOM] [--repeats 3]

Defaults read the real LaSOT annotation and ATOM's raw results in ``../shared/data`` (or
``$TRACKING_SHARED_DIR/data``). Prints, per protocol,
the best of ``--repeats`` runs of: building the 280 sequences (ground truth, visibility, attributes),
extracting the per-sequence curves (reading the 280 result files + all metrics, no cache), computing the
scores, and the whole analysis again with the eval_data cache warm.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
from lib.utils.errors import UserError, add_verbose_argument, check_positive, run_cli  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = os.path.join(os.environ.get("TRACKING_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared")), "data")
    p.add_argument("--dataset_path", default=os.path.join(shared, "lasot"))
    p.add_argument("--results_dir", default=os.path.join(shared, "results", "lasot"))
    p.add_argument("--tracker", default="ATOM")
    p.add_argument("--repeats", type=int, default=3)
    add_verbose_argument(p)
    args = p.parse_args(argv)
    check_positive(args.repeats, "--repeats")
    for path in (args.dataset_path, args.results_dir):
        if not os.path.isdir(path):
            raise UserError(f"'{path}' does not exist (pass --dataset_path / --results_dir)")

    t0 = time.perf_counter()
    import numpy as np

    from lib.test.analysis import compute_scores, external_tracker_results, extract_results
    from lib.test.evaluation.lasotdataset import LaSOTDataset
    t_import = time.perf_counter() - t0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load:.1f}; python {platform.python_version()}, numpy {np.__version__}")
    print(f"import of the analysis package: {t_import:.2f} s")
    trackers = external_tracker_results(args.results_dir, [args.tracker])
    for protocol in ("pytracking", "official"):
        best = {}
        for _ in range(args.repeats):
            t = time.perf_counter()
            seqs = LaSOTDataset(args.dataset_path).get_sequence_list()
            t_seq = time.perf_counter() - t
            t = time.perf_counter()
            ed = extract_results(trackers, seqs, protocol, "lasot", report_dir=None, verbose=False)
            t_ext = time.perf_counter() - t
            t = time.perf_counter()
            scores = compute_scores(ed)
            t_score = time.perf_counter() - t
            with tempfile.TemporaryDirectory() as cache:
                extract_results(trackers, seqs, protocol, "lasot", report_dir=cache, verbose=False)
                t = time.perf_counter()
                compute_scores(extract_results(trackers, seqs, protocol, "lasot", report_dir=cache, verbose=False))
                t_cached = time.perf_counter() - t
            for k, v in (("sequences", t_seq), ("extract", t_ext), ("scores", t_score), ("cached", t_cached)):
                best[k] = min(best.get(k, float("inf")), v)
        frames = sum(len(s.ground_truth_rect) for s in seqs)
        row = scores.loc[args.tracker]
        total = best["sequences"] + best["extract"] + best["scores"]
        print(f"[{protocol}] {len(seqs)} sequences, {frames} frames, tracker {args.tracker}: "
              f"AUC {row['auc']:.2f}, precision {row['precision']:.2f}, norm precision {row['norm_precision']:.2f}")
        print(f"[{protocol}] best of {args.repeats}: sequences {best['sequences']:.2f} s + extract "
              f"{best['extract']:.2f} s + scores {best['scores']:.3f} s = {total:.2f} s; "
              f"with a warm cache {best['cached']:.2f} s (after the sequences are built)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="benchmark_analysis.py"))
