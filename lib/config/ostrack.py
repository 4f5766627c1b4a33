"""OSTrack defaults: the values of the official ``lib/config/ostrack/config.py`` (botaoye/OSTrack @ 33b5e12).

An experiment YAML (``experiments/ostrack/<name>.yaml``) is merged over these by
:func:`lib.config.load_config`; a YAML key without a default here is rejected with its name.
"""

from __future__ import annotations

from lib.config.common import deep_update, one_stream_vit
from lib.config.core import Config

__all__ = ["make_defaults"]


def make_defaults() -> Config:
    """A fresh copy of the OSTrack defaults (nested :class:`~lib.config.Config`): the one-stream ViT block of
    :mod:`lib.config.common` plus OSTrack's own keys (candidate elimination, the merger / intermediate-output
    switches, AMP, the validation set)."""
    cfg = one_stream_vit("vit_base_patch16_224", got10k_train="GOT10K_vottrain")
    return Config(deep_update(cfg, {
        "MODEL": {
            "EXTRA_MERGER": False,
            "RETURN_INTER": False,
            "RETURN_STAGES": [],
            "BACKBONE": {
                "SEP_SEG": False,
                "ADD_CLS_TOKEN": False,
                "CLS_TOKEN_USE_MODE": "ignore",
                "CE_LOC": [],
                "CE_KEEP_RATIO": [],
                "CE_TEMPLATE_RANGE": "ALL",  # ALL, CTR_POINT, CTR_REC or GT_BOX
            },
        },
        "TRAIN": {"AMP": False},
        "DATA": {
            "VAL": {
                "DATASETS_NAME": ["GOT10K_votval"],
                "DATASETS_RATIO": [1],
                "SAMPLE_PER_EPOCH": 10000,
            },
        },
    }))
