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
from lib.test.tracker.base import BaseTracker, FrameGraphBatching, Preprocessor, TrackerParams, check_init_box
from lib.utils.crop import (clip_box, clip_box_batch, map_box_back, map_box_back_batch, sample_target_batch,
                            scale_crop_boxes_tensor)
from lib.utils.merge import merge_template_search
from lib.utils.misc import NestedTensor, autocast_context, wait_for_device

__all__ = ["STARKSTracker", "CLIP_MARGIN"]

#: pixels of the box kept inside the image by ``clip_box`` (official ``margin=10``).
CLIP_MARGIN = 10


class STARKSTracker(FrameGraphBatching, BaseTracker):
    """STARK-S tracker.

    Args:
        params: :class:`~lib.test.tracker.base.TrackerParams` of script ``stark_s`` (``params.checkpoint``
            None builds random weights: tests and speed profiling only). ``params.extra['save_all_boxes']``
            adds every query's box to the output as ``all_boxes``.
        dataset_name: benchmark name (unused by STARK-S; STARK-ST picks its update interval from it).

    Raises:
        lib.utils.checkpoint.CheckpointError: a checkpoint that does not fit the network.
    """

    onnx_step_names = {"search backbone + transformer": "search"}  # --backend onnxruntime: search.onnx

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
        self._step = None  # the (accelerated) per-frame network step, built at the first frame
        self.adopt_frame_graph_crop()

    # -- helpers shared with STARK-ST ---------------------------------------------------------------
    def _autocast(self):
        return autocast_context(self.device, self.params.precision)

    def _crop(self, frame, box: List[float], factor: float, size: int) -> Tuple[NestedTensor, float, Any]:
        """Crop around ``box`` (xywh pixels) and normalise (on the device on CUDA, see
        :meth:`~lib.test.tracker.base.BaseTracker.crop_normalized`): ``(NestedTensor (1,3,S,S) + mask,
        resize_factor, the crop for debug views)``."""
        img, mask, resize_factor, patch = self.crop_normalized(frame, box, factor, size, self.preprocessor)
        return NestedTensor(img, mask), resize_factor, patch

    @torch.no_grad()
    def _template_features(self, frame, box: List[float]) -> Tuple[Dict[str, torch.Tensor], Optional[np.ndarray]]:
        """Backbone output of the template crop around ``box`` (``{'feat', 'mask', 'pos'}``, 64 tokens) and
        the crop itself (``(S, S, 3)`` uint8; only kept with a debug level, the device crop stays there
        otherwise)."""
        template, _, patch = self._crop(frame, box, self.template_factor, self.template_size)
        with self._autocast():
            feats = self.onnx_step(self.network.forward_backbone, "template")(template)
        return feats, self._keep_patch(patch)

    def _keep_patch(self, patch) -> Optional[np.ndarray]:
        """A crop kept for the debug views: the cv2 crop as it is; a device crop only with a debug level
        (copying it to the host would cost a transfer per crop)."""
        if isinstance(patch, np.ndarray):
            return patch
        return self.patch_image(patch) if self.debug else None

    def _frame_values(self, out_dict: Dict[str, torch.Tensor], resize_factor: float) -> torch.Tensor:
        """The per-frame numbers the host needs, as one device tensor read in ONE transfer: the mean of the
        ``(N, 4)`` normalised cxcywh boxes scaled to image pixels (crop-relative). STARK-ST appends its
        confidence."""
        pred_boxes = out_dict["pred_boxes"].view(-1, 4)
        return pred_boxes.float().mean(dim=0) * self.search_size / resize_factor

    def _map_prediction(self, pred_box: List[float], resize_factor: float, H: int, W: int) -> List[float]:
        """Crop-relative cxcywh box (image-scale pixels) -> clipped xywh box in image pixels."""
        return clip_box(map_box_back(pred_box, self.state, self.search_size, resize_factor), H, W, margin=CLIP_MARGIN)

    def _all_boxes(self, pred_boxes: torch.Tensor, resize_factor: float) -> List[float]:
        """Every query's box mapped back (not clipped), flattened to ``4N`` values (``save_all_boxes``).

        As in the official tracker this runs after the state update, so the boxes are placed relative to
        the centre of the NEW state instead of the crop centre (an official quirk, kept so that the saved
        files match; ``target_bbox`` is not affected).
        """
        scaled = pred_boxes.float() * self.search_size / resize_factor
        return [v for box in scaled.tolist() for v in map_box_back(box, self.state, self.search_size, resize_factor)]

    def _show_debug(self, image: np.ndarray, x_patch) -> None:
        """Views: Tracking (the frame and the box), template, search_region (STARK has no score map: its
        corner head gives the box directly)."""
        self.debug_show((image, self.state), "Tracking", 1, "Tracking")
        self.debug_show(self.z_patch_arr, "image", 1, "template")
        self.debug_show(self.patch_image(x_patch), "image", 1, "search_region")

    # -- the whole frame in one step (lib/test/tracker/frame_graph.py) -----------------------------------
    supports_frame_graph = True

    def frame_constants(self) -> Dict[str, torch.Tensor]:
        """The cached template features, batch dimension first: ``z<i>_feat`` / ``z<i>_pos`` ``(1, L, C)``,
        ``z<i>_mask`` ``(1, L)`` per template (token order of :meth:`_templates`)."""
        out = {}
        for i, z in enumerate(self._templates()):
            out[f"z{i}_feat"] = z["feat"].transpose(0, 1).contiguous()
            out[f"z{i}_mask"] = z["mask"]
            out[f"z{i}_pos"] = z["pos"].transpose(0, 1).contiguous()
        return out

    def frame_step(self, frames: torch.Tensor, sizes: torch.Tensor, state: torch.Tensor,
                   constants: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Search crop with its mask around each previous box (:func:`~lib.utils.crop.sample_target_batch`),
        normalisation, :meth:`_search_step` on the batched template features, then :meth:`_frame_values_batch`
        and the host path's mapping back and clipping on tensors: ``(B, frame_values)`` float64 (see
        :meth:`BaseTracker.frame_step`)."""
        crop, resize_factor, mask = sample_target_batch(frames, sizes, state, self.search_factor, self.search_size,
                                                        return_mask=True)
        count = sum(1 for key in constants if key.endswith("_feat"))
        templates = [{"feat": constants[f"z{i}_feat"].transpose(0, 1), "mask": constants[f"z{i}_mask"],
                      "pos": constants[f"z{i}_pos"].transpose(0, 1)} for i in range(count)]
        with self._autocast():
            out_dict = self._search_step(self.preprocessor.normalize(crop), mask, templates)
        values = self._frame_values_batch(out_dict, resize_factor)
        box = clip_box_batch(map_box_back_batch(values[:, :4], state, self.search_size, resize_factor), sizes,
                             margin=CLIP_MARGIN)
        return torch.cat([box, values[:, 4:].to(torch.float64)], dim=1)

    def finish_whole_frame(self, image: np.ndarray, values: List[float]) -> Dict[str, Any]:
        """``track``'s result from the whole-frame step's values (box, then STARK-ST's confidence)."""
        self.state = [float(v) for v in values[:4]]
        return {"target_bbox": self.state, **self._on_new_state(image, values)}

    def _frame_values_batch(self, out_dict: Dict[str, torch.Tensor], resize_factor: torch.Tensor) -> torch.Tensor:
        """:meth:`_frame_values` of B sequences with ``(B,)`` resize factors on the device: ``(B, 4)`` float32
        (scaled as the official ``/ resize_factor`` on this device: :func:`~lib.utils.crop.scale_crop_boxes_tensor`)."""
        B = resize_factor.shape[0]
        boxes = out_dict["pred_boxes"].reshape(B, -1, 4).float().mean(dim=1)
        return scale_crop_boxes_tensor(boxes, self.search_size, resize_factor)

    # -- hooks STARK-ST overrides ----------------------------------------------------------------------
    def _templates(self) -> List[Dict[str, torch.Tensor]]:
        """Cached template features in token order (search goes last)."""
        return [self.z_dict1]

    def _on_new_state(self, frame, values: List[float]) -> Dict[str, Any]:
        """Work after the box of a frame is known (``values``: :meth:`_frame_values` read on the host; ``frame``:
        :meth:`prepare_frame`'s result); returns extra output fields (none for STARK-S)."""
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
        self.z_dict1, self.z_patch_arr = self._template_features(self.prepare_frame(image), box)
        self.state = box
        self.frame_state_dirty = True
        self.frame_id = 0
        if self.save_all_boxes:
            return {"all_boxes": box * self.num_queries}
        return None

    @torch.no_grad()
    def _run_search(self, frame) -> Tuple[Dict[str, torch.Tensor], float, Any]:
        """Search crop around the current state, backbone, transformer and heads: ``(out_dict, resize_factor,
        search crop)``."""
        search, resize_factor, x_patch = self._crop(frame, self.state, self.search_factor, self.search_size)
        if self._step is None:
            self._step = self.accelerated(self._search_step, "search backbone + transformer")
        with self._autocast():
            out_dict = self._step(search.tensors, search.mask, self._templates())
        return out_dict, resize_factor, x_patch

    def _search_step(self, img: torch.Tensor, mask: torch.Tensor,
                     templates: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """The per-frame network step (tensors in, tensors out; what ``--compile`` / ``--cuda_graph`` wrap):
        search backbone on ``img`` ``(1, 3, S, S)`` / ``mask`` ``(1, S, S)``, tokens ``[templates..., search]``
        (the templates' cached backbone outputs), transformer and heads -> ``out_dict``."""
        heads = {"run_box_head": True, "run_cls_head": True} if self.run_cls_head else {"run_box_head": True}
        x_dict = self.network.forward_backbone(NestedTensor(img, mask))
        seq_dict = merge_template_search(list(templates) + [x_dict])
        out_dict, _, _ = self.network.forward_transformer(seq_dict=seq_dict, **heads)
        return out_dict

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
        if self.frame_graph_enabled() and self.regular_search_crop(image.shape):
            # crop to clipped box in one step (lib/test/tracker/frame_graph.py)
            return self.finish_whole_frame(image, self.run_frame_graph(image))
        self.frame_state_dirty = True  # the state changes on the host: the whole-frame step's row is stale
        frame = self.prepare_frame(image)
        out_dict, resize_factor, x_patch = self._run_search(frame)
        values = self._frame_values(out_dict, resize_factor)
        wait_for_device(self.device)  # sleep, not spin, while the GPU works
        values = values.tolist()  # the frame's one device-to-host read
        self.state = self._map_prediction(values[:4], resize_factor, H, W)
        out = {"target_bbox": self.state, **self._on_new_state(frame, values)}
        if self.debug_sink is not None:  # attached by the runner / video demo for --debug L > 0
            self._show_debug(image, x_patch)
        if self.save_all_boxes:
            out["all_boxes"] = self._all_boxes(out_dict["pred_boxes"].view(-1, 4), resize_factor)
        return out
