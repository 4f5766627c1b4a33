"""Experiment configuration: per-script defaults merged with a YAML file, unknown keys rejected.

The official trackers keep one module-level EasyDict per script and merge the YAML into it in
place (``update_config_from_file``). Here every call builds a fresh :class:`Config` from the
defaults, so one process can hold several configurations (the runner, the tests).
"""

from __future__ import annotations

import copy
import os
from typing import Any, Mapping, Optional

import yaml

__all__ = ["Config", "ConfigError", "merge_strict", "read_yaml"]


class ConfigError(ValueError):
    """A configuration file that cannot be read or that names a key without a default."""


class Config(dict):
    """A ``dict`` whose items are also attributes (``cfg.MODEL.BACKBONE.TYPE``), nested."""

    def __init__(self, data: Optional[Mapping[str, Any]] = None, **kwargs):
        super().__init__()
        for k, v in dict(data or {}, **kwargs).items():
            self[k] = v

    def __setitem__(self, key, value):
        if isinstance(value, Mapping) and not isinstance(value, Config):
            value = Config(value)
        super().__setitem__(key, value)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __deepcopy__(self, memo):
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def to_dict(self) -> dict:
        """Plain nested dicts (for YAML dumps, checkpoints and wandb)."""
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v) for k, v in self.items()}


def read_yaml(path: str) -> dict:
    """Read a YAML mapping.

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: it is not valid YAML or its top level is not a mapping (the message names the file
            and, for syntax errors, the line).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file '{path}' does not exist")
    with open(path, "r") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise ConfigError(f"{path}{where}: invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def merge_strict(base: Config, update: Mapping[str, Any], source: str = "config", _prefix: str = "") -> Config:
    """Merge ``update`` into ``base`` in place, recursively, and return ``base``.

    A key of ``update`` that ``base`` lacks raises :class:`ConfigError` naming the dotted key and the
    source; a mapping given where the default is a plain value (or the reverse) also raises.
    """
    for key, value in update.items():
        dotted = f"{_prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(str(k) for k in base.keys()))
            raise ConfigError(f"{source}: unknown config key '{dotted}' (known keys at this level: {known})")
        current = base[key]
        if isinstance(current, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: '{dotted}' must be a mapping, got {value!r}")
            merge_strict(current, value, source, dotted + ".")
        else:
            if isinstance(value, Mapping):
                raise ConfigError(f"{source}: '{dotted}' must be a plain value, got a mapping")
            base[key] = copy.deepcopy(value)
    return base
