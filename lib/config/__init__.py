"""Experiment configurations: ``load_config(script, name)`` reads ``experiments/<script>/<name>.yaml``
over the script's defaults (``lib/config/<module>.py``, function ``make_defaults()``).

Scripts are the names used by ``tracking/train.py --script`` and ``build_network``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Union

from .core import Config, ConfigError, ConfigNotFoundError, check_ranges, merge_strict, read_yaml

__all__ = ["Config", "ConfigError", "ConfigNotFoundError", "PROJECT_ROOT", "CONFIG_MODULES", "get_defaults",
           "experiment_path", "load_config", "list_configs"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: script name -> module holding ``make_defaults()``.
CONFIG_MODULES = {
    "ostrack": "lib.config.ostrack",
    "grm": "lib.config.grm",
    "stark_s": "lib.config.stark_s",
    "stark_st1": "lib.config.stark_st",
    "stark_st2": "lib.config.stark_st",
    "aiatrack": "lib.config.aiatrack",
    "sparsett": "lib.config.sparsett",
}


def _module_for(script: str):
    if script not in CONFIG_MODULES:
        raise ConfigError(f"unknown script '{script}'; known scripts: {', '.join(sorted(CONFIG_MODULES))}")
    try:
        return importlib.import_module(CONFIG_MODULES[script])
    except ModuleNotFoundError as exc:
        if exc.name == CONFIG_MODULES[script]:
            raise ConfigError(f"script '{script}' has no defaults module yet ({CONFIG_MODULES[script]})") from exc
        raise


#: training keys every script has besides its official defaults (toolkit additions).
COMMON_TRAIN_DEFAULTS = {
    "ACCUM_ITER": 1,  # iterations whose gradients are accumulated per optimizer step (global batch on fewer GPUs)
}


def get_defaults(script: str) -> Config:
    """A fresh copy of the defaults of ``script`` (official ``lib/config/<script>/config.py``), plus
    :data:`COMMON_TRAIN_DEFAULTS` under ``TRAIN``."""
    module = _module_for(script)
    try:
        cfg = Config(module.make_defaults(script))
    except TypeError:
        cfg = Config(module.make_defaults())
    if "TRAIN" in cfg:
        for key, value in COMMON_TRAIN_DEFAULTS.items():
            cfg.TRAIN.setdefault(key, value)
    return cfg


def experiment_path(script: str, config: Union[str, os.PathLike]) -> Path:
    """``experiments/<script>/<config>.yaml``, or ``config`` itself if it is a path to a YAML file."""
    config = os.fspath(config)
    if config.endswith((".yaml", ".yml")) or os.sep in config:
        return Path(config)
    return PROJECT_ROOT / "experiments" / script / f"{config}.yaml"


def list_configs(script: str) -> list:
    """Names of the shipped configs of ``script``."""
    folder = PROJECT_ROOT / "experiments" / script
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_config(script: str, config: Union[str, os.PathLike]) -> Config:
    """Defaults of ``script`` merged with the experiment YAML ``config`` (a name or a path).

    Raises:
        ConfigError: an unknown script (the message lists the known ones); invalid YAML; a key without a
            default, a value of another type than the default's or out of the range of
            :data:`~lib.config.core.RANGE_RULES` (named with the file).
        ConfigNotFoundError: no such YAML (the message lists the shipped configs; also a FileNotFoundError).
    """
    cfg = get_defaults(script)  # first: an unknown script is named as such
    path = experiment_path(script, config)
    if not path.is_file():
        known = ", ".join(list_configs(script)) or "none"
        raise ConfigNotFoundError(f"config '{config}' of script '{script}' not found: '{path}' does not exist "
                                  f"(shipped configs: {known})")
    merge_strict(cfg, read_yaml(str(path)), source=str(path))
    check_ranges(cfg, source=str(path))
    return cfg
