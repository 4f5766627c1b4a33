"""Registry of test-time trackers, keyed by the name ``tracking/test.py`` takes.

A tracker entry names its module, class and the config script whose ``experiments/<script>/``
YAMLs it reads (``stark_st`` reads ``stark_st2`` configs, as in the official STARK). Modules are
imported on first use, also inside spawned worker processes, so an entry must be importable by
module path. :func:`register_tracker` adds entries (plugins, tests).

Plugins: a module that calls :func:`register_tracker` when imported can be named in the environment
variable ``TRACKING_TRACKER_MODULES`` (comma-separated module paths, e.g. ``tests.dummy_trackers``) or
added with :func:`add_tracker_module` (which also sets that variable). The registry imports those
modules before every lookup, so the registration also holds in the spawned worker processes of
``tracking/test.py --threads N``, which inherit the environment.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

from lib.utils.errors import register_user_error

__all__ = ["TrackerEntry", "register_tracker", "get_tracker_entry", "get_tracker_class", "list_trackers",
           "UnknownTrackerError", "add_tracker_module", "TRACKER_MODULES_ENV"]

#: environment variable naming plugin modules that register trackers (comma-separated).
TRACKER_MODULES_ENV = "TRACKING_TRACKER_MODULES"


@dataclass(frozen=True)
class TrackerEntry:
    """``module:class_name`` of a tracker and the config ``script`` it reads (None: a tracker without
    an experiment config, e.g. the test doubles; it gets an empty config and no checkpoint lookup)."""

    name: str
    module: str
    class_name: str
    script: Optional[str]


@register_user_error
class UnknownTrackerError(KeyError):
    """A tracker name that is not registered (the message lists the registered ones)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


_ENTRIES: Dict[str, TrackerEntry] = {}


_LOADED_PLUGINS: Dict[str, bool] = {}


def register_tracker(name: str, module: str, class_name: str, script: Optional[str] = None) -> TrackerEntry:
    """Register (or replace) the tracker ``name``."""
    entry = TrackerEntry(name, module, class_name, script)
    _ENTRIES[name] = entry
    return entry


def _load_plugins() -> None:
    """Import the modules named in ``TRACKING_TRACKER_MODULES`` (once each).

    Raises:
        ImportError: a named module cannot be imported (the message names the variable).
    """
    for module in filter(None, (m.strip() for m in os.environ.get(TRACKER_MODULES_ENV, "").split(","))):
        if module in _LOADED_PLUGINS:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"tracker plugin module '{module}' (from ${TRACKER_MODULES_ENV}) cannot be imported: "
                              f"{exc}") from exc
        _LOADED_PLUGINS[module] = True


def add_tracker_module(module: str) -> None:
    """Import the plugin ``module`` now and name it in ``TRACKING_TRACKER_MODULES`` so that worker
    processes started afterwards import it too."""
    names = [m for m in os.environ.get(TRACKER_MODULES_ENV, "").split(",") if m.strip()]
    if module not in names:
        os.environ[TRACKER_MODULES_ENV] = ",".join(names + [module])
    _load_plugins()


for _name, _module, _cls, _script in (
    ("ostrack", "lib.test.tracker.ostrack", "OSTrackTracker", "ostrack"),
    ("grm", "lib.test.tracker.grm", "GRMTracker", "grm"),
    ("stark_s", "lib.test.tracker.stark_s", "STARKSTracker", "stark_s"),
    ("stark_st", "lib.test.tracker.stark_st", "STARKSTTracker", "stark_st2"),
    ("aiatrack", "lib.test.tracker.aiatrack", "AiATrackTracker", "aiatrack"),
    ("sparsett", "lib.test.tracker.sparsett", "SparseTTTracker", "sparsett"),
):
    register_tracker(_name, _module, _cls, _script)


def _available(entry: TrackerEntry) -> bool:
    try:
        return importlib.util.find_spec(entry.module) is not None
    except (ImportError, ValueError):
        return False


def list_trackers() -> List[str]:
    """Names of the registered trackers whose module is present."""
    _load_plugins()
    return sorted(n for n, e in _ENTRIES.items() if _available(e))


def get_tracker_entry(name: str) -> TrackerEntry:
    """The :class:`TrackerEntry` of ``name``.

    Raises:
        UnknownTrackerError: ``name`` is not registered or its module is missing.
    """
    _load_plugins()
    entry = _ENTRIES.get(name)
    if entry is None or not _available(entry):
        known = ", ".join(list_trackers()) or "none"
        raise UnknownTrackerError(f"unknown tracker '{name}'; registered trackers: {known}")
    return entry


def get_tracker_class(name: str):
    """Import and return the tracker class registered as ``name``."""
    entry = get_tracker_entry(name)
    module = importlib.import_module(entry.module)
    try:
        return getattr(module, entry.class_name)
    except AttributeError:
        raise UnknownTrackerError(f"tracker '{name}': {entry.module} has no class {entry.class_name}") from None
