"""Success, precision and normalized-precision plots (PNG and PDF) with matplotlib's Agg canvas.

No pyplot state, no global backend switch, no LaTeX (pytracking's plots need ``text.usetex`` and
tikzplotlib; these do not). Titles name the benchmark as papers do, e.g. ``Success plot of OPE on OTB-2015``,
followed by ``(k of N sequences)`` when the plot covers fewer sequences than the benchmark holds; the protocol is
noted under the axes. The legend, beside the axes (never over the curves), shows each tracker's score, best
first: ``name [AUC]`` for success, ``name [value at 20 px]`` for precision, ``name [value at 0.20]`` for
normalized precision, ``name [AO]`` for the GOT-10k success curve.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .extract import EvalData
from .metrics import GOT10K_THRESHOLDS
from .report import compute_scores, mean_curves

__all__ = ["plot_results", "plot_title", "plot_figure", "PLOT_TYPES"]

PLOT_TYPES = ("success", "precision", "norm_precision")

_SPECS = {
    "success": dict(curve="success", score="auc", x="thresholds_overlap", xlabel="Overlap threshold",
                    ylabel="Overlap Precision [%]", title="Success plot", xlim=(0, 1)),
    "precision": dict(curve="precision", score="precision", x="thresholds_center",
                      xlabel="Location error threshold [pixels]", ylabel="Distance Precision [%]",
                      title="Precision plot", xlim=(0, 50)),
    "norm_precision": dict(curve="norm_precision", score="norm_precision", x="thresholds_norm",
                           xlabel="Location error threshold", ylabel="Distance Precision [%]",
                           title="Normalized precision plot", xlim=(0, 0.5)),
    "got10k_success": dict(curve="got10k_success", score="ao", x=None, xlabel="Overlap threshold",
                           ylabel="Success rate [%]", title="Success plot (GOT-10k AO)", xlim=(0, 1)),
}


def plot_figure(x: np.ndarray, curves: np.ndarray, scores: np.ndarray, names: List[str], spec: Dict, title: str,
                note: str = "") -> Figure:
    """One plot as a matplotlib :class:`~matplotlib.figure.Figure` (Agg canvas, no pyplot): a curve per tracker
    (``curves`` ``(T, len(x))`` in percent), best score first in the legend, which sits beside the axes so that
    it never covers a curve; ``note`` (the protocol) in small print under the axes."""
    fig = Figure(figsize=(8.8, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    for i in order:
        ax.plot(x, curves[i], linewidth=2, label=f"{names[i]} [{scores[i]:.2f}]")
    ax.set_xlim(*spec["xlim"])
    ax.set_ylim(0, 100)
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.set_title(title)
    ax.grid(True, linestyle=":")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=9)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _plot(x: np.ndarray, curves: np.ndarray, scores: np.ndarray, names: List[str], spec: Dict, title: str,
          note: str, out_base: str, formats) -> List[str]:
    with matplotlib.rc_context({"text.usetex": False, "font.size": 11}):
        fig = plot_figure(x, curves, scores, names, spec, title, note)
        written = []
        for fmt in formats:
            path = f"{out_base}.{fmt}"
            tmp = f"{out_base}.tmp.{fmt}"
            fig.savefig(tmp, format=fmt, dpi=150)
            os.replace(tmp, path)
            written.append(path)
    return written


def plot_title(kind: str, benchmark: Optional[str], num_sequences: int, num_sequences_total: Optional[int]) -> str:
    """``<kind> of OPE on <benchmark as papers write it>`` plus ``(k of N sequences)`` when ``k < N``."""
    from lib.test.evaluation.datasets import display_name

    title = f"{kind} of OPE on {display_name(benchmark)}" if benchmark else f"{kind} of OPE"
    if num_sequences_total is not None and num_sequences < num_sequences_total:
        title += f" ({num_sequences} of {num_sequences_total} sequences)"
    return title


def plot_results(ed: EvalData, out_dir: str, plot_types=None, formats=("png", "pdf"),
                 benchmark: Optional[str] = None, num_sequences_total: Optional[int] = None) -> List[str]:
    """Write ``<out_dir>/<plot_type>_plot.{png,pdf}`` for each plot type and return the paths.

    Args:
        ed: the extracted results.
        out_dir: the folder of the plots (created).
        plot_types: subset of ``success, precision, norm_precision, got10k_success``; default: the curves
            the protocol reports (plus the GOT-10k curve for GOT-10k sequences).
        formats: file formats (matplotlib names).
        benchmark: dataset name for the titles (written as papers do: ``otb`` -> ``OTB-2015``); default
            ``ed.dataset``.
        num_sequences_total: the benchmark's number of sequences; the title says ``(k of N sequences)`` when the
            plot covers fewer (default: the number of sequences in ``ed``).
    """
    os.makedirs(out_dir, exist_ok=True)
    scores = compute_scores(ed)
    curves = mean_curves(ed)
    if plot_types is None:
        plot_types = [p for p in PLOT_TYPES if "auc" in scores.columns]
        if "got10k_success" in curves:
            plot_types.append("got10k_success")
    covered = int(np.asarray(ed.valid_sequence).sum())
    total = len(ed.sequences) if num_sequences_total is None else int(num_sequences_total)
    written = []
    for ptype in plot_types:
        spec = _SPECS[ptype]
        if spec["curve"] not in curves or spec["score"] not in scores.columns:
            continue
        x = GOT10K_THRESHOLDS if spec["x"] is None else getattr(ed, spec["x"])
        title = plot_title(spec["title"], benchmark or ed.dataset, covered, total)
        written += _plot(x, curves[spec["curve"]], scores[spec["score"]].to_numpy(), list(scores.index), spec,
                         title, f"protocol: {ed.protocol}", os.path.join(out_dir, f"{ptype}_plot"), formats)
    return written
