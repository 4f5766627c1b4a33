"""STARK-S test-time tracker: one template (first frame), search region around the previous box.

Steps (official ``lib/test/tracker/stark_s.py``):

* ``initialize``: template crop of side ``ceil(sqrt(w*h) * TEST.TEMPLATE_FACTOR)`` resized to
  ``TEST.TEMPLATE_SIZE``; its backbone output (tokens, mask, position encoding) is cached.
* ``track``: search crop (``TEST.SEARCH_FACTOR``, ``TEST.SEARCH_SIZE``) centred on the previous box;
  backbone; tokens ``[template, search]``; transformer and corner head; the predicted box (normalised
  cxcywh, mean over queries) is scaled to image pixels, mapped back around the previous centre and
  clipped to the image with a 10-pixel margin.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from lib.models import build_network
from lib.test.tracker.base import BaseTracker, Preprocessor, TrackerParams, check_init_box
from lib.utils.crop import clip_box, map_box_back, sample_target
from lib.utils.merge import merge_template_search
from lib.utils.misc import NestedTensor, autocast_context

__all__ = ["STARKSTracker", "CLIP_MARGIN"]

#: pixels of the box kept inside the image by ``clip_box`` (official ``margin=10``).
CLIP_MARGIN = 10


class STARKSTracker(BaseTracker):
    """STARK-S tracker.

    Args:
        params: :class:`~lib.test.tracker.base.TrackerParams` of script ``stark_s`` (``params.checkpoint``
            None builds random weights: tests and speed profiling only). ``params.extra['save_all_boxes']``
            adds every query's box to the output as ``all_boxes``.
        dataset_name: benchmark name (unused by STARK-S; STARK-ST picks its update interval from it).

    Raises:
        lib.utils.checkpoint.CheckpointError: a checkpoint that does not fit the network.
    """

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        super().__init__(params, dataset_name)
        self.network = build_network(params.script, params.cfg, checkpoint=params.checkpoint, device=self.device)
        self.network.eval()
        test = self.cfg.TEST
        self.template_factor = float(test.TEMPLATE_FACTOR)
        self.template_size = int(test.TEMPLATE_SIZE)
        self.search_factor = float(test.SEARCH_FACTOR)
        self.search_size = int(test.SEARCH_SIZE)
        self.preprocessor = Preprocessor(self.device)
        self.save_all_boxes = bool(params.extra.get("save_all_boxes", False))
        self.num_queries = int(self.cfg.MODEL.NUM_OBJECT_QUERIES)
        self.run_cls_head = False  # STARK-ST also runs the score head
        self.state: Optional[List[float]] = None
        self.z_dict1: Dict[str, torch.Tensor] = {}
        self.z_patch_arr: Optional[np.ndarray] = None  # the first template crop (debug views)

    # -- helpers shared with STARK-ST ---------------------------------------------------------------
    def _autocast(self):
        return autocast_context(self.device, self.params.precision)

    def _crop(self, image: np.ndarray, box: List[float], factor: float,
              size: int) -> Tuple[NestedTensor, float, np.ndarray]:
        """Crop around ``box`` (xywh pixels) and normalise: ``(NestedTensor (1,3,S,S) + mask, resize_factor,
        the (S, S, 3) uint8 crop)``."""
        patch, resize_factor, amask = sample_target(image, box, factor, output_sz=size)
        img, mask = self.preprocessor(patch, amask)
        return NestedTensor(img, mask), resize_factor, patch

    @torch.no_grad()
    def _template_features(self, image: np.ndarray, box: List[float]) -> Tuple[Dict[str, torch.Tensor], np.ndarray]:
        """Backbone output of the template crop around ``box`` (``{'feat', 'mask', 'pos'}``, 64 tokens) and
        the crop itself (``(S, S, 3)`` uint8)."""
        template, _, patch = self._crop(image, box, self.template_factor, self.template_size)
        with self._autocast():
            return self.network.forward_backbone(template), patch

    def _map_prediction(self, pred_boxes: torch.Tensor, resize_factor: float, H: int, W: int) -> List[float]:
        """Mean of the ``(N, 4)`` normalised cxcywh boxes -> clipped xywh box in image pixels."""
        pred_box = (pred_boxes.float().mean(dim=0) * self.search_size / resize_factor).tolist()
        return clip_box(map_box_back(pred_box, self.state, self.search_size, resize_factor), H, W, margin=CLIP_MARGIN)

    def _all_boxes(self, pred_boxes: torch.Tensor, resize_factor: float) -> List[float]:
        """Every query's box mapped back (not clipped), flattened to ``4N`` values (``save_all_boxes``).

        As in the official tracker this runs after the state update, so the boxes are placed relative to
        the centre of the NEW state instead of the crop centre (an official quirk, kept so that the saved
        files match; ``target_bbox`` is not affected).
        """
        scaled = pred_boxes.float() * self.search_size / resize_factor
        return [v for box in scaled.tolist() for v in map_box_back(box, self.state, self.search_size, resize_factor)]

    def _show_debug(self, image: np.ndarray, x_patch: np.ndarray) -> None:
        """Views: Tracking (the frame and the box), template, search_region (STARK has no score map: its
        corner head gives the box directly)."""
        self.debug_show((image, self.state), "Tracking", 1, "Tracking")
        self.debug_show(self.z_patch_arr, "image", 1, "template")
        self.debug_show(x_patch, "image", 1, "search_region")

    # -- hooks STARK-ST overrides ----------------------------------------------------------------------
    def _templates(self) -> List[Dict[str, torch.Tensor]]:
        """Cached template features in token order (search goes last)."""
        return [self.z_dict1]

    def _on_new_state(self, image: np.ndarray, out_dict: Dict[str, torch.Tensor]) -> Dict[str, Any]:
        """Work after the box of a frame is known; returns extra output fields (none for STARK-S)."""
        return {}

    # -- tracking API -------------------------------------------------------------------------------
    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Cache the template features of the first frame.

        Args:
            image: ``(H, W, 3)`` RGB uint8.
            info: ``{'init_bbox': [x, y, w, h]}`` in pixels.

        Returns:
            ``{'all_boxes': ...}`` with ``save_all_boxes``, else None.

        Raises:
            ValueError: an invalid initial box (see :func:`check_init_box`).
        """
        box = check_init_box(info["init_bbox"], image.shape)
        self.z_dict1, self.z_patch_arr = self._template_features(image, box)
        self.state = box
        self.frame_id = 0
        if self.save_all_boxes:
            return {"all_boxes": box * self.num_queries}
        return None

    @torch.no_grad()
    def _run_search(self, image: np.ndarray) -> Tuple[Dict[str, torch.Tensor], float, np.ndarray]:
        """Search crop around the current state, backbone, transformer and heads: ``(out_dict, resize_factor,
        search crop)``."""
        search, resize_factor, x_patch = self._crop(image, self.state, self.search_factor, self.search_size)
        heads = {"run_box_head": True, "run_cls_head": True} if self.run_cls_head else {"run_box_head": True}
        with self._autocast():
            x_dict = self.network.forward_backbone(search)
            seq_dict = merge_template_search(self._templates() + [x_dict])
            out_dict, _, _ = self.network.forward_transformer(seq_dict=seq_dict, **heads)
        return out_dict, resize_factor, x_patch

    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame.

        Returns:
            ``{'target_bbox': [x, y, w, h]}`` in image pixels (plus ``all_boxes`` with ``save_all_boxes``).

        Raises:
            RuntimeError: ``initialize`` was not called.
        """
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}: call initialize() before track()")
        H, W = image.shape[:2]
        self.frame_id += 1
        out_dict, resize_factor, x_patch = self._run_search(image)
        pred_boxes = out_dict["pred_boxes"].view(-1, 4)
        self.state = self._map_prediction(pred_boxes, resize_factor, H, W)
        out = {"target_bbox": self.state, **self._on_new_state(image, out_dict)}
        if self.debug_sink is not None:  # attached by the runner / video demo for --debug L > 0
            self._show_debug(image, x_patch)
        if self.save_all_boxes:
            out["all_boxes"] = self._all_boxes(pred_boxes, resize_factor)
        return out
