"""Defaults of the ``stark_st1`` and ``stark_st2`` scripts (STARK-ST, training stages 1 and 2): the
values of the official ``lib/config/stark_st1/config.py`` and ``lib/config/stark_st2/config.py``.

They differ from STARK-S in ``MODEL.NLAYER_HEAD`` (score head), ``MODEL.BACKBONE.STRIDE``,
``DATA.SAMPLER_MODE`` ``trident_pro``, ``DATA.MAX_SAMPLE_INTERVAL`` as a list (one entry per dynamic
template) and ``DATA.TEMPLATE.NUMBER`` 2. Stage 1 has no ``TEST`` section (it is never tested
directly); stage 2 adds ``TRAIN.TRAIN_CLS`` and ``TEST.UPDATE_INTERVALS`` (200 for every dataset,
which the yamls override per dataset; the tracker falls back to ``DATA.MAX_SAMPLE_INTERVAL`` for
datasets not listed).
"""

from __future__ import annotations

from typing import List, Optional

from .stark_s import _data, _model, _test, _train

__all__ = ["make_defaults", "SCRIPTS", "update_intervals_for"]

SCRIPTS = ("stark_st1", "stark_st2")


def make_defaults(script: str = "stark_st2") -> dict:
    """The defaults of ``stark_st1`` or ``stark_st2`` as nested dicts.

    Raises:
        ValueError: another script name.
    """
    if script not in SCRIPTS:
        raise ValueError(f"lib.config.stark_st holds the defaults of {SCRIPTS}, not '{script}'")
    train = _train()
    cfg = {"MODEL": _model(st=True), "TRAIN": train, "DATA": _data(st=True)}
    if script == "stark_st2":
        cfg["TRAIN"] = {"TRAIN_CLS": True, **train}
        test = _test()
        test["UPDATE_INTERVALS"] = {"LASOT": [200], "GOT10K_TEST": [200], "TRACKINGNET": [200], "VOT20": [200],
                                    "VOT20LT": [200]}
        cfg["TEST"] = test
    return cfg


def update_intervals_for(cfg, dataset_name: Optional[str]) -> List[int]:
    """The dynamic-template update intervals (frames) of ``dataset_name`` under ``cfg``.

    ``cfg.TEST.UPDATE_INTERVALS[dataset_name.upper()]`` when present, else ``cfg.DATA.MAX_SAMPLE_INTERVAL``.

    Raises:
        ValueError: an interval list that is empty or holds non-positive / non-integer values (the
            message names the config field).
    """
    table = cfg.TEST.get("UPDATE_INTERVALS", {}) if "TEST" in cfg else {}
    key = (dataset_name or "").upper()
    if key and key in table:
        intervals, field = table[key], f"TEST.UPDATE_INTERVALS.{key}"
    else:
        intervals, field = cfg.DATA.MAX_SAMPLE_INTERVAL, "DATA.MAX_SAMPLE_INTERVAL"
    if not isinstance(intervals, (list, tuple)):
        intervals = [intervals]
    if not intervals or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in intervals):
        raise ValueError(f"config field {field} must be a non-empty list of positive integers (frames), "
                         f"got {intervals!r}")
    return [int(v) for v in intervals]
