"""Random-crop augmentation of a template/search pair (SiamFC++ / SparseTT training crops).

Source: fzh0917/SparseTT (video_analyst) ``videoanalyst/data/utils/crop_track_pair.py`` (``crop_track_pair``)
used by ``videoanalyst/data/transformer/transformer_impl/random_crop_transformer.py``
(``RandomCropTransformer``). The crops are made by the tracker's warp (:func:`lib.utils.crop.warp_subwindow`,
video_analyst ``get_subwindow_tracking``), so training and tracking see the same kind of image. Boxes use
video_analyst's "+1" pixel convention: a ``w``-pixel-wide box starting at ``x`` has centre ``x + (w - 1) / 2``
and corners ``cx -/+ (w - 1) / 2``.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from lib.utils.crop import warp_subwindow

__all__ = ["xywh_to_cxywh_plus1", "cxywh_to_xyxy_plus1", "siamfc_context_side", "random_crop_track_pair"]

#: augmentation attempts before the crop is taken without augmentation (official ``_MAX_RETRY``)
MAX_RETRY = 50


def xywh_to_cxywh_plus1(box_xywh) -> np.ndarray:
    """``(x, y, w, h)`` -> float32 ``(cx, cy, w, h)`` with ``cx = x + (w - 1) / 2`` (video_analyst
    ``xywh2xyxy`` followed by ``xyxy2cxywh``)."""
    b = np.asarray(box_xywh, dtype=np.float32).reshape(4)
    return np.array([b[0] + (b[2] - 1) / 2, b[1] + (b[3] - 1) / 2, b[2], b[3]], dtype=np.float32)


def cxywh_to_xyxy_plus1(box_cxywh) -> np.ndarray:
    """float32 ``(cx - (w-1)/2, cy - (h-1)/2, cx + (w-1)/2, cy + (h-1)/2)`` (video_analyst ``cxywh2xyxy``)."""
    b = np.asarray(box_cxywh, dtype=np.float32).reshape(4)
    return np.array([b[0] - (b[2] - 1) / 2, b[1] - (b[3] - 1) / 2, b[0] + (b[2] - 1) / 2, b[1] + (b[3] - 1) / 2],
                    dtype=np.float32)


def siamfc_context_side(w: float, h: float, context_amount: float = 0.5) -> float:
    """SiamFC template window side ``sqrt((w + a(w+h)) * (h + a(w+h)))`` in image pixels."""
    pad = context_amount * (w + h)
    return float(np.sqrt((w + pad) * (h + pad)))


def random_crop_track_pair(im_z: np.ndarray, box_z_xywh, im_x: np.ndarray, box_x_xywh, z_size: int = 127,
                           x_size: int = 289, context_amount: float = 0.5, max_scale: float = 0.3,
                           max_shift: float = 0.4, max_scale_temp: float = 0.0, max_shift_temp: float = 0.0,
                           rng=np.random, pad_value: Sequence[float] = None
                           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Template and search crops of a pair with random scale and shift of the search crop.

    The template crop shows the SiamFC window ``s_z`` (:func:`siamfc_context_side`) of the template box at
    ``z_size`` pixels (scale ``z_size / s_z``); the search crop shows ``x_size / scale_x`` image pixels
    around the search box at scale ``scale_x = z_size / s_x / r`` with ``r ~ U(1 / (1 + max_scale),
    1 + max_scale)``, its centre moved by ``-(dx, dy)``, ``dx, dy ~ U(-max_shift, max_shift) * side / 2``
    (the object moves by ``+(dx, dy)`` in the crop). The template gets the same augmentation with
    ``max_scale_temp`` / ``max_shift_temp`` (0 for SparseTT: none, though the draws are still made, as the
    official code does). Up to 50 draws are made until both boxes lie within their crops
    (``0 <= corner <= size - 1``); otherwise the crop is taken without augmentation. Both crops are padded
    with the template frame's per-channel mean (official ``avg_chans``). Random numbers are drawn in the
    official order (``scale``, ``scale_temp``, ``dx``, ``dy``, ``dx_temp``, ``dy_temp``).

    Args:
        im_z / im_x: ``(H, W, C)`` template and search frames (uint8; channel order kept).
        box_z_xywh / box_x_xywh: the target box in each frame, xywh pixels.
        z_size / x_size: crop sides (127 / 289).
        context_amount: SiamFC context (0.5).
        max_scale / max_shift: search-crop augmentation (0.3 / 0.4).
        max_scale_temp / max_shift_temp: template-crop augmentation (0 / 0).
        rng: numpy ``RandomState`` (or the ``np.random`` module).
        pad_value: border value per channel; default the template frame's mean.

    Returns:
        ``(crop_z (z, z, C), bbox_z (4,), crop_x (x, x, C), bbox_x (4,))``: the crops and the target boxes in
        them, xyxy float32 crop pixels ("+1" convention).

    Raises:
        ValueError: a box whose SiamFC window side is not positive and finite.
    """
    box_temp = xywh_to_cxywh_plus1(box_z_xywh)
    box_curr = xywh_to_cxywh_plus1(box_x_xywh)
    wt, ht = float(box_temp[2]), float(box_temp[3])
    wc, hc = float(box_curr[2]), float(box_curr[3])
    st_ = siamfc_context_side(wt, ht, context_amount)
    sc_ = siamfc_context_side(wc, hc, context_amount)
    if not (np.isfinite(st_) and np.isfinite(sc_) and st_ > 0 and sc_ > 0):
        raise ValueError(f"random_crop_track_pair: invalid boxes (xywh) template {list(map(float, box_z_xywh))}, "
                         f"search {list(map(float, box_x_xywh))}: SiamFC window sides {st_}, {sc_}")
    if pad_value is None:
        pad_value = np.mean(im_z, axis=(0, 1))
    scale_temp_ = z_size / st_
    scale_curr_ = z_size / sc_

    for i in range(MAX_RETRY + 1):
        if i < MAX_RETRY:
            s_max = 1 + max_scale
            scale_rand = rng.uniform(1 / s_max, s_max)
            s_max_t = 1 + max_scale_temp
            scale_rand_temp = np.exp(rng.uniform(np.log(1 / s_max_t), np.log(s_max_t)))
        else:
            scale_rand = scale_rand_temp = 1.0
        scale_curr = scale_curr_ / scale_rand
        scale_temp = scale_temp_ / scale_rand_temp
        s_curr = x_size / scale_curr
        s_temp = z_size / scale_temp
        if i < MAX_RETRY:
            dx = rng.uniform(-max_shift, max_shift) * s_curr / 2
            dy = rng.uniform(-max_shift, max_shift) * s_curr / 2
            dx_temp = rng.uniform(-max_shift_temp, max_shift_temp) * s_temp / 2
            dy_temp = rng.uniform(-max_shift_temp, max_shift_temp) * s_temp / 2
        else:
            dx = dy = dx_temp = dy_temp = 0.0
        center_temp = box_temp[:2] - np.array([dx_temp, dy_temp])
        center_curr = box_curr[:2] - np.array([dx, dy])
        bbox_z = cxywh_to_xyxy_plus1([(z_size - 1) / 2 + dx_temp * scale_temp, (z_size - 1) / 2 + dy_temp * scale_temp,
                                      wt * scale_temp, ht * scale_temp])
        bbox_x = cxywh_to_xyxy_plus1([(x_size - 1) / 2 + dx * scale_curr, (x_size - 1) / 2 + dy * scale_curr,
                                      wc * scale_curr, hc * scale_curr])
        if all(0 <= c <= z_size - 1 for c in bbox_z) and all(0 <= c <= x_size - 1 for c in bbox_x):
            break

    crop_z = warp_subwindow(im_z, center_temp, z_size, s_temp, pad_value)
    crop_x = warp_subwindow(im_x, center_curr, x_size, s_curr, pad_value)
    return crop_z, bbox_z, crop_x, bbox_x
