"""Experiment configuration: per-script defaults merged with a YAML file, unknown keys rejected.

The official trackers keep one module-level EasyDict per script and merge the YAML into it in
place (``update_config_from_file``). Here every call builds a fresh :class:`Config` from the
defaults, so one process can hold several configurations (the runner, the tests).
"""

from __future__ import annotations

import copy
import fnmatch
import os
from typing import Any, Mapping, Optional

import yaml

from lib.utils.errors import register_user_error

__all__ = ["Config", "ConfigError", "ConfigNotFoundError", "RANGE_RULES", "merge_strict", "read_yaml",
           "check_ranges"]


@register_user_error
class ConfigError(ValueError):
    """A configuration file that cannot be read, names a key without a default, or gives a value of the wrong
    type or out of range (the message names the file and the dotted key)."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """An experiment config (name or YAML path) that does not exist."""


#: Range rules shared by every tracker's config: (dotted-key pattern (fnmatch, upper case), test, what is expected).
#: They apply to numeric values only (types are checked against the defaults by :func:`merge_strict`).
RANGE_RULES = (
    ("*SIZE", lambda v: v > 0, "a positive number"),
    ("*FACTOR", lambda v: v > 0, "a positive number"),
    ("*.NUMBER", lambda v: v >= 1, "at least 1"),
    ("*SAMPLE_PER_EPOCH", lambda v: v >= 1, "at least 1"),
    ("TRAIN.EPOCH", lambda v: v >= 1, "at least 1"),
    ("TEST.EPOCH", lambda v: v >= 0, "a non-negative epoch number"),
    ("TRAIN.LR", lambda v: v > 0, "a positive number"),
    ("TRAIN.NUM_WORKER", lambda v: v >= 0, "a non-negative number"),
    ("*INTERVAL", lambda v: v >= 1, "at least 1"),
    ("*JITTER", lambda v: v >= 0, "a non-negative number"),
)


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
        ConfigNotFoundError: the file does not exist (a ConfigError and a FileNotFoundError).
        ConfigError: it is not valid YAML or its top level is not a mapping (the message names the file
            and, for syntax errors, the line).
    """
    if not os.path.isfile(path):
        raise ConfigNotFoundError(f"config file '{path}' does not exist")
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
    source; so do a mapping given where the default is a plain value (or the reverse) and a value whose type
    differs from the default's (an int is accepted, as a float, where the default is a float).
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
            base[key] = _typed(current, copy.deepcopy(value), dotted, source)
    return base


def _type_name(value) -> str:
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _typed(default, value, dotted: str, source: str):
    """``value`` from a YAML file checked against the type of the key's ``default``.

    The default's type is the key's type: bool, int, float (an int is accepted and converted), str or list
    (a tuple is accepted). A default of None accepts any value; a value of None is accepted where the default
    is a list or a string (the official configs write ``null`` for "none").

    Raises:
        ConfigError: another type (the message names the file, the key, what was expected and the value).
    """
    if default is None:
        return value
    if value is None and isinstance(default, (str, list, tuple)):
        return value
    ok = True
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
        if ok:
            value = list(value) if isinstance(default, list) else tuple(value)
    if not ok:
        raise ConfigError(f"{source}: '{dotted}' must be {_type_name(default)} like its default {default!r}, "
                          f"got {value!r} ({_type_name(value)})")
    return value


def check_ranges(cfg: Mapping[str, Any], source: str = "config", rules=RANGE_RULES, _prefix: str = "") -> None:
    """Check every numeric value of ``cfg`` against the first of ``rules`` whose pattern matches its dotted key.

    Raises:
        ConfigError: a value out of range (the message names ``source``, the key, what is expected and the value).
    """
    for key, value in cfg.items():
        dotted = f"{_prefix}{key}"
        if isinstance(value, Mapping):
            check_ranges(value, source, rules, dotted + ".")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        for pattern, test, expected in rules:
            if fnmatch.fnmatchcase(dotted.upper(), pattern):
                if not test(value):
                    raise ConfigError(f"{source}: '{dotted}' must be {expected}, got {value!r}")
                break
