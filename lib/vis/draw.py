"""Drawing helpers shared by the debug views and the result playback (OpenCV).

Images are ``(H, W, 3)`` RGB uint8 unless stated; boxes are ``[x, y, w, h]`` in pixels (xywh, top-left
corner, as the result files and :class:`lib.test.evaluation.data.Sequence` hold them).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["GT_COLOR", "PALETTE", "to_numpy", "to_hwc_uint8", "as_2d", "box_is_valid", "draw_boxes", "draw_legend",
           "draw_text", "hstack_images", "colorize_heatmap", "tile_channels", "resize_max_side"]

Color = Tuple[int, int, int]

GT_COLOR: Color = (0, 255, 0)
"""Ground truth is drawn in pure green (RGB)."""

PALETTE: Tuple[Color, ...] = (
    (255, 0, 0), (0, 112, 255), (255, 200, 0), (255, 0, 255), (0, 230, 230), (255, 128, 0),
    (160, 80, 255), (255, 255, 255), (128, 64, 0), (0, 128, 128),
)
"""Colours (RGB) of predicted boxes / trackers, in order; the first is pure red."""


def to_numpy(data: Any) -> np.ndarray:
    """A torch tensor (any device, any dtype, with or without grad) or array-like -> numpy array."""
    if hasattr(data, "detach") and hasattr(data, "cpu"):
        data = data.detach().cpu()
        if str(data.dtype) in ("torch.bfloat16", "torch.float16"):
            data = data.float()
        return data.numpy()
    return np.asarray(data)


def to_hwc_uint8(image: Any) -> np.ndarray:
    """Normalise an image to ``(H, W, 3)`` RGB uint8.

    Accepts ``(H, W, 3)``, ``(3, H, W)`` (torch's layout, e.g. OSTrack's ``permute(2, 0, 1)`` crops),
    ``(1, 3, H, W)``, ``(H, W)`` or ``(H, W, 1)`` grey; uint8, or float in [0, 1] (scaled by 255) or
    [0, 255] (clipped).

    Raises:
        ValueError: any other shape.
    """
    arr = to_numpy(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.transpose(arr, (1, 2, 0))
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected an image (H, W, 3), (3, H, W) or (H, W); got shape {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
        finite = arr[np.isfinite(arr)]
        if finite.size and finite.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def box_is_valid(box: Optional[Sequence[float]]) -> bool:
    """True for 4 finite numbers with positive width and height."""
    if box is None:
        return False
    b = np.asarray(to_numpy(box), dtype=np.float64).reshape(-1)
    return b.size == 4 and bool(np.all(np.isfinite(b))) and b[2] > 0 and b[3] > 0


def resize_max_side(image: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    """Shrink ``image`` so that its longer side is at most ``max_side``; returns (image, scale)."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    s = max_side / float(max(h, w))
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA), s


def draw_legend(image: np.ndarray, entries: Sequence[Tuple[str, Color]], origin: Tuple[int, int] = (6, 6),
                font_scale: Optional[float] = None) -> np.ndarray:
    """Draw a legend (colour swatch + label per entry) on a dark translucent panel, in place.

    Args:
        image: ``(H, W, 3)`` RGB uint8, modified and returned.
        entries: ``(label, (r, g, b))`` pairs, top to bottom.
        origin: top-left corner of the panel in pixels.
        font_scale: OpenCV font scale (default: from the image height).
    """
    if not entries:
        return image
    h = image.shape[0]
    fs = font_scale if font_scale is not None else max(0.35, min(0.7, h / 700.0))
    th = max(1, int(round(fs * 2)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(str(label), font, fs, th)[0] for label, _ in entries]
    line_h = max(s[1] for s in sizes) + int(10 * fs) + 4
    sw = line_h - 6
    width = max(s[0] for s in sizes) + sw + 16
    x0, y0 = origin
    x1 = min(image.shape[1] - 1, x0 + width)
    y1 = min(h - 1, y0 + line_h * len(entries) + 6)
    panel = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (panel * 0.35).astype(np.uint8)
    for i, ((label, color), size) in enumerate(zip(entries, sizes)):
        top = y0 + 4 + i * line_h
        cv2.rectangle(image, (x0 + 4, top + 2), (x0 + 4 + sw, top + 2 + sw), tuple(int(c) for c in color), -1)
        cv2.putText(image, str(label), (x0 + sw + 10, top + line_h - 6 - (line_h - size[1]) // 4), font, fs,
                    (255, 255, 255), th, cv2.LINE_AA)
    return image


def draw_boxes(image: Any, boxes: Sequence[Optional[Sequence[float]]], colors: Optional[Sequence[Color]] = None,
               labels: Optional[Sequence[str]] = None, thickness: int = 2, legend: bool = True,
               scale: float = 1.0) -> np.ndarray:
    """Draw xywh pixel boxes (and a legend of their labels) on a copy of ``image``.

    Args:
        image: any image :func:`to_hwc_uint8` accepts.
        boxes: ``[x, y, w, h]`` per box; None, NaN or non-positive boxes are skipped (their legend
            entry stays, so colours keep their meaning).
        colors: RGB per box (default :data:`PALETTE` in order).
        labels: legend text per box (no legend without labels).
        thickness: line width in pixels.
        scale: factor applied to the box coordinates (for an image resized by that factor).

    Returns:
        ``(H, W, 3)`` RGB uint8.
    """
    out = to_hwc_uint8(image).copy()
    colors = list(colors) if colors is not None else [PALETTE[i % len(PALETTE)] for i in range(len(boxes))]
    if legend and labels:
        draw_legend(out, list(zip(labels, colors)))  # first, so that no box is hidden under it
    for box, color in zip(boxes, colors):
        if not box_is_valid(box):
            continue
        x, y, w, h = (float(v) * scale for v in np.asarray(to_numpy(box), dtype=np.float64).reshape(-1))
        cv2.rectangle(out, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))),
                      tuple(int(c) for c in color), thickness, cv2.LINE_8)  # crisp, exact colours
    return out


