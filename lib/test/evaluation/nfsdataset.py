"""Need for Speed, 30 fps version (Kiani Galoogahi et al., "Need for Speed: A Benchmark for Higher Frame
Rate Object Tracking", ICCV 2017; pytracking/OSTrack ``nfsdataset.py``).

Layout under ``nfs_path``: ``sequences/<Name>/00001.jpg ...`` and ``anno/nfs_<Name>.txt``
(tab-separated xywh, one row per frame). 100 sequences named ``nfs_<Name>``.
"""

from __future__ import annotations

import os
from typing import List, Optional

from .annotations import check_box_count, frame_paths, load_packaged_list, read_boxes
from .data import BaseDataset, Sequence

__all__ = ["NFSDataset"]


class NFSDataset(BaseDataset):
    """NfS-30 (official sequence list). ``base_path`` defaults to ``nfs_path``; ``missing``
    (``'error'``/``'skip'``) handles sequences absent from it (:class:`~.data.BaseDataset`)."""

    name = "nfs"

    def __init__(self, base_path: Optional[str] = None, missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(base_path, "nfs_path",
                                                "NfS (sequences/<Name>/00001.jpg, anno/nfs_<Name>.txt)")
        self.infos = {e["name"]: e for e in load_packaged_list("nfs")["sequences"]}

    def sequence_names(self) -> List[str]:
        return list(self.infos)

    def annotation_path(self, name: str) -> str:
        return os.path.join(self.base_path, self.infos[name]["anno_path"])

    def _sequence_by_name(self, name: str) -> Sequence:
        info = self.infos[name]
        anno = self.annotation_path(name)
        gt = read_boxes(anno)
        frames = frame_paths(self.base_path, info)
        check_box_count(gt, len(frames), anno, f"{info['startFrame']}..{info['endFrame']} of '{info['path']}' "
                                               f"(official sequence list)")
        return Sequence(name, frames, "nfs", gt, object_class=info.get("object_class"),
                        attributes={"occlusion": bool(info.get("occlusion", False))})
