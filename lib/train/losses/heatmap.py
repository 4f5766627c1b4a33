"""Ground-truth centre heat maps of OSTrack and GRM (CenterNet style).

Source: OSTrack ``lib/utils/heapmap_utils.py`` (``generate_heatmap``, ``CenterNetHeatMap``), itself from
CenterNet / CornerNet. For each ground-truth box (xywh normalised to the search crop) a Gaussian is drawn
on the ``S // stride`` square map at the rounded box centre, with peak 1, ``sigma = (2r + 1) / 6`` and the
radius ``r`` of CornerNet's ``gaussian_radius`` (``min_overlap = 0.7``) in the form the official code uses:
the three quadratic roots ``(b + sqrt(b^2 - 4ac)) / 2`` are *not* divided by ``a`` (the known "buggy"
version), the minimum is clamped at 0 and truncated to an integer.
"""

from __future__ import annotations

from typing import List

import numpy as np
import torch

__all__ = ["gaussian_radius", "gaussian2d", "draw_gaussian", "generate_heatmap"]


def gaussian_radius(wh: torch.Tensor, min_overlap: float = 0.7) -> torch.Tensor:
    """Official (CornerNet "buggy") Gaussian radius of boxes of size ``wh`` (``(..., 2)``, feature cells).

    Returns:
        ``(...)`` float radius before clamping/truncation.
    """
    width, height = wh[..., 0], wh[..., 1]
    o = min_overlap
    b1 = height + width
    c1 = width * height * (1 - o) / (1 + o)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * 1 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - o) * width * height
    r2 = (b2 + torch.sqrt(b2 ** 2 - 4 * 4 * c2)) / 2
    a3 = 4 * o
    b3 = -2 * o * (height + width)
    c3 = (o - 1) * width * height
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.min(r1, torch.min(r2, r3))


def gaussian2d(radius: int, sigma: float) -> np.ndarray:
    """``(2r+1, 2r+1)`` float64 Gaussian ``exp(-(x^2 + y^2) / (2 sigma^2))``; values below
    ``eps * max`` are set to 0."""
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g


def draw_gaussian(fmap: torch.Tensor, center: torch.Tensor, radius: int, k: float = 1.0) -> None:
    """Draw a Gaussian of ``radius`` at integer ``center`` (x, y) into ``fmap`` ``(H, W)`` in place,
    with an element-wise maximum, clipped at the borders (official index arithmetic)."""
    diameter = 2 * radius + 1
    gaussian = torch.from_numpy(gaussian2d(radius, sigma=diameter / 6)).float()
    x, y = int(center[0]), int(center[1])
    height, width = fmap.shape[:2]
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    region = fmap[y - top:y + bottom, x - left:x + right]
    g = gaussian[radius - top:radius + bottom, radius - left:radius + right]
    if min(g.shape) > 0 and min(region.shape) > 0 and g.shape == region.shape:
        fmap[y - top:y + bottom, x - left:x + right] = torch.max(region, g * k)


def generate_heatmap(bboxes: torch.Tensor, patch_size: int = 320, stride: int = 16) -> List[torch.Tensor]:
    """Ground-truth heat maps of every search frame.

    Args:
        bboxes: ``(N_s, B, 4)`` boxes xywh normalised to [0, 1] of the search crop.
        patch_size: search crop side in pixels (``DATA.SEARCH.SIZE``).
        stride: backbone stride (``MODEL.BACKBONE.STRIDE``).

    Returns:
        ``N_s`` tensors ``(B, S // stride, S // stride)`` with values in [0, 1] (peak exactly 1), on the
        device of ``bboxes``.
    """
    maps = []
    size = patch_size // stride
    for boxes in bboxes:
        bs = boxes.shape[0]
        fmap = torch.zeros(bs, size, size)
        box = boxes.detach().float().cpu() * size
        wh = box[:, 2:]
        centers = (box[:, :2] + wh / 2).round()
        radius = torch.clamp_min(gaussian_radius(wh, 0.7), 0).to(torch.int).numpy()
        for i in range(bs):
            draw_gaussian(fmap[i], centers[i], int(radius[i]))
        maps.append(fmap.to(boxes.device))
    return maps
