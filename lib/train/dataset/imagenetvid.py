"""ImageNet VID (ILSVRC 2015, Russakovsky et al., IJCV 2015): every object track is a sequence.

Layout (``imagenet_dir``)::

    Annotations/VID/train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000/000000.xml
    Data/VID/train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000/000000.JPEG
    cache.json      the parsed tracks (written on first use, as the official code does)

A track starts at the first frame that shows its ``trackid`` and ends before the first later frame that
does not; boxes are ``xmin, ymin, xmax - xmin, ymax - ymin``; visible = ``occluded == 0`` and w, h > 0.
The lmdb variant (``imagenet_lmdb_dir``) holds ``cache.json`` and the ``Data/VID/train/...`` frames as keys.
Source: OSTrack ``lib/train/dataset/imagenetvid.py`` and ``imagenetvid_lmdb.py``.
"""

from __future__ import annotations

import json
import os
import warnings
import xml.etree.ElementTree as ET
from typing import Callable, Optional

import torch

from lib.utils.misc import atomic_write

from .base_video_dataset import BaseVideoDataset, DatasetError, FolderStorage, LmdbStorage, empty_object_meta

__all__ = ["ImagenetVID", "ImagenetVID_lmdb", "parse_vid_annotations"]


def _target_to_image_ratio(seq: dict) -> float:
    anno = torch.tensor(seq["anno"], dtype=torch.float32)
    img_sz = torch.tensor(seq["image_size"], dtype=torch.float32)
    return float((anno[0, 2:4].prod() / img_sz.prod()).sqrt())


def parse_vid_annotations(root: str) -> list:
    """Parse ``Annotations/VID/train`` into the official list of track dicts (``set_id``, ``vid_id``,
    ``class_name``, ``start_frame``, ``anno`` (xywh rows), ``target_visible``, ``image_size`` [w, h]).

    Raises:
        DatasetError: the annotation folder is missing or an XML file is malformed (named).
    """
    base = os.path.join(root, "Annotations", "VID", "train")
    if not os.path.isdir(base):
        raise DatasetError(f"ImageNet VID annotation folder '{base}' does not exist (and there is no cache.json)")
    sequences = []
    for set_name in sorted(os.listdir(base)):
        set_id = int(set_name.split("_")[-1])
        for vid in sorted(os.listdir(os.path.join(base, set_name))):
            vid_id = int(vid.split("_")[-1])
            folder = os.path.join(base, set_name, vid)
            files = sorted(os.listdir(folder))
            try:
                first = ET.parse(os.path.join(folder, files[0]))
                image_size = [int(first.find("size/width").text), int(first.find("size/height").text)]
                objects = [ET.parse(os.path.join(folder, f)).findall("object") for f in files]
            except (ET.ParseError, AttributeError, IndexError) as exc:
                raise DatasetError(f"malformed ImageNet VID annotation in '{folder}': {exc}") from exc
            starts = {}
            for f_id, targets in enumerate(objects):
                for t in targets:
                    starts.setdefault(t.find("trackid").text, f_id)
            for track_id, start in starts.items():
                anno, visible, class_name = [], [], None
                for f_id in range(start, len(objects)):
                    match = next((t for t in objects[f_id] if t.find("trackid").text == track_id), None)
                    if match is None:
                        break
                    class_name = class_name or match.find("name").text
                    x1, y1 = int(match.find("bndbox/xmin").text), int(match.find("bndbox/ymin").text)
                    x2, y2 = int(match.find("bndbox/xmax").text), int(match.find("bndbox/ymax").text)
                    anno.append([x1, y1, x2 - x1, y2 - y1])
                    visible.append(match.find("occluded").text == "0")
                sequences.append({"set_id": set_id, "vid_id": vid_id, "class_name": class_name,
                                  "start_frame": start, "anno": anno, "target_visible": visible,
                                  "image_size": image_size})
    return sequences


