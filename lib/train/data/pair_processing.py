"""Processing of a sampled track pair into SparseTT's network inputs and dense-box targets.

Source: fzh0917/SparseTT (video_analyst) ``RandomCropTransformer`` followed by ``DenseboxTarget``
(``videoanalyst/data/transformer/transformer_impl/random_crop_transformer.py``,
``videoanalyst/data/target/target_impl/densebox_target.py``): random crops
(:func:`~lib.train.data.pair_crop.random_crop_track_pair`), normalisation as the tracker, targets
(:func:`~lib.train.data.densebox_target.make_densebox_target`), negative pairs relabelled.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .densebox_target import make_densebox_target, relabel_negative_pair, score_offset
from .pair_crop import random_crop_track_pair
from .tensordict import TensorDict

__all__ = ["normalize_crop", "DenseboxPairProcessing"]


def normalize_crop(crop: np.ndarray, mean: Sequence[float], std: Sequence[float], to_rgb: bool = True) -> np.ndarray:
    """``(H, W, 3)`` RGB uint8 crop -> ``(3, H, W)`` float32 ``(crop - mean) / std`` (pixel-scale mean/std).

    The official pipeline reads BGR frames and applies mmcv ``imnormalize(img, mean, std, to_rgb)``: with
    ``to_rgb`` the network sees RGB, otherwise BGR. Frames here are RGB, so ``to_rgb=False`` reverses the
    channels first; the tracker (:mod:`lib.test.tracker.sparsett`) normalises its crops the same way.
    """
    img = crop[..., ::-1] if not to_rgb else crop
    img = (img.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1))


class DenseboxPairProcessing:
    """Crops, normalises and labels one pair from :class:`~lib.train.data.pair_sampler.TrackPairSampler`.

    Args:
        z_size / x_size: template and search crop sides (127 / 289).
        score_size / total_stride: score-map side and stride (19 / 16); ``score_offset`` follows
            (:func:`~lib.train.data.densebox_target.score_offset`).
        max_scale / max_shift: search-crop augmentation (0.3 / 0.4).
        mean / std / to_rgb: normalisation (``DATA.MEAN`` / ``DATA.STD`` / ``DATA.TO_RGB``).
        context_amount: SiamFC context (0.5).
        rng: numpy generator of the augmentation (default the global ``np.random``, seeded per worker).

    ``__call__(data) -> TensorDict`` with, per sample: ``template_images`` ``(3, z, z)`` and ``search_images``
    ``(3, x, x)`` float32 normalised; ``template_anno`` / ``search_anno`` ``(4,)`` xyxy crop pixels;
    ``cls_gt`` ``(S*S, 1)`` in {-1, 0, 1}; ``ctr_gt`` ``(S*S, 1)``; ``box_gt`` ``(S*S, 4)`` xyxy crop pixels;
    ``is_negative_pair`` 0-d int64 (official ``training_data`` keys ``im_z``, ``im_x``, ``bbox_z``, ``bbox_x``,
    ``cls_gt``, ``ctr_gt``, ``box_gt``, ``is_negative_pair``; the image keys are renamed for the trainer).

    Raises:
        ValueError: a score map that does not fit the search crop.
    """

    def __init__(self, z_size: int = 127, x_size: int = 289, score_size: int = 19, total_stride: int = 16,
                 max_scale: float = 0.3, max_shift: float = 0.4, mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375), to_rgb: bool = True, context_amount: float = 0.5,
                 rng=None):
        self.z_size, self.x_size = int(z_size), int(x_size)
        self.score_size, self.total_stride = int(score_size), int(total_stride)
        score_offset(self.x_size, self.score_size, self.total_stride)  # validates the sizes
        self.max_scale, self.max_shift = float(max_scale), float(max_shift)
        self.mean, self.std, self.to_rgb = list(mean), list(std), bool(to_rgb)
        self.context_amount = float(context_amount)
        self.rng = rng

    def __call__(self, data: dict) -> TensorDict:
        rng = self.rng if self.rng is not None else np.random
        crop_z, bbox_z, crop_x, bbox_x = random_crop_track_pair(
            data["template_image"], data["template_box"], data["search_image"], data["search_box"],
            z_size=self.z_size, x_size=self.x_size, context_amount=self.context_amount, max_scale=self.max_scale,
            max_shift=self.max_shift, rng=rng)
        cls, ctr, box = make_densebox_target(bbox_x, self.x_size, self.score_size, self.total_stride)
        negative = bool(data.get("is_negative_pair", False))
        if negative:
            cls = relabel_negative_pair(cls)
        return TensorDict({
            "template_images": torch.from_numpy(normalize_crop(crop_z, self.mean, self.std, self.to_rgb)),
            "search_images": torch.from_numpy(normalize_crop(crop_x, self.mean, self.std, self.to_rgb)),
            "template_anno": torch.from_numpy(bbox_z),
            "search_anno": torch.from_numpy(bbox_x),
            "cls_gt": cls,
            "ctr_gt": ctr,
            "box_gt": box,
            "is_negative_pair": torch.tensor(int(negative)),
        })
