"""Where raw tracking results come from: the toolkit's own runs or folders of external results.

- Own trackers: ``<results_path>/<tracker>/<param>[_NNN]/<seq>.txt`` (the layout ``tracking/test.py``
  writes, pytracking ``Tracker.results_dir``; run id NNN zero-padded to 3 digits). GOT-10k / TrackingNet
  runs that OSTrack writes into ``<results_dir>/<dataset>/<seq>.txt`` are found there too.
- External results: ``<results_dir>/<tracker>/<seq>.txt``, one sub-folder per tracker; file names are
  matched to sequence names ignoring case and treating ``-`` and ``_`` alike (``Jogging-1.txt``,
  ``jogging_1.txt`` and ``Jogging_1.txt`` all match OTB's ``Jogging_1``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence as Seq

from lib.utils.errors import register_user_error

__all__ = ["TrackerResults", "own_tracker_results", "external_tracker_results", "normalize_name",
           "ResultsNotFoundError"]


@register_user_error
class ResultsNotFoundError(FileNotFoundError):
    """A results folder that does not exist, or a name match that is ambiguous."""


def normalize_name(name: str) -> str:
    """Sequence/file name key: lower case, ``-`` read as ``_``, no ``.txt``."""
    base = name[:-4] if name.lower().endswith(".txt") else name
    return base.lower().replace("-", "_")


@dataclass
class TrackerResults:
    """Raw results of one tracker run.

    Args:
        display_name: the name in tables, plots and the JSON.
        results_dir: folder holding ``<seq>.txt``.
        name / param / run_id: identity of an own tracker run (None for external results).
        match_names: match file names ignoring case and ``-``/``_`` (external results).
    """

    display_name: str
    results_dir: str
    name: Optional[str] = None
    param: Optional[str] = None
    run_id: Optional[int] = None
    match_names: bool = False
    _index: Optional[Dict[str, str]] = field(default=None, repr=False, compare=False)

    def identity(self) -> Dict:
        """What the eval-data cache compares (pytracking compares name, param, run_id)."""
        return {"display_name": self.display_name, "results_dir": os.path.abspath(self.results_dir),
                "name": self.name, "param": self.param, "run_id": self.run_id}

    def _name_index(self) -> Dict[str, str]:
        if self._index is None:
            index: Dict[str, str] = {}
            for fname in sorted(os.listdir(self.results_dir)):
                if not fname.lower().endswith(".txt"):
                    continue
                key = normalize_name(fname)
                if key in index:
                    raise ResultsNotFoundError(
                        f"results of tracker '{self.display_name}': files '{index[key]}' and '{fname}' in "
                        f"'{self.results_dir}' both match sequence key '{key}' (names are matched ignoring case "
                        f"and '-'/'_'); remove one")
                index[key] = fname
            self._index = index
        return self._index

    def result_file(self, seq_name: str, dataset: Optional[str] = None) -> Optional[str]:
        """Path of the result file of sequence ``seq_name``, or None if there is none."""
        exact = os.path.join(self.results_dir, f"{seq_name}.txt")
        if os.path.isfile(exact):
            return exact
        if dataset:
            nested = os.path.join(self.results_dir, dataset, f"{seq_name}.txt")
            if os.path.isfile(nested):
                return nested
        if self.match_names:
            fname = self._name_index().get(normalize_name(seq_name))
            if fname is not None:
                return os.path.join(self.results_dir, fname)
        return None


def own_tracker_results(results_path: str, tracker_name: str, tracker_param: str,
                        run_ids: Optional[Seq[int]] = None, display_name: Optional[str] = None
                        ) -> List[TrackerResults]:
    """One :class:`TrackerResults` per run id (or one without a run id), pytracking's ``trackerlist``.

    Display names follow pytracking: ``<name>_<param>`` or ``<name>_<param>_<NNN>``
    (``display_name`` replaces ``<name>_<param>``).

    Raises:
        ResultsNotFoundError: a results folder does not exist (message names it).
    """
    out = []
    for run_id in (run_ids if run_ids else [None]):
        sub = tracker_param if run_id is None else f"{tracker_param}_{int(run_id):03d}"
        folder = os.path.join(results_path, tracker_name, sub)
        base = display_name or f"{tracker_name}_{tracker_param}"
        disp = base if run_id is None else f"{base}_{int(run_id):03d}"
        if not os.path.isdir(folder):
            raise ResultsNotFoundError(f"no results of tracker '{disp}': folder '{folder}' does not exist "
                                       f"(run tracking/test.py {tracker_name} {tracker_param} first, or check "
                                       f"results_path in lib/test/evaluation/local.py)")
        out.append(TrackerResults(disp, folder, tracker_name, tracker_param, None if run_id is None else int(run_id)))
    return out


def external_tracker_results(results_dir: str, trackers: Optional[Seq[str]] = None) -> List[TrackerResults]:
    """External raw results: one :class:`TrackerResults` per sub-folder of ``results_dir``.

    Args:
        results_dir: folder with one sub-folder per tracker.
        trackers: sub-folder names to use, in this order (default: all, sorted).

    Raises:
        ResultsNotFoundError: ``results_dir`` or a named tracker folder does not exist (the message lists
            the folders that do).
    """
    if not os.path.isdir(results_dir):
        raise ResultsNotFoundError(f"results folder '{results_dir}' does not exist")
    available = sorted(d for d in os.listdir(results_dir) if os.path.isdir(os.path.join(results_dir, d)))
    names = list(trackers) if trackers else available
    if not names:
        raise ResultsNotFoundError(f"results folder '{results_dir}' has no tracker sub-folders")
    out = []
    for name in names:
        folder = os.path.join(results_dir, name)
        if not os.path.isdir(folder):
            raise ResultsNotFoundError(f"no results of tracker '{name}': folder '{folder}' does not exist "
                                       f"(sub-folders of '{results_dir}': {', '.join(available) or 'none'})")
        out.append(TrackerResults(name, folder, match_names=True))
    return out
