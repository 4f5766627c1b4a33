"""Defaults of the ``sparsett`` script (SparseTT, IJCAI 2022; fzh0917/SparseTT @ 791245c, video_analyst based).

The official code has no ``config.py``: its YAMLs (``experiments/sparsett/{train,test}/*/*.yaml``) are yacs
nodes merged onto the generic ``default_hyper_params`` of each video_analyst module. Those class defaults
are SiamFC++ values that every SparseTT YAML overrides (e.g. ``SparseTTTracker`` x_size 303 / total_stride 8
/ test_lr 0.52, ``TransformerNeck`` 8+8 layers, f_z 5, f_x 25, top_k None), so the defaults here are the
values of the *released SparseTT YAMLs* (GOT-10k test YAML for MODEL/TEST, GOT-10k train YAML for
TRAIN/DATA). ``experiments/sparsett/*.yaml`` document the key-by-key mapping from the video_analyst YAML.

Per-benchmark test hyper-parameters live in ``TEST.HYPER`` keyed by the upper-case dataset name of the
runner (``DEFAULT`` when the dataset has no entry); see :func:`select_test_hyper`.
"""

from __future__ import annotations

from typing import Mapping, Optional

__all__ = ["make_defaults", "select_test_hyper", "HYPER_KEYS"]

#: The three per-benchmark hyper-parameters of ``SparseTTTracker`` (official names lower-cased).
HYPER_KEYS = ("TEST_LR", "WINDOW_INFLUENCE", "PENALTY_K")


def _hyper(test_lr: float, window_influence: float, penalty_k: float) -> dict:
    return {"TEST_LR": test_lr, "WINDOW_INFLUENCE": window_influence, "PENALTY_K": penalty_k}


