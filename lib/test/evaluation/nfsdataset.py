"""Need for Speed, 30 fps version (Kiani Galoogahi et al., "Need for Speed: A Benchmark for Higher Frame
Rate Object Tracking", ICCV 2017; pytracking/OSTrack ``nfsdataset.py``).

Layout under ``nfs_path``: ``sequences/<Name>/00001.jpg ...`` and ``anno/nfs_<Name>.txt``
(tab-separated xywh, one row per frame). 100 sequences named ``nfs_<Name>``.
"""

from __future__ import annotations

from typing import Optional

from .annotations import load_packaged_list
from .data import InfoListDataset, Sequence

__all__ = ["NFSDataset"]


class NFSDataset(InfoListDataset):
    """NfS-30 (official sequence list). ``base_path`` defaults to ``nfs_path``; ``missing``
    (``'error'``/``'skip'``) handles sequences absent from it (:class:`~.data.BaseDataset`)."""

    name = "nfs"

    def __init__(self, base_path: Optional[str] = None, missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(base_path, "nfs_path",
                                                "NfS (sequences/<Name>/00001.jpg, anno/nfs_<Name>.txt)")
        self.set_infos(load_packaged_list("nfs")["sequences"])

    def _sequence_by_name(self, name: str) -> Sequence:
        info, gt, frames = self._boxes_and_frames(name)
        return Sequence(name, frames, "nfs", gt, object_class=info.get("object_class"),
                        attributes={"occlusion": bool(info.get("occlusion", False))})
