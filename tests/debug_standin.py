"""A stand-in tracker for the debug-view tests: template matching with OSTrack's crops and debug views."""

from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np

from lib.config import Config
from lib.test.tracker.base import BaseTracker, TrackerParams, check_init_box
from lib.utils.crop import hann2d, sample_target
from lib.utils.image import imread_rgb

OSTRACK_VIEWS = ("Tracking", "template", "search_region", "score_map", "score_map_hann")


class StandInOSTrack(BaseTracker):
    """Template matching (normalised cross-correlation) with OSTrack's crops and debug views: template
    crop (factor 2, 128 px), search region (factor 4, 256 px), a 16x16 score map and its Hann-windowed
    version, and the 'Tracking' frame. It keeps what it showed (``z_patch``, ``x_patch``, ``score_map``),
    so the sink tests can compare pixels; the real trackers' views are tested in tests/test_debug_views.py
    and, through a visdom server, in tests/test_debug_visdom.py."""

    feat_sz = 16

    def initialize(self, image, info):
        self.state = check_init_box(info["init_bbox"], image.shape)
        self.z_patch, _, _ = sample_target(image, self.state, 2.0, output_sz=128)
        self.frame_id = 0
        self.debug_show(self.z_patch, "image", 1, "template")

    def track(self, image, info=None):
        self.frame_id += 1
        x_patch, resize_factor, _ = sample_target(image, self.state, 4.0, output_sz=256)
        target = self.z_patch[32:96, 32:96]  # the target occupies the middle half of the template crop
        ncc = cv2.matchTemplate(x_patch, target, cv2.TM_CCOEFF_NORMED)  # (193, 193), top-left positions
        window = hann2d(ncc.shape).squeeze().numpy()
        r, c = np.unravel_index(np.argmax(ncc * window), ncc.shape)
        dx, dy = (c + 32 - 127.5) / resize_factor, (r + 32 - 127.5) / resize_factor
        x, y, w, h = self.state
        self.state = [x + dx, y + dy, w, h]
        self.score_map = cv2.resize(ncc, (self.feat_sz, self.feat_sz), interpolation=cv2.INTER_AREA)
        self.score_map_hann = self.score_map * hann2d((self.feat_sz, self.feat_sz)).squeeze().numpy()
        self.x_patch = x_patch
        self.debug_show((image, self.state), "Tracking", 1, "Tracking")
        self.debug_show(x_patch, "image", 1, "search_region")
        self.debug_show(self.z_patch, "image", 1, "template")
        self.debug_show(self.score_map, "heatmap", 1, "score_map")
        self.debug_show(self.score_map_hann, "heatmap", 1, "score_map_hann")
        self.debug_show({"max_score": float(ncc.max()), "frame": self.frame_id}, "info_dict", 2, "Status")
        return {"target_bbox": list(self.state)}


def params(debug):
    return TrackerParams(name="standin", script="ostrack", config_name="standin", cfg=Config(), debug=debug)


def run_frames(tracker, frames, gt, start, stop):
    """The runner's loop: ground truth to the debug view only, then frame_done after each frame."""
    for i in range(start, stop):
        image = imread_rgb(frames[i])
        tracker.set_debug_ground_truth(gt[i])
        if i == 0:
            tracker.initialize(image, {"init_bbox": list(gt[0])})
        else:
            tracker.track(image)
        tracker.debug_frame_done()


def couple_sequence(root: Path) -> Tuple[List[str], np.ndarray]:
    """Frame paths and (N, 4) xywh ground truth of the OTB sequence at ``root`` (tab-separated)."""
    frames = sorted(str(p) for p in (Path(root) / "img").glob("*.jpg"))
    gt = np.loadtxt(Path(root) / "groundtruth_rect.txt", delimiter="\t")
    return frames, gt
