"""AiATrack defaults: the values of the official ``lib/config/aiatrack/config.py``
(Little-Podi/AiATrack @ cdb3a4e).

An experiment YAML (``experiments/aiatrack/<name>.yaml``) is merged over these by
:func:`lib.config.load_config`; a YAML key without a default here is rejected with its name.

``TEST.HYPER.<DATASET>`` is the per-dataset triple ``[cache_size, num_short_term_references,
iou_threshold]`` of the tracker (memory cache length, number of short-term references fed to the
decoder besides the initial one, predicted-IoU threshold for adding a frame to the cache). The
tracker uses the entry named by the upper-cased dataset name, else ``DEFAULT``. As in the official
code the defaults hold every dataset, so a YAML that lists only some keeps the others.
"""

from __future__ import annotations

from typing import Optional

from lib.config.common import data_sampling, deep_update, train_recipe, without
from lib.config.core import Config

__all__ = ["make_defaults", "hyper_parameters"]


def make_defaults() -> Config:
    """A fresh copy of the AiATrack defaults (nested :class:`~lib.config.Config`)."""
    return Config({
        "MODEL": {
            "HEAD_TYPE": "CORNER",
            "HIDDEN_DIM": 256,
            "NUM_OBJECT_QUERIES": 1,
            "POSITION_EMBEDDING": "sine",
            "PREDICT_MASK": False,
            "BACKBONE": {
                "TYPE": "resnet50",
                "OUTPUT_LAYERS": ["layer3"],
                "DILATION": False,
            },
            "TRANSFORMER": {
                "NHEADS": 8,
                "DROPOUT": 0.1,
                "DIM_FEEDFORWARD": 2048,
                "ENC_LAYERS": 6,
                "DEC_LAYERS": 6,
                "PRE_NORM": False,
                "DIVIDE_NORM": False,
            },
            "AIA": {
                "USE_AIA": True,
                "MATCH_DIM": 64,   # width of the inner attention (and of the 'inr' sine encoding)
                "FEAT_SIZE": 400,  # tokens per frame (20 x 20): the inner attention's token width
            },
        },
        "TRAIN": deep_update(train_recipe(), {
            "IOU_WEIGHT": 2.0,
            "DEEP_SUPERVISION": False,
            "FREEZE_BACKBONE_BN": True,
            "FREEZE_LAYERS": ["conv1", "layer1"],
        }),
        "DATA": deep_update(without(data_sampling("GOT10K_vot_train"), ["SEARCH", "TEMPLATE"]), {
            "SEARCH": without(data_sampling()["SEARCH"], ["NUMBER"]),
            "TEMPLATE": {  # jitter of the initial reference frame during training
                "CENTER_JITTER": 0.0,
                "SCALE_JITTER": 0.0,
            },
        }),
        "TEST": {
            "SEARCH_FACTOR": 5.0,
            "SEARCH_SIZE": 320,
            "EPOCH": 500,
            "HYPER": {  # [cache_size, num_short_term_references, iou_threshold]
                "DEFAULT": [100, 3, 0.7],
                "LASOT": [100, 4, 0.8],
                "LASOT_EXT": [100, 6, 0.8],
                "TRACKINGNET": [100, 6, 0.7],
                "GOT10K_TEST": [80, 4, 0.7],
                "NFS": [80, 3, 0.6],
                "OTB": [100, 3, 0.7],
                "UAV": [100, 3, 0.7],
            },
        },
    })


#: Project dataset names whose official AiATrack name differs.
_DATASET_ALIASES = {"LASOT_EXTENSION_SUBSET": "LASOT_EXT"}


def hyper_parameters(cfg, dataset_name: Optional[str]):
    """``(cache_size, num_short_term_refs, iou_threshold, key)`` of ``cfg.TEST.HYPER`` for a dataset.

    Raises:
        ValueError: a HYPER entry that is not ``[int >= 2, int >= 1, float]``.
    """
    hyper = cfg.TEST.HYPER
    key = (dataset_name or "DEFAULT").upper()
    key = _DATASET_ALIASES.get(key, key)
    if key not in hyper:
        key = "DEFAULT"
    entry = hyper[key]
    if len(entry) != 3 or int(entry[0]) < 2 or int(entry[1]) < 1:
        raise ValueError(f"TEST.HYPER.{key} must be [cache_size >= 2, num_short_term_refs >= 1, iou_threshold], "
                         f"got {entry}")
    return int(entry[0]), int(entry[1]), float(entry[2]), key