class ImagenetVID(BaseVideoDataset):
    """ImageNet VID object tracks.

    Args:
        root: the ILSVRC2015 folder (default: ``imagenet_dir`` of local.py).
        image_loader: frame reader (default jpeg4py/OpenCV).
        min_length: drop tracks shorter than this.
        max_target_area: drop tracks whose first box covers more than this fraction (sqrt of area ratio).

    Raises:
        DatasetError: missing root, annotations or malformed cache.json.
    """

    _storage_cls = FolderStorage
    _root_field = "imagenet_dir"

    def __init__(self, root: Optional[str] = None, image_loader: Optional[Callable] = None, min_length: int = 0,
                 max_target_area: float = 1):
        if root is None:
            from lib.train.admin.environment import env_settings

            root = env_settings().require(self._root_field, what="ImageNet VID")
        super().__init__("imagenetvid", root, image_loader)
        if not os.path.exists(root):
            raise DatasetError(f"ImageNet VID folder '{root}' does not exist (set '{self._root_field}' in "
                               f"lib/train/admin/local.py)")
        self.storage = self._storage_cls(root)
        tracks = self._load_tracks()
        self.sequence_list = [t for t in tracks if len(t["anno"]) >= min_length
                              and _target_to_image_ratio(t) < max_target_area]

    def _load_tracks(self) -> list:
        if self.storage.exists("cache.json"):
            try:
                return json.loads(self.storage.read_text("cache.json"))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"'{self.storage.where('cache.json')}' is not valid JSON: {exc}") from exc
        tracks = parse_vid_annotations(self.root)
        try:
            with atomic_write(os.path.join(self.root, "cache.json")) as f:
                json.dump(tracks, f)
        except OSError as exc:
            warnings.warn(f"ImageNet VID: could not write the cache '{os.path.join(self.root, 'cache.json')}' "
                          f"({exc}); the annotations will be parsed again next time", stacklevel=2)
        return tracks

    def get_name(self) -> str:
        return "imagenetvid"

    def get_sequence_info(self, seq_id: int) -> dict:
        """``bbox`` (N,4) xywh, ``valid`` (w>0 & h>0), ``visible`` (valid & not occluded)."""
        seq = self.sequence_list[seq_id]
        bbox = torch.tensor(seq["anno"], dtype=torch.float32).view(-1, 4)
        valid = (bbox[:, 2] > 0) & (bbox[:, 3] > 0)
        visible = torch.tensor(seq["target_visible"], dtype=torch.uint8) & valid.to(torch.uint8)
        return {"bbox": bbox, "valid": valid, "visible": visible}

    @staticmethod
    def _frame_rel(seq: dict, frame_id: int) -> str:
        return (f"Data/VID/train/ILSVRC2015_VID_train_{seq['set_id']:04d}/ILSVRC2015_train_{seq['vid_id']:08d}/"
                f"{frame_id + seq['start_frame']:06d}.JPEG")

    def get_frames(self, seq_id, frame_ids, anno=None):
        seq = self.sequence_list[seq_id]
        frames = [self.storage.read_image(self._frame_rel(seq, f), self.image_loader) for f in frame_ids]
        if anno is None:
            anno = self.get_sequence_info(seq_id)
        meta = empty_object_meta(seq["class_name"])
        meta["object_class"] = seq["class_name"]  # the official key for VID
        return frames, self._select_frames(anno, frame_ids), meta


class ImagenetVID_lmdb(ImagenetVID):
    """ImageNet VID from the official lmdb (``imagenet_lmdb_dir``; keys ``cache.json``, ``Data/VID/train/...``)."""

    _storage_cls = LmdbStorage
    _root_field = "imagenet_lmdb_dir"

    def _load_tracks(self) -> list:
        if not self.storage.exists("cache.json"):
            raise DatasetError(f"'{self.storage.where('cache.json')}' is missing: build the lmdb with "
                               f"tracking/make_lmdb.py --dataset vid")
        return json.loads(self.storage.read_text("cache.json"))

    def get_name(self) -> str:
        return "imagenetvid_lmdb"
