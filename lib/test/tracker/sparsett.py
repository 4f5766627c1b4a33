"""SparseTT test-time tracker (SiamRPN/SiamFC++-style post-processing of 19x19 candidates).

Source: fzh0917/SparseTT ``videoanalyst/pipeline/tracker_impl/sparsett_tracker.py`` (``SparseTTTracker``),
``videoanalyst/pipeline/utils/{crop,bbox}.py``. Per frame:

1. SiamFC crop of the search region around the previous centre (context 0.5, template 127, search 289,
   frame-mean padding), ImageNet normalisation, ``track`` phase with the template memory computed once at
   initialisation (no template update);
2. scale/ratio penalty ``exp(-(r_c * s_c - 1) * penalty_k)`` on the fused score, then the cosine window
   ``pscore * (1 - window_influence) + hanning(19) x hanning(19) * window_influence``, argmax;
3. new centre = the chosen box centre (no smoothing); new size = ``(1 - lr) * old + lr * predicted`` with
   ``lr = penalty * score * test_lr`` at the chosen point;
4. clamp the centre into the frame and the size into ``[10, W] x [10, H]``;
5. output ``(cx - (w - 1) / 2, cy - (h - 1) / 2, w, h)`` (video_analyst's "+1" pixel convention).

``test_lr``, ``window_influence`` and ``penalty_k`` come from ``TEST.HYPER`` of the config, chosen by the
runner's dataset name (:func:`lib.config.sparsett.select_test_hyper`). The numpy dtypes follow the official
code (float32 boxes and scores, float64 window), so results match it to float rounding.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch

from lib.config.sparsett import select_test_hyper
from lib.models import build_network
from lib.test.tracker.base import BaseTracker, FrameGraphBatching, Preprocessor, TrackerParams, check_init_box
from lib.utils.crop import (divide_as_by_number, siamfc_crop, siamfc_geometry, siamfc_geometry_tensor, sqrt_float32,
                            warp_subwindow_batch, warp_subwindow_tensor)
from lib.utils.misc import autocast_context, wait_for_device

__all__ = ["SparseTTTracker", "get_tracker_class"]


def _xywh_to_cxywh(box) -> np.ndarray:
    b = np.asarray(box, dtype=np.float32)
    return np.array([b[0] + (b[2] - 1) / 2, b[1] + (b[3] - 1) / 2, b[2], b[3]], dtype=np.float32)


def _cxywh_to_xywh(box) -> np.ndarray:
    b = np.asarray(box, dtype=np.float32)
    return np.array([b[0] - (b[2] - 1) / 2, b[1] - (b[3] - 1) / 2, b[2], b[3]], dtype=np.float32)


def _change(r: torch.Tensor) -> torch.Tensor:
    """The official penalty's change ratio ``max(r, 1 / r)``."""
    return torch.maximum(r, 1.0 / r)


