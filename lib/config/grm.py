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

from lib.config.common import deep_update, one_stream_vit, without
from lib.config.core import Config

__all__ = ["make_defaults", "division_threshold"]


def make_defaults() -> Config:
    """A fresh copy of the GRM defaults (nested :class:`~lib.config.Config`): the one-stream ViT block of
    :mod:`lib.config.common` (backbone ``vit_base``: ViT-B/16, or ``vit_large``: ViT-L/16) without
    ``TRAIN.PRINT_INTERVAL``, plus ``MODEL.TGT_TYPE`` and ``TEST.HYPER``."""
    cfg = one_stream_vit("vit_base", got10k_train="GOT10K_vot_train")
    cfg["TRAIN"] = without(cfg["TRAIN"], ["PRINT_INTERVAL"])
    return Config(deep_update(cfg, {
        "MODEL": {"TGT_TYPE": "allmax"},  # allmax, allavg, roimax or roiavg
        "TEST": {
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
    }))


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
