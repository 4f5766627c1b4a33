"""OSTrack defaults: the values of the official ``lib/config/ostrack/config.py`` (botaoye/OSTrack @ 33b5e12).

An experiment YAML (``experiments/ostrack/<name>.yaml``) is merged over these by
:func:`lib.config.load_config`; a YAML key without a default here is rejected with its name.
"""

from __future__ import annotations

from lib.config.core import Config

__all__ = ["make_defaults"]


def make_defaults() -> Config:
    """A fresh copy of the OSTrack defaults (nested :class:`~lib.config.Config`)."""
    return Config({
        "MODEL": {
            "PRETRAIN_FILE": "mae_pretrain_vit_base.pth",
            "EXTRA_MERGER": False,
            "RETURN_INTER": False,
            "RETURN_STAGES": [],
            "BACKBONE": {
                "TYPE": "vit_base_patch16_224",
                "STRIDE": 16,
                "MID_PE": False,
                "SEP_SEG": False,
                "CAT_MODE": "direct",
                "MERGE_LAYER": 0,
                "ADD_CLS_TOKEN": False,
                "CLS_TOKEN_USE_MODE": "ignore",
                "CE_LOC": [],
                "CE_KEEP_RATIO": [],
                "CE_TEMPLATE_RANGE": "ALL",  # ALL, CTR_POINT, CTR_REC or GT_BOX
            },
            "HEAD": {
                "TYPE": "CENTER",
                "NUM_CHANNELS": 256,
            },
        },
        "TRAIN": {
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
            "FREEZE_LAYERS": [0],
            "PRINT_INTERVAL": 50,
            "VAL_EPOCH_INTERVAL": 20,
            "GRAD_CLIP_NORM": 0.1,
            "AMP": False,
            "CE_START_EPOCH": 20,  # first epoch of candidate elimination
            "CE_WARM_EPOCH": 80,  # epochs over which the keep ratio falls from 1 to CE_KEEP_RATIO
            "DROP_PATH_RATE": 0.1,  # stochastic depth of the ViT backbone
            "SCHEDULER": {
                "TYPE": "step",
                "DECAY_RATE": 0.1,
            },
        },
        "DATA": {
            "SAMPLER_MODE": "causal",
            "MEAN": [0.485, 0.456, 0.406],
            "STD": [0.229, 0.224, 0.225],
            "MAX_SAMPLE_INTERVAL": 200,
            "TRAIN": {
                "DATASETS_NAME": ["LASOT", "GOT10K_vottrain"],
                "DATASETS_RATIO": [1, 1],
                "SAMPLE_PER_EPOCH": 60000,
            },
            "VAL": {
                "DATASETS_NAME": ["GOT10K_votval"],
                "DATASETS_RATIO": [1],
                "SAMPLE_PER_EPOCH": 10000,
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
        },
        "TEST": {
            "TEMPLATE_FACTOR": 2.0,
            "TEMPLATE_SIZE": 128,
            "SEARCH_FACTOR": 5.0,
            "SEARCH_SIZE": 320,
            "EPOCH": 500,
        },
    })
