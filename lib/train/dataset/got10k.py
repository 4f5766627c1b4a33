"""GOT-10k training set (Huang et al., TPAMI 2019), from its folder or its lmdb.

Folder layout (``got10k_dir`` points at the ``train`` folder)::

    train/list.txt                          sequence folder names, one per line
    train/GOT-10k_Train_000001/00000001.jpg frames, 1-based, 8 digits
    train/GOT-10k_Train_000001/groundtruth.txt   x,y,w,h per frame (comma-separated)
    train/GOT-10k_Train_000001/absence.label     1 = target absent, one value per line
    train/GOT-10k_Train_000001/cover.label       visible fraction 0..8, one value per line
    train/GOT-10k_Train_000001/meta_info.ini     object class etc. (lines 6-10)

The lmdb variant (``got10k_lmdb_dir``, one lmdb for the whole dataset) holds the same files under the
keys ``train/<file path>``. Visibility (official): ``absence == 0 and cover > 0 and w > 0 and h > 0``.

Splits (indices into ``list.txt``, read from the ``dataspec_path`` folder, pytracking ``ltr/data_specs``):
``train`` (got10k_train_split.txt, 7934 sequences), ``val`` (got10k_val_split.txt, 1401),
``vottrain`` (got10k_vot_train_split.txt, 7086), ``votval`` (got10k_vot_val_split.txt, 1249), and
``train_full`` (all 9335 sequences: the order of got10k_train_full_split.txt when that file is in the
folder, else the order of list.txt; no split file is needed). ``split=None`` uses every listed sequence
(the official val folder as root gives OSTrack's ``GOT10K_official_val``).
Source: OSTrack ``lib/train/dataset/got10k.py`` and ``got10k_lmdb.py``.
"""

from __future__ import annotations

import os
import random
from typing import Callable, Optional, Sequence

import torch

from .base_video_dataset import (BaseVideoDataset, DatasetError, FolderStorage, LmdbStorage, empty_object_meta,
                                 read_box_file, read_flag_file, read_split_file)

__all__ = ["Got10k", "Got10k_lmdb", "GOT10K_SPLIT_FILES"]

#: split name -> split file in the data_specs folder (None: every sequence).
GOT10K_SPLIT_FILES = {
    "train": "got10k_train_split.txt",
    "val": "got10k_val_split.txt",
    "vottrain": "got10k_vot_train_split.txt",
    "votval": "got10k_vot_val_split.txt",
    "train_full": None,
}
_SPLIT_ALIASES = {"vot_train": "vottrain", "vot_val": "votval", "full": "train_full"}


