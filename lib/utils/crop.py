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
    "scale_crop_boxes",
    "clip_box",
    "hann1d",
    "hann2d",
    "siamfc_crop",
    "siamfc_geometry",
    "warp_subwindow",
    "crop_square",
    "sample_target_tensor",
    "warp_subwindow_tensor",
    "frame_to_tensor",
    "crop_square_tensor",
    "sample_target_batch",
    "map_box_back_batch",
    "clip_box_batch",
    "scale_crop_boxes_tensor",
    "sqrt_float32",
    "siamfc_geometry_tensor",
    "warp_subwindow_batch",
    "divide_as_by_number",
]

BoxLike = Union[Sequence[float], np.ndarray, torch.Tensor]


def _as_list(box: BoxLike) -> list:
    if isinstance(box, torch.Tensor):
        return [float(v) for v in box.tolist()]
    if isinstance(box, np.ndarray):
        return [float(v) for v in box.tolist()]
    return [float(v) for v in box]


def crop_square(target_bb: BoxLike, search_area_factor: float) -> Tuple[int, int, int]:
    """The crop square of :func:`sample_target`: ``(x1, y1, side)`` in image pixels (ints).

    ``side = ceil(sqrt(w*h) * search_area_factor)``; the top-left corner is the box centre minus half the
    side, rounded with Python's ``round`` (half to even), as in the official ``sample_target``.

    Raises:
        ValueError: a box that is not finite, or so small that the side is below one pixel.
    """
    x, y, w, h = _as_list(target_bb)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"sample_target: box {target_bb} (xywh) is not finite")
    crop_sz = math.ceil(math.sqrt(max(w * h, 0.0)) * search_area_factor)
    if crop_sz < 1:
        raise ValueError(f"sample_target: box {target_bb} (xywh) is too small to crop (side {crop_sz} px)")
    return round(x + 0.5 * w - crop_sz * 0.5), round(y + 0.5 * h - crop_sz * 0.5), crop_sz


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
    x1, y1, crop_sz = crop_square(target_bb, search_area_factor)
    x2 = x1 + crop_sz
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


def scale_crop_boxes(boxes_norm: np.ndarray, search_size: int, resize_factor: float,
                     device_type: str = "cpu") -> np.ndarray:
    """``boxes_norm * search_size / resize_factor`` in float32, rounded as torch rounds it on ``device_type``.

    The official trackers compute this on the network's device (``pred_boxes * search_size / resize_factor``
    on a float32 tensor with Python-number operands). torch's CPU kernel divides; its CUDA kernel multiplies
    by the float32 reciprocal of the divisor (``div_true_kernel_cuda``: a CPU-scalar divisor becomes
    ``a * (1 / b)``), which differs from the quotient by one unit in the last place for some values. One ulp
    of a box moves a crop edge across a rounding boundary now and then, and the trajectories part; so the
    host arithmetic follows the device the network runs on, bit for bit.

    Args:
        boxes_norm: ``(..., 4)`` boxes normalised to the search crop (any format), float32.
        search_size: search-region side in crop pixels.
        resize_factor: crop pixels per image pixel (:func:`sample_target`).
        device_type: ``'cpu'``, ``'cuda'``, ... (``torch.device(dev).type``).
    Returns:
        float32 array of ``boxes_norm``'s shape, in image-scale pixels.
    """
    scaled = np.asarray(boxes_norm, dtype=np.float32) * np.float32(search_size)
    factor = np.float32(resize_factor)
    if device_type == "cuda":
        return scaled * (np.float32(1.0) / factor)
    return scaled / factor


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


def _subwindow_corners(center_xy: Sequence[float], crop_side: float, out_size: int):
    """The SiamFC window's corner pixel centres ``(x1, y1, x2, y2)`` (float32, as the official ``cxywh2xyxy`` of
    a float32 box) for a square of side ``crop_side`` centred on ``center_xy``.

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
    return x1, y1, x2, y2


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
    x1, y1, x2, y2 = _subwindow_corners(center_xy, crop_side, out_size)
    mat = np.array([[(x2 - x1) / (out_size - 1), 0, x1], [0, (y2 - y1) / (out_size - 1), y1]], dtype=np.float64)
    border = tuple(int(v) for v in pad_value)
    return cv2.warpAffine(im, mat, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def siamfc_geometry(size_wh: Sequence[float], z_size: int, x_size: Optional[int] = None,
                    context_amount: float = 0.5) -> Tuple[int, float]:
    """Window side (image pixels) and scale (crop pixels per image pixel) of :func:`siamfc_crop`, in the
    official float32 steps: ``s_z = sqrt((w + a(w+h)) * (h + a(w+h)))``, ``scale = z_size / s_z``, side
    ``round(out_size / scale)`` with ``out_size = x_size or z_size``.

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
    return round(out_size / scale), scale


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
    out_size = z_size if x_size is None else x_size
    crop_side, scale = siamfc_geometry(size_wh, z_size, x_size, context_amount)
    if pad_value is None:
        pad_value = np.mean(im, axis=(0, 1))
    return warp_subwindow(im, center_xy, out_size, crop_side, pad_value), scale


