"""Registry of test-time trackers, keyed by the name ``tracking/test.py`` takes.

A tracker entry names its module, class and the config script whose ``experiments/<script>/``
YAMLs it reads (``stark_st`` reads ``stark_st2`` configs, as in the official STARK). Modules are
imported on first use, also inside spawned worker processes, so an entry must be importable by
module path. :func:`register_tracker` adds entries (plugins, tests).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Dict, List

__all__ = ["TrackerEntry", "register_tracker", "get_tracker_entry", "get_tracker_class", "list_trackers",
           "UnknownTrackerError"]


@dataclass(frozen=True)
class TrackerEntry:
    """``module:class_name`` of a tracker and the config ``script`` it reads."""

    name: str
    module: str
    class_name: str
    script: str


class UnknownTrackerError(KeyError):
    """A tracker name that is not registered (the message lists the registered ones)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


_ENTRIES: Dict[str, TrackerEntry] = {}


def register_tracker(name: str, module: str, class_name: str, script: str) -> TrackerEntry:
    """Register (or replace) the tracker ``name``."""
    entry = TrackerEntry(name, module, class_name, script)
    _ENTRIES[name] = entry
    return entry


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
    return sorted(n for n, e in _ENTRIES.items() if _available(e))


def get_tracker_entry(name: str) -> TrackerEntry:
    """The :class:`TrackerEntry` of ``name``.

    Raises:
        UnknownTrackerError: ``name`` is not registered or its module is missing.
    """
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
