"""Dataset scores from :class:`~lib.test.analysis.extract.EvalData`: tables (pandas), per-attribute and
per-sequence breakdowns, and the JSON summary.

Scores (percent):
    AUC: mean of the 21-point success curve (t = 0, 0.05, ..., 1; success iff IoU > t), the curve being
        the mean of the per-sequence curves over the evaluated sequences.
    OP50 / OP75: the success curve at t = 0.50 / 0.75.
    Precision: the precision curve (centre error <= t px, t = 0..50) at 20 px.
    Norm Precision: the normalized-precision curve (t = 0, 0.01, ..., 0.50) at 0.20.
    AO / SR0.5 / SR0.75 (GOT-10k): mean IoU and fraction of IoU > 0.5 / 0.75 over all scored frames of all
        sequences pooled (frame-weighted, as the GOT-10k toolkit).
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional

import numpy as np
import pandas as pd
import torch

from lib.utils.misc import atomic_write

from .extract import EvalData
from .protocols import RULES_BY_NAME, FrameRules

__all__ = ["compute_scores", "mean_curves", "per_sequence_scores", "per_attribute_scores", "format_table",
           "summary_dict", "write_json", "COLUMN_NAMES"]

COLUMN_NAMES = {"auc": "AUC", "op50": "OP50", "op75": "OP75", "precision": "Precision",
                "norm_precision": "Norm Precision", "ao": "AO", "sr50": "SR0.5", "sr75": "SR0.75"}


def _rules(ed: EvalData, mask: np.ndarray) -> FrameRules:
    names = [r for r, m in zip(ed.rules, mask) if m] or ed.rules
    return RULES_BY_NAME[max(set(names), key=names.count)]


def _mean(curves: np.ndarray, rules: FrameRules) -> np.ndarray:
    """``(S, T, K)`` per-sequence curves -> ``(T, K)`` mean curves in percent, by the protocol's rules."""
    if curves.shape[0] == 0:
        return np.full(curves.shape[1:], np.nan)
    if rules.drop_empty_curves:  # MATLAB plot_draw_save: aa = aa(sum(aa,2) > eps, :); bb = mean(aa)
        out = np.full(curves.shape[1:], np.nan)
        for t in range(curves.shape[1]):
            keep = curves[:, t].sum(axis=1) > np.finfo(np.float64).eps
            if keep.any():
                out[t] = curves[keep, t].mean(axis=0) * 100.0
        return out
    if rules.curve_dtype == "float32":  # pytracking: float32 tensors, .mean(0) * 100.0
        return (torch.from_numpy(curves.astype(np.float32)).mean(0) * 100.0).double().numpy()
    return curves.mean(axis=0) * 100.0


