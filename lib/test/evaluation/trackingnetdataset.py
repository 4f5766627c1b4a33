"""TrackingNet test set (Mueller et al., "TrackingNet: A Large-Scale Dataset and Benchmark for Object
Tracking in the Wild", ECCV 2018; pytracking/OSTrack ``trackingnetdataset.py``).

Layout under ``trackingnet_path``::

    TEST/anno/<seq>.txt           first frame's box (comma-separated xywh)
    TEST/frames/<seq>/0.jpg ...   0-based frame numbers

The sequence list is the ``.txt`` files of ``TEST/anno`` (511 in the official release), sorted by
name. Result files go to ``<results_dir>/trackingnet/`` (the layout ``transform_trackingnet.py`` reads).
"""

from __future__ import annotations

import os
from typing import Optional

from .annotations import check_box_count, read_boxes, require_dir, sorted_frames
from .data import BaseDataset, Sequence

__all__ = ["TrackingNetDataset"]


class TrackingNetDataset(BaseDataset):
    """TrackingNet ``TEST``. ``base_path`` defaults to ``trackingnet_path``. The sequences are the annotation
    files present, so ``missing`` (accepted for a uniform interface) never finds one absent."""

    name = "trackingnet"

    def __init__(self, base_path: Optional[str] = None, subset: str = "TEST", missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(base_path, "trackingnet_path",
                                                "TrackingNet (TEST/anno/<seq>.txt, TEST/frames/<seq>/0.jpg)")
        self.subset = subset
        anno_dir = require_dir(os.path.join(self.base_path, subset, "anno"), f"TrackingNet {subset} annotations")
        self.names = sorted(f[:-4] for f in os.listdir(anno_dir) if f.endswith(".txt"))

    def annotation_path(self, name: str) -> str:
        return os.path.join(self.base_path, self.subset, "anno", f"{name}.txt")

    def _sequence_by_name(self, name: str) -> Sequence:
        anno = self.annotation_path(name)
        gt = read_boxes(anno, negative="error")
        folder = os.path.join(self.base_path, self.subset, "frames", name)
        frames = sorted_frames(folder)
        if len(gt) > 1 and frames:
            check_box_count(gt, len(frames), anno, f"the .jpg files of '{folder}'")
        return Sequence(name, frames, "trackingnet", gt)
