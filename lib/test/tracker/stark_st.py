"""STARK-ST test-time tracker: STARK-S with a dynamic template refreshed when the score head is confident.

Steps beyond STARK-S (official ``lib/test/tracker/stark_st.py``):

* Update intervals: ``TEST.UPDATE_INTERVALS[<dataset name upper-cased>]`` if the config lists the
  dataset, else ``DATA.MAX_SAMPLE_INTERVAL`` (``[200]``); one dynamic template per interval.
* ``initialize``: the first template's backbone output is cached and copied into every dynamic slot.
* ``track``: tokens ``[template_1, dynamic templates..., search]``; confidence = sigmoid of the score
  head's logit. For each interval ``i``: if ``frame_id % interval_i == 0`` and confidence ``> 0.5``,
  a template crop around the NEW box replaces dynamic template ``i`` (features cached).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch

from lib.config.stark_st import update_intervals_for
from lib.test.tracker.base import TrackerParams
from lib.test.tracker.stark_s import STARKSTracker
from lib.vis.draw import hstack_images

__all__ = ["STARKSTTracker", "UPDATE_THRESHOLD", "update_intervals_for"]

#: confidence above which the dynamic template is replaced (hard-coded in the official tracker).
UPDATE_THRESHOLD = 0.5


class STARKSTTracker(STARKSTracker):
    """STARK-ST tracker (configs of script ``stark_st2``).

    Args:
        params: tracker parameters (script ``stark_st2``).
        dataset_name: benchmark name (``lasot``, ``got10k_test``, ``trackingnet``, ``vot20``, ...); picks
            the update interval.

    Attributes:
        update_intervals: frames between updates, one entry per dynamic template.
        z_dict_list: cached backbone outputs ``[template_1, dynamic_1, ...]``.
        z_patch_list: the crops of ``z_dict_list`` (uint8 RGB; kept for the debug views).
        conf_history: confidence of every tracked frame; update_frames: per dynamic template, the frame
            of its last update (0 = still the first template).
    """

    score_key = "conf_score"

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        super().__init__(params, dataset_name)
        self.update_intervals = update_intervals_for(self.cfg, dataset_name)
        self.num_extra_template = len(self.update_intervals)
        self.z_dict_list: List[Dict[str, torch.Tensor]] = []
        self.z_patch_list: List[np.ndarray] = []
        self.conf_history: List[float] = []
        self.update_frames: List[int] = []
        self._updated_now: List[int] = []
        self.run_cls_head = True

    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Cache the first template and copy it into every dynamic-template slot.

        Raises:
            ValueError: an invalid initial box.
        """
        out = super().initialize(image, info)
        self.z_dict_list = [self.z_dict1] + [{k: v.clone() for k, v in self.z_dict1.items()}
                                             for _ in range(self.num_extra_template)]
        self.z_patch_list = [self.z_patch_arr] * (1 + self.num_extra_template)
        self.conf_history = []
        self.update_frames = [0] * self.num_extra_template
        return out

    def _templates(self) -> List[Dict[str, torch.Tensor]]:
        return list(self.z_dict_list)

    def _frame_values(self, out_dict: Dict[str, torch.Tensor], resize_factor: float) -> torch.Tensor:
        """STARK-S's box followed by the confidence (sigmoid of the score head's logit): box and score reach
        the host in one transfer."""
        box = super()._frame_values(out_dict, resize_factor)
        return torch.cat([box, out_dict["pred_logits"].float().view(-1)[:1].sigmoid()])

    frame_values = 5  # the whole-frame step returns the box and the confidence

    def _frame_values_batch(self, out_dict: Dict[str, torch.Tensor], resize_factor: torch.Tensor) -> torch.Tensor:
        """STARK-S's ``(B, 4)`` boxes followed by each sequence's confidence: ``(B, 5)``."""
        box = super()._frame_values_batch(out_dict, resize_factor)
        B = resize_factor.shape[0]
        return torch.cat([box, out_dict["pred_logits"].float().reshape(B, -1)[:, :1].sigmoid()], dim=1)

    def _on_new_state(self, frame, values: List[float]) -> Dict[str, Any]:
        """Confidence of the frame (``values[4]``), and the template update(s) due at this frame when confident.

        Returns:
            ``{'conf_score': float}`` (sigmoid of the score head's logit).
        """
        conf_score = values[4]
        self.conf_history.append(conf_score)
        self._updated_now = []
        for idx, interval in enumerate(self.update_intervals):
            if self.frame_id % interval == 0 and conf_score > UPDATE_THRESHOLD:
                if isinstance(frame, np.ndarray):  # the whole-frame step's frame: crop as the regular path does
                    frame = self.prepare_frame(frame)
                self.z_dict_list[idx + 1], self.z_patch_list[idx + 1] = self._template_features(frame, self.state)
                self.frame_state_dirty = True  # new template features: the whole-frame step's row is stale
                self.update_frames[idx] = self.frame_id
                self._updated_now.append(idx + 1)
        return {"conf_score": conf_score}

    def _show_debug(self, image: np.ndarray, x_patch) -> None:
        """STARK-S's views plus: ``confidence`` (the score head's confidence per frame), ``template_update``
        (this frame's confidence, the threshold, the dynamic templates replaced now and the frame of each
        one's last update) and ``dynamic_templates`` (the template crops in token order: the first
        template, then each dynamic one)."""
        super()._show_debug(image, x_patch)
        self.debug_show(np.asarray(self.conf_history), "lineplot", 1, "confidence")
        self.debug_show({"frame": self.frame_id, "confidence": f"{self.conf_history[-1]:.3f}",
                         "threshold": f"{UPDATE_THRESHOLD} (intervals {self.update_intervals})",
                         "updated": ",".join(map(str, self._updated_now)) or "-",
                         "last updates": ", ".join(f"template {i + 1}: frame {f}"
                                                   for i, f in enumerate(self.update_frames))},
                        "info_dict", 1, "template_update")
        self.debug_show(hstack_images(self.z_patch_list, gap=4), "image", 1, "dynamic_templates")

    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame and update the dynamic template(s) when due and confident.

        Returns:
            ``{'target_bbox': [x, y, w, h], 'conf_score': float}`` (plus ``all_boxes`` with
            ``save_all_boxes``).

        Raises:
            RuntimeError: ``initialize`` was not called.
        """
        return super().track(image, info)
