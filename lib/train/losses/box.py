"""The box regression losses of the corner/centre-head trackers (OSTrack, GRM, STARK, AiATrack):
GIoU and L1 between the predicted boxes and the search frame's ground truth.

Source: the ``compute_losses`` of OSTrack ``lib/train/actors/ostrack.py``, STARK
``lib/train/actors/stark_s.py`` and AiATrack ``lib/train/actors/aiatrack.py`` (the same code in each).
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch

from lib.utils.box_ops import box_cxcywh_to_xyxy, box_xywh_to_xyxy

__all__ = ["box_regression_losses"]


def box_regression_losses(pred_boxes: torch.Tensor, gt_bbox: torch.Tensor, giou_fn: Callable, l1_fn: Callable
                          ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GIoU and L1 losses of predicted boxes against the ground truth, as the official actors compute them.

    The ground truth is converted to xyxy, repeated for each query and clamped to [0, 1]; the predictions
    are converted to xyxy unclamped. If ``giou_fn`` fails (degenerate predicted boxes: ``x2 < x1``) the
    GIoU loss and the IoU are 0, as in the official code.

    Args:
        pred_boxes: ``(B, N, 4)`` predicted boxes cxcywh normalised to the search crop.
        gt_bbox: ``(B, 4)`` ground truth xywh normalised to the search crop.
        giou_fn: ``fn(pred_xyxy (M, 4), gt_xyxy (M, 4)) -> (loss, iou)`` (:func:`lib.utils.box_ops.giou_loss`).
        l1_fn: ``fn(pred_xyxy, gt_xyxy) -> loss`` (``torch.nn.functional.l1_loss``).

    Returns:
        ``(giou_loss, iou, l1_loss)`` 0-d tensors (``iou`` the mean IoU, for logging).

    Raises:
        ValueError: NaN in ``pred_boxes`` (training diverged).
    """
    if torch.isnan(pred_boxes).any():
        raise ValueError("the network predicted NaN boxes: training diverged")
    num_queries = pred_boxes.size(1)
    pred_vec = box_cxcywh_to_xyxy(pred_boxes).view(-1, 4)
    gt_vec = box_xywh_to_xyxy(gt_bbox)[:, None, :].repeat((1, num_queries, 1)).view(-1, 4).clamp(min=0.0, max=1.0)
    try:
        giou, iou = giou_fn(pred_vec, gt_vec)
    except (ValueError, RuntimeError):
        giou = iou = torch.tensor(0.0, device=pred_vec.device)
    l1 = l1_fn(pred_vec, gt_vec)
    return giou, iou.detach().mean(), l1
