"""AVisT (Noman et al., "AVisT: A Benchmark for Visual Object Tracking in Adverse Visibility", BMVC 2022;
pytracking ``avistdataset.py``).

Layout under ``avist_path``::

    sequences/<seq>/img_00001.jpg ...
    anno/<seq>.txt                                  space-separated xywh, one row per frame
    full_occlusion/<seq>_full_occlusion.txt         comma-separated 0/1 per frame
    out_of_view/<seq>_out_of_view.txt               comma-separated 0/1 per frame

``target_visible = (full_occlusion == 0) & (out_of_view == 0)``. 120 sequences.
"""

from __future__ import annotations

import os
from typing import Optional

from .annotations import load_packaged_list, read_boxes, read_flags
from .data import BaseDataset, Sequence

__all__ = ["AVisTDataset"]


class AVisTDataset(BaseDataset):
    """AVisT (official sequence list). ``base_path`` defaults to ``avist_path``; ``missing``
    (``'error'``/``'skip'``) handles sequences absent from it (:class:`~.data.BaseDataset`)."""

    name = "avist"

    def __init__(self, base_path: Optional[str] = None, missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(
            base_path, "avist_path", "AVisT (sequences/<seq>/img_00001.jpg, anno/<seq>.txt, full_occlusion/, out_of_view/)")
        self.names = list(load_packaged_list("avist")["names"])

    def annotation_path(self, name: str) -> str:
        return os.path.join(self.base_path, "anno", f"{name}.txt")

    def _sequence_by_name(self, name: str) -> Sequence:
        gt = read_boxes(self.annotation_path(name))
        n = len(gt)
        occ = read_flags(os.path.join(self.base_path, "full_occlusion", f"{name}_full_occlusion.txt"), n,
                         what="full_occlusion flags")
        oov = read_flags(os.path.join(self.base_path, "out_of_view", f"{name}_out_of_view.txt"), n,
                         what="out_of_view flags")
        folder = os.path.join(self.base_path, "sequences", name)
        frames = [os.path.join(folder, f"img_{i:05d}.jpg") for i in range(1, n + 1)]
        return Sequence(name, frames, "avist", gt, target_visible=~occ & ~oov)
