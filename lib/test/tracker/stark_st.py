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

from lib.test.tracker.base import TrackerParams
from lib.test.tracker.stark_s import STARKSTracker

__all__ = ["STARKSTTracker", "UPDATE_THRESHOLD", "update_intervals_for"]

#: confidence above which the dynamic template is replaced (hard-coded in the official tracker).
UPDATE_THRESHOLD = 0.5


def update_intervals_for(cfg, dataset_name: Optional[str]) -> List[int]:
    """The dynamic-template update intervals (frames) of ``dataset_name`` under ``cfg``.

    ``cfg.TEST.UPDATE_INTERVALS[dataset_name.upper()]`` when present, else ``cfg.DATA.MAX_SAMPLE_INTERVAL``.

    Raises:
        ValueError: an interval list that is empty or holds non-positive / non-integer values (the
            message names the config field).
    """
    table = cfg.TEST.get("UPDATE_INTERVALS", {}) if "TEST" in cfg else {}
    key = (dataset_name or "").upper()
    if key and key in table:
        intervals, field = table[key], f"TEST.UPDATE_INTERVALS.{key}"
    else:
        intervals, field = cfg.DATA.MAX_SAMPLE_INTERVAL, "DATA.MAX_SAMPLE_INTERVAL"
    if not isinstance(intervals, (list, tuple)):
        intervals = [intervals]
    if not intervals or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in intervals):
        raise ValueError(f"config field {field} must be a non-empty list of positive integers (frames), "
                         f"got {intervals!r}")
    return [int(v) for v in intervals]


class STARKSTTracker(STARKSTracker):
    """STARK-ST tracker (configs of script ``stark_st2``).

    Args:
        params: tracker parameters (script ``stark_st2``).
        dataset_name: benchmark name (``lasot``, ``got10k_test``, ``trackingnet``, ``vot20``, ...); picks
            the update interval.

    Attributes:
        update_intervals: frames between updates, one entry per dynamic template.
        z_dict_list: cached backbone outputs ``[template_1, dynamic_1, ...]``.
    """

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        super().__init__(params, dataset_name)
        self.update_intervals = update_intervals_for(self.cfg, dataset_name)
        self.num_extra_template = len(self.update_intervals)
        self.z_dict_list: List[Dict[str, torch.Tensor]] = []
        self.run_cls_head = True

    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Cache the first template and copy it into every dynamic-template slot.

        Raises:
            ValueError: an invalid initial box.
        """
        out = super().initialize(image, info)
        self.z_dict_list = [self.z_dict1] + [{k: v.clone() for k, v in self.z_dict1.items()}
                                             for _ in range(self.num_extra_template)]
        return out

    def _templates(self) -> List[Dict[str, torch.Tensor]]:
        return list(self.z_dict_list)

    def _on_new_state(self, image: np.ndarray, out_dict: Dict[str, torch.Tensor]) -> Dict[str, Any]:
        """Confidence of the frame, and the template update(s) due at this frame when confident.

        Returns:
            ``{'conf_score': float}`` (sigmoid of the score head's logit).
        """
        conf_score = out_dict["pred_logits"].float().view(-1).sigmoid().item()
        updated = []
        for idx, interval in enumerate(self.update_intervals):
            if self.frame_id % interval == 0 and conf_score > UPDATE_THRESHOLD:
                self.z_dict_list[idx + 1] = self._template_features(image, self.state)
                updated.append(idx + 1)
        if self.debug:
            self.debug_show({"frame": self.frame_id, "conf_score": f"{conf_score:.3f}",
                             "template_update": ",".join(map(str, updated)) or "-"}, "info_dict", 1, "STARK-ST")
        return {"conf_score": conf_score}

    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame and update the dynamic template(s) when due and confident.

        Returns:
            ``{'target_bbox': [x, y, w, h], 'conf_score': float}`` (plus ``all_boxes`` with
            ``save_all_boxes``).

        Raises:
            RuntimeError: ``initialize`` was not called.
        """
        return super().track(image, info)
