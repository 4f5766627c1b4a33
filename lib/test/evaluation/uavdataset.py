"""UAV123 and UAV123@10fps (Mueller, Smith, Ghanem, "A Benchmark and Simulator for UAV Tracking",
ECCV 2016; pytracking/OSTrack ``uavdataset.py``).

Layout under ``uav_path``::

    data_seq/UAV123/<video>/000001.jpg ...        anno/UAV123/<name>.txt          (30 fps)
    data_seq/UAV123_10fps/<video>/000001.jpg ...  anno/UAV123_10fps/<name>.txt    (10 fps)

Boxes are comma-separated xywh; a row of NaN marks an absent target (kept; the analysis
special-cases dataset ``'uav'``). Long videos are split into sub-sequences (``car1_1``..``car1_3``)
that share one image folder with different frame ranges.

UAV123@10fps keeps every third frame of the 30 fps videos: 30 fps frame ``f`` (1-based) is 10 fps
frame ``(f - 1) / 3 + 1`` when ``(f - 1) % 3 == 0``. A 30 fps range ``[s, e]`` therefore maps to
``[ceil((s - 1) / 3) + 1, floor((e - 1) / 3) + 1]``; this reproduces the start/end frames of the
dataset's own ``configSeqs.m`` (e.g. ``car6_5`` 3925-4861 -> 1309-1621, ``uav1_3`` 2473-3469 ->
825-1157, ``person11`` 1-721 -> 1-241). 10 fps sequences are named ``uav10fps_<name>`` so their
result files never collide with the 30 fps ones (``uav_<name>``).
"""

from __future__ import annotations

from typing import List, Optional

from .annotations import load_packaged_list
from .data import InfoListDataset, Sequence

__all__ = ["UAVDataset", "UAV10fpsDataset", "uav10fps_range"]


def uav10fps_range(start_frame: int, end_frame: int):
    """10 fps frame range ``(start, end)`` (1-based, inclusive) of a 30 fps range."""
    return (start_frame + 1) // 3 + 1, (end_frame - 1) // 3 + 1


class UAVDataset(InfoListDataset):
    """UAV123 (123 sequences, 30 fps), official sequence list. ``base_path`` defaults to ``uav_path``;
    ``missing`` (``'error'``/``'skip'``) handles sequences absent from it (:class:`~.data.BaseDataset`)."""

    name = "uav"
    _WHAT = "UAV123 (data_seq/UAV123/<video>/000001.jpg, anno/UAV123/<name>.txt)"

    def __init__(self, base_path: Optional[str] = None, missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(base_path, "uav_path", self._WHAT)
        self.set_infos(self._infos())

    def _infos(self) -> List[dict]:
        return load_packaged_list("uav")["sequences"]

    def _sequence_by_name(self, name: str) -> Sequence:
        info, gt, frames = self._boxes_and_frames(name, allow_nan="rows")
        return Sequence(name, frames, "uav", gt, object_class=info.get("object_class"))


class UAV10fpsDataset(UAVDataset):
    """UAV123@10fps (123 sequences), frame ranges derived from the 30 fps list (module docstring)."""

    name = "uav10fps"
    _WHAT = "UAV123@10fps (data_seq/UAV123_10fps/<video>/000001.jpg, anno/UAV123_10fps/<name>.txt)"

    def _infos(self) -> List[dict]:
        out = []
        for e in load_packaged_list("uav")["sequences"]:
            short = e["name"][len("uav_"):]
            start, end = uav10fps_range(e["startFrame"], e["endFrame"])
            out.append(dict(e, name="uav10fps_" + short, path=e["path"].replace("UAV123/", "UAV123_10fps/"),
                            anno_path=e["anno_path"].replace("UAV123/", "UAV123_10fps/"),
                            startFrame=start, endFrame=end))
        return out
