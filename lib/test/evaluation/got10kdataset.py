"""GOT-10k (Huang, Zhao, Huang, "GOT-10k: A Large High-Diversity Benchmark for Generic Object Tracking in
the Wild", TPAMI 2019; pytracking/OSTrack ``got10kdataset.py``).

Layout under ``got10k_path``::

    test/list.txt, test/GOT-10k_Test_000001/00000001.jpg ..., groundtruth.txt (first frame's box only)
    val/list.txt,  val/GOT-10k_Val_000001/00000001.jpg ...,   groundtruth.txt (one box per frame)
    train/list.txt, train/GOT-10k_Train_000001/...

Splits: ``test`` (180 sequences), ``val`` (180), ``ltrval`` (the rows of ``train/list.txt`` whose
0-based indices are listed in ``<dataspec_path>/got10k_val_split.txt``, pytracking's validation split
of the training set). Frames are the ``*.jpg`` of the sequence folder sorted by number; where a val or
ltrval folder holds no images (annotation-only copy) the frame names are ``00000001.jpg`` ... one per
box. Result files go to ``<results_dir>/got10k/`` (the layout ``transform_got10k.py`` reads).
"""

from __future__ import annotations

import os
from typing import Optional

from .annotations import AnnotationError, check_box_count, read_boxes, require_file, sorted_frames
from .data import BaseDataset, Sequence

__all__ = ["GOT10KDataset"]

SPLITS = ("test", "val", "ltrval")


class GOT10KDataset(BaseDataset):
    """GOT-10k ``split`` (test / val / ltrval). ``base_path`` defaults to ``got10k_path`` (the folder that
    holds ``test/``, ``val/`` and ``train/``); ``dataspec_path`` (ltrval only) to the local.py field. The
    sequences are those of ``list.txt``; ``missing`` (``'error'``/``'skip'``) handles listed sequences
    absent from the folder (:class:`~.data.BaseDataset`)."""

    name = "got10k"

    def __init__(self, base_path: Optional[str] = None, split: str = "test", dataspec_path: Optional[str] = None,
                 missing: str = "error"):
        super().__init__(missing=missing)
        if split not in SPLITS:
            raise ValueError(f"GOT-10k split must be one of {', '.join(SPLITS)}, got '{split}'")
        self.split = split
        self.root = self.resolve_base_path(base_path, "got10k_path", "GOT-10k (test/, val/, train/ with list.txt)")
        self.base_path = os.path.join(self.root, "train" if split == "ltrval" else split)
        list_file = require_file(os.path.join(self.base_path, "list.txt"), f"GOT-10k {split} sequence list")
        with open(list_file) as f:
            names = [line.strip() for line in f if line.strip()]
        if split == "ltrval":
            if dataspec_path is None:
                from .environment import env_settings

                dataspec_path = env_settings().require("dataspec_path", what="split files such as got10k_val_split.txt")
            split_file = require_file(os.path.join(dataspec_path, "got10k_val_split.txt"),
                                      "GOT-10k ltrval split (indices into train/list.txt)")
            picked = []
            with open(split_file) as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        picked.append(names[int(line)])
                    except (ValueError, IndexError):
                        raise AnnotationError(f"{split_file}, line {lineno}: '{line.strip()}' is not an index into "
                                              f"{list_file} ({len(names)} rows)") from None
            names = picked
        self.names = names

    def annotation_path(self, name: str) -> str:
        return os.path.join(self.base_path, name, "groundtruth.txt")

    def _sequence_by_name(self, name: str) -> Sequence:
        folder = os.path.join(self.base_path, name)
        anno = self.annotation_path(name)
        gt = read_boxes(anno, negative="error" if self.split == "test" else "warn")
        frames = sorted_frames(folder)
        if self.split == "test":
            if len(gt) > 1 and frames:
                check_box_count(gt, len(frames), anno, f"the .jpg files of '{folder}'")
        elif frames:
            check_box_count(gt, len(frames), anno, f"the .jpg files of '{folder}'")
        else:
            frames = [os.path.join(folder, f"{i:08d}.jpg") for i in range(1, len(gt) + 1)]
        return Sequence(name, frames, "got10k", gt)
