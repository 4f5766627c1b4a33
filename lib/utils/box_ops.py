"""Box formats and box overlaps shared by every tracker, the training losses and the analysis.

Formats used throughout the toolkit (always named):

* ``xywh``   -- top-left corner, width, height: ``(x1, y1, w, h)``
* ``xyxy``   -- corners: ``(x1, y1, x2, y2)``
* ``cxcywh`` -- centre, width, height: ``(cx, cy, w, h)``

A box is in pixels or normalised to ``[0, 1]`` of an image or crop; the functions here do not care
which, as long as both boxes use the same units. Format conversions delegate to
:func:`torchvision.ops.box_convert`. The *paired* IoU / GIoU (one box of ``boxes1`` against the box
at the same index of ``boxes2``) follow DETR's ``util/box_ops.py`` as adapted by STARK and OSTrack
(``lib/utils/box_ops.py``): no epsilon in the denominators, so degenerate boxes give the same NaN/inf
behaviour as the official losses, which catch it.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torchvision.ops import box_convert

__all__ = [
    "box_xywh_to_xyxy",
    "box_xyxy_to_xywh",
    "box_cxcywh_to_xyxy",
    "box_xyxy_to_cxcywh",
    "box_xywh_to_cxcywh",
    "box_cxcywh_to_xywh",
    "box_area",
    "paired_box_iou",
    "paired_generalized_box_iou",
    "giou_loss",
]


def box_xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` xywh -> ``(..., 4)`` xyxy (any units)."""
    return box_convert(boxes, "xywh", "xyxy")


def box_xyxy_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` xyxy -> ``(..., 4)`` xywh (any units)."""
    return box_convert(boxes, "xyxy", "xywh")


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` cxcywh -> ``(..., 4)`` xyxy (any units)."""
    return box_convert(boxes, "cxcywh", "xyxy")


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` xyxy -> ``(..., 4)`` cxcywh (any units)."""
    return box_convert(boxes, "xyxy", "cxcywh")


def box_xywh_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` xywh -> ``(..., 4)`` cxcywh (any units)."""
    return box_convert(boxes, "xywh", "cxcywh")


def box_cxcywh_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` cxcywh -> ``(..., 4)`` xywh (any units)."""
    return box_convert(boxes, "cxcywh", "xywh")


def box_area(boxes_xyxy: torch.Tensor) -> torch.Tensor:
    """Area of ``(..., 4)`` xyxy boxes, ``(...)``; negative sizes give negative areas (no clamp)."""
    return (boxes_xyxy[..., 2] - boxes_xyxy[..., 0]) * (boxes_xyxy[..., 3] - boxes_xyxy[..., 1])


def paired_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """IoU of ``boxes1[i]`` with ``boxes2[i]``.

    Args:
        boxes1, boxes2: ``(N, 4)`` xyxy boxes in the same units.

    Returns:
        ``(iou, union)``, each ``(N,)``. No epsilon: an empty union gives NaN, as in the official code.
    """
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    lt = torch.max(boxes1[:, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = area1 + area2 - inter
    return inter / union, union


def paired_generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Generalised IoU (Rezatofighi et al., CVPR 2019) of ``boxes1[i]`` with ``boxes2[i]``.

    Args:
        boxes1, boxes2: ``(N, 4)`` xyxy boxes in the same units.

    Returns:
        ``(giou, iou)``, each ``(N,)``.

    Raises:
        ValueError: if a box has ``x2 < x1`` or ``y2 < y1`` (the official code asserts the same;
            :func:`giou_loss` callers catch it and fall back to zero).
    """
    if not bool((boxes1[:, 2:] >= boxes1[:, :2]).all()) or not bool((boxes2[:, 2:] >= boxes2[:, :2]).all()):
        raise ValueError("generalized IoU needs xyxy boxes with x2 >= x1 and y2 >= y1")
    iou, union = paired_box_iou(boxes1, boxes2)
    lt = torch.min(boxes1[:, :2], boxes2[:, :2])
    rb = torch.max(boxes1[:, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[:, 0] * wh[:, 1]
    return iou - (area - union) / area, iou


def giou_loss(pred_xyxy: torch.Tensor, gt_xyxy: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean GIoU loss ``mean(1 - GIoU)`` and mean IoU over ``N`` paired xyxy boxes.

    Returns ``(loss, mean_iou)`` as 0-d tensors. Raises ValueError on degenerate boxes (see
    :func:`paired_generalized_box_iou`).
    """
    giou, iou = paired_generalized_box_iou(pred_xyxy, gt_xyxy)
    return (1 - giou).mean(), iou.mean()
