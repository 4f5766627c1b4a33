"""One analysis run: extract (or load) the per-sequence results, print the tables, write plots and JSON."""

from __future__ import annotations

import os
import warnings
from typing import Callable, Dict, Optional, Sequence as Seq

from .extract import extract_results
from .plots import plot_results
from .protocols import get_rules
from .report import (NoAttributesError, compute_scores, format_table, per_attribute_scores, per_sequence_scores,
                     summary_dict, write_json)
from .results import TrackerResults

__all__ = ["analyse", "new_run_folder"]


def new_run_folder(parent: str) -> str:
    """Create and return a folder of its own for one analysis run: ``<parent>/run_<YYYYmmdd-HHMMSS>`` (``_2``,
    ``_3``... when that exists), so that runs do not overwrite each other's plots."""
    import time

    base = os.path.join(parent, time.strftime("run_%Y%m%d-%H%M%S"))
    os.makedirs(parent, exist_ok=True)
    for k in range(1, 1000):
        path = base if k == 1 else f"{base}_{k}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run folder under '{parent}'")


def analyse(trackers: Seq[TrackerResults], sequences, dataset_name: str, protocol: str = "pytracking",
            report_dir: Optional[str] = None, skip_missing: bool = False, force: bool = False, plot: bool = False,
            per_attribute: bool = False, per_sequence: bool = False, json_path: Optional[str] = None,
            verbose: bool = True, out: Callable[[str], None] = print,
            num_sequences_total: Optional[int] = None, plot_dir: Optional[str] = None) -> Dict:
    """Analyse ``trackers`` on ``sequences`` and report.

    Args:
        trackers: result sources.
        sequences: the SequenceList of the dataset.
        dataset_name: registry name (shown in tables / JSON).
        protocol: ``'pytracking'`` or ``'official'``.
        report_dir: ``<result_plot_path>/<report_name>``: cache, plots; None: no cache, no plots.
        skip_missing: leave out sequences with a missing/short result file (warning) instead of raising.
        force: ignore the cache.
        plot: write success / precision / normalized-precision plots (PNG + PDF) into ``plot_dir``.
        per_attribute / per_sequence: print (and put in the JSON) the breakdowns. A dataset without attribute
            files gets a warning saying so instead of the per-attribute tables; the rest is reported.
        json_path: write the JSON summary there.
        verbose: print progress lines.
        out: where text goes.
        num_sequences_total: the benchmark's number of sequences when ``sequences`` is part of it (a
            partial dataset folder); default ``len(sequences)``. Shown as ``Reporting results over k / n``
            and written to the JSON as ``num_sequences_total``, and in the plot titles when larger.
        plot_dir: where the plots go (default ``report_dir``; ``tracking/analysis_results.py`` gives each
            unnamed run its own folder below it).

    Returns:
        The JSON summary dict (see :func:`~lib.test.analysis.report.summary_dict`), with ``"plots"``
        listing written plot files when ``plot``.
    """
    ed = extract_results(trackers, sequences, protocol=protocol, dataset_name=dataset_name, report_dir=report_dir,
                         skip_missing=skip_missing, force=force, verbose=verbose)
    rules = sorted({(r.name, r.description) for r in (get_rules(protocol, d) for d in {s.dataset for s in sequences})})
    out(f"Dataset {dataset_name}, protocol '{protocol}': " + "; ".join(f"{n} = {d}" for n, d in rules))
    total = len(ed.sequences) if num_sequences_total is None else int(num_sequences_total)
    out(f"Reporting results over {int(ed.valid_sequence.sum())} / {total} sequences")
    scores = compute_scores(ed)
    out(format_table(scores))

    attr_tables = None
    if per_attribute:
        attr_tables = {}
        try:
            for metric in [m for m in ("auc", "precision", "norm_precision", "ao") if m in scores.columns]:
                attr_tables[metric] = per_attribute_scores(ed, sequences, metric)
                out("")
                out(format_table(attr_tables[metric], f"Per-attribute {metric}:"))
        except NoAttributesError as exc:
            warnings.warn(f"--per_attribute: {exc}; no per-attribute tables", stacklevel=2)
            attr_tables = None
    seq_table = None
    if per_sequence:
        seq_table = per_sequence_scores(ed)
        out("")
        metric = "AUC" if "auc" in scores.columns else "AO"
        out(format_table(seq_table, f"Per-sequence {metric}:"))

    summary = summary_dict(ed, scores, attr_tables, seq_table)
    summary["num_sequences_total"] = total
    if plot:
        if report_dir is None:
            raise ValueError("plots need a report folder (result_plot_path)")
        written = plot_results(ed, plot_dir or report_dir, benchmark=dataset_name, num_sequences_total=total)
        summary["plots"] = written
        out("Plots: " + ", ".join(written))
    if json_path:
        write_json(json_path, summary)
        out(f"JSON summary: {os.path.abspath(json_path)}")
    return summary
