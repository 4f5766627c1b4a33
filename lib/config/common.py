"""The config defaults the transformer trackers share, in one place.

The official OSTrack, GRM and AiATrack configs (``lib/config/<tracker>/config.py`` of each repository) start
from the same training recipe (AdamW at 1e-4, 500 epochs with a step drop at 400, GIoU 2 + L1 5, 0.1 backbone
learning-rate factor) and the same sampling (a 320-pixel search region at factor 5 with centre jitter 4.5 and
scale jitter 0.5, ImageNet mean/std, frames at most 200 apart); OSTrack and GRM also share their one-stream ViT
model block and their test crops. Each tracker's module takes these blocks and adds or removes only its own keys,
so a value common to the official configs is written once.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, Mapping

__all__ = ["train_recipe", "data_sampling", "one_stream_vit", "deep_update", "without"]

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def deep_update(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` with ``update`` merged in recursively (new keys appended, nested dicts merged); returns ``base``."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def without(block: Dict[str, Any], keys: Iterable[str]) -> Dict[str, Any]:
    """``block`` without ``keys`` (a tracker whose official config lacks some shared keys)."""
    drop = set(keys)
    return {k: v for k, v in block.items() if k not in drop}


def train_recipe() -> Dict[str, Any]:
    """``TRAIN``: the shared optimisation recipe of the official OSTrack, GRM and AiATrack configs."""
    return {
        "LR": 0.0001,
        "WEIGHT_DECAY": 0.0001,
        "EPOCH": 500,
        "LR_DROP_EPOCH": 400,
        "BATCH_SIZE": 16,
        "NUM_WORKER": 8,
        "OPTIMIZER": "ADAMW",
        "BACKBONE_MULTIPLIER": 0.1,
        "GIOU_WEIGHT": 2.0,
        "L1_WEIGHT": 5.0,
        "PRINT_INTERVAL": 50,
        "VAL_EPOCH_INTERVAL": 20,
        "GRAD_CLIP_NORM": 0.1,
        "SCHEDULER": {
            "TYPE": "step",
            "DECAY_RATE": 0.1,
        },
    }


def data_sampling(got10k_train: str = "GOT10K_vot_train") -> Dict[str, Any]:
    """``DATA``: ImageNet normalisation, the training sets (LaSOT + the GOT-10k split named ``got10k_train``: the
    official OSTrack config spells it ``GOT10K_vottrain``, GRM and AiATrack ``GOT10K_vot_train``) and the
    search / template sampling (320 px at factor 5; 128 px template at factor 2)."""
    return {
        "MEAN": list(IMAGENET_MEAN),
        "STD": list(IMAGENET_STD),
        "MAX_SAMPLE_INTERVAL": 200,
        "TRAIN": {
            "DATASETS_NAME": ["LASOT", got10k_train],
            "DATASETS_RATIO": [1, 1],
            "SAMPLE_PER_EPOCH": 60000,
        },
        "SEARCH": {
            "SIZE": 320,
            "FACTOR": 5.0,
            "CENTER_JITTER": 4.5,
            "SCALE_JITTER": 0.5,
            "NUMBER": 1,
        },
        "TEMPLATE": {
            "NUMBER": 1,
            "SIZE": 128,
            "FACTOR": 2.0,
            "CENTER_JITTER": 0.0,
            "SCALE_JITTER": 0.0,
        },
    }


def one_stream_vit(backbone_type: str, got10k_train: str) -> Dict[str, Any]:
    """The defaults OSTrack and GRM share: a one-stream ViT (MAE-pretrained ViT-B/16) with a CENTER head, the
    shared recipe with the first block frozen, stochastic depth 0.1 and the candidate-elimination schedule keys
    (GRM keeps them unused), causal sampling, and the 128 / 320 px test crops at factors 2 / 5 (epoch 500)."""
    return {
        "MODEL": {
            "PRETRAIN_FILE": "mae_pretrain_vit_base.pth",
            "BACKBONE": {
                "TYPE": backbone_type,
                "STRIDE": 16,
                "MID_PE": False,
                "CAT_MODE": "direct",
                "MERGE_LAYER": 0,
            },
            "HEAD": {
                "TYPE": "CENTER",
                "NUM_CHANNELS": 256,
            },
        },
        "TRAIN": deep_update(train_recipe(), {
            "FREEZE_LAYERS": [0],
            "CE_START_EPOCH": 20,  # first epoch of candidate elimination
            "CE_WARM_EPOCH": 80,  # epochs over which the keep ratio falls from 1 to CE_KEEP_RATIO
            "DROP_PATH_RATE": 0.1,  # stochastic depth of the ViT backbone
        }),
        "DATA": deep_update({"SAMPLER_MODE": "causal"}, data_sampling(got10k_train)),
        "TEST": {
            "TEMPLATE_FACTOR": 2.0,
            "TEMPLATE_SIZE": 128,
            "SEARCH_FACTOR": 5.0,
            "SEARCH_SIZE": 320,
            "EPOCH": 500,
        },
    }
