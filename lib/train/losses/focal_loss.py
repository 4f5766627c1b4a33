"""CenterNet focal loss on heat maps (Law & Deng, CornerNet, ECCV 2018; OSTrack ``lib/utils/focal_loss.py``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FocalLoss"]


class FocalLoss(nn.Module):
    """Penalty-reduced pixel-wise focal loss.

    ``L = -[sum(log p (1-p)^alpha [gt == 1]) + sum(log(1-p) p^alpha (1-gt)^beta [gt < 1])] / num_pos``, with
    ``p`` clamped at 1e-12 and ``num_pos`` the number of cells equal to 1 in the whole batch (the negative
    sum alone when there are none).

    Args:
        alpha: focusing exponent (2).
        beta: down-weighting of negatives near a peak (4).
    """

    def __init__(self, alpha: float = 2, beta: float = 4):
        super().__init__()
        self.alpha = alpha
        self.beta = beta

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``prediction`` and ``target``: same shape (e.g. ``(B, 1, H, W)``), prediction in (0, 1).

        Returns a 0-d tensor.
        """
        pos = target.eq(1).float()
        neg = target.lt(1).float()
        neg_weights = torch.pow(1 - target, self.beta)
        prediction = torch.clamp(prediction, 1e-12)
        pos_loss = (torch.log(prediction) * torch.pow(1 - prediction, self.alpha) * pos).sum()
        neg_loss = (torch.log(1 - prediction) * torch.pow(prediction, self.alpha) * neg_weights * neg).sum()
        num_pos = pos.sum()
        if num_pos == 0:
            return -neg_loss
        return -(pos_loss + neg_loss) / num_pos
