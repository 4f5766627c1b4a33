"""Training datasets and the names the experiment YAMLs use for them (``DATA.TRAIN.DATASETS_NAME``).

``names2datasets(names, env, use_lmdb)`` builds the dataset objects of a YAML's list, reading the roots
from the train-side ``local.py`` (``env``). Names of every official tracker are accepted:

==========================  =============================================  ===========================
name                        dataset (split)                                env field (lmdb field)
==========================  =============================================  ===========================
LASOT                       LaSOT train (lasot_train_split.txt)            lasot_dir (lasot_lmdb_dir)
GOT10K_vottrain             GOT-10k vottrain (7086)                        got10k_dir (got10k_lmdb_dir)
GOT10K_votval               GOT-10k votval (1249)                          got10k_dir (got10k_lmdb_dir)
GOT10K_train_full           GOT-10k, all 9335 training sequences           got10k_dir (got10k_lmdb_dir)
GOT10K_official_val         the official GOT-10k val folder (no lmdb)      got10k_val_dir
COCO17                      COCO 2017 train objects                        coco_dir (coco_lmdb_dir)
VID                         ImageNet VID tracks                            imagenet_dir (imagenet_lmdb_dir)
TRACKINGNET                 TrackingNet chunks 0-11                        trackingnet_dir (trackingnet_lmdb_dir)
GOT10K_vot_train            GRM/AiATrack spelling of GOT10K_vottrain
GOT10K_train                GRM/AiATrack: all 9335 sequences (their got10k_train_split.txt lists all of them)
==========================  =============================================  ===========================
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from .base_video_dataset import (BAD_DATA_ERRORS, BaseVideoDataset, DatasetError, FolderStorage, LmdbStorage,
                                 read_box_file, read_split_file)
from .coco_seq import MSCOCOSeq, MSCOCOSeq_lmdb
from .got10k import Got10k, Got10k_lmdb
from .imagenetvid import ImagenetVID, ImagenetVID_lmdb
from .lasot import Lasot, Lasot_lmdb
from .tracking_net import TrackingNet, TrackingNet_lmdb

__all__ = ["BaseVideoDataset", "DatasetError", "BAD_DATA_ERRORS", "FolderStorage", "LmdbStorage", "Got10k",
           "Got10k_lmdb", "Lasot", "Lasot_lmdb", "TrackingNet", "TrackingNet_lmdb", "MSCOCOSeq", "MSCOCOSeq_lmdb",
           "ImagenetVID", "ImagenetVID_lmdb", "DATASET_NAMES", "names2datasets", "build_dataset",
           "read_box_file", "read_split_file"]

# name -> (folder class, lmdb class, env field, lmdb env field, kwargs)
DATASET_NAMES = {
    "LASOT": (Lasot, Lasot_lmdb, "lasot_dir", "lasot_lmdb_dir", {"split": "train"}),
    "GOT10K_vottrain": (Got10k, Got10k_lmdb, "got10k_dir", "got10k_lmdb_dir", {"split": "vottrain"}),
    "GOT10K_votval": (Got10k, Got10k_lmdb, "got10k_dir", "got10k_lmdb_dir", {"split": "votval"}),
    "GOT10K_train_full": (Got10k, Got10k_lmdb, "got10k_dir", "got10k_lmdb_dir", {"split": "train_full"}),
    "GOT10K_official_val": (Got10k, None, "got10k_val_dir", None, {"split": None}),
    "COCO17": (MSCOCOSeq, MSCOCOSeq_lmdb, "coco_dir", "coco_lmdb_dir", {"version": "2017"}),
    "VID": (ImagenetVID, ImagenetVID_lmdb, "imagenet_dir", "imagenet_lmdb_dir", {}),
    "TRACKINGNET": (TrackingNet, TrackingNet_lmdb, "trackingnet_dir", "trackingnet_lmdb_dir", {}),
    # GRM / AiATrack spellings
    "GOT10K_vot_train": (Got10k, Got10k_lmdb, "got10k_dir", "got10k_lmdb_dir", {"split": "vottrain"}),
    "GOT10K_train": (Got10k, Got10k_lmdb, "got10k_dir", "got10k_lmdb_dir", {"split": "train_full"}),
}

_TAKES_DATASPEC = (Got10k, Lasot, TrackingNet)


def build_dataset(name: str, env, use_lmdb: bool = False, image_loader: Optional[Callable] = None
                  ) -> BaseVideoDataset:
    """The dataset object of one YAML dataset name.

    Args:
        name: a key of :data:`DATASET_NAMES`.
        env: train-side settings (``lib.train.admin.environment.env_settings()``) naming the roots and
            ``dataspec_path``.
        use_lmdb: read the ``_lmdb`` variant.
        image_loader: frame reader for folder datasets (default jpeg4py/OpenCV).

    Raises:
        KeyError: unknown name (lists the known ones).
        DatasetError / SettingsError: the root field is unset or its folder is wrong.
    """
    if name not in DATASET_NAMES:
        raise KeyError(f"unknown training dataset name '{name}' in DATA.*.DATASETS_NAME; known names: "
                       f"{', '.join(DATASET_NAMES)}")
    cls, lmdb_cls, field, lmdb_field, kwargs = DATASET_NAMES[name]
    if use_lmdb:
        if lmdb_cls is None:
            raise DatasetError(f"dataset '{name}' has no lmdb variant (train with --use_lmdb 0)")
        cls, field = lmdb_cls, lmdb_field
    root = env.require(field, what=f"root of training dataset {name}")
    kwargs = dict(kwargs)
    if issubclass(cls, _TAKES_DATASPEC):
        kwargs["dataspec_path"] = getattr(env, "dataspec_path", "") or None
    return cls(root, image_loader=image_loader, **kwargs)


def names2datasets(names: Sequence[str], env, use_lmdb: bool = False, image_loader: Optional[Callable] = None
                   ) -> List[BaseVideoDataset]:
    """The dataset objects of a YAML list of names (official ``names2datasets``)."""
    if not isinstance(names, (list, tuple)):
        raise TypeError(f"DATASETS_NAME must be a list of names, got {names!r}")
    return [build_dataset(n, env, use_lmdb, image_loader) for n in names]
