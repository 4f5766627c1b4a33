"""COCO 2017 (Lin et al., ECCV 2014) as one-frame "sequences": every non-crowd object annotation is a
sequence whose single image is repeated for the template and the search region.

Layout (``coco_dir``; the lmdb ``coco_lmdb_dir`` holds the same relative paths as keys)::

    annotations/instances_train2017.json
    images/train2017/000000000009.jpg

Validity (official, "to avoid too small boxes"): ``w > 50 and h > 50`` pixels; visible = valid.
Object masks are rasterised from the polygons with OpenCV (the official code uses pycocotools'
``annToMask``; the masks only feed the ``*_masks`` fields, which no tracker's loss reads).
Source: OSTrack ``lib/train/dataset/coco_seq.py`` and ``coco_seq_lmdb.py``.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from collections import OrderedDict
from typing import Callable, Optional

import cv2
import numpy as np
import torch

from .base_video_dataset import BaseVideoDataset, DatasetError, FolderStorage, LmdbStorage, empty_object_meta

__all__ = ["MSCOCOSeq", "MSCOCOSeq_lmdb", "ann_to_mask"]


def ann_to_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """``(H, W)`` uint8 mask of one COCO annotation (polygons, or uncompressed RLE ``{'counts': [...]}``)."""
    mask = np.zeros((height, width), np.uint8)
    seg = ann.get("segmentation")
    if isinstance(seg, list):
        polys = [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32) for p in seg if len(p) >= 6]
        if polys:
            cv2.fillPoly(mask, polys, 1)
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
        flat = np.zeros(height * width, np.uint8)
        pos, val = 0, 0
        for run in seg["counts"]:
            flat[pos:pos + run] = val
            pos += run
            val = 1 - val
        mask = flat.reshape(width, height).T.copy()  # COCO RLE is column-major
    elif seg is not None:
        warnings.warn("COCO: compressed RLE segmentations are not decoded (mask left empty)", stacklevel=2)
    return mask


class MSCOCOSeq(BaseVideoDataset):
    """COCO objects as one-frame sequences.

    Args:
        root: COCO folder (default: ``coco_dir`` of local.py).
        image_loader: frame reader (default jpeg4py/OpenCV).
        data_fraction: keep a random fraction of the objects.
        split: ``'train'`` or ``'val'``.
        version: ``'2017'`` (or ``'2014'``).
        load_masks: rasterise object masks (official behaviour); False leaves ``mask`` out.

    Raises:
        DatasetError: missing root or annotation file, invalid JSON.
    """

    _storage_cls = FolderStorage
    _root_field = "coco_dir"

    def __init__(self, root: Optional[str] = None, image_loader: Optional[Callable] = None,
                 data_fraction: Optional[float] = None, split: str = "train", version: str = "2014",
                 load_masks: bool = True):
        if root is None:
            from lib.train.admin.environment import env_settings

            root = env_settings().require(self._root_field, what="COCO")
        super().__init__("COCO", root, image_loader)
        if not os.path.exists(root):
            raise DatasetError(f"COCO folder '{root}' does not exist (set '{self._root_field}' in "
                               f"lib/train/admin/local.py)")
        self.storage = self._storage_cls(root)
        self.img_pth = f"images/{split}{version}/"
        self.anno_path = f"annotations/instances_{split}{version}.json"
        if not self.storage.exists(self.anno_path):
            raise DatasetError(f"COCO annotation file '{self.storage.where(self.anno_path)}' does not exist: "
                               f"expected annotations/instances_{split}{version}.json and images/{split}{version}/ "
                               f"under the root")
        try:
            data = json.loads(self.storage.read_text(self.anno_path))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"'{self.storage.where(self.anno_path)}' is not valid JSON: {exc}") from exc
        self.load_masks = load_masks
        self.cats = OrderedDict((c["id"], c) for c in data.get("categories", []))
        self.imgs = {im["id"]: im for im in data.get("images", [])}
        self.anns = OrderedDict((a["id"], a) for a in data.get("annotations", []))
        self.class_list = [c["name"] for c in self.cats.values()]
        self.sequence_list = [a_id for a_id, a in self.anns.items() if a.get("iscrowd", 0) == 0]
        if data_fraction is not None:
            self.sequence_list = random.sample(self.sequence_list, int(len(self.sequence_list) * data_fraction))
        self.seq_per_class = {}
        for i, a_id in enumerate(self.sequence_list):
            self.seq_per_class.setdefault(self.cats[self.anns[a_id]["category_id"]]["name"], []).append(i)

    def is_video_sequence(self) -> bool:
        return False

    def get_name(self) -> str:
        return "coco"

    def has_class_info(self) -> bool:
        return True

    def has_segmentation_info(self) -> bool:
        return True

    def get_sequences_in_class(self, class_name):
        return self.seq_per_class[class_name]

    def get_sequence_info(self, seq_id: int) -> dict:
        """``bbox`` (1,4) xywh, ``mask`` (1,H,W), ``valid`` and ``visible`` (w > 50 and h > 50)."""
        ann = self.anns[self.sequence_list[seq_id]]
        bbox = torch.tensor(ann["bbox"], dtype=torch.float32).view(1, 4)
        valid = (bbox[:, 2] > 50) & (bbox[:, 3] > 50)
        info = {"bbox": bbox, "valid": valid, "visible": valid.clone().to(torch.uint8)}
        if self.load_masks:
            img = self.imgs.get(ann["image_id"], {})
            mask = ann_to_mask(ann, int(img.get("height", 0)), int(img.get("width", 0)))
            info = {"bbox": bbox, "mask": torch.from_numpy(mask).float().unsqueeze(0), "valid": valid,
                    "visible": info["visible"]}
        return info

    def get_meta_info(self, seq_id: int) -> OrderedDict:
        cat = self.cats.get(self.anns[self.sequence_list[seq_id]]["category_id"])
        return empty_object_meta(cat["name"], cat.get("supercategory")) if cat else empty_object_meta()

    def get_class_name(self, seq_id: int) -> str:
        return self.cats[self.anns[self.sequence_list[seq_id]]["category_id"]]["name"]

    def _image_rel(self, seq_id: int) -> str:
        ann = self.anns[self.sequence_list[seq_id]]
        img = self.imgs.get(ann["image_id"])
        if img is None:
            raise DatasetError(f"'{self.storage.where(self.anno_path)}': annotation {ann['id']} names image "
                               f"{ann['image_id']}, which is not in its 'images' list")
        return self.img_pth + img["file_name"]

    def get_frames(self, seq_id=None, frame_ids=None, anno=None):
        """The object's image repeated ``len(frame_ids)`` times, with its annotation."""
        frame = self.storage.read_image(self._image_rel(seq_id), self.image_loader)
        frames = [frame.copy() for _ in frame_ids]
        if anno is None:
            anno = self.get_sequence_info(seq_id)
        anno_frames = {key: [value[0, ...] for _ in frame_ids] for key, value in anno.items()}
        return frames, anno_frames, self.get_meta_info(seq_id)


class MSCOCOSeq_lmdb(MSCOCOSeq):
    """COCO from the official lmdb (``coco_lmdb_dir``; keys ``annotations/instances_train2017.json``,
    ``images/train2017/<file>``); same arguments."""

    _storage_cls = LmdbStorage
    _root_field = "coco_lmdb_dir"

    def get_name(self) -> str:
        return "coco_lmdb"
