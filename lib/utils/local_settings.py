"""Shared machinery of the two ``local.py`` files (test: ``lib/test/evaluation/local.py``, train:
``lib/train/admin/local.py``): field lists with defaults, writing the files, environment-variable
overrides, and one clear error when a field or a folder is missing.

Any field can be overridden for one run by the environment variable ``TRACKING_<FIELD>`` in upper
case, e.g. ``TRACKING_OTB_PATH=/data/otb``.
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

from lib.utils.errors import register_user_error

__all__ = ["SettingsError", "SettingsBase", "write_local_file", "ENV_PREFIX"]

ENV_PREFIX = "TRACKING_"


@register_user_error
class SettingsError(RuntimeError):
    """A local.py that is missing, broken, or lacks a field a command needs."""


class SettingsBase:
    """Attribute bag with :meth:`require` (a field that must name an existing folder or file).

    Subclasses set ``FIELDS`` (``[(name, description)]``) and ``LOCAL_FILE`` (the local.py path
    relative to the project root), and give every field a default of ``''``.
    """

    FIELDS: Sequence[Tuple[str, str]] = ()
    LOCAL_FILE = ""

    def __init__(self):
        for name, _ in self.FIELDS:
            setattr(self, name, "")

    def apply_env_overrides(self) -> "SettingsBase":
        for name, _ in self.FIELDS:
            value = os.environ.get(ENV_PREFIX + name.upper())
            if value:
                setattr(self, name, value)
        return self

    def require(self, field: str, must_exist: bool = True, what: str = "") -> str:
        """Return the value of ``field``; raise :class:`SettingsError` if it is empty or, with
        ``must_exist``, names a path that does not exist. The message names the field, the local.py
        to edit and the environment variable that overrides it.
        """
        value = getattr(self, field, "")
        how = (f"set '{field}' in {self.LOCAL_FILE} (or run tracking/create_default_local_file.py, "
               f"or set the environment variable {ENV_PREFIX}{field.upper()})")
        what = f" ({what})" if what else ""
        if not value:
            raise SettingsError(f"'{field}'{what} is not set: {how}")
        if must_exist and not os.path.exists(value):
            raise SettingsError(f"'{field}'{what} points at '{value}', which does not exist: {how}")
        return value


def write_local_file(path: str, header: str, body_lines: List[str]) -> None:
    """Write a local.py (atomically)."""
    from lib.utils.misc import atomic_write

    with atomic_write(path) as f:
        f.write(header)
        f.write("\n".join(body_lines) + "\n")


def default_values(fields: Sequence[Tuple[str, str]], mapping: Dict[str, str]) -> Dict[str, str]:
    """``{field: value}`` for every field, ``''`` where ``mapping`` has none."""
    return {name: mapping.get(name, "") for name, _ in fields}
