"""Per-frame and per-sequence tracking measures: IoU, centre error, normalized centre error, success /
precision curves, and the GOT-10k IoUs behind AO and SR. The one place of these rules in the toolkit;
every function takes a :class:`~lib.test.analysis.protocols.FrameRules` and is vectorised with numpy.

Boxes are ``(N, 4)`` float64 **xywh in pixels** (top-left corner and size), row ``i`` = frame ``i``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from lib.utils.errors import register_user_error

from .protocols import SUCCESS, FrameRules, fit_result_length

__all__ = ["PredictionError", "prepare_predictions", "box_iou", "box_centers", "frame_errors",
           "sequence_counts", "got10k_frame_ious", "GOT10K_THRESHOLDS"]

#: success-curve thresholds of the GOT-10k toolkit (``np.linspace(0, 1, 101)``, IoU > t)
GOT10K_THRESHOLDS = np.linspace(0, 1, 101)


@register_user_error
class PredictionError(ValueError):
    """A prediction the protocol rejects; ``frame`` is the 0-based row (line ``frame + 1`` of the file)."""

    def __init__(self, message: str, frame: Optional[int] = None):
        super().__init__(message)
        self.frame = frame


def _fill_from_previous(boxes: np.ndarray, replace_mask: np.ndarray) -> np.ndarray:
    """Row ``i`` with ``replace_mask[i]`` (i >= 1) takes the nearest earlier row that is not replaced —
    what the toolkits' sequential ``res(i,:) = res(i-1,:)`` loops produce."""
    if len(boxes) == 0:
        return boxes
    mask = replace_mask.copy()
    mask[0] = False
    if not mask.any():
        return boxes
    source = np.where(mask, 0, np.arange(len(boxes)))
    np.maximum.accumulate(source, out=source)
    return boxes[source]


