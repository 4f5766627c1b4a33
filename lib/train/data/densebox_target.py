"""Dense-box (FCOS-style) classification and box targets on the score-map points (SiamFC++ / SparseTT).

Source: fzh0917/SparseTT (video_analyst) ``videoanalyst/data/target/target_impl/utils/make_densebox_target.py``
(v2.1) and ``videoanalyst/data/target/target_impl/densebox_target.py`` (``DenseboxTarget``). SPARSETT.md 6.

Score-map point ``(i, j)`` (row ``i``, column ``j``, flat index ``i * S + j``) sits at search-crop pixel
``(score_offset + j * stride, score_offset + i * stride)`` (x, y), the anchor grid ``fm_ctr`` of the head.
"""

from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["score_offset", "score_map_points", "make_densebox_target", "relabel_negative_pair"]


def score_offset(x_size: int, score_size: int, total_stride: int) -> int:
    """``(x_size - 1 - (score_size - 1) * total_stride) // 2``: pixel of the first score-map point (0 for
    SparseTT's 289 / 19 / 16).

    Raises:
        ValueError: a negative offset (the score map does not fit in the search crop).
    """
    off = (int(x_size) - 1 - (int(score_size) - 1) * int(total_stride)) // 2
    if off < 0:
        raise ValueError(f"score map {score_size}x{score_size} with stride {total_stride} does not fit a "
                         f"{x_size}-pixel search crop (offset {off})")
    return off


def score_map_points(x_size: int, score_size: int, total_stride: int) -> torch.Tensor:
    """``(S*S, 2)`` float32 ``(x, y)`` crop pixels of the score-map points, row-major."""
    off = score_offset(x_size, score_size, total_stride)
    idx = torch.arange(score_size, dtype=torch.float32) * total_stride + off
    yy, xx = torch.meshgrid(idx, idx, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def make_densebox_target(box_xyxy, x_size: int, score_size: int, total_stride: int
                         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets of one ground-truth box in the search crop.

    A point is positive (label 1) iff it lies strictly inside the box: ``x - x0 > 0``, ``y - y0 > 0``,
    ``x1 - x > 0`` and ``y1 - y > 0`` (float32, as the official code); every other point is 0. Positive
    points get the box as box target and the FCOS centre-ness ``sqrt(min(l,r) min(t,b) / (max(l,r) max(t,b)
    + 1e-5))`` of their offsets; negative points get zeros (the official dummy box). The centre-ness target
    is produced as the official ``ctr_gt`` but no SparseTT loss uses it.

    Args:
        box_xyxy: ``(4,)`` box ``(x0, y0, x1, y1)`` in search-crop pixels.
        x_size / score_size / total_stride: search crop side, score-map side and stride (289 / 19 / 16).

    Returns:
        ``(cls (S*S, 1), ctr (S*S, 1), box (S*S, 4))`` float32.
    """
    box = torch.as_tensor(box_xyxy, dtype=torch.float32).reshape(4)
    pts = score_map_points(x_size, score_size, total_stride)
    x, y = pts[:, 0], pts[:, 1]
    l, t, r, b = x - box[0], y - box[1], box[2] - x, box[3] - y
    inside = (l > 0) & (t > 0) & (r > 0) & (b > 0)
    cls = inside.to(torch.float32).unsqueeze(1)
    ctr = torch.sqrt(torch.abs(torch.minimum(l, r) * torch.minimum(t, b)
                               / (torch.maximum(l, r) * torch.maximum(t, b) + 1e-5)))
    ctr = torch.where(inside, ctr, torch.zeros_like(ctr)).unsqueeze(1)
    box_t = torch.where(inside.unsqueeze(1), box.expand(len(pts), 4), torch.zeros(len(pts), 4))
    return cls, ctr, box_t


def relabel_negative_pair(cls: torch.Tensor) -> torch.Tensor:
    """Labels of a negative pair (official ``DenseboxTarget``): points inside the (unrelated) search box
    become 0 (background) and every other point -1 (ignored): the classifier learns that the template's
    look-alike in another object is background, and the box loss sees no positive point."""
    out = cls.clone()
    out[cls == 0] = -1
    out[cls == 1] = 0
    return out
