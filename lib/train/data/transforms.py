"""Data augmentation that transforms images, boxes, masks and attention masks together
(pytracking ``ltr/data/transforms.py`` as extended by STARK/OSTrack with the attention mask ``att``).

A :class:`Transform` chains :class:`TransformBase` steps. It is called with keyword inputs, each a single
item or a list of items (one per frame): ``image`` (``(H, W, 3)`` uint8 array, or ``(3, H, W)`` float tensor
after :class:`ToTensor`), ``bbox`` (``(4,)`` xywh tensor), ``coords`` (``(2, N)`` ``[y; x]`` tensor),
``mask`` and ``att`` (``(H, W)``). Options:

* ``joint=True`` (default): one random draw for every item of the lists; ``joint=False``: each frame
  tuple is transformed with its own draw;
* ``new_roll=False``: reuse the previous draw (the processing applies the joint transform to the search
  frames with the template's draw).

Random draws use the global ``random`` (grayscale, flips) and ``numpy.random`` (brightness) generators,
as the official code does, so seeding both reproduces a sample.
"""

from __future__ import annotations

import random
from typing import Sequence

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as tvisf

__all__ = ["Transform", "TransformBase", "ToTensor", "ToTensorAndJitter", "Normalize", "ToGrayscale", "ToBGR",
           "RandomHorizontalFlip", "RandomHorizontalFlip_Norm"]

_VALID_INPUTS = ("image", "coords", "bbox", "mask", "att")


class Transform:
    """A sequence of :class:`TransformBase` steps applied to images, boxes, masks and attention masks.

    Returns the transformed inputs in the order given (a single value if only one input was given).

    Raises:
        ValueError: an unknown keyword input.
    """

    def __init__(self, *transforms):
        if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
            transforms = transforms[0]
        self.transforms = transforms
        self._valid_args = ("joint", "new_roll")

    def __call__(self, **inputs):
        var_names = [k for k in inputs if k in _VALID_INPUTS]
        for k in inputs:
            if k not in _VALID_INPUTS and k not in self._valid_args:
                raise ValueError(f"incorrect input '{k}' to transform; inputs are {_VALID_INPUTS} and arguments "
                                 f"{self._valid_args}")
        joint = inputs.get("joint", True)
        new_roll = inputs.get("new_roll", True)
        if not joint:
            out = zip(*[self(**inp) for inp in self._split_inputs(inputs)])
            return tuple(list(o) for o in out)
        out = {k: v for k, v in inputs.items() if k in _VALID_INPUTS}
        for t in self.transforms:
            out = t(**out, joint=joint, new_roll=new_roll)
        if len(var_names) == 1:
            return out[var_names[0]]
        return tuple(out[v] for v in var_names)

    def _split_inputs(self, inputs):
        var_names = [k for k in inputs if k in _VALID_INPUTS]
        split = [dict(zip(var_names, vals)) for vals in zip(*[inputs[v] for v in var_names])]
        for arg, val in inputs.items():
            if arg == "joint" or arg not in self._valid_args:
                continue
            for i, inp in enumerate(split):
                inp[arg] = val[i] if isinstance(val, list) else val
        return split

    def __repr__(self) -> str:
        return self.__class__.__name__ + "(" + "".join(f"\n    {t}" for t in self.transforms) + "\n)"


class TransformBase:
    """One augmentation step. Subclasses draw their random parameters in :meth:`roll` and implement the
    deterministic ``transform_<input>`` methods; boxes are transformed through their corners with
    :meth:`transform_coords` when that is overridden."""

    def __init__(self):
        self._rand_params = ()

    def __call__(self, **inputs):
        input_vars = {k: v for k, v in inputs.items() if k in _VALID_INPUTS}
        if inputs.get("new_roll", True):
            rand_params = self.roll()
            if rand_params is None:
                rand_params = ()
            elif not isinstance(rand_params, tuple):
                rand_params = (rand_params,)
            self._rand_params = rand_params
        outputs = {}
        for name, var in input_vars.items():
            if var is None:
                continue
            fn = getattr(self, "transform_" + name)
            params = ((self._get_image_size(input_vars),) + self._rand_params if name in ("coords", "bbox")
                      else self._rand_params)
            outputs[name] = [fn(x, *params) for x in var] if isinstance(var, (list, tuple)) else fn(var, *params)
        return outputs

    @staticmethod
    def _get_image_size(inputs):
        im = None
        for name in ("image", "mask"):
            if inputs.get(name) is not None:
                im = inputs[name]
                break
        if im is None:
            return None
        if isinstance(im, (list, tuple)):
            im = im[0]
        if isinstance(im, np.ndarray):
            return im.shape[:2]
        if torch.is_tensor(im):
            return (im.shape[-2], im.shape[-1])
        raise TypeError(f"unknown image type {type(im).__name__}")

    def roll(self):
        return None

    def transform_image(self, image, *rand_params):
        return image

    def transform_coords(self, coords, image_shape, *rand_params):
        return coords

    def transform_bbox(self, bbox, image_shape, *rand_params):
        """xywh box through its four corners (identity unless :meth:`transform_coords` is overridden)."""
        if type(self).transform_coords is TransformBase.transform_coords:
            return bbox
        coord = bbox.clone().view(-1, 2).t().flip(0)
        x1, x2 = coord[1, 0], coord[1, 0] + coord[1, 1]
        y1, y2 = coord[0, 0], coord[0, 0] + coord[0, 1]
        corners = torch.tensor([[y1, y1, y2, y2], [x1, x2, x2, x1]])
        out = self.transform_coords(corners, image_shape, *rand_params).flip(0)
        tl = torch.min(out, dim=1)[0]
        sz = torch.max(out, dim=1)[0] - tl
        return torch.cat((tl, sz), dim=-1).reshape(bbox.shape)

    def transform_mask(self, mask, *rand_params):
        return mask

    def transform_att(self, att, *rand_params):
        return att