def mean_curves(ed: EvalData, subset: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Mean curves in percent, ``{'success': (T, 21), 'precision': (T, 51), 'norm_precision': (T, 51)}``
    (plus ``'got10k_success': (T, 101)`` for GOT-10k), over the valid sequences (within ``subset``)."""
    mask = ed.valid_sequence.copy()
    if subset is not None:
        mask &= subset
    rules = _rules(ed, mask)
    out = {"success": _mean(ed.success[mask], rules), "precision": _mean(ed.precision[mask], rules),
           "norm_precision": _mean(ed.norm_precision[mask], rules)}
    got = mask & ed.has_got10k
    if got.any():
        frames = ed.got_frames[got].sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["got10k_success"] = ed.got_above[got].sum(axis=0) / frames[:, None] * 100.0
    return out


def _float32_auc(curve: np.ndarray, rules: FrameRules) -> np.ndarray:
    if rules.curve_dtype == "float32":
        return torch.from_numpy(curve.astype(np.float32)).mean(-1).double().numpy()
    return curve.mean(axis=-1)


def compute_scores(ed: EvalData, subset: Optional[np.ndarray] = None) -> pd.DataFrame:
    """One row per tracker (display name), columns among ``auc, op50, op75, precision, norm_precision``
    (protocols that report curves) and ``ao, sr50, sr75`` (GOT-10k), in percent."""
    mask = ed.valid_sequence.copy()
    if subset is not None:
        mask &= subset
    rules = _rules(ed, mask)
    curves = mean_curves(ed, subset)
    cols: Dict[str, np.ndarray] = {}
    if rules.reports_curves:
        idx = rules.overlap_index
        i20 = int(np.argmin(np.abs(ed.thresholds_center - 20.0)))
        j20 = int(np.argmin(np.abs(ed.thresholds_norm - 0.20)))
        cols["auc"] = _float32_auc(curves["success"], rules)
        cols["op50"] = curves["success"][:, idx["op50"]]
        cols["op75"] = curves["success"][:, idx["op75"]]
        cols["precision"] = curves["precision"][:, i20]
        cols["norm_precision"] = curves["norm_precision"][:, j20]
    got = mask & ed.has_got10k
    if got.any():
        frames = ed.got_frames[got].sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["ao"] = ed.got_iou_sum[got].sum(axis=0) / frames * 100.0
            cols["sr50"] = ed.got_above[got][:, :, 50].sum(axis=0) / frames * 100.0   # linspace(0,1,101)[50] == 0.5
            cols["sr75"] = ed.got_above[got][:, :, 75].sum(axis=0) / frames * 100.0   # [75] == 0.75
    return pd.DataFrame(cols, index=pd.Index(ed.tracker_names, name="tracker"))


def per_sequence_scores(ed: EvalData) -> pd.DataFrame:
    """AUC (percent) of every evaluated sequence (rows) and tracker (columns); AO for protocols that
    report no curves (GOT-10k official)."""
    rows, index = [], []
    for s, name in enumerate(ed.sequences):
        if not ed.valid_sequence[s]:
            continue
        rules = RULES_BY_NAME[ed.rules[s]]
        if rules.reports_curves:
            rows.append(_float32_auc(ed.success[s], rules) * 100.0)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                rows.append(ed.got_iou_sum[s] / ed.got_frames[s] * 100.0)
        index.append(name)
    return pd.DataFrame(rows, index=pd.Index(index, name="sequence"), columns=ed.tracker_names)


class NoAttributesError(ValueError):
    """No evaluated sequence carries attribute flags (the dataset folder holds no attribute files)."""


def per_attribute_scores(ed: EvalData, sequences, metric: str = "auc") -> pd.DataFrame:
    """``metric`` (a :func:`compute_scores` column) per attribute: rows ``'<ATTR> (<n>)'`` (n = evaluated
    sequences with the attribute), columns trackers, plus a first row ``'ALL (<n>)'``.

    Raises:
        NoAttributesError (a ValueError): no sequence carries attribute flags (LaSOT: ``<root>/_attributes/<seq>.txt``;
            OTB: ``<otb_path>/<Seq>/attrs.txt``).
    """
    attrs: List[str] = []
    flags: Dict[str, np.ndarray] = {}
    by_name = {s.name: s for s in sequences}
    table = [getattr(by_name.get(n), "attributes", None) for n in ed.sequences]
    for a in table:
        for key in (a or {}):
            if key not in flags:
                attrs.append(key)
                flags[key] = np.array([bool(t and t.get(key)) for t in table])
    if not attrs:
        raise NoAttributesError(f"no attribute information for the sequences of '{ed.dataset}' (LaSOT: "
                         f"<lasot_path>/_attributes/<seq>.txt with the toolkit's 14 flags; OTB: "
                         f"<otb_path>/<Seq>/attrs.txt listing e.g. 'IV, SV, OCC')")
    rows, index = [], []
    n_all = int(ed.valid_sequence.sum())
    rows.append(compute_scores(ed)[metric].to_numpy())
    index.append(f"ALL ({n_all})")
    for key in attrs:
        n = int((flags[key] & ed.valid_sequence).sum())
        if n == 0:
            continue
        rows.append(compute_scores(ed, flags[key])[metric].to_numpy())
        index.append(f"{key} ({n})")
    return pd.DataFrame(rows, index=pd.Index(index, name=COLUMN_NAMES.get(metric, metric)), columns=ed.tracker_names)


def format_table(df: pd.DataFrame, title: str = "") -> str:
    """Text table with two decimals, column headers renamed to the report names."""
    shown = df.rename(columns=COLUMN_NAMES)
    text = shown.to_string(float_format=lambda v: f"{v:.2f}", na_rep="-")
    return (title + "\n" if title else "") + text


def summary_dict(ed: EvalData, scores: pd.DataFrame, per_attribute: Optional[Dict[str, pd.DataFrame]] = None,
                 per_sequence: Optional[pd.DataFrame] = None) -> Dict:
    """The JSON summary: ``{"dataset", "protocol", "rules", "num_sequences", "num_sequences_total",
    "trackers": {name: {"auc", "op50", "op75", "precision", "norm_precision"} or {"ao", "sr50", "sr75"}}}``,
    values in percent; optional ``"per_attribute"`` / ``"per_sequence"`` (AUC per attribute / sequence)."""
    def clean(v):
        v = float(v)
        return None if np.isnan(v) else v
    out = {"dataset": ed.dataset, "protocol": ed.protocol, "rules": sorted(set(ed.rules)),
           "num_sequences": int(ed.valid_sequence.sum()), "num_sequences_total": len(ed.sequences),
           "trackers": {name: {k: clean(scores.loc[name, k]) for k in scores.columns} for name in scores.index}}
    if per_attribute:
        out["per_attribute"] = {metric: {str(row): {t: clean(df.loc[row, t]) for t in df.columns} for row in df.index}
                                for metric, df in per_attribute.items()}
    if per_sequence is not None:
        out["per_sequence"] = {str(row): {t: clean(per_sequence.loc[row, t]) for t in per_sequence.columns}
                               for row in per_sequence.index}
    return out


def write_json(path: str, summary: Dict) -> None:
    """Write the summary atomically (indent 2)."""
    with atomic_write(path) as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
