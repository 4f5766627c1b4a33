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
from lib.models.layers.candidate_elimination import ce_template_index, generate_mask_cond
from lib.test.tracker.base import BaseTracker, Preprocessor, TrackerParams, check_init_box
from lib.utils.crop import (clip_box, clip_box_batch, hann2d, map_box_back, map_box_back_batch,
                            sample_target_batch, scale_crop_boxes, scale_crop_boxes_tensor, transform_image_to_crop)
from lib.utils.misc import autocast_context, wait_for_device
from lib.vis.draw import hstack_images

__all__ = ["OSTrackTracker", "masked_search_visualization", "whiten_tokens"]


def _concat_outputs(outputs: List[Any]) -> Any:
    """Concatenate per-sample network outputs on dim 0 (tensors; lists/tuples/dicts element-wise; None and
    other values from the first sample)."""
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs, dim=0) if first.ndim > 0 else first
    if isinstance(first, dict):
        return {k: _concat_outputs([o[k] for o in outputs]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_concat_outputs([o[i] for o in outputs]) for i in range(len(first)))
    return first


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

    onnx_step_names = {"network forward": "forward"}  # --backend onnxruntime: forward.onnx

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
        self._pending_step: Optional[Dict[str, Any]] = None
        self.adopt_frame_graph_crop()

    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Crop the template around ``info['init_bbox']`` (xywh pixels) and build the CE template mask.

        Raises:
            ValueError: a box of zero/negative size, not finite, or outside the image.
        """
        box = check_init_box(info["init_bbox"], image.shape)
        self.template, _, resize_factor, z_patch = self.crop_normalized(
            self.prepare_frame(image), box, self.template_factor, self.template_size, self.preprocessor)
        self.z_patch_arr = z_patch  # for the debug view (a device tensor with the device crop)
        self.box_mask_z = self.template_mask(box, resize_factor)
        self.state = list(box)
        self.frame_state_dirty = True  # the whole-frame graph's row must be rewritten
        self.frame_id = 0
        if self.save_all_boxes:
            return {"all_boxes": list(box)}
        return None

    @torch.no_grad()
    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame; returns ``{'target_bbox': [x, y, w, h]}`` (image pixels, clipped).

        ``finish_step(forward_step(prepare_step(image, info)))`` (the batched-step protocol of
        :class:`~lib.test.tracker.base.BaseTracker`)."""
        return self.finish_step(self.forward_step(self.prepare_step(image, info)))

    # -- batched-step protocol ------------------------------------------------------------------------
    supports_batching = True

    def prepare_step(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Crop the search region around the previous box and normalise it.

        Returns:
            ``{'network': {'template' (1, 3, Z, Z), 'search' (1, 3, S, S), mask (1, N_z) or None},
            'resize_factor': float, 'image_size': (H, W), 'prev_state': [x, y, w, h], 'x_patch_arr': the crop
            (an (S, S, 3) uint8 array, or a device tensor with the device crop)}``; kept on the tracker until
            :meth:`finish_step`.

        Raises:
            RuntimeError: called before :meth:`initialize`.
        """
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}.track() called before initialize()")
        self.frame_id += 1
        if self.frame_graph_enabled() and self.regular_search_crop(image.shape):
            # the whole frame runs in forward_batch's FrameGraph: nothing to prepare on the host
            step = {"frame_image": image, "network": None}
            self._pending_step = step
            return step
        # cv2 on the host, or on the device (BaseTracker.use_device_crop: CUDA by default)
        search, _, resize_factor, x_patch = self.crop_normalized(self.prepare_frame(image), self.state,
                                                                 self.search_factor, self.search_size, self.preprocessor)
        step = {"network": self.network_inputs(search), "resize_factor": resize_factor,
                "image_size": tuple(image.shape[:2]), "prev_state": list(self.state), "x_patch_arr": x_patch,
                "image": image if self.debug_sink is not None else None}
        self._pending_step = step
        return step

    def network_inputs(self, search: torch.Tensor) -> Dict[str, Any]:
        """Keyword arguments of the network call for the normalised search crop ``(1, 3, S, S)``: the stored
        template and CE template mask (None without CE or for ``CE_TEMPLATE_RANGE`` ALL)."""
        return {"template": self.template, "search": search, "ce_template_mask": self.box_mask_z}

    def network_forward(self, network_inputs: Dict[str, Any]) -> Dict[str, Any]:
        """OSTrack on a batch of B search regions (with B = 1: the single-sequence step).

        Candidate elimination is per sample (a per-row sort and gather, with the one keep count
        ``ceil(ratio * L_s)`` that every sample shares), so in a batch each sample keeps the tokens it would
        keep alone. For CTR_POINT / CTR_REC the template rows come as ``(B, K)`` indices (static shapes, no
        device read). A GT_BOX bool mask selects template rows with one boolean index reshaped to
        ``(B, H, rows, L_s)``, so every sample must select the same number of template tokens: always true for
        CTR_POINT / CTR_REC (fixed cells) and ALL (no mask); for GT_BOX (box-dependent, no official config)
        a batch whose masks differ in count runs one sample at a time (outputs concatenated). Only that GT_BOX
        check reads from the device.
        """
        mask = network_inputs.get("ce_template_mask")
        if (mask is not None and mask.shape[0] > 1 and mask.dtype == torch.bool
                and self.cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE not in ("CTR_POINT", "CTR_REC")):
            counts = mask.sum(dim=1)
            if bool((counts != counts[0]).any()):
                return self._decode(_concat_outputs([
                    self.network(**{k: (v[i:i + 1] if isinstance(v, torch.Tensor) else v)
                                    for k, v in network_inputs.items()})
                    for i in range(mask.shape[0])]))
        return self._decode(self.network(**network_inputs))

    def _decode(self, raw: Dict[str, Any]) -> Dict[str, Any]:
        """Device-side post-processing, part of the (captured) step: Hann window on the float32 score map and
        box decoding at its maximum (``tracked_boxes`` ``(B, queries, 4)`` cxcywh normalised to the crop, float32;
        the network's own ``pred_boxes``, at the unwindowed maximum, stay as they are),
        outside autocast as the official tracker computes them."""
        out = dict(raw)
        with torch.autocast(device_type=torch.device(self.device).type, enabled=False):
            out["score_map"] = raw["score_map"].float()
            out["response"] = self.output_window * out["score_map"]
            boxes = self.network.box_head.cal_bbox(out["response"], raw["size_map"].float(), raw["offset_map"].float())
            out["tracked_boxes"] = boxes.view(out["score_map"].shape[0], -1, 4)
        return out

    def postprocess_batch(self, raw: Dict[str, Any], inputs_list: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        """After the step's device-side Hann window and box decoding (:meth:`_decode`), ONE device-to-host copy of
        the ``(B, 4)`` boxes (cxcywh normalised to the search crop, float32) as ``boxes_norm`` (numpy). The
        other entries (``score_map``, ``response`` = windowed score map, ``size_map``, ``offset_map``,
        ``removed_indexes_s``, ...) stay on the device for the debug views."""
        out = dict(raw)
        # the one device read of the step: (B, queries, 4) float32 (tolist of float32 values is exact)
        wait_for_device(self.device)  # sleep, not spin, while the GPU works
        out["boxes_norm"] = np.asarray(raw["tracked_boxes"].tolist(), dtype=np.float32)
        return out

    def finish_step(self, outputs: Dict[str, Any]) -> Dict[str, Any]:
        """Map the decoded box back to the image, clip it (10-pixel margin), update the state, show the debug
        views. The box arithmetic (``box * SEARCH_SIZE / resize_factor`` in float32, then float64 mapping) runs
        on the host from the pre-read ``boxes_norm``, identically for a batch of 1 and of B.

        Raises:
            RuntimeError: no step prepared.
        """
        step = getattr(self, "_pending_step", None)
        if step is None:
            raise RuntimeError(f"{type(self).__name__}.finish_step() without a prepare_step()")
        self._pending_step = None
        if "frame_box" in outputs:  # the whole-frame graph mapped, clipped and stored the box on the device
            self.state = [float(v) for v in outputs["frame_box"]]
            return {"target_bbox": self.state}
        self.frame_state_dirty = True  # the state changes on the host: the graph's row is stale
        H, W = step["image_size"]
        resize_factor = step["resize_factor"]
        prev_state = step["prev_state"]
        boxes_norm = outputs["boxes_norm"]
        if isinstance(boxes_norm, torch.Tensor):  # not pre-read by postprocess_batch
            boxes_norm = boxes_norm.detach().tolist()
        # float32 host arithmetic, bit for bit the official torch float32 ops on the network's device (mean over
        # queries, * S, / factor: scale_crop_boxes rounds the division as that device does)
        pred_boxes = np.asarray(boxes_norm, dtype=np.float32).reshape(-1, 4)
        device_type = torch.device(self.device).type
        pred_box = scale_crop_boxes(pred_boxes.mean(axis=0, dtype=np.float32), self.search_size, resize_factor,
                                    device_type).tolist()  # cxcywh, crop-relative
        self.state = clip_box(map_box_back(pred_box, prev_state, self.search_size, resize_factor), H, W, margin=10)

        if self.debug_sink is not None:  # attached by the runner / video demo for --debug L > 0
            self._show_debug(step["image"], self.patch_image(step["x_patch_arr"]), outputs["score_map"],
                             outputs["response"], outputs)
        result: Dict[str, Any] = {"target_bbox": self.state}
        if self.save_all_boxes:
            boxes = scale_crop_boxes(pred_boxes, self.search_size, resize_factor, device_type).tolist()
            result["all_boxes"] = [v for b in boxes for v in map_box_back(b, prev_state, self.search_size,
                                                                          resize_factor)]
        return result

    # -- the whole frame in one CUDA graph (lib/test/tracker/frame_graph.py) -------------------------------------
    supports_frame_graph = True

    def frame_graph_allowed(self) -> bool:
        """Not with a boolean GT_BOX template mask (box-dependent token counts need a host read)."""
        return not (isinstance(self.box_mask_z, torch.Tensor) and self.box_mask_z.dtype == torch.bool)

    def frame_constants(self) -> Dict[str, Optional[torch.Tensor]]:
        """The per-sequence tensors of the network call, ``(1, ...)`` on the device (rows of the frame graph)."""
        return {"template": self.template, "ce_template_mask": self.box_mask_z}

    def frame_step(self, frames: torch.Tensor, sizes: torch.Tensor, state: torch.Tensor,
                   constants: Dict[str, Optional[torch.Tensor]]) -> torch.Tensor:
        """The whole tracking step of B sequences on the device, static shapes and no host reads (captured by
        :class:`~lib.test.tracker.frame_graph.FrameGraph`): search crop around each previous box
        (:func:`~lib.utils.crop.sample_target_batch`), normalisation, network under the precision's autocast,
        Hann window, arg-max and box decoding (:meth:`_decode`), then the host path's box arithmetic on tensors
        (mean over queries and scaling in float32, mapping back and clipping with the 10-pixel margin in float64).

        Args:
            frames: ``(B, N)`` uint8 flattened ``(H, W, 3)`` frames; sizes: ``(B, 2)`` int64 ``(H, W)``.
            state: ``(B, 4)`` float64 previous boxes, xywh image pixels.
            constants: :meth:`frame_constants` entries batched to ``(B, ...)``.

        Returns:
            ``(B, 4)`` float64 new boxes, xywh image pixels (clipped): ``track``'s boxes.
        """
        crop, resize_factor = sample_target_batch(frames, sizes, state, self.search_factor, self.search_size)
        inputs = dict(self.network_inputs(self.preprocessor.normalize(crop)))
        inputs.update({k: v for k, v in constants.items() if k in inputs})
        with autocast_context(self.device, self.params.precision):
            raw = self.network_forward(inputs)
        boxes = raw["tracked_boxes"]  # (B, queries, 4) cxcywh normalised to the crop, float32
        pred = scale_crop_boxes_tensor(boxes.mean(dim=1), self.search_size, resize_factor)
        return clip_box_batch(map_box_back_batch(pred, state, self.search_size, resize_factor), sizes, margin=10)

    def reset_sequence_state(self) -> None:
        """Forget the sequence: box, template, template mask, pending step."""
        super().reset_sequence_state()
        self.state = None
        self.template = None
        self.box_mask_z = None
        self.z_patch_arr = None
        self._pending_step = None

    def template_box_in_crop(self, box: Sequence[float], resize_factor: float) -> torch.Tensor:
        """The first-frame box inside the template crop: ``(1, 4)`` xywh normalised to the crop side, on the
        tracker's device (official ``transform_bbox_to_crop``)."""
        box_t = torch.tensor(box, dtype=torch.float32)
        crop_sz = torch.tensor([self.template_size, self.template_size], dtype=torch.float32)
        return transform_image_to_crop(box_t, box_t, resize_factor, crop_sz, normalize=True).view(1, 4).to(self.device)

    def template_mask(self, box: Sequence[float], resize_factor: float) -> Optional[torch.Tensor]:
        """The template selection passed with every search region when the backbone eliminates candidates
        (else None): for the fixed official ranges CTR_POINT / CTR_REC the ``(1, K)`` int64 indices of the
        mask's cells (:func:`ce_template_index`, computed here once per sequence: the per-frame step then has
        static shapes, captures into a CUDA graph and exports without NonZero, with bit-identical scores);
        for GT_BOX (box-dependent, no official config) the ``(1, N_z)`` bool mask, so that a batch of
        sequences whose boxes cover different numbers of cells still runs (one sample at a time); ALL: None."""
        if not self.cfg.MODEL.BACKBONE.CE_LOC:
            return None
        mask = generate_mask_cond(self.cfg, 1, self.device, self.template_box_in_crop(box, resize_factor))
        if self.cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE in ("CTR_POINT", "CTR_REC"):
            return ce_template_index(mask)
        return mask

    def forward_network(self, search: torch.Tensor) -> Dict[str, Any]:
        """One forward pass on the normalised search crop ``(1, 3, S, S)`` with the stored template."""
        return self.network_forward(self.network_inputs(search))

    def _show_debug(self, image, x_patch_arr, score_map, response, out) -> None:
        """The official visdom views: Tracking, search_region, template, score_map, score_map_hann, masked_search."""
        self.debug_show((image, self.state), "Tracking", 1, "Tracking")
        self.debug_show(x_patch_arr, "image", 1, "search_region")
        self.debug_show(self.patch_image(self.z_patch_arr), "image", 1, "template")
        self.debug_show(score_map.view(self.feat_sz, self.feat_sz).cpu(), "heatmap", 1, "score_map")
        self.debug_show(response.view(self.feat_sz, self.feat_sz).cpu(), "heatmap", 1, "score_map_hann")
        removed = out.get("removed_indexes_s")
        if removed and all(r is not None for r in removed):
            masked = masked_search_visualization(x_patch_arr, [r.cpu().numpy() for r in removed])
            self.debug_show(masked, "image", 1, "masked_search")
