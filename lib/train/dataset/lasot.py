"""LaSOT training set (Fan et al., CVPR 2019), from its folder or its lmdb.

Layout (``lasot_dir``; the lmdb ``lasot_lmdb_dir`` holds the same relative paths as keys)::

    <class>/<class>-<id>/img/00000001.jpg     frames, 1-based, 8 digits
    <class>/<class>-<id>/groundtruth.txt      x,y,w,h per frame (comma-separated)
    <class>/<class>-<id>/full_occlusion.txt   one comma-separated line of 0/1
    <class>/<class>-<id>/out_of_view.txt      one comma-separated line of 0/1

Visibility (official): ``full_occlusion == 0 and out_of_view == 0 and w > 0 and h > 0``.
``split='train'`` reads the 1120 sequence names of ``lasot_train_split.txt`` (protocol II) from the
``dataspec_path`` folder; ``vid_ids=[1, 3]`` takes ``<class>-1`` and ``<class>-3`` of every class instead.
Source: OSTrack ``lib/train/dataset/lasot.py`` and ``lasot_lmdb.py``.
"""

from __future__ import annotations

import os
import random
from typing import Callable, Optional, Sequence

import torch

from .base_video_dataset import (BaseVideoDataset, DatasetError, FolderStorage, LmdbStorage, empty_object_meta,
                                 read_box_file, read_flag_file, read_split_file)

__all__ = ["Lasot", "Lasot_lmdb"]


class Lasot(BaseVideoDataset):
    """LaSOT training sequences.

    Args:
        root: the LaSOT folder holding one folder per class (default: ``lasot_dir`` of local.py).
        image_loader: frame reader (default jpeg4py/OpenCV).
        vid_ids: video numbers to take from every class (not together with ``split``).
        split: ``'train'`` (lasot_train_split.txt).
        data_fraction: keep a random fraction of the sequences.
        dataspec_path: folder of the split files (default: ``dataspec_path`` of local.py).

    Raises:
        DatasetError: missing root, unknown split, or sequences of the split missing under the root.
    """

    _storage_cls = FolderStorage
    _root_field = "lasot_dir"

    def __init__(self, root: Optional[str] = None, image_loader: Optional[Callable] = None,
                 vid_ids: Optional[Sequence[int]] = None, split: Optional[str] = None,
                 data_fraction: Optional[float] = None, dataspec_path: Optional[str] = None):
        if root is None:
            from lib.train.admin.environment import env_settings

            root = env_settings().require(self._root_field, what="LaSOT training data")
        super().__init__("LaSOT", root, image_loader)
        if not os.path.exists(root):
            raise DatasetError(f"LaSOT folder '{root}' does not exist (set '{self._root_field}' in "
                               f"lib/train/admin/local.py)")
        self.storage = self._storage_cls(root)
        self.sequence_list = self._build_sequence_list(vid_ids, split, dataspec_path)
        self.class_list = sorted({s.split("-")[0] for s in self.sequence_list})
        self.class_to_id = {c: i for i, c in enumerate(self.class_list)}
        if data_fraction is not None:
            self.sequence_list = random.sample(self.sequence_list, int(len(self.sequence_list) * data_fraction))
        self._check_sequences_exist()
        self.seq_per_class = {}
        for i, s in enumerate(self.sequence_list):
            self.seq_per_class.setdefault(s.split("-")[0], []).append(i)
        self._frame_count_ok = {}

    def _build_sequence_list(self, vid_ids, split, dataspec_path):
        if split is not None:
            if vid_ids is not None:
                raise ValueError("Lasot: give either split or vid_ids, not both")
            if split != "train":
                raise DatasetError(f"unknown LaSOT split '{split}' (known: train)")
            return [str(s) for s in read_split_file(dataspec_path, "lasot_train_split.txt", as_int=False)]
        if vid_ids is not None:
            if self.storage.kind != "folder":
                raise DatasetError("Lasot_lmdb needs split='train' (an lmdb cannot list its classes)")
            classes = sorted(d for d in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, d)))
            return [f"{c}-{v}" for c in classes for v in vid_ids]
        raise ValueError("Lasot: set either split or vid_ids")

    def _check_sequences_exist(self):
        missing = [s for s in self.sequence_list if not self.storage.exists(f"{self._seq_rel_name(s)}/groundtruth.txt")]
        if missing:
            raise DatasetError(f"{len(missing)} LaSOT sequences are missing under '{self.root}', e.g. "
                               f"'{self.storage.where(self._seq_rel_name(missing[0]) + '/groundtruth.txt')}' "
                               f"(expected <class>/<class>-<id>/groundtruth.txt and img/00000001.jpg)")

    @staticmethod
    def _seq_rel_name(seq_name: str) -> str:
        class_name = seq_name.split("-")[0]
        return f"{class_name}/{seq_name}"

    def get_name(self) -> str:
        return "lasot"

    def has_class_info(self) -> bool:
        return True

    def has_occlusion_info(self) -> bool:
        return True

    def get_sequences_in_class(self, class_name):
        return self.seq_per_class[class_name]

    def _frame_rel(self, seq_rel: str, frame_id: int) -> str:
        return f"{seq_rel}/img/{frame_id + 1:08d}.jpg"  # frames start from 1

    def frame_location(self, seq_id: int, frame_id: int) -> str:
        """Where frame ``frame_id`` (0-based) of sequence ``seq_id`` is stored (path or lmdb key)."""
        return self.storage.where(self._frame_rel(self._seq_rel_name(self.sequence_list[seq_id]), frame_id))

    def get_sequence_info(self, seq_id: int) -> dict:
        """``bbox`` (N,4) xywh, ``valid`` (w>0 & h>0), ``visible`` (valid & not occluded & in view)."""
        seq = self._seq_rel_name(self.sequence_list[seq_id])
        bbox = read_box_file(self.storage, f"{seq}/groundtruth.txt")
        n = bbox.shape[0]
        self._check_frame_count(self.storage, lambda i: self._frame_rel(seq, i), n, f"{seq}/groundtruth.txt",
                                self._frame_count_ok)
        occlusion = read_flag_file(self.storage, f"{seq}/full_occlusion.txt", n, one_line=True)
        out_of_view = read_flag_file(self.storage, f"{seq}/out_of_view.txt", n, one_line=True)
        valid = (bbox[:, 2] > 0) & (bbox[:, 3] > 0)
        visible = ((occlusion == 0) & (out_of_view == 0) & valid).to(torch.uint8)
        return {"bbox": bbox, "valid": valid, "visible": visible}

    def get_class_name(self, seq_id: int) -> str:
        return self.sequence_list[seq_id].split("-")[0]

    def get_frames(self, seq_id, frame_ids, anno=None):
        seq = self._seq_rel_name(self.sequence_list[seq_id])
        frames = [self.storage.read_image(self._frame_rel(seq, f), self.image_loader) for f in frame_ids]
        if anno is None:
            anno = self.get_sequence_info(seq_id)
        return frames, self._select_frames(anno, frame_ids), empty_object_meta(self.get_class_name(seq_id))


class Lasot_lmdb(Lasot):
    """LaSOT from the official lmdb (``lasot_lmdb_dir``; keys ``<class>/<class>-<id>/...``); same arguments."""

    _storage_cls = LmdbStorage
    _root_field = "lasot_lmdb_dir"

    def get_name(self) -> str:
        return "lasot_lmdb"
