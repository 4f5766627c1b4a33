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

from .stark_s import _data, _model, _test, _train

__all__ = ["make_defaults", "SCRIPTS"]

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
