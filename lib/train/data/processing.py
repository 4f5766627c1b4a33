"""Turning sampled frames into network inputs: box jitter, square crops, attention masks, augmentation,
and rejection of samples whose crop is (nearly) all padding.

Source: STARK/OSTrack ``lib/train/data/processing.py`` (``STARKProcessing``; GRM's ``GRMProcessing`` is the
same). The fields a sample holds afterwards (``mode='sequence'``, ``N`` frames of each kind):

* ``template_images`` ``(N_t, 3, Hz, Wz)`` / ``search_images`` ``(N_s, 3, Hx, Wx)``: normalised crops;
* ``template_anno`` / ``search_anno`` ``(N, 4)``: ground-truth boxes, xywh normalised to [0, 1] of the crop;
* ``template_att`` / ``search_att`` ``(N, S, S)`` bool: True on padded pixels;
* ``template_masks`` / ``search_masks`` ``(N, S, S)``: cropped object masks (zeros without masks);
* ``valid``: False if the sample must be re-drawn.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from . import processing_utils as prutils
from .tensordict import TensorDict

__all__ = ["BaseProcessing", "STARKProcessing", "stack_tensors"]


def stack_tensors(x):
    """Stack a list of tensors into one tensor (other values unchanged)."""
    if isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], torch.Tensor):
        return torch.stack(x)
    return x


class BaseProcessing:
    """Holds the per-kind transforms: ``template``, ``search`` (default ``transform``) and ``joint``."""

    def __init__(self, transform=None, template_transform=None, search_transform=None, joint_transform=None):
        if transform is None and (template_transform is None or search_transform is None):
            from .transforms import ToTensor, Transform

            transform = Transform(ToTensor())
        self.transform = {"template": transform if template_transform is None else template_transform,
                          "search": transform if search_transform is None else search_transform,
                          "joint": joint_transform}

    def __call__(self, data: TensorDict) -> TensorDict:
        raise NotImplementedError


class STARKProcessing(BaseProcessing):
    """The processing of STARK, OSTrack and GRM.

    For each kind (template, search): jitter every ground-truth box (size ``* exp(N(0,1) * scale_jitter)``,
    centre ``+ sqrt(w'h') * center_jitter * (U(0,1) - 0.5)`` per axis, torch RNG), crop a square of side
    ``ceil(sqrt(w'h') * search_area_factor)`` around the jittered box, resize it to ``output_sz``, map the
    ground-truth box into the crop and apply the transforms. A sample is invalid (re-drawn by the sampler)
    if a crop side is below 1 pixel, or if an attention mask is all padding either at full resolution or
    nearest-downsampled to the feature size ``output_sz // feat_stride``.

    Args:
        search_area_factor: ``{'template': f_z, 'search': f_x}``.
        output_sz: ``{'template': S_z, 'search': S_x}`` in pixels.
        center_jitter_factor, scale_jitter_factor: ``{'template': ..., 'search': ...}``.
        mode: ``'sequence'`` (outputs stacked over frames) or ``'pair'`` (one frame of each kind).
        settings: training settings (kept for actors that read them).
        feat_stride: backbone stride of the all-padding check (16 in every official tracker).
        transform, template_transform, search_transform, joint_transform: see :class:`BaseProcessing`.
    """

    #: the frame kinds processed, in order (the joint transform draws for the first one).
    kinds: Tuple[str, ...] = ("template", "search")

    def __init__(self, search_area_factor: Dict[str, float], output_sz: Dict[str, int],
                 center_jitter_factor: Dict[str, float], scale_jitter_factor: Dict[str, float], mode: str = "pair",
                 settings=None, feat_stride: int = 16, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.search_area_factor = search_area_factor
        self.output_sz = output_sz
        self.center_jitter_factor = center_jitter_factor
        self.scale_jitter_factor = scale_jitter_factor
        self.mode = mode
        self.settings = settings
        self.feat_stride = feat_stride

    def _get_jittered_box(self, box: torch.Tensor, kind: str) -> torch.Tensor:
        """Jitter one xywh box (pixels) for ``kind`` ('template' or 'search')."""
        jittered_size = box[2:4] * torch.exp(torch.randn(2) * self.scale_jitter_factor[kind])
        max_offset = jittered_size.prod().sqrt() * torch.tensor(self.center_jitter_factor[kind]).float()
        jittered_center = box[0:2] + 0.5 * box[2:4] + max_offset * (torch.rand(2) - 0.5)
        return torch.cat((jittered_center - 0.5 * jittered_size, jittered_size), dim=0)

    def _jitter_boxes(self, boxes, kind: str):
        """The jittered xywh boxes (pixels) of every frame of ``kind`` (each with the factors of ``kind``;
        subclasses may jitter some frames differently, e.g. AiATrack's initial reference)."""
        return [self._get_jittered_box(a, kind) for a in boxes]

    def __call__(self, data: TensorDict) -> TensorDict:
        """Process one sampled ``TensorDict`` (lists of frames, boxes and masks per kind); see the module doc.

        The kinds are :attr:`kinds` (``template``, ``search``); the joint transform draws its random
        parameters for the first kind and applies the same draw to the others."""
        if self.transform["joint"] is not None:
            for i, s in enumerate(self.kinds):
                data[s + "_images"], data[s + "_anno"], data[s + "_masks"] = self.transform["joint"](
                    image=data[s + "_images"], bbox=data[s + "_anno"], mask=data[s + "_masks"], new_roll=i == 0)

        for s in self.kinds:
            if self.mode != "sequence" and len(data[s + "_images"]) != 1:
                raise ValueError(f"in 'pair' mode there must be one frame of each kind ({', '.join(self.kinds)})")
            jittered = self._jitter_boxes(data[s + "_anno"], s)
            wh = torch.stack(jittered, dim=0)[:, 2:4]
            crop_sz = torch.ceil(torch.sqrt(wh[:, 0] * wh[:, 1]) * self.search_area_factor[s])
            if (crop_sz < 1).any() or not torch.isfinite(crop_sz).all():
                data["valid"] = False
                return data
            crops, boxes, att, mask_crops = prutils.jittered_center_crop(
                data[s + "_images"], jittered, data[s + "_anno"], self.search_area_factor[s], self.output_sz[s],
                masks=data[s + "_masks"])
            data[s + "_images"], data[s + "_anno"], data[s + "_att"], data[s + "_masks"] = self.transform[s](
                image=crops, bbox=boxes, att=att, mask=mask_crops, joint=False)
            for ele in data[s + "_att"]:
                if bool((ele == 1).all()):
                    data["valid"] = False
                    return data
            feat_size = self.output_sz[s] // self.feat_stride
            for ele in data[s + "_att"]:
                down = F.interpolate(ele[None, None].float(), size=feat_size).to(torch.bool)[0]
                if bool((down == 1).all()):
                    data["valid"] = False
                    return data

        data["valid"] = True
        if any(data[s + "_masks"] is None for s in self.kinds):
            for s in self.kinds:
                data[s + "_masks"] = torch.zeros((1, self.output_sz[s], self.output_sz[s]))
        if self.mode == "sequence":
            return data.apply(stack_tensors)
        return data.apply(lambda x: x[0] if isinstance(x, list) else x)