def _padded_area(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``(w + p) * (h + p)`` with the context pad ``p = (w + h) / 2`` (the official ``sz``)."""
    pad = (w + h) * 0.5
    return (w + pad) * (h + pad)


def _xyxy_to_cxywh_t(b: torch.Tensor) -> torch.Tensor:
    """``(N, 4)`` xyxy -> cxywh with video_analyst's "+1" width (float32, on the boxes' device)."""
    return torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                        b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1], dim=1)


class SparseTTTracker(FrameGraphBatching, BaseTracker):
    """The SparseTT tracker of the runner (``tracking/test.py sparsett sparsett_swin_fulldata --dataset_name otb``).

    Args:
        params: :class:`~lib.test.tracker.base.TrackerParams` of the ``sparsett`` script (config, checkpoint,
            device, debug, precision).
        dataset_name: runner dataset (``otb``, ``uav``, ``lasot``, ``got10k_test``, ``trackingnet`` ...): selects
            ``TEST.HYPER``; None or an unknown name uses ``HYPER.DEFAULT``.

    ``initialize(image, {'init_bbox': [x, y, w, h]})`` / ``track(image) -> {'target_bbox': [x, y, w, h],
    'best_score': float}`` on ``(H, W, 3)`` RGB uint8 frames (the official code crops BGR frames and converts
    to RGB when normalising: the same network input).
    """

    score_key = "best_score"
    onnx_step_names = {"phase 'track'": "track"}  # --backend onnxruntime: feature.onnx and track.onnx
    onnx_output_names = {"feature": ("enc_output",), "phase 'track'": ("score", "bbox", "extra")}

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        super().__init__(params, dataset_name)
        t = self.cfg.TEST
        self.hyper = select_test_hyper(self.cfg, dataset_name)
        self.z_size, self.x_size = int(t.TEMPLATE_SIZE), int(t.SEARCH_SIZE)
        self.context_amount = float(t.CONTEXT_AMOUNT)
        self.score_size, self.total_stride = int(t.SCORE_SIZE), int(t.TOTAL_STRIDE)
        self.min_wh = (float(t.MIN_W), float(t.MIN_H))
        if t.WINDOWING == "cosine":
            window = np.outer(np.hanning(self.score_size), np.hanning(self.score_size)).reshape(-1)
        elif t.WINDOWING == "uniform":
            window = np.ones(self.score_size * self.score_size)
        else:
            raise ValueError(f"TEST.WINDOWING must be 'cosine' or 'uniform', got '{t.WINDOWING}'")
        # float64 as the official numpy window (the windowed score is float64 there too), on the device.
        self.window = torch.from_numpy(window).to(self.device)
        # Official: BGR crop -> mmcv imnormalize(crop, mean, std, to_rgb) when NORMALIZE, else the raw BGR crop.
        # Frames here are RGB, so a BGR network input is the channel-reversed crop.
        self.bgr_input = not (t.NORMALIZE and t.TO_RGB)
        mean = np.asarray(t.NORM_MEAN, dtype=np.float64) / 255.0 if t.NORMALIZE else np.zeros(3)
        std = np.asarray(t.NORM_STD, dtype=np.float64) / 255.0 if t.NORMALIZE else np.full(3, 1 / 255.0)
        self.preprocessor = Preprocessor(self.device, mean=tuple(mean), std=tuple(std))
        self.network = build_network(params.script, self.cfg, checkpoint=params.checkpoint, device=self.device)
        self.network.eval()
        self.memory = None
        self.state = None
        self.avg_chans = None
        self.frame_size = None
        self.z_patch_arr = None
        self._step = None  # the (accelerated) per-frame network step, built at the first frame
        self.save_all_boxes = bool(params.extra.get("save_all_boxes", False))
        self.adopt_frame_graph_crop()

    # -- helpers ------------------------------------------------------------------------------
    def _autocast(self):
        return autocast_context(self.device, self.params.precision)

    def _to_tensor(self, crop) -> torch.Tensor:
        """Normalised network input of a cv2 crop ``(S, S, 3)`` or a device crop ``(1, 3, S, S)``."""
        if isinstance(crop, torch.Tensor):
            return self.preprocessor.normalize(crop.flip(1) if self.bgr_input else crop)
        return self.preprocessor(crop[..., ::-1] if self.bgr_input else crop)

    def _crop(self, frame, pos, sz, x_size: Optional[int] = None):
        """SiamFC crop (template when ``x_size`` is None) of a frame: cv2 on the host, or
        :func:`~lib.utils.crop.warp_subwindow_tensor` on the device (see ``use_device_crop``).
        Returns ``(crop, scale)``."""
        if isinstance(frame, torch.Tensor):
            side, scale = siamfc_geometry(sz, self.z_size, x_size, self.context_amount)
            out_size = self.z_size if x_size is None else x_size
            return warp_subwindow_tensor(frame, pos, out_size, side, self.avg_chans), scale
        return siamfc_crop(frame, pos, sz, self.z_size, x_size=x_size, pad_value=self.avg_chans,
                           context_amount=self.context_amount)

    # -- tracking API ---------------------------------------------------------------------------
    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> None:
        """Crop the template around ``info['init_bbox']`` (xywh pixels) and encode it once.

        Raises:
            ValueError: an invalid first-frame box (see :func:`check_init_box`).
        """
        box = check_init_box(info["init_bbox"], image.shape)
        cxywh = _xywh_to_cxywh(box)
        pos, sz = cxywh[:2], cxywh[2:]
        self.frame_size = (int(image.shape[0]), int(image.shape[1]))
        self.avg_chans = np.mean(image, axis=(0, 1))
        z_crop, _ = self._crop(self.prepare_frame(image), pos, sz)
        with torch.no_grad(), self._autocast():
            self.memory = self.onnx_step(self._feature_step, "feature")(self._to_tensor(z_crop))
        self.z_patch_arr = self.patch_image(z_crop) if self.debug or isinstance(z_crop, np.ndarray) else None
        self.state = (pos, sz)
        self.frame_state_dirty = True
        self.frame_id = 0
        self.debug_show(self.z_patch_arr, "image", 1, "template")

    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame; returns ``{'target_bbox': [x, y, w, h], 'best_score': fused score of the pick}``.

        Raises:
            RuntimeError: called before :meth:`initialize`.
        """
        if self.memory is None:
            raise RuntimeError("SparseTTTracker.track called before initialize")
        self.frame_id += 1
        if self.frame_graph_enabled():
            # crop to restricted box in one step (lib/test/tracker/frame_graph.py)
            return self.finish_whole_frame(image, self.run_frame_graph(image))
        self.frame_state_dirty = True  # the state changes on the host: the whole-frame step's row is stale
        pos, sz = self.state
        x_crop, scale_x = self._crop(self.prepare_frame(image), pos, sz, self.x_size)
        if self._step is None:
            self._step = self.accelerated(self._search_step, "phase 'track'")
        with torch.no_grad(), self._autocast():
            score, box, extra = self._step(self._to_tensor(x_crop), list(self.memory))
        score_t = score[0, :, 0].float()
        box_t = _xyxy_to_cxywh_t(box[0].float())
        best, pscore, penalty = self._postprocess_score(score_t, box_t, sz, scale_x)
        # The frame's one device-to-host read: the chosen box (cxywh crop pixels), its score and penalty.
        picked = torch.cat([box_t.index_select(0, best).view(-1), score_t.index_select(0, best),
                            penalty.index_select(0, best)])
        wait_for_device(self.device)  # sleep, not spin, while the GPU works
        picked = picked.tolist()
        picked = np.asarray(picked, dtype=np.float32)  # float32 values, exactly
        new_pos, new_sz = self._postprocess_box(picked[:4], picked[4], picked[5], pos, sz, scale_x)
        new_pos, new_sz = self._restrict_box(new_pos, new_sz)
        self.state = (new_pos, new_sz)
        out_box = _cxywh_to_xywh(np.concatenate([new_pos, new_sz]))
        out = {"target_bbox": [float(v) for v in out_box], "best_score": float(picked[4])}
        if self.params.extra.get("save_all_boxes") or self.debug_sink is not None:  # full maps: extra reads
            score, box_cxywh = score_t.cpu().numpy(), box_t.cpu().numpy()
            pscore, penalty = pscore.cpu().numpy(), penalty.cpu().numpy()
        if self.params.extra.get("save_all_boxes"):
            cx, cy, w, h = self._crop_to_frame(box_cxywh, pos, scale_x)
            all_xywh = np.stack([cx - (w - 1) / 2, cy - (h - 1) / 2, w, h], axis=1)
            out["all_boxes"] = [float(v) for v in all_xywh.reshape(-1)]
            out["all_scores"] = [float(v) for v in pscore]
        if self.debug_sink is not None:  # attached by the runner / video demo for --debug L > 0
            self._debug_views(image, out_box, self.patch_image(x_crop), score, pscore, penalty, extra)
        return out

    def _feature_step(self, template: torch.Tensor):
        """The per-template network step: phase ``'feature'`` on the normalised template crop ``(1, 3, Z, Z)``
        -> ``[enc_output]``."""
        return self.network(template, phase="feature")

    def _search_step(self, search: torch.Tensor, memory):
        """The per-frame network step (what ``--compile`` / ``--cuda_graph`` wrap): phase ``'track'`` on the
        normalised search crop ``(1, 3, X, X)`` with the template memory -> ``(score, box, extra)``."""
        return self.network(search, *memory, phase="track")

    # -- the whole frame in one step (lib/test/tracker/frame_graph.py) -----------------------------------
    supports_frame_graph = True
    frame_values = 9  # the new state (cx, cy, w, h), the output box (x, y, w, h) and the best score

    def finish_whole_frame(self, image: np.ndarray, values) -> Dict[str, Any]:
        """``track``'s result from the whole-frame step's values (new state, output box, score)."""
        self.state = (np.asarray(values[0:2], dtype=np.float32), np.asarray(values[2:4], dtype=np.float32))
        return {"target_bbox": [float(v) for v in values[4:8]], "best_score": float(values[8])}

    def frame_state_values(self) -> list:
        """The state as the step's row holds it: ``[cx, cy, w, h]`` (float32 values)."""
        pos, sz = self.state
        return [float(v) for v in (*pos, *sz)]

    def regular_search_crop(self, image_shape) -> bool:
        """Always: the SiamFC window reads the frame-mean padding wherever it lies."""
        return True

    def frame_constants(self) -> Dict[str, torch.Tensor]:
        """Template memory (``m<i>`` ``(1, L, C)``, batch first), the padding value (``pad``, the first frame's
        channel means truncated) and the first frame's size (``frame_size`` ``(H, W)``, what ``_restrict_box``
        clamps to), on the device."""
        out = {f"m{i}": m.transpose(0, 1).contiguous() for i, m in enumerate(self.memory)}
        out["pad"] = torch.tensor([[float(int(v)) for v in self.avg_chans]], dtype=torch.float32, device=self.device)
        out["frame_size"] = torch.tensor([self.frame_size], dtype=torch.float32, device=self.device)
        return out

    def frame_step(self, frames: torch.Tensor, sizes: torch.Tensor, state: torch.Tensor,
                   constants: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The regular path on the device for B sequences, in its dtypes (float32 geometry and boxes, float64
        window): SiamFC crop (:func:`~lib.utils.crop.warp_subwindow_batch`), the ``track`` phase, the scale/ratio
        penalty, window and arg-max per row, the box update and the restriction to the first frame's size.
        ``state`` rows are ``[cx, cy, w, h]``; returns ``(B, 9)`` float64 (see :attr:`frame_values`)."""
        pos, sz = state[:, :2].to(torch.float32), state[:, 2:4].to(torch.float32)
        side, scale = siamfc_geometry_tensor(sz, self.z_size, self.x_size, self.context_amount)
        crop = warp_subwindow_batch(frames, sizes, pos, self.x_size, side, constants["pad"])
        B = frames.shape[0]
        count = sum(1 for k in constants if k.startswith("m") and k[1:].isdigit())
        memory = [constants[f"m{i}"].transpose(0, 1) for i in range(count)]
        with self._autocast():
            score, box, _ = self._search_step(self._to_tensor(crop), memory)
        score_t = score[:, :, 0].float()
        box_t = _xyxy_to_cxywh_t(box.float().reshape(-1, 4)).reshape(B, -1, 4)

        # _postprocess_score: the target's terms in float32 (numpy's on the host), then the same tensor operations
        # (a Python number divided by a tensor is torch's reciprocal times the number)
        target_in_crop = sz * scale.view(-1, 1)
        tw, th = target_in_crop[:, 0], target_in_crop[:, 1]
        tpad = (tw + th) * 0.5
        target_size = sqrt_float32((tw + tpad) * (th + tpad))
        s_c = _change(divide_as_by_number(torch.sqrt(_padded_area(box_t[..., 2], box_t[..., 3])), target_size))
        r_c = _change((box_t[..., 2] / box_t[..., 3]).reciprocal() * (tw / th).view(-1, 1))
        penalty = torch.exp(-(r_c * s_c - 1) * self.hyper["PENALTY_K"])
        wi = self.hyper["WINDOW_INFLUENCE"]
        pscore = (penalty * score_t) * (1 - wi) + self.window * wi
        best = torch.argmax(pscore, dim=1, keepdim=True)
        pred_box = box_t.gather(1, best.unsqueeze(-1).expand(-1, -1, 4)).squeeze(1)
        score_best = score_t.gather(1, best).squeeze(1)
        penalty_best = penalty.gather(1, best).squeeze(1)
        # _postprocess_box and _restrict_box in float32
        pred = pred_box / scale.view(-1, 1)
        lr = penalty_best * score_best * self.hyper["TEST_LR"]
        half = torch.full_like(scale, float(self.x_size // 2)) / scale
        res_x = pred[:, 0] + pos[:, 0] - half
        res_y = pred[:, 1] + pos[:, 1] - half
        res_w = sz[:, 0] * (1 - lr) + pred[:, 2] * lr
        res_h = sz[:, 1] * (1 - lr) + pred[:, 3] * lr
        fh, fw = constants["frame_size"][:, 0], constants["frame_size"][:, 1]
        cx, cy = torch.minimum(res_x, fw).clamp(min=0.0), torch.minimum(res_y, fh).clamp(min=0.0)
        w = torch.minimum(res_w, fw).clamp(min=self.min_wh[0])
        h = torch.minimum(res_h, fh).clamp(min=self.min_wh[1])
        out = torch.stack([cx, cy, w, h, cx - (w - 1) / 2, cy - (h - 1) / 2, w, h, score_best], dim=1)
        return out.to(torch.float64)

    # -- post-processing (official SparseTTTracker) -------------------------------------------
    def _postprocess_score(self, score: torch.Tensor, box_cxywh: torch.Tensor, target_sz: np.ndarray, scale_x):
        """``(best index (1,) int64, pscore (N,) float64, penalty (N,) float32)`` device tensors from the score
        ``(N,)`` and boxes ``(N, 4)`` cxywh (crop px), in the official numpy dtypes: float32 scores, boxes and
        penalty (the target's size terms computed on the host in float32, as numpy does), float64 window."""

        target_in_crop = np.asarray(target_sz, dtype=np.float32) * np.float32(scale_x)
        tw, th = target_in_crop[0], target_in_crop[1]
        tpad = (tw + th) * np.float32(0.5)
        target_size = float(np.sqrt((tw + tpad) * (th + tpad)))  # float32 value
        s_c = _change(torch.sqrt(_padded_area(box_cxywh[:, 2], box_cxywh[:, 3])) / target_size)
        r_c = _change(float(tw / th) / (box_cxywh[:, 2] / box_cxywh[:, 3]))
        penalty = torch.exp(-(r_c * s_c - 1) * self.hyper["PENALTY_K"])
        pscore = penalty * score
        wi = self.hyper["WINDOW_INFLUENCE"]
        pscore = pscore * (1 - wi) + self.window * wi
        return torch.argmax(pscore).view(1), pscore, penalty

    def _postprocess_box(self, pred_box: np.ndarray, score_best, penalty_best, target_pos, target_sz, scale_x):
        """New ``(pos, size)`` in frame pixels from the chosen box ``(4,)`` cxywh (crop px, float32), its score
        and penalty: centre taken directly, size smoothed with ``lr``."""
        pred = np.asarray(pred_box, dtype=np.float32) / np.float32(scale_x)
        lr = np.float32(penalty_best) * np.float32(score_best) * self.hyper["TEST_LR"]
        half = (self.x_size // 2) / scale_x
        res_x = pred[0] + target_pos[0] - half
        res_y = pred[1] + target_pos[1] - half
        res_w = target_sz[0] * (1 - lr) + pred[2] * lr
        res_h = target_sz[1] * (1 - lr) + pred[3] * lr
        return np.array([res_x, res_y]), np.array([res_w, res_h])

    def _restrict_box(self, pos: np.ndarray, sz: np.ndarray):
        """Centre into ``[0, W] x [0, H]``; size into ``[min_w, W] x [min_h, H]``."""
        h, w = self.frame_size
        pos[0] = max(0, min(w, pos[0]))
        pos[1] = max(0, min(h, pos[1]))
        sz[0] = max(self.min_wh[0], min(w, sz[0]))
        sz[1] = max(self.min_wh[1], min(h, sz[1]))
        return pos, sz

    def _crop_to_frame(self, box_cxywh: np.ndarray, target_pos, scale_x) -> np.ndarray:
        """``(N, 4)`` cxywh crop boxes -> ``(4, N)`` cxywh frame boxes (official ``_cvt_box_crop2frame``)."""
        half = (self.x_size // 2) / scale_x
        return np.stack([box_cxywh[:, 0] / scale_x + target_pos[0] - half,
                         box_cxywh[:, 1] / scale_x + target_pos[1] - half,
                         box_cxywh[:, 2] / scale_x, box_cxywh[:, 3] / scale_x])

    # -- debug --------------------------------------------------------------------------------
    def _debug_views(self, image, out_box, x_crop, score, pscore, penalty, extra) -> None:
        """Views: Tracking, search_region, template, score_map (fused score), score_map_hann (penalised
        score blended with the Hann window: what the argmax picks), penalty (scale/ratio change penalty),
        score_map_fc / score_map_conv (the two head branches' probabilities); maps are score_size^2."""
        s = self.score_size
        self.debug_show((image, [float(v) for v in out_box]), "Tracking", 1, "Tracking")
        self.debug_show(x_crop, "image", 1, "search_region")
        self.debug_show(self.z_patch_arr, "image", 1, "template")
        self.debug_show(score.reshape(s, s), "heatmap", 1, "score_map")
        self.debug_show(np.asarray(pscore, dtype=np.float32).reshape(s, s), "heatmap", 1, "score_map_hann")
        self.debug_show(np.asarray(penalty, dtype=np.float32).reshape(s, s), "heatmap", 1, "penalty")
        for name in ("fc", "conv"):
            if f"cls_{name}" in extra:
                self.debug_show(extra[f"cls_{name}"][0, :, 0].float().cpu().numpy().reshape(s, s), "heatmap", 1,
                                f"score_map_{name}")


def get_tracker_class():
    """The tracker class (pytracking-style module entry point)."""
    return SparseTTTracker