def as_2d(data: Any) -> np.ndarray:
    """A map as a 2-D float64 array: leading size-1 dimensions are dropped (``(1, 1, H, W)`` -> ``(H, W)``).

    Raises:
        ValueError: anything else than 2-D after that (the message gives the shape).
    """
    arr = full = to_numpy(data)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"a heatmap must be 2-D (leading size-1 dims allowed), got shape {tuple(full.shape)}")
    return arr.astype(np.float64)


def colorize_heatmap(data: Any, min_side: int = 0, vmin: Optional[float] = None,
                     vmax: Optional[float] = None) -> np.ndarray:
    """A 2-D map (e.g. a score map ``(feat_sz, feat_sz)``) as a viridis RGB image.

    Values are scaled from ``[vmin, vmax]`` (default: the map's finite min/max) to the colormap; NaN
    is drawn as the lowest colour. The result is enlarged by an integer factor (nearest neighbour)
    until its shorter side is at least ``min_side``.

    Raises:
        ValueError: the data is not 2-D after dropping leading size-1 dimensions.
    """
    arr = as_2d(data)
    finite = arr[np.isfinite(arr)]
    lo = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    norm = np.nan_to_num((arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr), nan=0.0)
    gray = np.clip(norm * 255.0, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
    if min_side and min(rgb.shape[:2]) < min_side:
        f = int(math.ceil(min_side / float(min(rgb.shape[:2]))))
        rgb = cv2.resize(rgb, (rgb.shape[1] * f, rgb.shape[0] * f), interpolation=cv2.INTER_NEAREST)
    return rgb


def tile_channels(data: Any, max_channels: int = 16) -> np.ndarray:
    """A feature map ``(C, H, W)`` (or ``(1, C, H, W)``) as one 2-D grid of its first ``max_channels``
    channels, each min-max normalised to [0, 1], separated by NaN lines (drawn dark).

    Raises:
        ValueError: fewer than 2 dimensions.
    """
    arr = to_numpy(data).astype(np.float64)
    if arr.ndim < 2:
        raise ValueError(f"a feature map needs at least 2 dims (C, H, W), got shape {tuple(arr.shape)}")
    arr = arr.reshape(-1, *arr.shape[-2:])[:max_channels]
    c, h, w = arr.shape
    cols = int(math.ceil(math.sqrt(c)))
    rows = int(math.ceil(c / cols))
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i in range(c):
        ch = arr[i]
        lo, hi = np.nanmin(ch), np.nanmax(ch)
        ch = (ch - lo) / (hi - lo) if hi > lo else np.zeros_like(ch)
        r, q = divmod(i, cols)
        grid[r * (h + 1): r * (h + 1) + h, q * (w + 1): q * (w + 1) + w] = ch
    return grid


def draw_text(image: np.ndarray, text: str, origin: Tuple[int, int], color: Color = (255, 255, 0),
              font_scale: float = 0.5, outline: bool = True) -> np.ndarray:
    """Write ``text`` with its baseline starting at ``origin`` (pixels), in place; with a black outline
    so that it reads on any background.

    Args:
        image: ``(H, W, 3)`` RGB uint8, modified and returned.
        color: RGB of the text.
    """
    font, org = cv2.FONT_HERSHEY_SIMPLEX, (int(origin[0]), int(origin[1]))
    if outline:
        cv2.putText(image, str(text), org, font, font_scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, str(text), org, font, font_scale, tuple(int(c) for c in color), 1, cv2.LINE_AA)
    return image


def hstack_images(images: Sequence[Any], gap: int = 0, gap_value: int = 255, trailing: bool = False) -> np.ndarray:
    """Images of one height side by side, ``gap`` columns of ``gap_value`` between them (and after the last
    one with ``trailing``).

    Args:
        images: anything :func:`to_hwc_uint8` accepts, all of the same height.

    Returns:
        ``(H, sum(W_i) + gaps, 3)`` RGB uint8.

    Raises:
        ValueError: no image, or images of different heights.
    """
    arrays = [to_hwc_uint8(im) for im in images]
    if not arrays or len({a.shape[0] for a in arrays}) != 1:
        raise ValueError(f"hstack_images needs images of one height, got {[a.shape for a in arrays]}")
    strip = np.full((arrays[0].shape[0], gap, 3), gap_value, np.uint8)
    parts = []
    for i, a in enumerate(arrays):
        parts.append(a)
        if gap and (trailing or i < len(arrays) - 1):
            parts.append(strip)
    return np.concatenate(parts, axis=1)