def make_defaults() -> dict:
    """The SparseTT configuration tree (nested dicts), values of the released SparseTT YAMLs."""
    return {
        "MODEL": {
            # test.track.model.task_model.SiamTrack.{in_channels, mid_channels}
            "IN_CHANNELS": 384,
            "MID_CHANNELS": 256,
            # test.track.model.use_sync_bn (train YAMLs and the GOT-10k test YAML: True)
            "USE_SYNC_BN": True,
            # model.task_model.SiamTrack.pretrain_model_path is the checkpoint (given to the tracker)
            "BACKBONE": {
                "TYPE": "SwinTransformer",
                "EMBED_DIMS": 96,
                "DEPTHS": [2, 2, 6, 2],
                "NUM_HEADS": [3, 6, 12, 24],
                "OUT_INDICES": [2],
                "WINDOW_SIZE": 7,
                "MLP_RATIO": 4,
                "QKV_BIAS": True,
                "QK_SCALE": None,
                "DROP_RATE": 0.0,
                "ATTN_DROP_RATE": 0.0,
                "DROP_PATH_RATE": 0.2,
                "PATCH_NORM": True,
                "WITH_CP": False,
                "CONVERT_WEIGHTS": True,
                "PRETRAINED": "swin_tiny_patch4_window7_224.pth",
            },
            "NECK": {
                "TYPE": "TransformerNeck",
                "MID_CHANNELS_MODEL": 256,
                "MID_CHANNELS_FFN": 2048,
                "NUM_HEADS": 8,
                "NUM_ENCODER_LAYERS": 2,
                "NUM_DECODER_LAYERS": 2,
                "PROB_DROPOUT": 0.1,
                "F_Z_SIZE": 8,
                "F_X_SIZE": 19,
                "TOP_K": 32,
            },
            "HEAD": {
                "TYPE": "DoubleConvFCBBoxHead",
                "IN_CHANNELS": 512,
                "NUM_CONVS": 7,
                "INPUT_SIZE_ADAPT": False,
                "X_SIZE": 289,
                "SCORE_SIZE": 19,
                "TOTAL_STRIDE": 16,
            },
        },
        "TRAIN": {
            "NUM_PROCESSES": 2,
            "EPOCH": 20,
            "BATCH_SIZE": 32,
            "NUM_WORKER": 16,
            "PIN_MEMORY": True,
            "AMP": False,
            "SEED": 1000000007,
            "OPTIMIZER": "AdamW",
            "LR": 1e-4,
            "WEIGHT_DECAY": 1e-4,
            "LR_STAGES": [[10, 1e-4], [15, 1e-5], [20, 1e-6]],
            "BACKBONE_MULTIPLIER": 0.1,
            "BACKBONE_REGEX": "basemodel",
            "VAL_EPOCH_START": 15,
            # toolkit key: log every PRINT_INTERVAL iterations (the official TextInfo monitor logs every one)
            "PRINT_INTERVAL": 50,
            "LOSS": {
                "CLS_FC": {"ALPHA": 0.75, "GAMMA": 2.0, "WEIGHT": 1.4},
                "REG_FC": {"WEIGHT": 0.6},
                "CLS_CONV": {"ALPHA": 0.75, "GAMMA": 2.0, "WEIGHT": 0.5},
                "REG_CONV": {"WEIGHT": 2.0},
            },
        },
        "DATA": {
            "MEAN": [123.675, 116.28, 103.53],
            "STD": [58.395, 57.12, 57.375],
            "TO_RGB": True,
            "SAMPLE_PER_EPOCH": 300000,
            "NEGATIVE_PAIR_RATIO": 0.33,
            "MAX_SAMPLE_INTERVAL": 100,
            "TRAIN": {"DATASETS_NAME": ["GOT10K_train"], "DATASETS_RATIO": [1.0]},
            # CHECK_AREA False: the official filter's area rule has no effect (see lib/train/data/pair_sampler.py)
            "FILTER": {"MAX_AREA_RATE": 0.6, "MIN_AREA_RATE": 0.001, "MAX_RATIO": 10, "CHECK_AREA": False},
            # RandomCropTransformer.context_amount (class default, not set in the YAMLs)
            "CONTEXT_AMOUNT": 0.5,
            "TEMPLATE": {"SIZE": 127},
            "SEARCH": {"SIZE": 289, "MAX_SCALE": 0.3, "MAX_SHIFT": 0.4},
        },
        "TEST": {
            "EPOCH": 20,
            "TEMPLATE_SIZE": 127,
            "SEARCH_SIZE": 289,
            "CONTEXT_AMOUNT": 0.5,
            "TOTAL_STRIDE": 16,
            "SCORE_SIZE": 19,
            "WINDOWING": "cosine",
            "MIN_W": 10,
            "MIN_H": 10,
            "NORMALIZE": True,
            "NORM_MEAN": [123.675, 116.28, 103.53],
            "NORM_STD": [58.395, 57.12, 57.375],
            "TO_RGB": True,
            "HYPER": {
                "DEFAULT": _hyper(0.95, 0.21, 0.04),
                "GOT10K_TEST": _hyper(0.95, 0.21, 0.04),
                "GOT10K_VAL": _hyper(0.95, 0.21, 0.04),
                "LASOT": _hyper(0.95, 0.21, 0.04),
                "TRACKINGNET": _hyper(0.95, 0.21, 0.04),
                "UAV": _hyper(0.95, 0.21, 0.04),
                "OTB": _hyper(0.95, 0.21, 0.04),
            },
        },
    }


def select_test_hyper(cfg: Mapping, dataset_name: Optional[str]) -> dict:
    """The ``TEST_LR`` / ``WINDOW_INFLUENCE`` / ``PENALTY_K`` of ``dataset_name``.

    The name is resolved through the runner's dataset aliases (``otb2015`` -> ``otb``, ``uav123`` ->
    ``uav``, ``got10k`` -> ``got10k_test``), upper-cased and looked up in ``cfg.TEST.HYPER``; a dataset
    without an entry (or ``None``) gets ``HYPER.DEFAULT``, as GRM's ``TEST.HYPER``.

    Raises:
        KeyError: ``TEST.HYPER.DEFAULT`` is missing, or the chosen entry lacks one of the three values.
    """
    hyper = cfg["TEST"]["HYPER"]
    key = "DEFAULT"
    if dataset_name:
        from lib.test.evaluation.datasets import ALIASES

        name = str(dataset_name).lower()
        name = ALIASES.get(name, name).upper()
        if name in hyper:
            key = name
    if key not in hyper:
        raise KeyError(f"TEST.HYPER has no entry '{key}' (entries: {', '.join(sorted(hyper))})")
    entry = hyper[key]
    missing = [k for k in HYPER_KEYS if k not in entry]
    if missing:
        raise KeyError(f"TEST.HYPER.{key} lacks {', '.join(missing)}")
    return {k: float(entry[k]) for k in HYPER_KEYS}
