"""Evaluation protocols: the per-frame rules of each official toolkit as one parameter object.

Every number this toolkit reports goes through :class:`FrameRules`; :func:`get_rules` picks the rules of a
protocol (``'pytracking'`` or ``'official'``) for a Sequence's dataset string. The rules were read from
the toolkits' code:

- ``pytracking``: OSTrack ``lib/test/analysis/extract_results.py::calc_seq_err_robust`` (the seeds'
  ``tracking/analysis_results.py``; pytracking's own copy differs only in the GT validity test, all four
  values > 0 instead of w, h > 0).
- LaSOT toolkit: HengLan/LaSOT_Evaluation_Toolkit ``utils/calc_seq_err_robust.m``, ``calc_rect_int.m``,
  ``eval_tracker.m``, ``plot_draw_save.m``.
- pysot OPE (OTB-2015 and the OTB-style benchmarks): STVIR/pysot ``toolkit/evaluation/ope_benchmark.py``,
  ``toolkit/utils/statistics.py``.
- GOT-10k toolkit (AO / SR): got-10k/toolkit ``got10k/experiments/got10k.py``, ``got10k/utils/metrics.py``
  (see :func:`lib.test.analysis.metrics.got10k_frame_ious`).

A result file with another number of rows than the sequence has ground-truth frames is handled as each
toolkit handles it (:attr:`FrameRules.short_results`, :attr:`FrameRules.long_results`, :func:`fit_result_length`):

- ``pytracking`` (``calc_seq_err_robust``): a longer file is cut to the ground truth; a shorter one is padded with
  zero boxes ``[0, 0, 0, 0]`` (after the zero-size repair, so they stay zero: failures on every valid frame), except
  for the dataset string ``'lasot'``, where a shorter file is an error (``'lasot_extension_subset'`` pads).
- LaSOT toolkit (``calc_seq_err_robust.m``: ``results(1:size(rect_anno,1), :)``): longer cut, shorter an error.
- pysot OPE (``success_overlap``: ``result_bb[mask]`` with the ground truth's mask): any other length fails there
  (after ``load_tracker`` prints both lengths), so both are errors here.
- GOT-10k toolkit (``experiments/got10k.py`` ``report``: ``assert all([b.shape == anno.shape ...])``): both errors.

Per frame a measure takes one of three states: *valid* (computed), *invalid* (the ground truth box fails
the toolkit's validity test) or *absent* (``target_visible`` is False). An invalid or absent frame gets a
fixed value: ``SUCCESS`` (-1: passes every ``error <= t`` test, fails every ``IoU > t`` test) or
``FAILURE`` (+inf for errors). IoU of an invalid or absent frame is always -1 (a failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Tuple

import numpy as np
import torch

from lib.utils.errors import register_user_error

__all__ = ["FrameRules", "get_rules", "fit_result_length", "ResultLengthError", "PROTOCOLS", "RULES_BY_NAME",
           "SUCCESS", "FAILURE", "matlab_colon", "NO_LOCAL_GT", "UnsupportedDatasetError"]

SUCCESS = -1.0
FAILURE = float("inf")

PROTOCOLS = ("pytracking", "official")

#: dataset strings whose test ground truth is withheld (server evaluation only)
NO_LOCAL_GT = {"trackingnet": "TrackingNet test: submit the packed results to the evaluation server",
               "vot": "VOT: evaluate with the VOT toolkit (EAO / accuracy / robustness)"}


@register_user_error
class UnsupportedDatasetError(ValueError):
    """The dataset cannot be analysed locally (ground truth withheld, or another toolkit's measure)."""


class ResultLengthError(ValueError):
    """A result file with another number of rows than ground-truth frames, which the protocol cannot score."""


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """``start:step:stop`` as MATLAB computes it (values of the first half from ``start + k*step``, of the
    second half from ``stop - (n-k)*step``), so ties with the thresholds break as in the MATLAB toolkits."""
    n = int(round((stop - start) / step))
    k = np.arange(n + 1)
    return np.where(k <= n / 2, start + k * step, stop - (n - k) * step)


@dataclass(frozen=True)
class FrameRules:
    """Per-frame rules turning a prediction and the ground truth into IoU, centre error and normalized
    centre error, and the per-sequence / per-dataset aggregation of one toolkit.

    Boxes are xywh in pixels. Fields:
        name: short id shown in reports (``'pytracking'``, ``'lasot_toolkit'``, ``'pysot_ope'``, ``'got10k'``).
        description: one line naming the source code.
        bad_predictions: what a prediction with NaN or a negative width/height does —
            ``'raise'`` (pytracking: an error naming file and line), ``'repair'`` (LaSOT toolkit: NaN or
            w/h <= 0 replaced by the previous, possibly repaired, box when the GT row has no NaN) or
            ``'keep'`` (pysot: used as is).
        repair_zero_size: replace a w == 0 or h == 0 prediction by the previous one when the GT row has no
            NaN (pytracking).
        first_frame_gt: the frame-0 prediction is replaced by the ground truth (pytracking, LaSOT toolkit).
        nan_gt: ``'raise'`` (pytracking, except UAV) or ``'allow'`` (a NaN GT row fails every validity test).
        iou: ``'plus_one'`` (x2 = x + w - 1, intersection + 1: pytracking, MATLAB toolkits) or
            ``'continuous'`` (x2 = x + w, IoU clipped to [0, 1]: pysot).
        iou_valid: GT test for IoU — ``'wh_positive'`` (w > 0 and h > 0) or ``'all_positive'`` (x, y, w, h > 0).
        center_valid / norm_valid: GT test for the centre errors — ``'iou'`` (same as ``iou_valid``),
            ``'center_positive'`` (pysot: both GT centre coordinates > 0; for the normalized error the
            normalized centre).
        invalid_center / invalid_norm: value of the centre errors on invalid frames (SUCCESS or FAILURE).
        absent_center / absent_norm: value on absent frames.
        norm_eps: added to the GT width/height before normalizing (pysot 1e-16, others 0).
        thresholds_overlap / thresholds_center / thresholds_norm: the curve thresholds (success iff
            IoU > t; precision iff error <= t), built as each toolkit builds them.
        denominator_eps: added to the frame count of a sequence (MATLAB toolkits: ``len + eps``).
        drop_empty_curves: a sequence whose whole curve is zero is left out of the mean (MATLAB
            ``plot_draw_save``: ``aa = aa(sum(aa,2) > eps, :)``), separately per measure.
        curve_dtype: per-sequence curves are stored and averaged in this dtype (pytracking: float32,
            as its eval_data is re-loaded as float32 tensors).
        reports_curves: the protocol reports success/precision curves (the GOT-10k protocol reports
            only AO and SR).
        short_results: a result file with fewer rows than ground-truth frames — ``'pad'`` (zero boxes appended
            after the repairs: failures) or ``'raise'``.
        long_results: more rows than frames — ``'cut'`` (the extra rows are ignored) or ``'raise'``.
    """

    name: str
    description: str
    bad_predictions: str = "raise"
    repair_zero_size: bool = True
    first_frame_gt: bool = True
    nan_gt: str = "raise"
    iou: str = "plus_one"
    iou_valid: str = "wh_positive"
    center_valid: str = "iou"
    norm_valid: str = "iou"
    invalid_center: float = FAILURE
    invalid_norm: float = SUCCESS
    absent_center: float = FAILURE
    absent_norm: float = SUCCESS
    norm_eps: float = 0.0
    thresholds_overlap: Tuple[float, ...] = field(default_factory=tuple)
    thresholds_center: Tuple[float, ...] = tuple(float(t) for t in range(51))
    thresholds_norm: Tuple[float, ...] = tuple(t / 100.0 for t in range(51))
    denominator_eps: float = 0.0
    drop_empty_curves: bool = False
    curve_dtype: str = "float64"
    reports_curves: bool = True
    short_results: str = "pad"
    long_results: str = "cut"

    def __post_init__(self):
        for key, allowed in (("bad_predictions", ("raise", "repair", "keep")), ("nan_gt", ("raise", "allow")),
                             ("iou", ("plus_one", "continuous")), ("iou_valid", ("wh_positive", "all_positive")),
                             ("center_valid", ("iou", "center_positive")), ("norm_valid", ("iou", "center_positive")),
                             ("curve_dtype", ("float32", "float64")), ("short_results", ("pad", "raise")),
                             ("long_results", ("cut", "raise"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"FrameRules.{key} must be one of {allowed}, got {getattr(self, key)!r}")

    @property
    def overlap_index(self) -> Dict[str, int]:
        """Indices of the 0.50 and 0.75 points of the 21-point overlap grid (robust to float noise)."""
        th = np.asarray(self.thresholds_overlap)
        return {"op50": int(np.argmin(np.abs(th - 0.5))), "op75": int(np.argmin(np.abs(th - 0.75)))}


# --- the toolkits -------------------------------------------------------------------------------------------------

# pytracking / OSTrack: torch.arange(0.0, 1.0 + 0.05, 0.05, dtype=float64); centre 0..50; normalized 0..0.50.
_PT_OVERLAP = tuple(torch.arange(0.0, 1.0 + 0.05, 0.05, dtype=torch.float64).tolist())

PYTRACKING = FrameRules(
    name="pytracking",
    description="pytracking / OSTrack lib/test/analysis (calc_seq_err_robust, extract_results, plot_results)",
    bad_predictions="raise", repair_zero_size=True, first_frame_gt=True, nan_gt="raise",
    iou="plus_one", iou_valid="wh_positive", center_valid="iou", norm_valid="iou",
    invalid_center=FAILURE, invalid_norm=SUCCESS, absent_center=FAILURE, absent_norm=SUCCESS,
    thresholds_overlap=_PT_OVERLAP, curve_dtype="float32")

LASOT_TOOLKIT = FrameRules(
    name="lasot_toolkit",
    description="LaSOT MATLAB toolkit (calc_seq_err_robust.m, calc_rect_int.m, eval_tracker.m, plot_draw_save.m)",
    bad_predictions="repair", repair_zero_size=True, first_frame_gt=True, nan_gt="allow",
    iou="plus_one", iou_valid="all_positive", center_valid="iou", norm_valid="iou",
    invalid_center=SUCCESS, invalid_norm=SUCCESS, absent_center=FAILURE, absent_norm=FAILURE,
    thresholds_overlap=tuple(matlab_colon(0.0, 0.05, 1.0).tolist()),
    denominator_eps=float(np.finfo(np.float64).eps), drop_empty_curves=True, curve_dtype="float64",
    short_results="raise", long_results="cut")

PYSOT_OPE = FrameRules(
    name="pysot_ope",
    description="pysot OPE benchmark (toolkit/evaluation/ope_benchmark.py, toolkit/utils/statistics.py)",
    bad_predictions="keep", repair_zero_size=False, first_frame_gt=False, nan_gt="allow",
    iou="continuous", iou_valid="wh_positive", center_valid="center_positive", norm_valid="center_positive",
    invalid_center=SUCCESS, invalid_norm=SUCCESS, absent_center=FAILURE, absent_norm=FAILURE, norm_eps=1e-16,
    thresholds_overlap=tuple(np.arange(0, 1.05, 0.05).tolist()),
    thresholds_center=tuple(np.arange(0, 51, 1).astype(np.float64).tolist()),
    thresholds_norm=tuple((np.arange(0, 51, 1) / 100).tolist()), curve_dtype="float64",
    short_results="raise", long_results="raise")

GOT10K_TOOLKIT = replace(PYTRACKING, name="got10k",
                         description="GOT-10k toolkit (experiments/got10k.py report(), utils/metrics.py rect_iou)",
                         reports_curves=False, curve_dtype="float64", short_results="raise",
                         long_results="raise")

#: what ``official`` means per dataset string (benchmarks released with the OTB toolkit are evaluated by
#: pysot's OPE code, which is what their published pysot numbers come from; AVisT's own toolkit is pytracking)
_OFFICIAL = {"lasot": LASOT_TOOLKIT, "lasot_extension_subset": LASOT_TOOLKIT, "otb": PYSOT_OPE, "uav": PYSOT_OPE,
             "nfs": PYSOT_OPE, "tc128": PYSOT_OPE, "tpl": PYSOT_OPE, "got10k": GOT10K_TOOLKIT}


#: aggregation settings by rules name (the dataset special cases of ``pytracking`` share its aggregation)
RULES_BY_NAME = {r.name: r for r in (PYTRACKING, LASOT_TOOLKIT, PYSOT_OPE, GOT10K_TOOLKIT)}


def get_rules(protocol: str, dataset: str) -> FrameRules:
    """The :class:`FrameRules` of ``protocol`` for the Sequence dataset string ``dataset``.

    ``pytracking`` applies OSTrack's dataset special cases: ``'uav'`` accepts NaN ground truth and scores
    the centre error of invalid/absent frames as a success; ``'lasot'`` scores both centre errors of absent
    frames as failures (other datasets with visibility flags, e.g. ``'lasot_extension_subset'`` and
    ``'avist'``, keep the normalized-precision success on absent frames, as the official code does).

    Raises:
        ValueError: unknown protocol.
        UnsupportedDatasetError: a dataset whose ground truth is not public (TrackingNet) or that another
            measure evaluates (VOT).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}")
    if dataset in NO_LOCAL_GT:
        raise UnsupportedDatasetError(f"dataset '{dataset}' cannot be analysed locally: {NO_LOCAL_GT[dataset]}")
    if protocol == "official":
        rules = _OFFICIAL.get(dataset)
        if rules is not None:
            return rules
        # no toolkit of its own (AVisT publishes pytracking numbers): pytracking's rules
    rules = PYTRACKING
    if dataset == "uav":
        rules = replace(rules, nan_gt="allow", invalid_center=SUCCESS, absent_center=SUCCESS)
    elif dataset == "lasot":  # and a short result file is an error for 'lasot' only (monkey-17 is cut)
        rules = replace(rules, absent_center=FAILURE, absent_norm=FAILURE, short_results="raise")
    return rules


def fit_result_length(n_rows: int, n_frames: int, rules: FrameRules) -> str:
    """What ``rules`` do with a result file of ``n_rows`` rows for ``n_frames`` ground-truth frames.

    Returns:
        ``''`` (equal lengths), ``'pad'`` (zero boxes are appended) or ``'cut'`` (the extra rows are ignored).

    Raises:
        ResultLengthError: the protocol cannot score that length (the message says which toolkit rule).
    """
    if n_rows == n_frames:
        return ""
    action = rules.short_results if n_rows < n_frames else rules.long_results
    if action == "raise":
        what = "fewer" if n_rows < n_frames else "more"
        raise ResultLengthError(f"{n_rows} boxes for {n_frames} frames of ground truth: protocol '{rules.name}' "
                                f"cannot score a result with {what} rows than frames (its toolkit stops there)")
    return action
