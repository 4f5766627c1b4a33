"""TrackingNet training set (Müller et al., ECCV 2018), from its chunk folders or their lmdbs.

Folder layout (``trackingnet_dir``)::

    TRAIN_<k>/anno/<video>.txt          x,y,w,h per frame (comma-separated), k = 0..11
    TRAIN_<k>/frames/<video>/0.jpg      frames, 0-based, no zero padding

lmdb layout (``trackingnet_lmdb_dir``, official): one lmdb per chunk ``TRAIN_<k>_lmdb`` with the keys
``anno/<video>.txt`` and ``frames/<video>/<i>.jpg``, and ``seq_list.json`` beside them listing
``[set_id, video]`` pairs. Visibility (official): ``w > 0 and h > 0`` (no occlusion flags).
The class of each video is read from ``trackingnet_classmap.txt`` in the ``dataspec_path`` folder when
present (``'Unknown'`` otherwise). Source: OSTrack ``lib/train/dataset/tracking_net.py``, ``tracking_net_lmdb.py``.
"""

from __future__ import annotations

import json
import os
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .base_video_dataset import (BaseVideoDataset, DatasetError, FolderStorage, LmdbStorage, empty_object_meta,
                                 read_box_file, resolve_dataspec_path)

__all__ = ["TrackingNet", "TrackingNet_lmdb"]


def _load_class_map(dataspec_path: Optional[str]) -> Dict[str, str]:
    try:
        path = os.path.join(resolve_dataspec_path(dataspec_path), "trackingnet_classmap.txt")
    except Exception:
        return {}
    if not os.path.isfile(path):
        return {}
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                out[parts[0]] = parts[1]
    return out


class TrackingNet(BaseVideoDataset):
    """TrackingNet training videos.

    Args:
        root: the TrackingNet folder holding ``TRAIN_<k>`` chunks (default: ``trackingnet_dir``).
        image_loader: frame reader (default jpeg4py/OpenCV).
        set_ids: chunks to use (default 0..11).
        data_fraction: keep a random fraction of the videos.
        dataspec_path: folder holding ``trackingnet_classmap.txt`` (optional).

    Raises:
        DatasetError: missing root or chunk folder (named).
    """

    _root_field = "trackingnet_dir"

    def __init__(self, root: Optional[str] = None, image_loader: Optional[Callable] = None,
                 set_ids: Optional[Sequence[int]] = None, data_fraction: Optional[float] = None,
                 dataspec_path: Optional[str] = None):
        if root is None:
            from lib.train.admin.environment import env_settings

            root = env_settings().require(self._root_field, what="TrackingNet training data")
        super().__init__("TrackingNet", root, image_loader)
        if not os.path.isdir(root):
            raise DatasetError(f"TrackingNet folder '{root}' does not exist (set '{self._root_field}' in "
                               f"lib/train/admin/local.py)")
        self.set_ids = list(range(12)) if set_ids is None else list(set_ids)
        self.sequence_list: List[Tuple[int, str]] = self._list_sequences()
        if data_fraction is not None:
            self.sequence_list = random.sample(self.sequence_list, int(len(self.sequence_list) * data_fraction))
        self._storages = {}
        self.seq_to_class_map = _load_class_map(dataspec_path)
        self.seq_per_class = {}
        for i, (_, vid) in enumerate(self.sequence_list):
            self.seq_per_class.setdefault(self.seq_to_class_map.get(vid, "Unknown"), []).append(i)
        self.class_list = sorted(self.seq_per_class.keys())
        self._frame_count_ok = {}

    def _list_sequences(self) -> List[Tuple[int, str]]:
        out = []
        for s in self.set_ids:
            anno_dir = os.path.join(self.root, f"TRAIN_{s}", "anno")
            if not os.path.isdir(anno_dir):
                raise DatasetError(f"TrackingNet chunk folder '{anno_dir}' does not exist: expected "
                                   f"TRAIN_<k>/anno/<video>.txt and TRAIN_<k>/frames/<video>/0.jpg under '{self.root}'")
            out += [(s, os.path.splitext(f)[0]) for f in sorted(os.listdir(anno_dir)) if f.endswith(".txt")]
        return out

    def _storage(self, set_id: int):
        st = self._storages.get(set_id)
        if st is None:
            st = self._storages[set_id] = FolderStorage(os.path.join(self.root, f"TRAIN_{set_id}"))
        return st

    def get_name(self) -> str:
        return "trackingnet"

    def has_class_info(self) -> bool:
        return True

    def get_sequences_in_class(self, class_name):
        return self.seq_per_class[class_name]

    def get_sequence_info(self, seq_id: int) -> dict:
        """``bbox`` (N,4) xywh, ``valid`` and ``visible`` (both w>0 & h>0)."""
        set_id, vid = self.sequence_list[seq_id]
        storage = self._storage(set_id)
        bbox = read_box_file(storage, f"anno/{vid}.txt")
        self._check_frame_count(storage, lambda i: f"frames/{vid}/{i}.jpg", bbox.shape[0], f"anno/{vid}.txt",
                                self._frame_count_ok)
        valid = (bbox[:, 2] > 0) & (bbox[:, 3] > 0)
        return {"bbox": bbox, "valid": valid, "visible": valid.clone().to(torch.uint8)}

    def get_class_name(self, seq_id: int) -> str:
        return self.seq_to_class_map.get(self.sequence_list[seq_id][1], "Unknown")

    def get_frames(self, seq_id, frame_ids, anno=None):
        set_id, vid = self.sequence_list[seq_id]
        storage = self._storage(set_id)
        frames = [storage.read_image(f"frames/{vid}/{f}.jpg", self.image_loader) for f in frame_ids]
        if anno is None:
            anno = self.get_sequence_info(seq_id)
        return frames, self._select_frames(anno, frame_ids), empty_object_meta(self.get_class_name(seq_id))


class TrackingNet_lmdb(TrackingNet):
    """TrackingNet from the official per-chunk lmdbs (``<root>/TRAIN_<k>_lmdb`` and ``<root>/seq_list.json``)."""

    _root_field = "trackingnet_lmdb_dir"

    def _list_sequences(self) -> List[Tuple[int, str]]:
        path = os.path.join(self.root, "seq_list.json")
        if not os.path.isfile(path):
            raise DatasetError(f"'{path}' does not exist: expected the TrackingNet lmdb layout (seq_list.json and "
                               f"TRAIN_<k>_lmdb folders; build it with tracking/make_lmdb.py)")
        with open(path) as f:
            try:
                pairs = json.load(f)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"'{path}' is not valid JSON: {exc}") from exc
        wanted = set(self.set_ids)
        return [(int(s), str(v)) for s, v in pairs if int(s) in wanted]

    def _storage(self, set_id: int):
        st = self._storages.get(set_id)
        if st is None:
            st = self._storages[set_id] = LmdbStorage(os.path.join(self.root, f"TRAIN_{set_id}_lmdb"))
        return st

    def get_name(self) -> str:
        return "trackingnet_lmdb"
