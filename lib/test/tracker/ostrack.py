"""OSTrack test-time tracker (official ``lib/test/tracker/ostrack.py`` with ``lib/test/parameter/ostrack.py``).

Per frame: crop the search region around the previous box (``TEST.SEARCH_FACTOR``, ``TEST.SEARCH_SIZE``,
zero padding), run the network with the first-frame template (never updated) and the CE template
mask, multiply the score map by a Hann window, decode the box at its maximum, map it back to the
image and clip it (10-pixel margin). There is no template update, score threshold or re-detection.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from lib.models import build_network
from lib.models.layers.candidate_elimination import generate_mask_cond
from lib.test.tracker.base import BaseTracker, Preprocessor, TrackerParams, check_init_box
from lib.utils.crop import clip_box, hann2d, map_box_back, sample_target, transform_image_to_crop
from lib.utils.misc import autocast_context
from lib.vis.draw import hstack_images

__all__ = ["OSTrackTracker", "masked_search_visualization", "whiten_tokens"]


def whiten_tokens(image: np.ndarray, token_indices: np.ndarray, patch_size: int = 16,
                  alpha: float = 0.2) -> np.ndarray:
    """``image`` ``(S, S, 3)`` with the ``patch_size`` tokens of ``token_indices`` (row-major token order)
    faded to white (pixel -> ``alpha * pixel + (1 - alpha) * 255``); float64 ``(S, S, 3)``."""
    image = np.asarray(image)
    H, W, _ = image.shape
    hp, wp = H // patch_size, W // patch_size
    tokens = image.reshape(hp, patch_size, wp, patch_size, 3).swapaxes(1, 2).reshape(hp * wp, patch_size,
                                                                                      patch_size, 3)
    masked = tokens.astype(np.float64).copy()
    index = np.asarray(token_indices).reshape(-1).astype(np.int64)
    masked[index] = alpha * masked[index] + (1 - alpha) * 255
    return masked.reshape(hp, wp, patch_size, patch_size, 3).swapaxes(1, 2).reshape(H, W, 3)


def masked_search_visualization(search_patch: np.ndarray, removed_indexes: Sequence[np.ndarray],
                                patch_size: int = 16, alpha: float = 0.2) -> np.ndarray:
    """The search patch followed by one copy per CE stage with the eliminated tokens whitened.

    Official ``lib/test/tracker/vis_utils.gen_visualization``: stage ``k`` masks the tokens removed in
    stages ``1..k`` (see :func:`whiten_tokens`); each image gets an 8-pixel white strip on its right.

    Args:
        search_patch: ``(S, S, 3)`` uint8 search crop.
        removed_indexes: per stage, ``(1, removed_k)`` original token indices.

    Returns:
        ``(S, (S + 8) * (1 + stages), 3)`` uint8 image.
    """
    image = np.asarray(search_patch)
    images = [image]
    seen = np.zeros((0,), dtype=np.int64)
    for removed in removed_indexes:
        seen = np.concatenate([seen, np.asarray(removed).reshape(-1).astype(np.int64)])
        images.append(whiten_tokens(image, seen, patch_size, alpha))
    return hstack_images([img.astype(np.uint8) for img in images], gap=8, trailing=True)


class OSTrackTracker(BaseTracker):
    """OSTrack on a sequence of ``(H, W, 3)`` RGB uint8 frames.

    Parameters (from the config's TEST section): ``TEMPLATE_FACTOR`` / ``TEMPLATE_SIZE`` for the
    template crop, ``SEARCH_FACTOR`` / ``SEARCH_SIZE`` for the search crop; ``params.checkpoint`` is
    loaded strictly (None keeps random weights: profiling and tests only). ``params.precision``
    ``fp16``/``bf16`` runs the network under autocast. ``params.extra['save_all_boxes']`` also returns
    the unclipped box of every query as ``all_boxes``.

    Raises (construction): CheckpointError / FileNotFoundError for a checkpoint that does not fit.
    """

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        super().__init__(params, dataset_name)
        cfg = self.cfg
        self.network = build_network(params.script, cfg, checkpoint=params.checkpoint, device=self.device)
        self.network.eval()
        self.preprocessor = Preprocessor(self.device)
        self.template_factor = float(cfg.TEST.TEMPLATE_FACTOR)
        self.template_size = int(cfg.TEST.TEMPLATE_SIZE)
        self.search_factor = float(cfg.TEST.SEARCH_FACTOR)
        self.search_size = int(cfg.TEST.SEARCH_SIZE)
        self.feat_sz = self.search_size // int(cfg.MODEL.BACKBONE.STRIDE)
        self.output_window = hann2d((self.feat_sz, self.feat_sz), centered=True).to(self.device)
        self.save_all_boxes = bool(params.extra.get("save_all_boxes", False))
        self.state: Optional[List[float]] = None
        self.template: Optional[torch.Tensor] = None
        self.box_mask_z: Optional[torch.Tensor] = None
        self.z_patch_arr: Optional[np.ndarray] = None

    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Crop the template around ``info['init_bbox']`` (xywh pixels) and build the CE template mask.

        Raises:
            ValueError: a box of zero/negative size, not finite, or outside the image.
        """
        box = check_init_box(info["init_bbox"], image.shape)
        z_patch_arr, resize_factor, _ = sample_target(image, box, self.template_factor, output_sz=self.template_size)
        self.z_patch_arr = z_patch_arr
        self.template = self.preprocessor(z_patch_arr)
        self.box_mask_z = self.template_mask(box, resize_factor)
        self.state = list(box)
        self.frame_id = 0
        if self.save_all_boxes:
            return {"all_boxes": list(box)}
        return None

    @torch.no_grad()
    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame; returns ``{'target_bbox': [x, y, w, h]}`` (image pixels, clipped)."""
        if self.state is None:
            raise RuntimeError("OSTrackTracker.track() called before initialize()")
        H, W = image.shape[:2]
        self.frame_id += 1
        x_patch_arr, resize_factor, _ = sample_target(image, self.state, self.search_factor,
                                                      output_sz=self.search_size)
        search = self.preprocessor(x_patch_arr)
        with autocast_context(self.device, self.params.precision):
            out = self.forward_network(search)

        pred_score_map = out["score_map"].float()
        response = self.output_window * pred_score_map
        pred_boxes = self.network.box_head.cal_bbox(response, out["size_map"].float(), out["offset_map"].float())
        pred_boxes = pred_boxes.view(-1, 4)
        pred_box = (pred_boxes.mean(dim=0) * self.search_size / resize_factor).tolist()  # cxcywh, crop-relative
        prev_state = self.state
        self.state = clip_box(map_box_back(pred_box, prev_state, self.search_size, resize_factor), H, W, margin=10)

        if self.debug_sink is not None:  # attached by the runner / video demo for --debug L > 0
            self._show_debug(image, x_patch_arr, pred_score_map, response, out)
        result: Dict[str, Any] = {"target_bbox": self.state}
        if self.save_all_boxes:
            boxes = (pred_boxes * self.search_size / resize_factor).tolist()
            result["all_boxes"] = [v for b in boxes for v in map_box_back(b, prev_state, self.search_size,
                                                                          resize_factor)]
        return result

    def template_box_in_crop(self, box: Sequence[float], resize_factor: float) -> torch.Tensor:
        """The first-frame box inside the template crop: ``(1, 4)`` xywh normalised to the crop side, on the
        tracker's device (official ``transform_bbox_to_crop``)."""
        box_t = torch.tensor(box, dtype=torch.float32)
        crop_sz = torch.tensor([self.template_size, self.template_size], dtype=torch.float32)
        return transform_image_to_crop(box_t, box_t, resize_factor, crop_sz, normalize=True).view(1, 4).to(self.device)

    def template_mask(self, box: Sequence[float], resize_factor: float) -> Optional[torch.Tensor]:
        """The template mask passed with every search region: OSTrack's CE mask (``CE_TEMPLATE_RANGE``) when
        the backbone eliminates candidates, else None."""
        if not self.cfg.MODEL.BACKBONE.CE_LOC:
            return None
        return generate_mask_cond(self.cfg, 1, self.device, self.template_box_in_crop(box, resize_factor))

    def forward_network(self, search: torch.Tensor) -> Dict[str, Any]:
        """One forward pass on the normalised search crop ``(1, 3, S, S)`` with the stored template."""
        return self.network(template=self.template, search=search, ce_template_mask=self.box_mask_z)

    def _show_debug(self, image, x_patch_arr, score_map, response, out) -> None:
        """The official visdom views: Tracking, search_region, template, score_map, score_map_hann, masked_search."""
        self.debug_show((image, self.state), "Tracking", 1, "Tracking")
        self.debug_show(x_patch_arr, "image", 1, "search_region")
        self.debug_show(self.z_patch_arr, "image", 1, "template")
        self.debug_show(score_map.view(self.feat_sz, self.feat_sz).cpu(), "heatmap", 1, "score_map")
        self.debug_show(response.view(self.feat_sz, self.feat_sz).cpu(), "heatmap", 1, "score_map_hann")
        removed = out.get("removed_indexes_s")
        if removed and all(r is not None for r in removed):
            masked = masked_search_visualization(x_patch_arr, [r.cpu().numpy() for r in removed])
            self.debug_show(masked, "image", 1, "masked_search")
