"""Sigmoid focal loss on dense score-map labels with an ignore label (RetinaNet, Lin et al., ICCV 2017), as
SparseTT / SiamFC++ train their classification branches.

Source: fzh0917/SparseTT (video_analyst) ``videoanalyst/model/loss/loss_impl/focal_loss.py`` (``FocalLoss``,
used by ``FocalLossFC`` / ``FocalLossConv``) and ``videoanalyst/model/common_opr/common_loss.py``
(``sigmoid_focal_loss``, the fvcore formula that :func:`torchvision.ops.sigmoid_focal_loss` also computes).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import sigmoid_focal_loss

__all__ = ["SigmoidFocalLoss"]


class SigmoidFocalLoss(nn.Module):
    """``sum over non-ignored points of FL(logit, [label == 1]) / max(#(label > 0), 1)``.

    ``FL = alpha_t * (1 - p_t)^gamma * BCE(logit, t)`` with ``p = sigmoid(logit)``, ``p_t = p t + (1-p)(1-t)``,
    ``alpha_t = alpha t + (1 - alpha)(1 - t)``. The normaliser counts the positive points of the whole batch
    (1 when there is none, e.g. a batch of negative pairs).

    Args:
        alpha: weight of the positive class (SparseTT 0.75).
        gamma: focusing exponent (SparseTT 2.0).
        ignore_label: label of points left out (-1).
    """

    def __init__(self, alpha: float = 0.5, gamma: float = 0.0, ignore_label: int = -1):
        super().__init__()
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.ignore_label = ignore_label

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``logits`` ``(B, N, 1)`` (before the sigmoid), ``labels`` ``(B, N, 1)`` in {-1, 0, 1}; returns a 0-d
        tensor.

        Raises:
            ValueError: the shapes differ.
        """
        if logits.shape != labels.shape:
            raise ValueError(f"SigmoidFocalLoss: logits {tuple(logits.shape)} and labels {tuple(labels.shape)} "
                             f"must have the same shape (B, N, 1)")
        valid = (labels != self.ignore_label).to(logits.dtype)
        target = (labels == 1).to(logits.dtype)
        loss = sigmoid_focal_loss(logits, target, alpha=self.alpha, gamma=self.gamma, reduction="none")
        num_pos = (labels > 0).sum().to(logits.dtype)
        return (loss * valid).sum() / torch.clamp(num_pos, min=1.0)
