"""``-log IoU`` box loss over the positive score-map points, with video_analyst's "+1" pixel convention
(SparseTT / SiamFC++ regression branches; UnitBox, Yu et al., ACM MM 2016).

Source: fzh0917/SparseTT (video_analyst) ``videoanalyst/model/loss/loss_impl/iou_loss.py`` (``IOULoss``, used
by ``IOULossFC`` / ``IOULossConv``) and ``loss_impl/utils.py`` (``SafeLog``).
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

__all__ = ["paired_iou_plus1", "IoULoss"]

_TINY = float(torch.finfo(torch.float32).tiny)


def paired_iou_plus1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of matching xyxy boxes ``(..., 4)`` where a box covers ``x1 - x0 + 1`` by ``y1 - y0 + 1`` pixels.

    ``inter = max(min(x1) - max(x0) + 1, 0) * max(min(y1) - max(y0) + 1, 0)``; areas use ``|x1 - x0 + 1|``;
    the result is clamped at 0. Returns ``(...)``.
    """
    area_gt = torch.abs(gt[..., 2] - gt[..., 0] + 1) * torch.abs(gt[..., 3] - gt[..., 1] + 1)
    area_pred = torch.abs(pred[..., 2] - pred[..., 0] + 1) * torch.abs(pred[..., 3] - pred[..., 1] + 1)
    iw = torch.min(pred[..., 2], gt[..., 2]) - torch.max(pred[..., 0], gt[..., 0]) + 1
    ih = torch.min(pred[..., 3], gt[..., 3]) - torch.max(pred[..., 1], gt[..., 1]) + 1
    inter = iw.clamp(min=0) * ih.clamp(min=0)
    return (inter / (area_gt + area_pred - inter)).clamp(min=0)


class IoULoss(nn.Module):
    """``mean over positive points of -log(max(IoU, tiny))`` (:func:`paired_iou_plus1`).

    Positive points are those whose label is neither ``background`` (0) nor ``ignore_label`` (-1); the
    mean divides by ``max(#positive, 1)``, so a batch without positives (negative pairs) gives 0.

    ``forward(pred (B, N, 4), gt (B, N, 4), labels (B, N, 1))`` (xyxy search-crop pixels) returns
    ``(loss, mean IoU of the positive points)``, both 0-d (the IoU detached).

    Raises:
        ValueError: mismatched shapes.
    """

    def __init__(self, background: int = 0, ignore_label: int = -1):
        super().__init__()
        self.background = background
        self.ignore_label = ignore_label

    def forward(self, pred: torch.Tensor, gt: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if pred.shape != gt.shape or pred.shape[:-1] != labels.shape[:-1]:
            raise ValueError(f"IoULoss: pred {tuple(pred.shape)}, gt {tuple(gt.shape)} and labels "
                             f"{tuple(labels.shape)} must be (B, N, 4), (B, N, 4), (B, N, 1)")
        mask = ((labels != self.background) & (labels != self.ignore_label)).squeeze(-1).to(pred.dtype)
        iou = paired_iou_plus1(pred, gt)
        loss = -torch.log(torch.clamp(iou, min=_TINY))
        count = torch.clamp(mask.sum(), min=1.0)
        return (loss * mask).sum() / count, ((iou.detach() * mask).sum() / count)