class Got10k(BaseVideoDataset):
    """GOT-10k training sequences.

    Args:
        root: the GOT-10k ``train`` folder (default: ``got10k_dir`` of lib/train/admin/local.py).
        image_loader: frame reader (default jpeg4py/OpenCV via :func:`lib.utils.image.imread_rgb`).
        split: ``None``, ``'train'``, ``'val'``, ``'train_full'``, ``'vottrain'``, ``'votval'``
            (GRM/AiATrack spellings ``'vot_train'``, ``'full'`` accepted).
        seq_ids: explicit indices into list.txt (not together with ``split``).
        data_fraction: keep a random fraction of the sequences.
        dataspec_path: folder of the split files (default: ``dataspec_path`` of local.py).

    Raises:
        DatasetError: missing root or list.txt, unknown split, split index out of range, missing
            sequence folder (each message names the file).
    """

    _storage_cls = FolderStorage
    _prefix = ""
    _root_field = "got10k_dir"

    def __init__(self, root: Optional[str] = None, image_loader: Optional[Callable] = None, split: Optional[str] = None,
                 seq_ids: Optional[Sequence[int]] = None, data_fraction: Optional[float] = None,
                 dataspec_path: Optional[str] = None):
        if root is None:
            from lib.train.admin.environment import env_settings

            root = env_settings().require(self._root_field, what="GOT-10k training data")
        super().__init__("GOT10k", root, image_loader)
        self.storage = self._open_storage(root)
        self.sequence_list = self._get_sequence_list()

        if split is not None:
            if seq_ids is not None:
                raise ValueError("Got10k: give either split or seq_ids, not both")
            split = _SPLIT_ALIASES.get(split, split)
            if split not in GOT10K_SPLIT_FILES:
                raise DatasetError(f"unknown GOT-10k split '{split}' (known: {', '.join(GOT10K_SPLIT_FILES)})")
            filename = GOT10K_SPLIT_FILES[split]
            if filename is None:  # train_full: every sequence, in the official file's order when available
                filename = "got10k_train_full_split.txt"
                try:
                    seq_ids = read_split_file(dataspec_path, filename, as_int=True)
                except DatasetError:
                    seq_ids = list(range(len(self.sequence_list)))
            else:
                seq_ids = read_split_file(dataspec_path, filename, as_int=True)
            bad = [i for i in seq_ids if not 0 <= i < len(self.sequence_list)]
            if bad:
                raise DatasetError(f"GOT-10k split '{split}' ({filename}) holds indices up to {max(bad)}, but "
                                   f"'{self.storage.where(self._prefix + 'list.txt')}' lists only "
                                   f"{len(self.sequence_list)} sequences: is the root the full GOT-10k train folder?")
        elif seq_ids is None:
            seq_ids = list(range(len(self.sequence_list)))
        self.split = split
        self.sequence_list = [self.sequence_list[i] for i in seq_ids]
        if data_fraction is not None:
            self.sequence_list = random.sample(self.sequence_list, int(len(self.sequence_list) * data_fraction))
        self._check_sequences_exist()

        self.sequence_meta_info = {s: self._read_meta(s) for s in self.sequence_list}
        self.seq_per_class = {}
        for i, s in enumerate(self.sequence_list):
            self.seq_per_class.setdefault(self.sequence_meta_info[s]["object_class_name"], []).append(i)
        self.class_list = sorted(self.seq_per_class.keys(), key=lambda c: (c is None, str(c)))
        self._frame_count_ok = {}

    # storage -------------------------------------------------------------------------------------------------
    def _open_storage(self, root: str):
        if not os.path.exists(root):
            raise DatasetError(f"GOT-10k folder '{root}' does not exist (set '{self._root_field}' in "
                               f"lib/train/admin/local.py)")
        storage = self._storage_cls(root)
        if not storage.exists(self._prefix + "list.txt"):
            raise DatasetError(f"'{storage.where(self._prefix + 'list.txt')}' does not exist: expected the GOT-10k "
                               f"train folder layout (list.txt and one folder per sequence with 00000001.jpg, "
                               f"groundtruth.txt, absence.label, cover.label)")
        return storage

    def _get_sequence_list(self):
        text = self.storage.read_text(self._prefix + "list.txt")
        names = [line.split(",")[0].strip() for line in text.splitlines()]
        return [n for n in names if n]

    def _check_sequences_exist(self):
        missing = [s for s in self.sequence_list if not self.storage.exists(f"{self._prefix}{s}/groundtruth.txt")]
        if missing:
            raise DatasetError(f"{len(missing)} GOT-10k sequences listed in "
                               f"'{self.storage.where(self._prefix + 'list.txt')}' have no groundtruth.txt, e.g. "
                               f"'{self.storage.where(self._prefix + missing[0] + '/groundtruth.txt')}'")

    def _read_meta(self, seq_name: str):
        rel = f"{self._prefix}{seq_name}/meta_info.ini"
        try:
            lines = self.storage.read_text(rel).splitlines()
            values = [lines[i].split(": ")[-1].strip() for i in range(5, 10)]
        except Exception:
            return empty_object_meta()
        meta = empty_object_meta(values[0], values[2])
        meta["motion_class"], meta["root_class"], meta["motion_adverb"] = values[1], values[3], values[4]
        return meta

    # dataset API ---------------------------------------------------------------------------------------------
    def get_name(self) -> str:
        return "got10k"

    def has_class_info(self) -> bool:
        return True

    def has_occlusion_info(self) -> bool:
        return True

    def get_sequences_in_class(self, class_name):
        return self.seq_per_class[class_name]

    def _seq_rel(self, seq_id: int) -> str:
        return f"{self._prefix}{self.sequence_list[seq_id]}"

    def _frame_rel(self, seq_rel: str, frame_id: int) -> str:
        return f"{seq_rel}/{frame_id + 1:08d}.jpg"  # frames start from 1

    def frame_location(self, seq_id: int, frame_id: int) -> str:
        """Where frame ``frame_id`` (0-based) of sequence ``seq_id`` is stored (path or lmdb key)."""
        return self.storage.where(self._frame_rel(self._seq_rel(seq_id), frame_id))

    def get_sequence_info(self, seq_id: int) -> dict:
        """``bbox`` (N,4) xywh, ``valid`` (w>0 & h>0), ``visible`` (valid & not absent & cover>0),
        ``visible_ratio`` (cover / 8)."""
        seq = self._seq_rel(seq_id)
        bbox = read_box_file(self.storage, f"{seq}/groundtruth.txt")
        n = bbox.shape[0]
        self._check_frame_count(self.storage, lambda i: self._frame_rel(seq, i), n, f"{seq}/groundtruth.txt",
                                self._frame_count_ok)
        absence = read_flag_file(self.storage, f"{seq}/absence.label", n, one_line=False)
        cover = read_flag_file(self.storage, f"{seq}/cover.label", n, one_line=False)
        valid = (bbox[:, 2] > 0) & (bbox[:, 3] > 0)
        visible = ((absence == 0) & (cover > 0) & valid).to(torch.uint8)
        return {"bbox": bbox, "valid": valid, "visible": visible, "visible_ratio": cover.float() / 8}

    def get_class_name(self, seq_id: int):
        return self.sequence_meta_info[self.sequence_list[seq_id]]["object_class_name"]

    def get_frames(self, seq_id, frame_ids, anno=None):
        seq = self._seq_rel(seq_id)
        frames = [self.storage.read_image(self._frame_rel(seq, f), self.image_loader) for f in frame_ids]
        if anno is None:
            anno = self.get_sequence_info(seq_id)
        meta = self.sequence_meta_info[self.sequence_list[seq_id]]
        return frames, self._select_frames(anno, frame_ids), meta


class Got10k_lmdb(Got10k):
    """GOT-10k from the official lmdb (``got10k_lmdb_dir``; keys ``train/list.txt``, ``train/<seq>/...``).

    Takes the same arguments as :class:`Got10k`; ``root`` is the lmdb folder.
    """

    _storage_cls = LmdbStorage
    _prefix = "train/"
    _root_field = "got10k_lmdb_dir"

    def get_name(self) -> str:
        return "got10k_lmdb"
