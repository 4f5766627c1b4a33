"""Crops of the training processing, built on the one shared crop of the toolkit
(:func:`lib.utils.crop.sample_target`, :func:`lib.utils.crop.transform_image_to_crop`).

Source: STARK/OSTrack ``lib/train/data/processing_utils.py`` (``jittered_center_crop``).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from lib.utils.crop import sample_target, transform_image_to_crop

__all__ = ["jittered_center_crop", "crop_mask"]


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
