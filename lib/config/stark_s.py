"""Defaults of the ``stark_s`` script (STARK-S50): the values of the official
``lib/config/stark_s/config.py``; ``experiments/stark_s/<name>.yaml`` is merged over them.
"""

from __future__ import annotations

__all__ = ["make_defaults"]


def _model(st: bool) -> dict:
    backbone = {"TYPE": "resnet50", "OUTPUT_LAYERS": ["layer3"], "DILATION": False}
    model = {"HEAD_TYPE": "CORNER", "HIDDEN_DIM": 256, "NUM_OBJECT_QUERIES": 1, "POSITION_EMBEDDING": "sine",
             "PREDICT_MASK": False, "BACKBONE": backbone,
             "TRANSFORMER": {"NHEADS": 8, "DROPOUT": 0.1, "DIM_FEEDFORWARD": 2048, "ENC_LAYERS": 6,
                             "DEC_LAYERS": 6, "PRE_NORM": False, "DIVIDE_NORM": False}}
    if st:
        model["NLAYER_HEAD"] = 3
        backbone["STRIDE"] = 16
    return model


def _train() -> dict:
    return {"LR": 0.0001, "WEIGHT_DECAY": 0.0001, "EPOCH": 500, "LR_DROP_EPOCH": 400, "BATCH_SIZE": 16,
            "NUM_WORKER": 8, "OPTIMIZER": "ADAMW", "BACKBONE_MULTIPLIER": 0.1, "GIOU_WEIGHT": 2.0,
            "L1_WEIGHT": 5.0, "DEEP_SUPERVISION": False, "FREEZE_BACKBONE_BN": True,
            "FREEZE_LAYERS": ["conv1", "layer1"], "PRINT_INTERVAL": 50, "VAL_EPOCH_INTERVAL": 20,
            "GRAD_CLIP_NORM": 0.1, "SCHEDULER": {"TYPE": "step", "DECAY_RATE": 0.1}}


def _data(st: bool) -> dict:
    data = {"MEAN": [0.485, 0.456, 0.406], "STD": [0.229, 0.224, 0.225],
            "MAX_SAMPLE_INTERVAL": [200] if st else 200,
            "TRAIN": {"DATASETS_NAME": ["LASOT", "GOT10K_vottrain"], "DATASETS_RATIO": [1, 1],
                      "SAMPLE_PER_EPOCH": 60000},
            "VAL": {"DATASETS_NAME": ["GOT10K_votval"], "DATASETS_RATIO": [1], "SAMPLE_PER_EPOCH": 10000},
            "SEARCH": {"SIZE": 320, "FACTOR": 5.0, "CENTER_JITTER": 4.5, "SCALE_JITTER": 0.5},
            "TEMPLATE": {"SIZE": 128, "FACTOR": 2.0, "CENTER_JITTER": 0.0, "SCALE_JITTER": 0.0}}
    if st:
        data = {"SAMPLER_MODE": "trident_pro", **data}
        data["SEARCH"] = {"NUMBER": 1, **data["SEARCH"]}
        data["TEMPLATE"] = {"NUMBER": 2, **data["TEMPLATE"]}
    return data


def _test() -> dict:
    return {"TEMPLATE_FACTOR": 2.0, "TEMPLATE_SIZE": 128, "SEARCH_FACTOR": 5.0, "SEARCH_SIZE": 320, "EPOCH": 500}


def make_defaults(script: str = "stark_s") -> dict:
    """The defaults of STARK-S (official ``stark_s/config.py``) as nested dicts.

    Raises:
        ValueError: a script other than ``stark_s``.
    """
    if script != "stark_s":
        raise ValueError(f"lib.config.stark_s holds the defaults of 'stark_s', not '{script}'")
    return {"MODEL": _model(st=False), "TRAIN": _train(), "DATA": _data(st=False), "TEST": _test()}