def prepare_predictions(pred: np.ndarray, gt: np.ndarray, rules: FrameRules) -> np.ndarray:
    """Apply the protocol's checks and repairs to the raw predictions of one sequence.

    Args:
        pred: ``(M, 4)`` raw predictions; ``M != N`` is handled by :func:`~lib.test.analysis.protocols.
            fit_result_length` (longer: cut to ``N``; shorter: padded with zero boxes after the repairs, as
            pytracking does, or an error).
        gt: ``(N, 4)`` ground truth.
        rules: the protocol.

    Returns:
        ``(N, 4)`` float64 predictions to score.

    Raises:
        ResultLengthError: a length the protocol cannot score.
        PredictionError: (``bad_predictions='raise'``) a NaN or a negative width/height (``frame`` = first
            offending row).
        ValueError: NaN in the ground truth where the protocol forbids it.
    """
    n = len(gt)
    padding = n - len(pred) if fit_result_length(len(pred), n, rules) == "pad" else 0
    if rules.bad_predictions == "raise":  # pytracking checks every row of the file, extra rows too
        full = np.asarray(pred, dtype=np.float64)
        bad = np.isnan(full).any(axis=1) | (full[:, 2:] < 0).any(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise PredictionError(f"invalid predicted box {full[i].tolist()} (NaN or negative width/height); "
                                  f"protocol '{rules.name}' rejects it", frame=i)
    pred = np.array(pred[:n], dtype=np.float64)
    gt_nan = np.isnan(gt).any(axis=1)
    if rules.nan_gt == "raise" and gt_nan.any():
        raise ValueError(f"NaN in the ground truth (frame {int(np.argmax(gt_nan))}); protocol '{rules.name}' "
                         f"accepts NaN ground truth only for UAV123")
    pred_nan = np.isnan(pred).any(axis=1)
    row_gt_nan = gt_nan[:len(pred)]
    with np.errstate(invalid="ignore"):
        if rules.bad_predictions == "repair":
            pred = _fill_from_previous(pred, (pred_nan | (pred[:, 2:] <= 0).any(axis=1)) & ~row_gt_nan)
        elif rules.repair_zero_size:
            pred = _fill_from_previous(pred, (pred[:, 2:] == 0).any(axis=1) & ~row_gt_nan)
    if padding:  # zero boxes after the repairs (pytracking pads after its zero-size loop): failures
        pred = np.concatenate([pred, np.zeros((padding, 4))], axis=0)
    if rules.first_frame_gt:
        pred[0] = gt[0]
    return pred


def box_iou(pred: np.ndarray, gt: np.ndarray, convention: str = "plus_one") -> np.ndarray:
    """Paired IoU of ``(N, 4)`` xywh boxes.

    ``'plus_one'``: pixel-inclusive boxes, x2 = x + w - 1, intersection side = min(x2) - max(x1) + 1
    clamped at 0, union = w_p h_p + w_g h_g - inter (pytracking ``calc_iou_overlap``, MATLAB
    ``calc_rect_int``). ``'continuous'``: x2 = x + w, result clipped to [0, 1] (pysot ``overlap_ratio``).
    A zero union gives NaN (a failure at every threshold).
    """
    tl = np.maximum(pred[:, :2], gt[:, :2])
    if convention == "plus_one":
        br = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
        inter = np.prod(np.clip(br - tl + 1.0, 0.0, None), axis=1)
    elif convention == "continuous":
        br = np.minimum(pred[:, :2] + pred[:, 2:], gt[:, :2] + gt[:, 2:])
        inter = np.prod(np.maximum(br - tl, 0.0), axis=1)
    else:
        raise ValueError(f"unknown IoU convention '{convention}'")
    union = np.prod(pred[:, 2:], axis=1) + np.prod(gt[:, 2:], axis=1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    if convention == "continuous":
        iou = np.maximum(np.minimum(1.0, iou), 0.0)
    return iou


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """``(N, 2)`` centres ``xy + (wh - 1) / 2`` of xywh boxes (the "+1 pixel" convention of every toolkit)."""
    return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def _valid(gt: np.ndarray, test: str, centers: Optional[np.ndarray] = None) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if test == "wh_positive":
            return (gt[:, 2:] > 0).all(axis=1)
        if test == "all_positive":
            return (gt > 0).all(axis=1)
        if test == "center_positive":
            return (centers > 0).all(axis=1)
    raise ValueError(f"unknown validity test '{test}'")


def frame_errors(pred: np.ndarray, gt: np.ndarray, target_visible: Optional[np.ndarray],
                 rules: FrameRules) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame IoU, centre error (pixels), normalized centre error and validity of one sequence.

    Args:
        pred: ``(M, 4)`` raw predictions (``M >= N``).
        gt: ``(N, 4)`` ground truth.
        target_visible: ``(N,)`` bool or None (no absent frames).
        rules: the protocol.

    Returns:
        ``iou (N,)``: -1 on invalid/absent frames; ``center (N,)`` and ``norm_center (N,)``: the
        protocol's SUCCESS (-1) or FAILURE (+inf) value on invalid/absent frames; ``valid (N,)``: frames
        whose IoU was computed.

    Raises:
        PredictionError / ValueError: see :func:`prepare_predictions`; PredictionError also when the
            pytracking protocol meets a NaN IoU on a valid frame (OSTrack raises there too).
    """
    pred = prepare_predictions(pred, gt, rules)
    n = len(gt)
    absent = np.zeros(n, dtype=bool) if target_visible is None else ~np.asarray(target_visible, dtype=bool)[:n]
    if len(absent) != n:
        raise ValueError(f"target_visible has {len(absent)} flags for {n} frames")

    iou = box_iou(pred, gt, rules.iou)
    c_pred, c_gt = box_centers(pred), box_centers(gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        center = np.sqrt(((c_pred - c_gt) ** 2).sum(axis=1))
        size = gt[:, 2:] + rules.norm_eps
        n_pred, n_gt = c_pred / size, c_gt / size
        norm = np.sqrt(((n_pred - n_gt) ** 2).sum(axis=1))

    iou_ok = _valid(gt, rules.iou_valid)
    center_ok = iou_ok if rules.center_valid == "iou" else _valid(gt, "center_positive", c_gt)
    norm_ok = iou_ok if rules.norm_valid == "iou" else _valid(gt, "center_positive", n_gt)

    iou = np.where(iou_ok & ~absent, iou, SUCCESS)
    center = np.where(center_ok, center, rules.invalid_center)
    norm = np.where(norm_ok, norm, rules.invalid_norm)
    center[absent] = rules.absent_center
    norm[absent] = rules.absent_norm
    valid = iou_ok & ~absent
    if rules.bad_predictions == "raise" and np.isnan(iou[valid]).any():
        i = int(np.flatnonzero(valid & np.isnan(iou))[0])
        raise PredictionError(f"IoU is NaN (zero-area prediction {pred[i].tolist()} and ground truth "
                              f"{gt[i].tolist()}); protocol '{rules.name}' rejects it", frame=i)
    return iou, center, norm, valid


def sequence_counts(iou: np.ndarray, center: np.ndarray, norm: np.ndarray, rules: FrameRules
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number of frames passing each threshold: ``IoU > t`` (overlap), ``error <= t`` (centre, normalized).
    NaN values pass nothing. Divide by the frame count (+ ``rules.denominator_eps``) for the curves.

    Sort-based (``searchsorted`` on the sorted values gives the same counts as comparing every frame
    with every threshold, in O(N log N))."""
    n = len(iou)
    overlap = np.sort(np.where(np.isnan(iou), -np.inf, iou))
    s = n - np.searchsorted(overlap, np.asarray(rules.thresholds_overlap), side="right")
    p = np.searchsorted(np.sort(center), np.asarray(rules.thresholds_center), side="right")  # NaN sorts last
    q = np.searchsorted(np.sort(norm), np.asarray(rules.thresholds_norm), side="right")
    return s, p, q


def got10k_frame_ious(pred: np.ndarray, gt: np.ndarray, cover: np.ndarray,
                      resolution: Tuple[float, float]) -> np.ndarray:
    """IoUs that enter GOT-10k's AO / SR (got10k toolkit ``report()`` for the val split).

    Frames 1..N-1 only (frame 0 is the initialisation), only frames with ``cover > 0`` (target visible);
    both boxes clipped to the image first (x to [0, W], then w to [0, W - x]; likewise y/h), continuous
    coordinates (x2 = x + w), ``IoU = inter / (union + eps)`` clipped to [0, 1].

    Args:
        pred: ``(N, 4)`` predictions (exactly one per frame; the toolkit asserts equal shapes).
        gt: ``(N, 4)`` ground truth.
        cover: ``(N,)`` the ``cover.label`` values (0 = target fully occluded or out of view).
        resolution: ``(W, H)`` image size from ``meta_info.ini``.

    Returns:
        ``(K,)`` IoUs of the scored frames; AO = mean, SR_t = mean(IoU > t), pooled over all sequences.
    """
    if pred.shape != gt.shape:
        raise PredictionError(f"{len(pred)} boxes for {len(gt)} frames (the GOT-10k toolkit needs exactly one per frame)",
                              frame=min(len(pred), len(gt)))
    W, H = float(resolution[0]), float(resolution[1])
    boxes = []
    for b in (np.array(pred[1:], dtype=np.float64), np.array(gt[1:], dtype=np.float64)):
        b[:, 0] = np.clip(b[:, 0], 0, W)
        b[:, 1] = np.clip(b[:, 1], 0, H)
        b[:, 2] = np.clip(b[:, 2], 0, W - b[:, 0])
        b[:, 3] = np.clip(b[:, 3], 0, H - b[:, 1])
        boxes.append(b)
    p, g = boxes
    x1 = np.maximum(p[:, 0], g[:, 0])
    y1 = np.maximum(p[:, 1], g[:, 1])
    x2 = np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2])
    y2 = np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
    ious = np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)
    return ious[np.asarray(cover)[1:] > 0]
