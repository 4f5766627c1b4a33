"""Search-region and template crops, and the box transforms between image and crop coordinates.

One crop function serves every pytracking-style tracker (OSTrack, GRM, STARK, AiATrack) at test time
and the training processing; SparseTT's SiamFC-style crop lives here too.

Sources: OSTrack/STARK ``lib/train/data/processing_utils.py`` (``sample_target``,
``transform_image_to_crop``) and ``lib/test/utils/hann.py``; OSTrack ``lib/utils/box_ops.py``
(``clip_box``) and the trackers' ``map_box_back``; video_analyst ``videoanalyst/pipeline/utils/crop.py``
(``get_crop``, ``get_subwindow_tracking``) for the SiamFC-style crop of SparseTT (:func:`siamfc_crop`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

__all__ = [
    "sample_target",
    "transform_image_to_crop",
    "map_box_back",
    "clip_box",
    "hann1d",
    "hann2d",
    "siamfc_crop",
    "warp_subwindow",
]

BoxLike = Union[Sequence[float], np.ndarray, torch.Tensor]


def _as_list(box: BoxLike) -> list:
    if isinstance(box, torch.Tensor):
        return [float(v) for v in box.tolist()]
    if isinstance(box, np.ndarray):
        return [float(v) for v in box.tolist()]
    return [float(v) for v in box]


def sample_target(
    im: np.ndarray,
    target_bb: BoxLike,
    search_area_factor: float,
    output_sz: Optional[int] = None,
) -> Tuple[np.ndarray, float, np.ndarray]:
    """Crop a square region of side ``ceil(sqrt(w*h) * search_area_factor)`` centred on the box.

    The part outside the image is zero-padded and the crop is resized to ``output_sz`` with
    ``cv2.resize`` (bilinear). As in the official code the right/bottom padding is one pixel larger
    than needed (``max(x2 - W + 1, 0)``), so the image's last column/row is replaced by padding when
    the crop reaches past it, and the crop origin uses Python's ``round`` (half to even).

    Args:
        im: ``(H, W, 3)`` image (any dtype; RGB uint8 in the trackers).
        target_bb: box xywh in image pixels.
        search_area_factor: crop side relative to ``sqrt(w*h)`` (search factor / template factor).
        output_sz: output side in pixels; ``None`` keeps the crop's own size.

    Returns:
        ``(crop, resize_factor, att_mask)``: the ``(S, S, 3)`` crop, ``S / crop_side`` (1.0 when
        ``output_sz`` is None) and a bool ``(S, S)`` mask, True on padded pixels.

    Raises:
        ValueError: if the box is so small that the crop side is below one pixel, or not finite.
    """
    x, y, w, h = _as_list(target_bb)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"sample_target: box {target_bb} (xywh) is not finite")
    crop_sz = math.ceil(math.sqrt(max(w * h, 0.0)) * search_area_factor)
    if crop_sz < 1:
        raise ValueError(f"sample_target: box {target_bb} (xywh) is too small to crop (side {crop_sz} px)")

    x1 = round(x + 0.5 * w - crop_sz * 0.5)
    x2 = x1 + crop_sz
    y1 = round(y + 0.5 * h - crop_sz * 0.5)
    y2 = y1 + crop_sz

    x1_pad = max(0, -x1)
    x2_pad = max(x2 - im.shape[1] + 1, 0)
    y1_pad = max(0, -y1)
    y2_pad = max(y2 - im.shape[0] + 1, 0)

    im_crop = im[y1 + y1_pad:y2 - y2_pad, x1 + x1_pad:x2 - x2_pad, :]
    if im_crop.size == 0:
        # The box lies wholly outside the image: the crop is all padding.
        im_crop_padded = np.zeros((crop_sz, crop_sz, im.shape[2]), dtype=im.dtype)
        att_mask = np.ones((crop_sz, crop_sz), dtype=np.float64)
    else:
        im_crop_padded = cv2.copyMakeBorder(im_crop, y1_pad, y2_pad, x1_pad, x2_pad, cv2.BORDER_CONSTANT)
        hp, wp = im_crop_padded.shape[:2]
        att_mask = np.ones((hp, wp), dtype=np.float64)
        att_mask[y1_pad:hp - y2_pad, x1_pad:wp - x2_pad] = 0

    if output_sz is None:
        return im_crop_padded, 1.0, att_mask.astype(np.bool_)
    resize_factor = output_sz / crop_sz
    im_crop_padded = cv2.resize(im_crop_padded, (output_sz, output_sz))
    att_mask = cv2.resize(att_mask, (output_sz, output_sz)).astype(np.bool_)
    return im_crop_padded, resize_factor, att_mask


def transform_image_to_crop(
    box_in: torch.Tensor,
    box_extract: torch.Tensor,
    resize_factor: float,
    crop_sz: torch.Tensor,
    normalize: bool = False,
) -> torch.Tensor:
    """Map a box from image coordinates into a crop made by :func:`sample_target`.

    Args:
        box_in: ``(4,)`` xywh box in image pixels to transform.
        box_extract: ``(4,)`` xywh box (image pixels) the crop was centred on.
        resize_factor: the factor returned by :func:`sample_target`.
        crop_sz: ``(2,)`` crop size in pixels (``[S, S]``).
        normalize: divide the result by the crop side ``crop_sz[0]`` (as the official code does; a
            ``(4,)`` box cannot be divided by the ``(2,)`` size).

    Returns:
        ``(4,)`` xywh box in crop pixels, or normalised to ``[0, 1]`` of the crop. The crop centre is
        ``(crop_sz - 1) / 2``, as in the official processing.
    """
    box_extract_center = box_extract[0:2] + 0.5 * box_extract[2:4]
    box_in_center = box_in[0:2] + 0.5 * box_in[2:4]
    box_out_center = (crop_sz - 1) / 2 + (box_in_center - box_extract_center) * resize_factor
    box_out_wh = box_in[2:4] * resize_factor
    box_out = torch.cat((box_out_center - 0.5 * box_out_wh, box_out_wh))
    return box_out / crop_sz[0] if normalize else box_out


def map_box_back(pred_box_cxcywh: Sequence[float], prev_state_xywh: Sequence[float], search_size: int,
                 resize_factor: float) -> list:
    """Map a predicted box from the search crop back to image pixels.

    Args:
        pred_box_cxcywh: box cxcywh in *image-scale* pixels relative to the crop's top-left corner
            (the normalised prediction times ``search_size / resize_factor``).
        prev_state_xywh: the previous target box (xywh, image pixels) the crop was centred on.
        search_size: search-region side in crop pixels.
        resize_factor: the factor returned by :func:`sample_target` for that crop.

    Returns:
        ``[x, y, w, h]`` in image pixels (not clipped).
    """
    cx_prev = prev_state_xywh[0] + 0.5 * prev_state_xywh[2]
    cy_prev = prev_state_xywh[1] + 0.5 * prev_state_xywh[3]
    cx, cy, w, h = [float(v) for v in pred_box_cxcywh]
    half_side = 0.5 * search_size / resize_factor
    cx_real = cx + (cx_prev - half_side)
    cy_real = cy + (cy_prev - half_side)
    return [cx_real - 0.5 * w, cy_real - 0.5 * h, w, h]


def clip_box(box_xywh: Sequence[float], H: int, W: int, margin: int = 0) -> list:
    """Clip an xywh box (pixels) to an ``H x W`` image, keeping at least ``margin`` pixels inside.

    ``x1`` is clipped to ``[0, W - margin]`` and ``x2`` (from the unclipped ``x1``) to
    ``[margin, W]``; width and height are at least ``margin``. Likewise for y. Official
    ``clip_box`` of OSTrack/STARK (``margin=10`` in the trackers).
    """
    x1, y1, w, h = [float(v) for v in box_xywh]
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0, x1), W - margin)
    x2 = min(max(margin, x2), W)
    y1 = min(max(0, y1), H - margin)
    y2 = min(max(margin, y2), H)
    w = max(margin, x2 - x1)
    h = max(margin, y2 - y1)
    return [x1, y1, w, h]


def hann1d(sz: int, centered: bool = True) -> torch.Tensor:
    """1-D cosine (Hann) window of ``sz`` samples, all positive when ``centered``.

    ``w[k] = 0.5 * (1 - cos(2 pi k / (sz + 1)))`` for ``k = 1..sz`` (pytracking ``hann1d``).
    """
    if centered:
        return 0.5 * (1 - torch.cos((2 * math.pi / (sz + 1)) * torch.arange(1, sz + 1).float()))
    w = 0.5 * (1 + torch.cos((2 * math.pi / (sz + 2)) * torch.arange(0, sz // 2 + 1).float()))
    return torch.cat([w, w[1:sz - sz // 2].flip((0,))])


def hann2d(sz: Sequence[int], centered: bool = True) -> torch.Tensor:
    """2-D Hann window ``(1, 1, sz[0], sz[1])``, the outer product of two :func:`hann1d` windows."""
    return hann1d(int(sz[0]), centered).reshape(1, 1, -1, 1) * hann1d(int(sz[1]), centered).reshape(1, 1, 1, -1)


def warp_subwindow(im: np.ndarray, center_xy: Sequence[float], out_size: int, crop_side: int,
                   pad_value: Sequence[float] = (0, 0, 0)) -> np.ndarray:
    """Square window of ``crop_side`` image pixels centred on ``center_xy``, resampled to ``out_size``.

    video_analyst's ``get_subwindow_tracking``: the window's corners are ``cx -/+ (crop_side - 1) / 2``
    (the "+1" pixel convention, computed in float32 as the official ``cxywh2xyxy``); one
    ``cv2.warpAffine`` (bilinear, inverse map) maps output pixel ``(u, v)`` to image point
    ``(x1 + u * (x2 - x1) / (out_size - 1), y1 + ...)``; pixels outside the image take ``pad_value``
    truncated to int (the per-channel frame mean in the trackers).

    Args:
        im: ``(H, W, C)`` image (uint8 in the trackers; channel order is kept).
        center_xy: window centre ``(cx, cy)`` in image pixels.
        out_size: output side in pixels (> 1).
        crop_side: window side in image pixels.
        pad_value: per-channel border value.

    Returns:
        ``(out_size, out_size, C)`` array of ``im``'s dtype.

    Raises:
        ValueError: ``out_size < 2`` or a non-finite centre.
    """
    if out_size < 2:
        raise ValueError(f"warp_subwindow: out_size must be at least 2, got {out_size}")
    cx, cy = (float(v) for v in center_xy)
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise ValueError(f"warp_subwindow: centre {center_xy} is not finite")
    box = np.array([cx, cy, crop_side, crop_side], dtype=np.float32)
    half = (box[2:] - 1) / 2
    x1, y1 = box[:2] - half
    x2, y2 = box[:2] + half
    mat = np.array([[(x2 - x1) / (out_size - 1), 0, x1], [0, (y2 - y1) / (out_size - 1), y1]], dtype=np.float64)
    border = tuple(int(v) for v in pad_value)
    return cv2.warpAffine(im, mat, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def siamfc_crop(im: np.ndarray, center_xy: Sequence[float], size_wh: Sequence[float], z_size: int,
                x_size: Optional[int] = None, pad_value: Optional[Sequence[float]] = None,
                context_amount: float = 0.5) -> Tuple[np.ndarray, float]:
    """SiamFC-style template or search crop (video_analyst ``get_crop``, used by SparseTT).

    The template window side is ``s_z = sqrt((w + a(w+h)) * (h + a(w+h)))`` with context amount ``a``; the
    crop scale is ``scale = z_size / s_z``. A template crop (``x_size`` None) shows ``s_z`` image pixels in
    ``z_size`` crop pixels; a search crop shows ``round(x_size / scale)`` image pixels (Python rounding,
    half to even) in ``x_size`` crop pixels, at the same scale. The arithmetic follows the official float32
    steps (box arrays are float32 there).

    Args:
        im: ``(H, W, C)`` frame.
        center_xy: target centre ``(cx, cy)`` in pixels.
        size_wh: target size ``(w, h)`` in pixels.
        z_size: template crop side (127).
        x_size: search crop side (289), or None for the template crop.
        pad_value: border value per channel; default the frame's per-channel mean.
        context_amount: ``a`` (0.5).

    Returns:
        ``(crop, scale)``: the ``(S, S, C)`` crop (``S = x_size or z_size``) and the crop pixels per image
        pixel.

    Raises:
        ValueError: a target size whose window side is not positive and finite.
    """
    sz = np.asarray(size_wh, dtype=np.float32).reshape(-1)[:2]
    wc = sz[0] + context_amount * np.sum(sz)
    hc = sz[1] + context_amount * np.sum(sz)
    s_z = np.sqrt(wc * hc)
    if not (np.isfinite(s_z) and s_z > 0):
        raise ValueError(f"siamfc_crop: target size {list(size_wh)} (w, h) gives window side {s_z}")
    scale = z_size / s_z
    out_size = z_size if x_size is None else x_size
    crop_side = round(out_size / scale)
    if pad_value is None:
        pad_value = np.mean(im, axis=(0, 1))
    return warp_subwindow(im, center_xy, out_size, crop_side, pad_value), scale
