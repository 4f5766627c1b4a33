"""Convert a training dataset folder into the official lmdb layout (TOOLKIT.md section D).

Every file keeps its relative path as key, so the ``_lmdb`` dataset classes read exactly what the folder
classes read:

* ``got10k``: one lmdb; keys ``train/list.txt``, ``train/<seq>/<file>`` (and ``val/...``, ``test/...`` when
  those folders exist). ``src`` is the GOT-10k root (holding ``train/``) or the ``train`` folder itself.
* ``lasot``: one lmdb; keys ``<class>/<class>-<id>/<file>``.
* ``trackingnet``: one lmdb per chunk, ``<dst>/TRAIN_<k>_lmdb`` with keys ``anno/<video>.txt`` and
  ``frames/<video>/<i>.jpg``, plus ``<dst>/seq_list.json`` (``[[k, video], ...]``).
* ``coco``: one lmdb; keys ``annotations/instances_<split><version>.json`` and ``images/<split><version>/<file>``.
* ``vid``: one lmdb; keys ``cache.json`` (written from the XML annotations if missing) and
  ``Data/VID/train/...``.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Iterator, Tuple

from lib.utils.lmdb_utils import iter_folder, write_lmdb
from lib.utils.misc import atomic_write

from .base_video_dataset import DatasetError

__all__ = ["make_lmdb", "LMDB_DATASETS"]

LMDB_DATASETS = ("got10k", "lasot", "trackingnet", "coco", "vid")


def _require_dir(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise DatasetError(f"{what} '{path}' does not exist or is not a folder")


def _got10k_items(src: str) -> Iterator[Tuple[str, bytes]]:
    if os.path.isfile(os.path.join(src, "list.txt")):  # src is the train folder itself
        yield from iter_folder(src, prefix="train/")
        return
    found = False
    for split in ("train", "val", "test"):
        folder = os.path.join(src, split)
        if os.path.isdir(folder):
            if not os.path.isfile(os.path.join(folder, "list.txt")):
                raise DatasetError(f"GOT-10k folder '{folder}' has no list.txt")
            found = True
            yield from iter_folder(folder, prefix=split + "/")
    if not found:
        raise DatasetError(f"'{src}' is not a GOT-10k folder: expected list.txt, or train/list.txt below it")


def make_lmdb(dataset: str, src: str, dst: str, version: str = "2017", split: str = "train") -> Dict[str, int]:
    """Write the lmdb copy of dataset folder ``src`` to ``dst``.

    Args:
        dataset: one of :data:`LMDB_DATASETS`.
        src: the dataset folder (the one its ``*_dir`` field in local.py names).
        dst: output folder (an lmdb, or for TrackingNet a folder of per-chunk lmdbs); must not exist.
        version, split: COCO annotation version and split.

    Returns:
        ``{lmdb path: number of keys}``.

    Raises:
        DatasetError: ``src`` is missing or not in the dataset's layout.
        FileExistsError: ``dst`` exists.
    """
    _require_dir(src, f"{dataset} source folder")
    if dataset == "got10k":
        return {dst: write_lmdb(dst, _got10k_items(src))}
    if dataset == "lasot":
        if not any(os.path.isdir(os.path.join(src, d)) for d in os.listdir(src)):
            raise DatasetError(f"'{src}' is not a LaSOT folder: expected <class>/<class>-<id>/ folders")
        return {dst: write_lmdb(dst, iter_folder(src))}
    if dataset == "coco":
        anno = f"annotations/instances_{split}{version}.json"
        images = f"images/{split}{version}"
        if not os.path.isfile(os.path.join(src, anno)):
            raise DatasetError(f"'{os.path.join(src, anno)}' does not exist: expected the COCO layout")
        _require_dir(os.path.join(src, images), "COCO image folder")

        def items():
            with open(os.path.join(src, anno), "rb") as f:
                yield anno, f.read()
            yield from iter_folder(os.path.join(src, images), prefix=images + "/")

        return {dst: write_lmdb(dst, items())}
    if dataset == "vid":
        _require_dir(os.path.join(src, "Data", "VID", "train"), "ImageNet VID frame folder")
        cache = os.path.join(src, "cache.json")
        if not os.path.isfile(cache):
            from .imagenetvid import parse_vid_annotations

            with atomic_write(cache) as f:
                json.dump(parse_vid_annotations(src), f)

        def items():
            with open(cache, "rb") as f:
                yield "cache.json", f.read()
            yield from iter_folder(os.path.join(src, "Data", "VID", "train"), prefix="Data/VID/train/")

        return {dst: write_lmdb(dst, items())}
    if dataset == "trackingnet":
        chunks = sorted((int(d.split("_")[1]), d) for d in os.listdir(src)
                        if d.startswith("TRAIN_") and d.split("_")[1].isdigit() and os.path.isdir(os.path.join(src, d)))
        if not chunks:
            raise DatasetError(f"'{src}' is not a TrackingNet folder: expected TRAIN_<k>/anno and TRAIN_<k>/frames")
        if os.path.exists(dst):
            raise FileExistsError(f"'{dst}' exists already; remove it or choose another destination")
        os.makedirs(dst)
        counts, seq_list = {}, []
        for k, name in chunks:
            anno_dir = os.path.join(src, name, "anno")
            _require_dir(anno_dir, "TrackingNet annotation folder")
            seq_list += [[k, os.path.splitext(f)[0]] for f in sorted(os.listdir(anno_dir)) if f.endswith(".txt")]
            out = os.path.join(dst, f"{name}_lmdb")
            counts[out] = write_lmdb(out, iter_folder(os.path.join(src, name)))
        with atomic_write(os.path.join(dst, "seq_list.json")) as f:
            json.dump(seq_list, f)
        return counts
    raise ValueError(f"unknown dataset '{dataset}' (known: {', '.join(LMDB_DATASETS)})")