def _att_to_bool(att):
    if isinstance(att, np.ndarray):
        return torch.from_numpy(att).to(torch.bool)
    if isinstance(att, torch.Tensor):
        return att.to(torch.bool)
    raise ValueError("attention mask must be a numpy array or a tensor")


class ToTensor(TransformBase):
    """``(H, W, 3)`` uint8 image -> ``(3, H, W)`` float tensor in [0, 1]; attention mask -> bool tensor."""

    def transform_image(self, image):
        if image.ndim == 2:
            image = image[:, :, None]
        image = torch.from_numpy(image.transpose((2, 0, 1)))
        return image.float().div(255) if image.dtype == torch.uint8 else image

    def transform_mask(self, mask):
        return torch.from_numpy(mask) if isinstance(mask, np.ndarray) else mask

    def transform_att(self, att):
        return _att_to_bool(att)


class ToTensorAndJitter(TransformBase):
    """To tensor with brightness jitter: the image is multiplied by ``U(max(0, 1 - b), 1 + b)`` (one draw
    from ``numpy.random`` per call) and, with ``normalize``, divided by 255 and clamped to [0, 1]."""

    def __init__(self, brightness_jitter: float = 0.0, normalize: bool = True):
        super().__init__()
        self.brightness_jitter = brightness_jitter
        self.normalize = normalize

    def roll(self):
        return np.random.uniform(max(0, 1 - self.brightness_jitter), 1 + self.brightness_jitter)

    def transform_image(self, image, brightness_factor):
        image = torch.from_numpy(image.transpose((2, 0, 1)))
        if self.normalize:
            return image.float().mul(brightness_factor / 255.0).clamp(0.0, 1.0)
        return image.float().mul(brightness_factor).clamp(0.0, 255.0)

    def transform_mask(self, mask, brightness_factor):
        return torch.from_numpy(mask) if isinstance(mask, np.ndarray) else mask

    def transform_att(self, att, brightness_factor):
        return _att_to_bool(att)


class Normalize(TransformBase):
    """``(x - mean) / std`` per channel on a ``(3, H, W)`` float tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        super().__init__()
        self.mean, self.std, self.inplace = list(mean), list(std), inplace

    def transform_image(self, image):
        return tvisf.normalize(image, self.mean, self.std, self.inplace)


class ToGrayscale(TransformBase):
    """With probability ``probability``, replace an RGB uint8 image by its gray version on 3 channels."""

    def __init__(self, probability: float = 0.5):
        super().__init__()
        self.probability = probability

    def roll(self):
        return random.random() < self.probability

    def transform_image(self, image, do_grayscale):
        if do_grayscale:
            if torch.is_tensor(image):
                raise NotImplementedError("ToGrayscale works on numpy images (apply it before ToTensor)")
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            return np.stack([gray, gray, gray], axis=2)
        return image


class ToBGR(TransformBase):
    """RGB -> BGR (numpy images)."""

    def transform_image(self, image):
        if torch.is_tensor(image):
            raise NotImplementedError("ToBGR works on numpy images")
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


class RandomHorizontalFlip(TransformBase):
    """With probability ``probability``, flip image, mask, attention mask and box left-right
    (pixel boxes: ``x -> W - 1 - x`` on the corners)."""

    def __init__(self, probability: float = 0.5):
        super().__init__()
        self.probability = probability

    def roll(self):
        return random.random() < self.probability

    def transform_image(self, image, do_flip):
        if do_flip:
            return image.flip((2,)) if torch.is_tensor(image) else np.fliplr(image).copy()
        return image

    def transform_coords(self, coords, image_shape, do_flip):
        if do_flip:
            out = coords.clone()
            out[1, :] = (image_shape[1] - 1) - coords[1, :]
            return out
        return coords

    def transform_mask(self, mask, do_flip):
        if do_flip:
            return mask.flip((-1,)) if torch.is_tensor(mask) else np.fliplr(mask).copy()
        return mask

    def transform_att(self, att, do_flip):
        if do_flip:
            return att.flip((-1,)) if torch.is_tensor(att) else np.fliplr(att).copy()
        return att


class RandomHorizontalFlip_Norm(RandomHorizontalFlip):
    """:class:`RandomHorizontalFlip` for boxes normalised to [0, 1] of the crop (``x -> 1 - x``)."""

    def transform_coords(self, coords, image_shape, do_flip):
        if do_flip:
            out = coords.clone()
            out[1, :] = 1 - coords[1, :]
            return out
        return coords
