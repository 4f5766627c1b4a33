"""GRM defaults: the values of the official ``lib/config/grm/config.py`` (Little-Podi/GRM @ 466ceb7).

GRM's config is OSTrack's without the candidate-elimination keys (``MODEL.BACKBONE.CE_*``, ``SEP_SEG``,
``ADD_CLS_TOKEN``, ``CLS_TOKEN_USE_MODE``), ``MODEL.EXTRA_MERGER`` / ``RETURN_INTER`` / ``RETURN_STAGES``,
``TRAIN.PRINT_INTERVAL``, ``TRAIN.AMP`` and ``DATA.VAL``, plus:

* ``MODEL.TGT_TYPE``: how the target representation fed to the division predictors is pooled from
  the template tokens (``allmax``, ``allavg``, ``roimax``, ``roiavg``; every shipped config: ``allmax``);
* ``TEST.HYPER``: the test-time division threshold per benchmark, keyed by the upper-cased dataset
  name of the runner (``DEFAULT`` for the others); see :func:`division_threshold`.

``TRAIN.CE_START_EPOCH`` / ``CE_WARM_EPOCH`` are in the official defaults but GRM never reads them.
An experiment YAML (``experiments/grm/<name>.yaml``) is merged over these by
:func:`lib.config.load_config`; a YAML key without a default here is rejected with its name.
"""

from __future__ import annotations

from typing import Optional

from lib.config.core import Config

__all__ = ["make_defaults", "division_threshold"]


def make_defaults() -> Config:
    """A fresh copy of the GRM defaults (nested :class:`~lib.config.Config`)."""
    return Config({
        "MODEL": {
            "PRETRAIN_FILE": "mae_pretrain_vit_base.pth",
            "TGT_TYPE": "allmax",  # allmax, allavg, roimax or roiavg
            "BACKBONE": {
                "TYPE": "vit_base",  # vit_base (ViT-B/16) or vit_large (ViT-L/16)
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
        "TRAIN": {
            "LR": 0.0001,
            "WEIGHT_DECAY": 0.0001,
            "EPOCH": 500,
            "LR_DROP_EPOCH": 400,
            "BATCH_SIZE": 16,
            "NUM_WORKER": 8,
            "OPTIMIZER": "ADAMW",
            "BACKBONE_MULTIPLIER": 0.1,  # backbone LR factor; the division predictors train at the full LR
            "GIOU_WEIGHT": 2.0,
            "L1_WEIGHT": 5.0,
            "FREEZE_LAYERS": [0],
            "VAL_EPOCH_INTERVAL": 20,
            "GRAD_CLIP_NORM": 0.1,
            "CE_START_EPOCH": 20,  # unused by GRM (kept from OSTrack's defaults)
            "CE_WARM_EPOCH": 80,  # unused by GRM
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
                "DATASETS_NAME": ["LASOT", "GOT10K_vot_train"],
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
        },
        "TEST": {
            "TEMPLATE_FACTOR": 2.0,
            "TEMPLATE_SIZE": 128,
            "SEARCH_FACTOR": 5.0,
            "SEARCH_SIZE": 320,
            "EPOCH": 500,
            # test-time division threshold per benchmark (0: argmax division), see division_threshold()
            "HYPER": {
                "DEFAULT": 0.0,
                "LASOT": 0.0,
                "TRACKINGNET": 0.0,
                "GOT10K_TEST": 0.0,
                "NFS": 0.0,
                "UAV": 0.0,
                "AVIST": 0.0,
            },
        },
    })


def division_threshold(cfg: Config, dataset_name: Optional[str]) -> float:
    """The test-time division threshold of ``dataset_name`` (official ``lib/test/tracker/grm.py``).

    ``cfg.TEST.HYPER[dataset_name.upper()]`` when that key exists, else ``cfg.TEST.HYPER.DEFAULT``. A
    threshold ``t > 0`` puts a search token in the class that attends to everything when the predicted
    probability of the search-only class is below ``t``; ``0`` takes the more probable class.

    Raises:
        ValueError: a threshold that is not a number in [0, 1] (names the config field).
    """
    hyper = cfg.TEST.HYPER
    key = (dataset_name or "").upper()
    field = key if key and key in hyper else "DEFAULT"
    value = hyper[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"config field TEST.HYPER.{field} must be a division threshold in [0, 1], got {value!r}")
    return float(value)
