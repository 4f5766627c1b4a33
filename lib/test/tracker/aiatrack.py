"""AiATrack test-time tracker (official ``lib/test/tracker/aiatrack.py`` with
``lib/test/parameter/aiatrack.py``, Little-Podi/AiATrack @ cdb3a4e).

Reference memory with feature reuse: every reference is a search-size crop whose encoder output
(memory), target/background embedding, inner position encoding and padding mask are cached once and
reused for every later frame, so per frame only the search region is encoded.

* ``initialize``: the first frame's crop around the initial box is the long-term reference; the
  cache holds it alone and all ``1 + num_short_term_refs`` decoder slots point at it.
* ``track``: crop the search region (factor ``TEST.SEARCH_FACTOR``, size ``TEST.SEARCH_SIZE``)
  around the previous box, decode against the references, predict the box (corner head) and its IoU
  (IoU head on the predicted box). The box is mapped back and clipped (10-pixel margin). If the
  predicted IoU exceeds the threshold, the search frame (its memory and the embedding of the
  predicted box) is appended to the cache, dropping the oldest non-initial entry when the cache is
  full, and the short-term slots are re-chosen evenly over the cache: entries
  ``(len(cache) - 1) * (p + 1) // n`` for ``p = 0..n-1`` (always including the newest).

The per-dataset ``TEST.HYPER`` triple ``[cache_size, num_short_term_refs, iou_threshold]`` is chosen
by the upper-cased dataset name (``LASOT``, ``LASOT_EXT``, ``TRACKINGNET``, ``GOT10K_TEST``, ``NFS``,
``OTB``, ``UAV``), else ``DEFAULT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import cv2
import numpy as np
import torch

from lib.config.aiatrack import hyper_parameters
from lib.models import build_network
from lib.models.aiatrack import target_background_region
from lib.test.tracker.base import BaseTracker, FrameGraphBatching, Preprocessor, TrackerParams, check_init_box
from lib.utils.crop import (clip_box, clip_box_batch, map_box_back, map_box_back_batch, sample_target_batch,
                            scale_crop_boxes_tensor, transform_image_to_crop)
from lib.utils.misc import NestedTensor, autocast_context, wait_for_device
from lib.vis.draw import draw_boxes, draw_text, hstack_images

__all__ = ["AiATrackTracker", "ReferenceEntry", "hyper_parameters"]

@dataclass
class ReferenceEntry:
    """One cached reference frame (feature reuse).

    Attributes:
        mem: ``(HW, 1, C)`` encoder memory.
        emb: ``(HW, 1, C)`` target/background embedding.
        pos: ``(HW, 1, match_dim)`` inner position encoding.
        mask: ``(1, HW)`` padding mask.
        frame_id: frame the reference comes from (0 = initial).
        box: ``[x, y, w, h]`` normalised to the crop (the target region).
        crop: the crop (uint8 RGB), kept only in debug mode.
    """

    mem: torch.Tensor
    emb: torch.Tensor
    pos: torch.Tensor
    mask: torch.Tensor
    frame_id: int
    box: List[float]
    crop: Optional[np.ndarray] = None


class AiATrackTracker(FrameGraphBatching, BaseTracker):
    """AiATrack on a sequence of ``(H, W, 3)`` RGB uint8 frames.

    Parameters: ``TEST.SEARCH_FACTOR`` / ``TEST.SEARCH_SIZE`` (all crops, references included),
    ``TEST.HYPER`` by ``dataset_name`` (see :func:`hyper_parameters`); ``params.checkpoint`` is loaded
    strictly (None keeps random weights: tests and profiling only); ``params.precision`` ``fp16`` /
    ``bf16`` runs the network under autocast. ``params.extra['save_all_boxes']`` also returns the
    unclipped box of every query as ``all_boxes``. Each ``track`` output also holds ``pred_iou``.

    Raises (construction): CheckpointError / FileNotFoundError for a checkpoint that does not fit,
    ValueError for a malformed HYPER entry.
    """

    score_key = "pred_iou"
    # --backend onnxruntime: reference_backbone / reference_encoder / embedding / search.onnx
    onnx_step_names = {"search encoding + decoding + heads": "search"}
    onnx_output_names = {"search encoding + decoding + heads": ("out_dict", "coord_in_crop", "pred_iou", "search_mem",
                                                                "pos_emb", "key_mask"),
                         "reference_encoder": ("refer_mem",), "embedding": ("refer_emb",)}

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        super().__init__(params, dataset_name)
        cfg = self.cfg
        self.network = build_network(params.script, cfg, checkpoint=params.checkpoint, device=self.device)
        self.network.eval()
        self.preprocessor = Preprocessor(self.device, cfg.DATA.MEAN, cfg.DATA.STD)
        self.search_factor = float(cfg.TEST.SEARCH_FACTOR)
        self.search_size = int(cfg.TEST.SEARCH_SIZE)
        self.feat_size = self.search_size // 16
        self.cache_siz, num_short, self.threshold, self.hyper_key = hyper_parameters(cfg, dataset_name)
        self.refer_cap = 1 + num_short
        self.save_all_boxes = bool(params.extra.get("save_all_boxes", False))
        self.state: Optional[List[float]] = None
        self.refer_cache: List[ReferenceEntry] = []
        self.refer_list: List[ReferenceEntry] = []
        self.iou_history: List[float] = []
        self._step = None  # the (accelerated) per-frame network step, built at the first frame
        self.adopt_frame_graph_crop()

    def _autocast(self):
        return autocast_context(self.device, self.params.precision)

    def _embedding(self, box_norm: torch.Tensor) -> torch.Tensor:
        region = target_background_region(box_norm, self.feat_size)[None].to(self.device)
        return self.onnx_step(self.network.refer_embedding, "embedding")(region)

    @torch.no_grad()
    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Encode the first frame as the long-term reference (``info['init_bbox']``, xywh pixels).

        Raises:
            ValueError: a box of zero/negative size, not finite, or outside the image.
        """
        box = check_init_box(info["init_bbox"], image.shape)
        img, mask, resize_factor, crop = self.crop_normalized(self.prepare_frame(image), box, self.search_factor,
                                                              self.search_size, self.preprocessor)
        box_t = torch.tensor(box, dtype=torch.float32)
        crop_sz = torch.tensor([self.search_size, self.search_size], dtype=torch.float32)
        refer_box = transform_image_to_crop(box_t, box_t, resize_factor, crop_sz, normalize=True)
        with self._autocast():
            refer = self.onnx_step(self.network.forward_backbone, "reference_backbone")(NestedTensor(img, mask))
            mem = self.onnx_step(self.network.transformer.run_encoder, "reference_encoder")(
                refer["feat"], refer["mask"], refer["pos"], refer["inr"])
            emb = self._embedding(refer_box)
        entry = ReferenceEntry(mem, emb, refer["inr"], refer["mask"], 0, refer_box.tolist(),
                               self.patch_image(crop) if self.debug else None)
        self.refer_cache = [entry]
        self.refer_list = [entry] * self.refer_cap
        self.iou_history = []
        self.state = list(box)
        self.frame_state_dirty = True
        self.frame_id = 0
        if self.save_all_boxes:
            return {"all_boxes": list(box) * int(self.cfg.MODEL.NUM_OBJECT_QUERIES)}
        return None

    @torch.no_grad()
    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame; returns ``{'target_bbox': [x, y, w, h], 'pred_iou': float}`` (image pixels,
        clipped)."""
        if self.state is None:
            raise RuntimeError("AiATrackTracker.track() called before initialize()")
        H, W = image.shape[:2]
        self.frame_id += 1
        if self.frame_graph_enabled() and self.regular_search_crop(image.shape):
            return self.finish_whole_frame(image, self.run_frame_graph(image))
        self.frame_state_dirty = True  # the state changes on the host: the whole-frame step's row is stale
        img, mask, resize_factor, crop = self.crop_normalized(self.prepare_frame(image), self.state,
                                                              self.search_factor, self.search_size, self.preprocessor)
        refs = self.refer_list
        if self._step is None:
            self._step = self.accelerated(self._search_step, "search encoding + decoding + heads")
        with self._autocast():
            out_dict, coord_in_crop, pred_iou, search_mem, pos_emb, key_mask = self._step(
                img, mask, [r.mem for r in refs], [r.emb for r in refs], [r.pos for r in refs],
                [r.mask for r in refs])
        pred_boxes = out_dict["pred_boxes"].float().view(-1, 4)
        pred_box = pred_boxes.mean(dim=0) * self.search_size / resize_factor  # cxcywh, crop-relative
        box_norm = coord_in_crop[0].float()  # xywh normalised to the crop (the reference's target region)
        # The frame's one device-to-host read: box, predicted IoU and the normalised box together.
        values = torch.cat([pred_box, pred_iou["pred_iou"][0][0][:1].float(), box_norm])
        wait_for_device(self.device)  # sleep, not spin, while the GPU works
        values = values.tolist()
        prev_state = self.state
        self.state = clip_box(map_box_back(values[:4], prev_state, self.search_size, resize_factor), H, W, margin=10)
        predicted_iou = values[4]
        self.iou_history.append(predicted_iou)

        updated = predicted_iou > self.threshold
        if updated:
            with self._autocast():
                emb = self._embedding(box_norm)
            if self.params.cuda_graph:  # the graph step's outputs are buffers the next frame overwrites
                search_mem, pos_emb, key_mask = search_mem.clone(), pos_emb.clone(), key_mask.clone()
            self.add_reference(ReferenceEntry(search_mem, emb, pos_emb, key_mask, self.frame_id, values[5:9],
                                              self.patch_image(crop) if self.debug else None))

        if self.debug_sink is not None:  # attached by the runner / video demo for --debug L > 0
            self._show_debug(image, self.patch_image(crop), predicted_iou, updated)
        result: Dict[str, Any] = {"target_bbox": self.state, "pred_iou": predicted_iou}
        if self.save_all_boxes:
            boxes = (pred_boxes * self.search_size / resize_factor).tolist()
            result["all_boxes"] = [v for b in boxes for v in map_box_back(b, prev_state, self.search_size,
                                                                          resize_factor)]
        return result

    # -- the whole frame in one step (lib/test/tracker/frame_graph.py) -----------------------------------
    supports_frame_graph = True
    frame_values = 9  # the box, the predicted IoU and the box normalised to the crop (xywh)

    def frame_constants(self) -> Dict[str, torch.Tensor]:
        """The references the decoder uses (:attr:`refer_list`), batch dimension first: ``r<i>_mem`` / ``r<i>_emb``
        / ``r<i>_pos`` ``(1, L, C)``, ``r<i>_mask`` ``(1, L)``."""
        out = {}
        for i, ref in enumerate(self.refer_list):
            out[f"r{i}_mem"] = ref.mem.transpose(0, 1).contiguous()
            out[f"r{i}_emb"] = ref.emb.transpose(0, 1).contiguous()
            out[f"r{i}_pos"] = ref.pos.transpose(0, 1).contiguous()
            out[f"r{i}_mask"] = ref.mask
        return out

    def frame_step(self, frames: torch.Tensor, sizes: torch.Tensor, state: torch.Tensor,
                   constants: Dict[str, torch.Tensor]):
        """Search crop with its mask around the previous box, :meth:`_search_step` against the references, then
        the regular path's box arithmetic on tensors: ``(B, 9)`` float64 (box, predicted IoU, box normalised to the
        crop) and, for a new reference, the search memory, inner encoding and mask (batch first; see
        :meth:`BaseTracker.frame_step`)."""
        crop, resize_factor, mask = sample_target_batch(frames, sizes, state, self.search_factor, self.search_size,
                                                        return_mask=True)
        B = resize_factor.shape[0]
        refs = range(sum(1 for key in constants if key.endswith("_mem")))
        seq_first = [[constants[f"r{i}_{k}"].transpose(0, 1) for i in refs] for k in ("mem", "emb", "pos")]
        with self._autocast():
            out_dict, coord_in_crop, pred_iou, search_mem, pos_emb, key_mask = self._search_step(
                self.preprocessor.normalize(crop), mask, *seq_first, [constants[f"r{i}_mask"] for i in refs])
        pred = out_dict["pred_boxes"].float().reshape(B, -1, 4).mean(dim=1)
        pred = scale_crop_boxes_tensor(pred, self.search_size, resize_factor)
        box = clip_box_batch(map_box_back_batch(pred, state, self.search_size, resize_factor), sizes, margin=10)
        iou = pred_iou["pred_iou"].float().reshape(B, -1)[:, :1]
        values = torch.cat([box, iou.to(torch.float64), coord_in_crop.float().reshape(B, 4).to(torch.float64)], 1)
        return values, {"mem": search_mem.transpose(0, 1), "pos": pos_emb.transpose(0, 1), "mask": key_mask}

    def finish_whole_frame(self, image: np.ndarray, values: List[float]) -> Dict[str, Any]:
        """``track``'s result from the whole-frame step's values; the memory update (a host decision on the
        predicted IoU) follows as in the regular path and rewrites the step's references."""
        self.state = [float(v) for v in values[:4]]
        predicted_iou = values[4]
        self.iou_history.append(predicted_iou)
        if predicted_iou > self.threshold:
            extras = self._shared_steps["frame_graph"].row_extras(self)
            with self._autocast():
                emb = self._embedding(torch.tensor(values[5:9], dtype=torch.float32, device=self.device))
            self.add_reference(ReferenceEntry(extras["mem"].transpose(0, 1).clone(), emb,
                                              extras["pos"].transpose(0, 1).clone(), extras["mask"].clone(),
                                              self.frame_id, values[5:9], None))
            self.frame_state_dirty = True  # new references: the step's row is rewritten
        return {"target_bbox": self.state, "pred_iou": predicted_iou}

    def _search_step(self, img, mask, mems, embs, poss, msks):
        """The per-frame network step (tensors in, tensors out; what ``--compile`` / ``--cuda_graph`` wrap):
        encode the search crop ``img`` ``(1, 3, S, S)`` / ``mask`` ``(1, S, S)``, decode it against the cached
        references, run the corner and IoU heads. Returns ``(out_dict, coord_in_crop (1, 4) xywh normalised,
        pred_iou dict, search memory, search inner encoding, search mask)``."""
        search = self.network.forward_backbone(NestedTensor(img, mask))
        out_embed, search_mem, pos_emb, key_mask = self.network.forward_transformer(
            search_dic=search, refer_mem_list=mems, refer_emb_list=embs, refer_pos_list=poss, refer_msk_list=msks)
        out_dict, coord_in_crop = self.network.forward_box_head(out_embed)
        # proposals (1 image, B sequences, 1 proposal, 4): each sequence's box on its own feature map
        pred_iou = self.network.forward_iou_head(out_embed, coord_in_crop.reshape(1, -1, 1, 4))
        return out_dict, coord_in_crop, pred_iou, search_mem, pos_emb, key_mask

    def add_reference(self, entry: ReferenceEntry) -> None:
        """Append ``entry`` to the cache (dropping entry 1, the oldest non-initial one, when full) and
        re-select the short-term references evenly over the cache (official update rule)."""
        if len(self.refer_cache) == self.cache_siz:
            self.refer_cache.pop(1)
        self.refer_cache.append(entry)
        max_idx = len(self.refer_cache) - 1
        ensemble = self.refer_cap - 1
        self.refer_list = [self.refer_cache[0]] + [self.refer_cache[max_idx * (part + 1) // ensemble]
                                                   for part in range(ensemble)]

    def _show_debug(self, image: np.ndarray, crop: np.ndarray, predicted_iou: float, updated: bool) -> None:
        """Views: Tracking, search region, the references the decoder uses (target regions drawn;
        long-term first), the predicted-IoU curve and a summary of the memory."""
        self.debug_show((image, self.state), "Tracking", 1, "Tracking")
        self.debug_show(crop, "image", 1, "search_region")
        self.debug_show(self.reference_mosaic(), "image", 1, "reference_memory")
        self.debug_show(np.asarray(self.iou_history), "lineplot", 1, "predicted_iou")
        self.debug_show({"predicted IoU": f"{predicted_iou:.3f}",
                         "IoU threshold": f"{self.threshold:.2f} ({self.hyper_key})",
                         "memory updated": str(updated),
                         "cache": f"{len(self.refer_cache)}/{self.cache_siz}",
                         "references (frame ids)": ", ".join(str(r.frame_id) for r in self.refer_list)},
                        "info_dict", 1, "memory")

    def reference_mosaic(self, side: int = 160) -> np.ndarray:
        """The decoder's references side by side (``(side, side * n, 3)`` uint8 RGB), each crop
        resized to ``side`` with its target region drawn (red: long-term, green: short-term)."""
        tiles = []
        for i, ref in enumerate(self.refer_list):
            tile = (cv2.resize(ref.crop, (side, side)) if ref.crop is not None
                    else np.zeros((side, side, 3), dtype=np.uint8))
            color = (255, 0, 0) if i == 0 else (0, 255, 0)
            tile = draw_boxes(tile, [[v * side for v in ref.box]], colors=[color], legend=False)
            tiles.append(draw_text(tile, f"#{ref.frame_id}", (4, 16), color=color))
        return hstack_images(tiles)
