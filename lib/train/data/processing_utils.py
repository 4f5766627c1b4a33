"""Crops of the training processing, built on the one shared crop of the toolkit
(:func:`lib.utils.crop.sample_target`, :func:`lib.utils.crop.transform_image_to_crop`).

Source: STARK/OSTrack ``lib/train/data/processing_utils.py`` (``jittered_center_crop``); pytracking
``ltr/data/processing_utils.py`` (``iou``, ``perturb_box``: the IoU-Net proposals of ATOM, used by AiATrack).
"""

from __future__ import annotations

import random
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from lib.utils.crop import sample_target, transform_image_to_crop

__all__ = ["jittered_center_crop", "crop_mask", "iou", "perturb_box"]


def crop_mask(mask: torch.Tensor, box_extract: torch.Tensor, search_area_factor: float, output_sz: int) -> torch.Tensor:
    """Crop and resize an ``(H, W)`` float mask exactly like the image crop of the same box.

    The mask is zero-padded outside the image and resized bilinearly (the official code pads with
    ``F.pad`` and resizes with ``F.interpolate(mode='bilinear', align_corners=False)``, which gives the
    same values as OpenCV's bilinear resize used here through :func:`sample_target`).

    Returns:
        ``(output_sz, output_sz)`` float32 tensor.
    """
    m = mask.detach().cpu().numpy().astype(np.float32) if torch.is_tensor(mask) else np.asarray(mask, np.float32)
    crop, _, _ = sample_target(m[:, :, None], box_extract, search_area_factor, output_sz)
    return torch.from_numpy(np.ascontiguousarray(crop.reshape(output_sz, output_sz)))


def jittered_center_crop(frames: Sequence[np.ndarray], box_extract: Sequence[torch.Tensor],
                         box_gt: Sequence[torch.Tensor], search_area_factor: float, output_sz: int,
                         masks: Optional[Sequence[torch.Tensor]] = None
                         ) -> Tuple[List[np.ndarray], List[torch.Tensor], List[np.ndarray],
                                    Optional[List[torch.Tensor]]]:
    """Crop a square region around each (jittered) box and express the ground-truth box in the crop.

    Args:
        frames: ``(H, W, 3)`` images.
        box_extract: per frame, the xywh box (image pixels) the crop is centred on (the jittered box);
            the crop side is ``ceil(sqrt(w*h) * search_area_factor)``.
        box_gt: per frame, the ground-truth xywh box (image pixels).
        search_area_factor: crop side relative to the box size.
        output_sz: side of the resized crop in pixels.
        masks: optional per-frame ``(H, W)`` masks cropped the same way.

    Returns:
        ``(crops, boxes, att_masks, mask_crops)``: ``(S, S, 3)`` crops, ground-truth boxes xywh
        normalised to [0, 1] of the crop (crop centre at ``(S - 1) / 2``), ``(S, S)`` bool attention
        masks (True on padding) and the cropped masks (None without ``masks``).

    Raises:
        ValueError: a box too small to crop (see :func:`sample_target`).
    """
    crops, factors, att = [], [], []
    for f, a in zip(frames, box_extract):
        crop, rf, mask = sample_target(f, a, search_area_factor, output_sz)
        crops.append(crop)
        factors.append(rf)
        att.append(mask)
    mask_crops = None
    if masks is not None:
        mask_crops = [crop_mask(m, a, search_area_factor, output_sz) for m, a in zip(masks, box_extract)]
    crop_sz = torch.tensor([output_sz, output_sz], dtype=torch.float32)
    boxes = [transform_image_to_crop(g, e, rf, crop_sz) / output_sz for g, e, rf in zip(box_gt, box_extract, factors)]
    return crops, boxes, att, mask_crops


def iou(reference: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
    """IoU of one xywh box with several xywh boxes (any common unit).

    Args:
        reference: ``(1, 4)`` box xywh.
        proposals: ``(N, 4)`` boxes xywh.

    Returns:
        ``(N,)`` IoU (no epsilon; boxes with a negative size are used as given, as in pytracking).
    """
    tl = torch.max(reference[:, :2], proposals[:, :2])
    br = torch.min(reference[:, :2] + reference[:, 2:], proposals[:, :2] + proposals[:, 2:])
    intersection = (br - tl).clamp(0).prod(dim=1)
    union = reference[:, 2:].prod(dim=1) + proposals[:, 2:].prod(dim=1) - intersection
    return intersection / union


def perturb_box(box: torch.Tensor, min_iou: float = 0.5,
                sigma_factor: Union[float, Sequence[float], torch.Tensor] = 0.1) -> Tuple[torch.Tensor, torch.Tensor]:
    """A randomly perturbed copy of ``box`` (the IoU-Net proposal generator of ATOM/AiATrack).

    One ``sigma_factor`` is drawn uniformly from the list (python ``random``); the centre and the size
    are moved by Gaussian noise (python ``random.gauss``) of standard deviation
    ``sigma_factor * sqrt(w * h)`` per coordinate. Up to 10 tries: the first box with IoU above
    ``min_iou`` is returned; after each failure the deviation shrinks by 0.9; after 10 failures the last
    draw is returned whatever its IoU.

    Args:
        box: ``(4,)`` box xywh (any unit, e.g. normalised to the search crop).
        min_iou: IoU the perturbed box should exceed.
        sigma_factor: a float, a list of floats (one drawn per call) or a ``(4,)`` tensor per coordinate.

    Returns:
        ``(box_per (4,) xywh, box_iou (1,))``: the IoU of the perturbed box with ``box`` (in ``[0, 1]``
        unless a drawn size is negative, which the official code leaves as is).
    """
    factor = random.choice(sigma_factor) if isinstance(sigma_factor, (list, tuple)) else sigma_factor
    if not isinstance(factor, torch.Tensor):
        factor = factor * torch.ones(4)
    perturb_factor = torch.sqrt(box[2] * box[3]) * factor
    box_per, box_iou = box, torch.ones(1)
    for _ in range(10):
        c_x = box[0] + 0.5 * box[2]
        c_y = box[1] + 0.5 * box[3]
        c_x_per = random.gauss(float(c_x), float(perturb_factor[0]))
        c_y_per = random.gauss(float(c_y), float(perturb_factor[1]))
        w_per = random.gauss(float(box[2]), float(perturb_factor[2]))
        h_per = random.gauss(float(box[3]), float(perturb_factor[3]))
        box_per = torch.tensor([c_x_per - 0.5 * w_per, c_y_per - 0.5 * h_per, w_per, h_per], dtype=torch.float32)
        box_iou = iou(box.view(1, 4).float(), box_per.view(1, 4))
        if box_iou > min_iou:
            return box_per, box_iou
        perturb_factor = perturb_factor * 0.9
    return box_per, box_iou
