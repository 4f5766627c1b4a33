"""Test doubles for the runner: trackers without networks or configs, registered on import.

Name them to the runner with ``TRACKING_TRACKER_MODULES=tests.dummy_trackers`` (or
``tracking/test.py --tracker_module tests.dummy_trackers``) so spawned workers register them too.

- ``dummy_static``: returns the init box on every frame (offset by the frame's mean red value so a
  test can tell that the frame was really read, as RGB).
- ``dummy_raise``: like ``dummy_static`` but raises on frame 2 of a sequence whose init box has
  width 13.
- ``dummy_sleep``: like ``dummy_static`` but sleeps ``DUMMY_SLEEP_S`` seconds (default 0.05) per frame; with
  ``DUMMY_PID_DIR`` set, each initialisation appends the init box width to ``<DUMMY_PID_DIR>/<pid>`` (which
  process tracks which sequence).
- ``dummy_nan``: returns a NaN box on frame 1.
- ``dummy_exit``: like ``dummy_static`` but ends its process (``os._exit``) on frame 2 of a sequence whose
  init box has width 17, as a worker killed for memory would.
- ``dummy_gt_probe``: records what it receives (``info`` keys, debug ground truth) into
  ``DUMMY_PROBE_FILE`` as JSON lines.
"""

from __future__ import annotations

import json
import os
import time

from lib.test.tracker import register_tracker
from lib.test.tracker.base import BaseTracker


class StaticTracker(BaseTracker):
    """Keeps the init box (xywh); ``x`` is shifted by ``round(mean red value / 64)`` of each frame."""

    def initialize(self, image, info):
        self.box = [float(v) for v in info["init_bbox"]]
        self.frame_id = 0
        return None

    def track(self, image, info=None):
        self.frame_id += 1
        shift = round(float(image[..., 0].mean()) / 64.0)
        x, y, w, h = self.box
        return {"target_bbox": [x + shift, y, w, h]}


class RaisingTracker(StaticTracker):
    def track(self, image, info=None):
        if self.frame_id == 1 and self.box[2] == 13:
            raise RuntimeError("dummy failure on frame 2")
        return super().track(image, info)


class SleepingTracker(StaticTracker):
    def initialize(self, image, info):
        folder = os.environ.get("DUMMY_PID_DIR")
        if folder:
            with open(os.path.join(folder, str(os.getpid())), "a") as f:
                f.write(f"{info['init_bbox'][2]:g}\n")
        return super().initialize(image, info)

    def track(self, image, info=None):
        time.sleep(float(os.environ.get("DUMMY_SLEEP_S", "0.05")))
        return super().track(image, info)


class ExitingTracker(StaticTracker):
    def track(self, image, info=None):
        if self.frame_id == 1 and self.box[2] == 17:
            os._exit(3)
        return super().track(image, info)


class NaNTracker(StaticTracker):
    def track(self, image, info=None):
        out = super().track(image, info)
        if self.frame_id == 1:
            out["target_bbox"] = [float("nan")] * 4
        return out


class ProbeTracker(StaticTracker):
    def _log(self, kind, info):
        with open(os.environ["DUMMY_PROBE_FILE"], "a") as f:
            f.write(json.dumps({"kind": kind, "keys": sorted(info or {}), "debug_gt": self._debug_gt,
                                "debug": self.debug, "device": str(self.device),
                                "visdom": self.params.extra.get("visdom_info"),
                                "precision": self.params.precision, "dataset": self.dataset_name}) + "\n")

    def initialize(self, image, info):
        self._log("init", info)
        return super().initialize(image, info)

    def track(self, image, info=None):
        self._log("track", info)
        out = super().track(image, info)
        self.debug_show((image, self._debug_gt, out["target_bbox"]), "Tracking", 1, "Tracking")
        return out


for _name, _cls in (("dummy_static", "StaticTracker"), ("dummy_raise", "RaisingTracker"),
                    ("dummy_sleep", "SleepingTracker"), ("dummy_nan", "NaNTracker"), ("dummy_exit", "ExitingTracker"),
                    ("dummy_gt_probe", "ProbeTracker")):
    register_tracker(_name, __name__, _cls, script=None)