# -- device-side crops (the trackers' per-frame path) -------------------------------------------------------
def frame_to_tensor(image: np.ndarray, device: Union[str, torch.device]) -> torch.Tensor:
    """``(H, W, 3)`` uint8 frame -> the same ``(H, W, 3)`` uint8 tensor on ``device``: the one host-to-device
    copy of a frame (no copy on the CPU; pinned and non-blocking on CUDA).

    Raises:
        ValueError: not an ``(H, W, C)`` uint8 array.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame must be an (H, W, 3) uint8 array, got "
                         f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}")
    frame = torch.from_numpy(np.ascontiguousarray(image))
    device = torch.device(device)
    if device.type == "cuda":
        return frame.pin_memory().to(device, non_blocking=True)
    return frame.to(device)


def _linear_taps(out_size: int, in_size: int):
    """Source positions and weights of OpenCV's ``INTER_LINEAR`` resize along one axis (``resize.cpp``), on the host.

    ``f = float32((u + 0.5) * in / out - 0.5)``, ``s = floor(f)``, ``fx = f - s``; ``s < 0`` gives ``(0, 0)``,
    ``s >= in - 1`` gives ``(in - 1, 0)``; the uint8 path uses the weights ``round((1 - fx) * 2048)`` and
    ``round(fx * 2048)`` (``INTER_RESIZE_COEF_SCALE``). Returns ``(s0, s1, a0, a1, fx)`` ``(out,)`` numpy arrays:
    int64 taps and fixed-point weights, float32 ``fx`` (the float path's weight of ``s1``). The same float
    operations as :func:`_linear_taps_tensor` on the device.
    """
    scale = 1.0 / (out_size / in_size)  # OpenCV: scale_x = 1. / inv_scale_x
    u = np.arange(out_size, dtype=np.float64)
    f = ((u + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f)
    fx = (f - s).astype(np.float32)
    s = s.astype(np.int64)
    low = s < 0
    high = s >= in_size - 1
    fx = np.where(low | high, np.float32(0), fx)
    s = np.where(low, 0, np.where(high, in_size - 1, s))
    a0 = np.round((np.float32(1) - fx) * np.float32(2048)).astype(np.int64)
    a1 = np.round(fx * np.float32(2048)).astype(np.int64)
    return s, np.minimum(s + 1, in_size - 1), a0, a1, fx


def _axis_window(a1: int, crop_sz: int, n: int) -> Optional[Tuple[int, int, int]]:
    """One axis of :func:`sample_target`'s padded crop, from its slice ``im[a1 + pad1 : a2 - pad2]`` with
    Python's slice semantics (a negative stop wraps around: a crop wholly above/left of the image takes the
    official code's odd slice) and ``copyMakeBorder``: ``(first image pixel of the padded crop, its valid
    part [lo, hi) in crop pixels, padded size)``, or None when the slice is empty."""
    pad1, pad2 = max(0, -a1), max(a1 + crop_sz - n + 1, 0)
    start, stop, _ = slice(a1 + pad1, a1 + crop_sz - pad2).indices(n)
    length = stop - start
    if length <= 0:
        return None
    return start - pad1, pad1, pad1 + length, pad1 + length + pad2


def _axis_gather(taps, window: Tuple[int, int, int, int], n: int):
    """Image indices (clamped to ``[0, n)``) and validity of the two taps of one axis (numpy)."""
    origin, lo, hi, _ = window
    s0, s1 = taps[0], taps[1]
    v0, v1 = (s0 >= lo) & (s0 < hi), (s1 >= lo) & (s1 < hi)
    return np.clip(s0 + origin, 0, n - 1), np.clip(s1 + origin, 0, n - 1), v0, v1


def sample_target_tensor(frame: torch.Tensor, target_bb: BoxLike, search_area_factor: float,
                         output_sz: int) -> Tuple[torch.Tensor, float, torch.Tensor]:
    """:func:`sample_target` on the device: the same crop square, zero padding (with the official extra
    padded last row/column), ``cv2.resize`` bilinear and attention mask, without building the padded crop.

    Every output pixel reads its (up to) four source pixels straight from the frame (pixels outside the
    valid image part read 0) and mixes them with OpenCV's fixed-point arithmetic for uint8 ``INTER_LINEAR``
    (11-bit weights, the SIMD path's rounding ``(((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2``),
    which is ``F.interpolate(mode='bilinear', align_corners=False, antialias=False)`` up to that rounding.

    Measured against :func:`sample_target` (OpenCV 5.0 with IPP, x86, 1 thread) on 12 frames of the 4 shared
    OTB sequences x 16 boxes (inside, straddling every border, corners, tiny, huge, wholly outside) x output
    sizes 128..384 (200 M pixel values, ``/tmp`` script of the issue-10 report, reproduced in reduced form by
    ``tests/test_device_crop.py``): max difference 1 grey level, on 0.08 % of the values (only when
    up-sampling: OpenCV's scalar tail rounds differently), and identical attention masks. The float path
    (interpolate, then round) differs by 1 on about 12 % of the values. After normalisation one grey level
    is at most ``1 / 255 / 0.224 = 0.0175``. Box difference it causes (``tracking/compare_precision.py --crop
    --frames 4``, full networks with seed-0 random weights, 12 tracked frames of the 4 shared OTB sequences,
    fp32, CPU): mean / min IoU with the cv2-crop boxes 0.99992 / 0.99989 (STARK-S), 0.99997 / 0.99995
    (STARK-ST), 0.99999 / 0.99999 (AiATrack), largest centre offset below 0.001 px; SparseTT's
    :func:`warp_subwindow_tensor` 0.99947 / 0.99834, 0.013 px.

    The crop geometry, taps, validity-folded weights and mask rows/columns are computed on the host (numpy, the
    same float operations) and uploaded as one small int64 table (pinned, asynchronous on CUDA); the device only
    gathers and mixes: 53 aten operations per crop (153 when the taps were computed on the device), which at
    batch 1 on a GPU is about one kernel launch each. On the CPU this is still slower than cv2 (2.8 ms against
    0.3 ms for a 256 crop of a 640x480 frame, 1 thread): the trackers use it on CUDA devices only
    (``BaseTracker.use_device_crop``).

    The padded crop's geometry follows the official slices exactly, including their wrap-around for a crop
    wholly above or left of the image (:func:`_axis_window`).

    Args:
        frame: ``(H, W, C)`` uint8 tensor on the tracker's device (:func:`frame_to_tensor`).
        target_bb: box xywh in image pixels (host numbers).
        search_area_factor: crop side relative to ``sqrt(w*h)``.
        output_sz: output side S in pixels.

    Returns:
        ``(crop, resize_factor, att_mask)``: ``(1, C, S, S)`` float32 crop holding integer grey levels
        0..255 (not normalised; see :meth:`lib.test.tracker.base.Preprocessor.normalize`), ``S / side``, and
        the ``(1, S, S)`` bool mask (True where padding contributes), all on ``frame``'s device.

    Raises:
        ValueError: a frame that is not ``(H, W, C)`` uint8, or a box :func:`crop_square` rejects.
    """
    if frame.dim() != 3 or frame.dtype != torch.uint8:
        raise ValueError(f"sample_target_tensor: frame must be an (H, W, C) uint8 tensor, got "
                         f"{tuple(frame.shape)} {frame.dtype}")
    H, W = int(frame.shape[0]), int(frame.shape[1])
    x1, y1, crop_sz = crop_square(target_bb, search_area_factor)
    device = frame.device
    wx, wy = _axis_window(x1, crop_sz, W), _axis_window(y1, crop_sz, H)
    if wx is None or wy is None:  # the crop holds no image pixel: all padding
        return (torch.zeros(1, int(frame.shape[2]), output_sz, output_sz, device=device), output_sz / crop_sz,
                torch.ones(1, output_sz, output_sz, dtype=torch.bool, device=device))
    # The geometry is known on the host: taps, validity-folded fixed-point weights and the padding rows/columns go
    # to the device as ONE small int64 upload; the device then only gathers and mixes (about 30 kernels).
    tx, ty = _linear_taps(output_sz, wx[3]), _linear_taps(output_sz, wy[3])
    xs0, xs1, xv0, xv1 = _axis_gather(tx, wx, W)
    ys0, ys1, yv0, yv1 = _axis_gather(ty, wy, H)
    # a tap outside the valid image part reads 0: its weight is 0 (a row's validity is folded into its vertical
    # weight, which multiplies the whole mixed row, so the result is the per-pixel form's bit for bit)
    pad_y = ~yv0 | (~yv1 & (ty[4] > 0))  # the mask: a tap of positive float weight in the padding
    pad_x = ~xv0 | (~xv1 & (tx[4] > 0))
    packed = np.stack([ys0, ys1, xs0, xs1, tx[2] * xv0, tx[3] * xv1, ty[2] * yv0, ty[3] * yv1, pad_y, pad_x])
    table = torch.from_numpy(packed.astype(np.int64))
    if device.type == "cuda":
        table = table.pin_memory()
    table = table.to(device, non_blocking=True)
    weights = table[4:8].to(torch.int32)
    rows0, rows1 = frame.index_select(0, table[0]), frame.index_select(0, table[1])
    a0, a1 = weights[0].view(1, -1, 1), weights[1].view(1, -1, 1)

    def mix(rows):  # OpenCV HResizeLinear (fixed point) of one source row per output row: S[s0] * a0 + S[s1] * a1
        return (rows.index_select(1, table[2]).to(torch.int32) * a0
                + rows.index_select(1, table[3]).to(torch.int32) * a1)

    h0, h1 = mix(rows0), mix(rows1)
    b0, b1 = weights[2].view(-1, 1, 1), weights[3].view(-1, 1, 1)
    out = ((((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2)  # VResizeLinear, SIMD rounding
    crop = out.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    pads = table[8:10].to(torch.bool)
    mask = (pads[0].view(-1, 1) | pads[1].view(1, -1)).unsqueeze(0)
    return crop, output_sz / crop_sz, mask


def warp_subwindow_tensor(frame: torch.Tensor, center_xy: Sequence[float], out_size: int, crop_side: int,
                          pad_value: Sequence[float] = (0, 0, 0)) -> torch.Tensor:
    """:func:`warp_subwindow` on the device (SparseTT's SiamFC crop): the same window corners (float32 as
    the official ``cxywh2xyxy``), bilinear sampling of the frame at ``x1 + u * (x2 - x1) / (out_size - 1)``,
    neighbours outside the frame reading ``int(pad_value)``, rounded to grey levels.

    Measured against ``cv2.warpAffine`` (OpenCV 5.0 with IPP, which samples in floating point here) on
    12 frames of the shared OTB sequences, 72 windows inside/across the borders, sides 20..700, outputs 127
    and 289 (10.8 M values): max difference 1 grey level on 0.002 % of the values
    (``tests/test_device_crop.py``). OpenCV without IPP uses 1/32-pixel fixed-point coordinates instead
    and differs by up to 2 there. The sample positions and weights are computed on the host and uploaded as one
    table; taps outside the frame read an appended border row/column instead of a per-pixel select (the same
    values, summed in the same order).

    Args:
        frame: ``(H, W, C)`` uint8 tensor on the tracker's device.
        center_xy: window centre ``(cx, cy)`` in image pixels.
        out_size: output side (> 1).
        crop_side: window side in image pixels.
        pad_value: per-channel border value (truncated to int as cv2's ``borderValue``).

    Returns:
        ``(1, C, out_size, out_size)`` float32 crop of integer grey levels (channel order kept).

    Raises:
        ValueError: ``out_size < 2``, a non-finite centre, or a frame that is not ``(H, W, C)`` uint8.
    """
    if frame.dim() != 3 or frame.dtype != torch.uint8:
        raise ValueError(f"warp_subwindow_tensor: frame must be an (H, W, C) uint8 tensor, got "
                         f"{tuple(frame.shape)} {frame.dtype}")
    x1, y1, x2, y2 = _subwindow_corners(center_xy, crop_side, out_size)
    H, W, C = (int(v) for v in frame.shape)
    device = frame.device
    u = np.arange(out_size, dtype=np.float64)

    def axis(start, step, n):  # the two taps of each output pixel: index (n = the padding row/column), weight
        pos = float(start) + u * float(step)
        s = np.floor(pos)
        f = (pos - s).astype(np.float32)
        s = s.astype(np.int64)
        taps = []
        for d, w in ((0, np.float32(1) - f), (1, f)):
            idx = s + d
            taps.append((np.where((idx >= 0) & (idx < n), idx, n), w))
        return taps

    yt = axis(y1, (y2 - y1) / (out_size - 1), H)
    xt = axis(x1, (x2 - x1) / (out_size - 1), W)
    # ONE upload: tap indices, then the float32 weights and border values as their bit patterns
    floats = np.concatenate([yt[0][1], yt[1][1], xt[0][1], xt[1][1],
                             np.array([float(int(v)) for v in pad_value], dtype=np.float32)])
    packed = np.concatenate([np.stack([yt[0][0], yt[1][0], xt[0][0], xt[1][0]]).reshape(-1),
                             floats.view(np.int32).astype(np.int64)])
    table = torch.from_numpy(packed)
    if device.type == "cuda":
        table = table.pin_memory()
    table = table.to(device, non_blocking=True)
    index = table[:4 * out_size].view(4, out_size)
    weights = table[4 * out_size:].to(torch.int32).view(torch.float32)
    wy, wx, cval = weights[:2 * out_size].view(2, -1), weights[2 * out_size:4 * out_size].view(2, -1), weights[-C:]
    # the frame (float32) with one more row of border values, each gathered row set with one more column: a tap
    # outside the frame reads index H (or W), i.e. the border value, with no per-pixel select
    img = torch.cat([frame.to(torch.float32), cval.view(1, 1, C).expand(1, W, C)], dim=0)
    acc = torch.zeros(out_size, out_size, C, dtype=torch.float32, device=device)
    for i in range(2):
        rows = img.index_select(0, index[i])
        rows = torch.cat([rows, cval.view(1, 1, C).expand(out_size, 1, C)], dim=1)
        for j in range(2):
            p = rows.index_select(1, index[2 + j])
            acc = acc + p * (wy[i].view(-1, 1) * wx[j].view(1, -1)).unsqueeze(-1)
    return acc.round_().clamp_(0, 255).permute(2, 0, 1).unsqueeze(0)


# -- crops with device-side geometry (the whole-frame CUDA graph; issue 15) ---------------------------------
def crop_square_tensor(boxes: torch.Tensor, search_area_factor: float) -> Tuple[torch.Tensor, torch.Tensor,
                                                                                 torch.Tensor]:
    """:func:`crop_square` for a batch of boxes held on the device, without a host read.

    The arithmetic is the host function's, in float64 (Python floats are IEEE doubles; ``ceil`` and ``round``, half
    to even, are exact the same way on every device), so the corners and sides are the same numbers. ``sqrt`` is
    correctly rounded on CUDA, as in Python; torch's float64 ``sqrt`` on the CPU is 1 ulp off for about 1.4 % of
    random inputs (exact for perfect squares), which changes the side only where ``sqrt(w*h) * factor`` lies within
    that ulp of an integer without being one. A side below one pixel (the host function raises) is raised to 1.

    Args:
        boxes: ``(B, 4)`` xywh boxes in image pixels (converted to float64).
        search_area_factor: crop side relative to ``sqrt(w*h)``.

    Returns:
        ``(x1, y1, side)``: three ``(B,)`` float64 tensors of integer values (image pixels).
    """
    boxes = boxes.to(torch.float64)
    x, y, w, h = boxes.unbind(-1)
    side = torch.ceil(torch.sqrt(torch.clamp(w * h, min=0.0)) * search_area_factor).clamp(min=1.0)
    x1 = torch.round(x + 0.5 * w - side * 0.5)
    y1 = torch.round(y + 0.5 * h - side * 0.5)
    return x1, y1, side


def _linear_taps_tensor(out_size: int, side: torch.Tensor):
    """:func:`_linear_taps` for ``(B,)`` float64 input sizes ``side`` (integer values): ``(s0, s1, a0, a1, fx)``,
    each ``(B, out_size)`` (int64 taps in crop pixels, int32 fixed-point weights, float32 ``fx``)."""
    # OpenCV: scale_x = 1. / inv_scale_x, in double; true divisions (``number / tensor`` would be a reciprocal
    # times the number in torch: two roundings)
    scale = torch.ones_like(side) / (torch.full_like(side, float(out_size)) / side)
    u = torch.arange(out_size, dtype=torch.float64, device=side.device)
    f = ((u.view(1, -1) + 0.5) * scale.view(-1, 1) - 0.5).to(torch.float32)
    s = torch.floor(f)
    fx = f - s
    s = s.to(torch.int64)
    last = (side - 1).to(torch.int64).view(-1, 1)
    low = s < 0
    high = s >= last
    fx = torch.where(low | high, torch.zeros_like(fx), fx)
    s = torch.where(low, torch.zeros_like(s), torch.where(high, last.expand_as(s), s))
    a0 = torch.round((1 - fx) * 2048).to(torch.int32)
    a1 = torch.round(fx * 2048).to(torch.int32)
    return s, torch.minimum(s + 1, last), a0, a1, fx


def sample_target_batch(frames: torch.Tensor, sizes: torch.Tensor, boxes: torch.Tensor, search_area_factor: float,
                        output_sz: int, channels: int = 3, return_mask: bool = False):
    """:func:`sample_target_tensor` for B frames at once, with the crop geometry computed on the device: every
    shape is fixed and nothing is read to the host, so the crop is part of a captured CUDA graph
    (:mod:`lib.test.tracker.frame_graph`).

    The crop square is :func:`crop_square_tensor`'s (bit-identical to :func:`crop_square`); the pixels are
    :func:`sample_target_tensor`'s fixed-point OpenCV bilinear mix of the up to four source pixels, zero where
    the official padded crop holds padding (left/top before the image, right/bottom from the image's last
    column/row on when the crop reaches past it, the official extra padded pixel). The valid image part of an
    axis is ``[max(x1, 0), min(x1 + side, n - 1))`` when the crop reaches past the last pixel, else
    ``[max(x1, 0), x1 + side)``: :func:`sample_target`'s slices for every crop that overlaps the image. A crop
    wholly outside the image (the official slices then wrap around; impossible for a box clipped by
    :func:`clip_box` with a margin, whose centre lies inside the image) reads zeros here.

    Args:
        frames: ``(B, N)`` uint8, each row a frame flattened from ``(H_b, W_b, channels)`` at its start
            (``N >= H_b * W_b * channels``; the rest is ignored).
        sizes: ``(B, 2)`` int64 ``(H_b, W_b)`` of each row's frame.
        boxes: ``(B, 4)`` xywh boxes in image pixels to centre the crops on (float64 for exactness).
        search_area_factor: crop side relative to ``sqrt(w*h)``.
        output_sz: output side S.
        channels: channels per pixel (3).
        return_mask: also return the attention mask (STARK's search mask).

    Returns:
        ``(crop (B, channels, S, S) float32 grey levels 0..255, resize_factor (B,) float64 = S / side)``, and with
        ``return_mask`` the ``(B, S, S)`` bool mask of :func:`sample_target_tensor` (True where padding contributes).
    """
    B, N = frames.shape
    x1, y1, side = crop_square_tensor(boxes, search_area_factor)
    H, W = sizes[:, 0], sizes[:, 1]
    device = frames.device

    def axis(a1, n):  # taps in image pixels, clamped, and whether they lie in the valid image part
        taps = _linear_taps_tensor(output_sz, side)
        a1i = a1.to(torch.int64).view(-1, 1)
        end = (a1 + side).to(torch.int64).view(-1, 1)
        lo = a1i.clamp(min=0)
        hi = torch.where(end >= n.view(-1, 1), n.view(-1, 1) - 1, end)
        out = []
        for s in taps[:2]:
            idx = s + a1i
            out.append((idx.clamp(min=0), (idx >= lo) & (idx < hi)))
        return out, taps

    (xs0, xv0), (xs1, xv1) = (xt := axis(x1, W))[0]
    (ys0, yv0), (ys1, yv1) = (yt := axis(y1, H))[0]
    xs0, xs1 = torch.minimum(xs0, (W - 1).view(-1, 1)), torch.minimum(xs1, (W - 1).view(-1, 1))
    ys0, ys1 = torch.minimum(ys0, (H - 1).view(-1, 1)), torch.minimum(ys1, (H - 1).view(-1, 1))
    flat = frames.reshape(-1)
    row_base = (torch.arange(B, device=device, dtype=torch.int64) * N).view(-1, 1, 1, 1)
    chan = torch.arange(channels, device=device, dtype=torch.int64).view(1, 1, 1, -1)
    stride = (W * channels).view(-1, 1, 1, 1)

    def tap(ys, yv, xs, xv, weight):  # (B, S, S, C) int32 source pixels times their weight (0 in the padding)
        index = row_base + ys.view(B, -1, 1, 1) * stride + xs.view(B, 1, -1, 1) * channels + chan
        w = weight * (yv.view(B, -1, 1) & xv.view(B, 1, -1))
        return flat[index].to(torch.int32) * w.unsqueeze(-1)

    a0, a1 = xt[1][2].view(B, 1, -1), xt[1][3].view(B, 1, -1)
    h0 = tap(ys0, yv0, xs0, xv0, a0) + tap(ys0, yv0, xs1, xv1, a1)
    h1 = tap(ys1, yv1, xs0, xv0, a0) + tap(ys1, yv1, xs1, xv1, a1)
    b0, b1 = yt[1][2].view(B, -1, 1, 1), yt[1][3].view(B, -1, 1, 1)
    out = ((((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2)  # VResizeLinear, SIMD rounding
    # (B, C, S, S) views of the (B, S, S, C) result; for B = 1 with sample_target_tensor's (and the official
    # Preprocessor's) strides, whose size-1 batch stride decides the convolution's memory format on some back ends
    crop = out[0].permute(2, 0, 1).unsqueeze(0) if B == 1 else out.permute(0, 3, 1, 2)
    crop, resize_factor = crop.to(torch.float32), torch.full_like(side, float(output_sz)) / side
    if not return_mask:
        return crop, resize_factor
    # sample_target_tensor's mask: a tap of positive weight in the padding
    pad_y = ~yv0 | (~yv1 & (yt[1][4] > 0))
    pad_x = ~xv0 | (~xv1 & (xt[1][4] > 0))
    return crop, resize_factor, pad_y.view(B, -1, 1) | pad_x.view(B, 1, -1)


def map_box_back_batch(pred_cxcywh: torch.Tensor, prev_state: torch.Tensor, search_size: int,
                       resize_factor: torch.Tensor) -> torch.Tensor:
    """:func:`map_box_back` on ``(B, 4)`` tensors: the same float64 operations in the same order.

    Args:
        pred_cxcywh: ``(B, 4)`` cxcywh image-scale pixels relative to the crop's top-left corner.
        prev_state: ``(B, 4)`` xywh image pixels the crops were centred on.
        search_size: search-region side in crop pixels.
        resize_factor: ``(B,)`` crop pixels per image pixel.

    Returns:
        ``(B, 4)`` float64 xywh image pixels (not clipped).
    """
    pred = pred_cxcywh.to(torch.float64)
    prev = prev_state.to(torch.float64)
    factor = resize_factor.to(torch.float64)
    half_side = torch.full_like(factor, 0.5 * search_size) / factor  # a true division, as the host's
    cx_real = pred[:, 0] + ((prev[:, 0] + 0.5 * prev[:, 2]) - half_side)
    cy_real = pred[:, 1] + ((prev[:, 1] + 0.5 * prev[:, 3]) - half_side)
    w, h = pred[:, 2], pred[:, 3]
    return torch.stack([cx_real - 0.5 * w, cy_real - 0.5 * h, w, h], dim=1)


def clip_box_batch(boxes: torch.Tensor, sizes: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """:func:`clip_box` on ``(B, 4)`` xywh boxes (float64) and ``(B, 2)`` image sizes ``(H, W)``; returns
    ``(B, 4)`` float64 xywh, the host function's numbers."""
    boxes = boxes.to(torch.float64)
    H = sizes[:, 0].to(torch.float64)
    W = sizes[:, 1].to(torch.float64)
    x1, y1, w, h = boxes.unbind(-1)
    x2, y2 = x1 + w, y1 + h
    x1 = torch.minimum(x1.clamp(min=0.0), W - margin)
    x2 = torch.minimum(x2.clamp(min=float(margin)), W)
    y1 = torch.minimum(y1.clamp(min=0.0), H - margin)
    y2 = torch.minimum(y2.clamp(min=float(margin)), H)
    return torch.stack([x1, y1, (x2 - x1).clamp(min=float(margin)), (y2 - y1).clamp(min=float(margin))], dim=1)


def scale_crop_boxes_tensor(boxes_norm: torch.Tensor, search_size: int, resize_factor: torch.Tensor) -> torch.Tensor:
    """:func:`scale_crop_boxes` on the device: ``(B, ..., 4)`` float32 normalised boxes times ``search_size``,
    divided by the ``(B,)`` float64 ``resize_factor`` as the official code's ``/ resize_factor`` (a Python float)
    divides on this device (CUDA: times the float32 reciprocal; elsewhere: the float32 quotient)."""
    return divide_as_by_number(boxes_norm.to(torch.float32) * float(search_size), resize_factor)


def sqrt_float32(x: torch.Tensor) -> torch.Tensor:
    """The correctly rounded float32 square root (numpy's, C's ``sqrtf``) on every device: computed in float64 and
    rounded once to float32 (exact by the double-rounding bound for square roots). torch's own float32 ``sqrt``
    on the CPU is not always correctly rounded (a vectorised approximation: 1 ulp off for about 19 % of random
    values on the development machine), so ``torch.sqrt`` of a float32 tensor would part from the host arithmetic
    it mirrors."""
    return torch.sqrt(x.to(torch.float64)).to(torch.float32)


def siamfc_geometry_tensor(size_wh: torch.Tensor, z_size: int, x_size: Optional[int] = None,
                           context_amount: float = 0.5) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`siamfc_geometry` for ``(B, 2)`` float32 target sizes on the device: ``(side (B,) float32 of integer
    values, scale (B,) float32)``, the host function's float32 steps (true divisions; ``round`` half to even)."""
    sz = size_wh.to(torch.float32)
    total = sz[:, 0] + sz[:, 1]
    wc = sz[:, 0] + context_amount * total
    hc = sz[:, 1] + context_amount * total
    s_z = sqrt_float32(wc * hc)
    scale = torch.full_like(s_z, float(z_size)) / s_z
    out_size = z_size if x_size is None else x_size
    return torch.round(torch.full_like(scale, float(out_size)) / scale), scale


def warp_subwindow_batch(frames: torch.Tensor, sizes: torch.Tensor, centers: torch.Tensor, out_size: int,
                         sides: torch.Tensor, pad_values: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """:func:`warp_subwindow_tensor` for B frames with the window geometry on the device (static shapes, no host
    read: part of SparseTT's whole-frame CUDA graph). The same float32 corners, float64 sample positions, float32
    weights, taps summed in the same order, rounded grey levels.

    Args:
        frames: ``(B, N)`` uint8 rows, each a flattened ``(H_b, W_b, channels)`` frame at its start.
        sizes: ``(B, 2)`` int64 ``(H_b, W_b)``.
        centers: ``(B, 2)`` float32 window centres ``(cx, cy)``, image pixels.
        out_size: output side (> 1).
        sides: ``(B,)`` window sides in image pixels (integer values).
        pad_values: ``(B, channels)`` border values (already truncated to integers, as cv2's ``borderValue``).

    Returns:
        ``(B, channels, out_size, out_size)`` float32 crop of integer grey levels (for B = 1 with
        :func:`warp_subwindow_tensor`'s strides).
    """
    B, N = frames.shape
    device = frames.device
    side = sides.to(torch.float32)
    half = (side - 1) / 2
    c = centers.to(torch.float32)
    x1, y1 = c[:, 0] - half, c[:, 1] - half
    x2, y2 = c[:, 0] + half, c[:, 1] + half
    u = torch.arange(out_size, dtype=torch.float64, device=device).view(1, -1)
    H, W = sizes[:, 0].view(-1, 1), sizes[:, 1].view(-1, 1)

    def axis(start, stop, n):  # [(index clamped, valid, weight)] for the taps s and s + 1, each (B, out_size)
        step = (stop - start) / torch.full_like(start, float(out_size - 1))  # numpy's true float32 division
        pos = start.to(torch.float64).view(-1, 1) + u * step.to(torch.float64).view(-1, 1)
        s = torch.floor(pos)
        f = (pos - s).to(torch.float32)
        s = s.to(torch.int64)
        taps = []
        for d, w in ((0, 1 - f), (1, f)):
            idx = s + d
            taps.append((torch.minimum(idx.clamp(min=0), n - 1), (idx >= 0) & (idx < n), w))
        return taps

    xt, yt = axis(x1, x2, W), axis(y1, y2, H)
    flat = frames.reshape(-1)
    row_base = (torch.arange(B, device=device, dtype=torch.int64) * N).view(-1, 1, 1, 1)
    chan = torch.arange(channels, device=device, dtype=torch.int64).view(1, 1, 1, -1)
    stride = (W * channels).view(-1, 1, 1, 1)
    cval = pad_values.to(torch.float32).view(B, 1, 1, channels)
    acc = torch.zeros(B, out_size, out_size, channels, dtype=torch.float32, device=device)
    for yi, yv, wy in yt:
        for xi, xv, wx in xt:
            index = row_base + yi.view(B, -1, 1, 1) * stride + xi.view(B, 1, -1, 1) * channels + chan
            p = torch.where((yv.view(B, -1, 1) & xv.view(B, 1, -1)).unsqueeze(-1), flat[index].to(torch.float32), cval)
            acc = acc + p * (wy.view(B, -1, 1) * wx.view(B, 1, -1)).unsqueeze(-1)
    acc = acc.round_().clamp_(0, 255)
    return acc[0].permute(2, 0, 1).unsqueeze(0) if B == 1 else acc.permute(0, 3, 1, 2)


def divide_as_by_number(x: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
    """``x / d`` for a float32 tensor ``x`` and per-row float32 divisors ``d`` (``(B,)``, broadcast over ``x``'s
    trailing dims), rounded as torch rounds ``x / number`` with a Python number on ``x``'s device: CUDA multiplies
    by the float32 reciprocal, other devices divide (see :func:`scale_crop_boxes`)."""
    d = divisor.to(torch.float32).view(-1, *([1] * (x.dim() - 1)))
    if x.device.type == "cuda":
        return x * (torch.ones_like(d) / d)
    return x / d
