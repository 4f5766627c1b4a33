"""Benchmark sequences: :class:`Sequence`, :class:`SequenceList` and the :class:`BaseDataset` every
benchmark class derives from (pytracking ``pytracking/evaluation/data.py``, OSTrack ``lib/test/evaluation/data.py``).

Ground truth is ``(N, 4)`` float64 **xywh in pixels** exactly as in the annotation file (no 0/1-based
conversion). Frames are image paths; a dataset never opens an image to build its sequences, so
the analysis works on annotation-only folders.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence as Seq, Union

import numpy as np

from .annotations import DatasetFolderError, check_box_count, frame_paths, read_boxes

__all__ = ["Sequence", "SequenceList", "BaseDataset", "InfoListDataset", "MissingSequencesError", "MISSING_POLICIES",
           "check_missing_policy"]


class Sequence:
    """One benchmark sequence.

    Args:
        name: sequence name as the benchmark spells it (result files are ``<name>.txt``).
        frames: image paths, one per frame (an element may be ``[lmdb_path, key]`` for lmdb datasets).
        dataset: short dataset string the analysis uses for its special cases (``'otb'``, ``'uav'``,
            ``'lasot'``, ``'lasot_extension_subset'``, ``'got10k'``, ``'trackingnet'``, ``'vot'``, ...).
        ground_truth_rect: ``(N, 4)`` xywh pixels (``N`` may be 1 where only the first box is public).
        init_data: ``{frame: {'bbox': [x, y, w, h]}}``; defaults to frame 0's ground truth.
        object_class: class name where the benchmark has one.
        target_visible: optional ``(N,)`` bool, False where the target is absent (LaSOT, AVisT).
        attributes: optional ``{attribute: bool}`` per-sequence flags (LaSOT, OTB).
        results_subdir: sub-folder of a tracker's results folder that holds this sequence's result
            files. Default: ``dataset`` for ``'got10k'`` and ``'trackingnet'`` (the OSTrack layout the
            submission scripts read), none otherwise. VOT sets ``vot2018``/``vot2020``/``vot2022``
            because the years share sequence names.
    """

    #: datasets whose result files go to ``<results_dir>/<dataset>/`` (OSTrack ``running.py``).
    SUBDIR_DATASETS = ("got10k", "trackingnet")

    def __init__(self, name: str, frames: List[Any], dataset: str, ground_truth_rect: np.ndarray,
                 init_data: Optional[Dict[int, Dict[str, Any]]] = None, object_class: Optional[str] = None,
                 target_visible: Optional[np.ndarray] = None, attributes: Optional[Dict[str, bool]] = None,
                 results_subdir: Optional[str] = None):
        self.name = name
        self.frames = frames
        self.dataset = dataset
        if results_subdir is None and dataset in self.SUBDIR_DATASETS:
            results_subdir = dataset
        self.results_subdir = results_subdir
        self.ground_truth_rect = np.asarray(ground_truth_rect, dtype=np.float64)
        self.object_class = object_class
        self.target_visible = None if target_visible is None else np.asarray(target_visible, dtype=bool)
        self.attributes = attributes
        self.init_data = self._construct_init_data(init_data)
        self._ensure_start_frame()

    def _construct_init_data(self, init_data):
        if init_data is not None:
            return init_data
        if self.ground_truth_rect.ndim == 2 and len(self.ground_truth_rect) > 0:
            return {0: {"bbox": [float(v) for v in self.ground_truth_rect[0]]}}
        return {}

    def _ensure_start_frame(self):
        """Drop frames before the first initialisation frame and re-index (pytracking behaviour)."""
        if not self.init_data:
            return
        start = min(self.init_data.keys())
        if start > 0:
            self.frames = self.frames[start:]
            if self.ground_truth_rect.ndim == 2 and len(self.ground_truth_rect) > start:
                self.ground_truth_rect = self.ground_truth_rect[start:]
            if self.target_visible is not None:
                self.target_visible = self.target_visible[start:]
            self.init_data = {k - start: v for k, v in self.init_data.items()}

    def init_info(self) -> Dict[str, Any]:
        """``{'init_bbox': [x, y, w, h]}`` of the first frame."""
        return self.frame_info(0)

    def frame_info(self, frame_num: int) -> Dict[str, Any]:
        """Initialisation data of ``frame_num`` with keys prefixed ``init_`` (empty if none)."""
        return {f"init_{k}": v for k, v in self.init_data.get(frame_num, {}).items()}

    def init_bbox(self, frame_num: int = 0):
        return self.init_data.get(frame_num, {}).get("bbox")

    def __len__(self) -> int:
        return len(self.frames)

    def result_base(self, results_dir: str) -> str:
        """``<results_dir>[/<results_subdir>]/<name>``: append ``.txt`` for the boxes and ``_time.txt``
        for the per-frame times (the official result-file layout)."""
        if self.results_subdir:
            return os.path.join(results_dir, self.results_subdir, self.name)
        return os.path.join(results_dir, self.name)

    def __repr__(self) -> str:
        return f"Sequence({self.name!r}, dataset={self.dataset!r}, frames={len(self.frames)})"


class SequenceList(list):
    """A list of :class:`Sequence` indexable by position, by name, by a list of positions or a slice."""

    def __getitem__(self, item):
        if isinstance(item, str):
            for seq in self:
                if seq.name == item:
                    return seq
            raise IndexError(f"sequence name '{item}' not in the list")
        if isinstance(item, (int, np.integer)):
            return super().__getitem__(int(item))
        if isinstance(item, (tuple, list)):
            return SequenceList([self[i] for i in item])
        return SequenceList(super().__getitem__(item))

    def __add__(self, other):
        return SequenceList(list.__add__(self, other))

    def copy(self):
        return SequenceList(list.copy(self))

    def names(self) -> List[str]:
        return [s.name for s in self]


#: What a dataset does with benchmark sequences whose annotation file is absent from its folder.
MISSING_POLICIES = ("error", "skip")


class MissingSequencesError(DatasetFolderError):
    """Sequences of the benchmark's official list are absent from the dataset folder (``missing='error'``),
    or none is present (``missing='skip'``). The message names the folder, the count and the first names.

    Attributes:
        missing: names of the absent sequences; total: the benchmark's number of sequences.
    """

    def __init__(self, message: str, missing: Seq[str] = (), total: int = 0):
        super().__init__(message)
        self.missing = list(missing)
        self.total = int(total)

    def __str__(self) -> str:
        return str(self.args[0])


def check_missing_policy(missing: str) -> str:
    """Return ``missing`` if it is one of :data:`MISSING_POLICIES`.

    Raises:
        ValueError: another value.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    return missing


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _short_list(names: Seq[str], n: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


class BaseDataset:
    """Base class of the benchmark datasets.

    Subclasses set ``self.base_path`` and either implement :meth:`get_sequence_list` and
    :meth:`__len__`, or (preferred) set ``self.names`` (or override :meth:`sequence_names`) and implement
    :meth:`_sequence_by_name`, which give :meth:`get_sequence` (one sequence, reading only its own
    files), :meth:`get_sequence_list` and ``len()`` for free.

    Partial copies of a benchmark: a sequence is *present* when its annotation file
    (:meth:`annotation_path`) exists. ``missing`` chooses what :meth:`get_sequence_list` does when some
    sequences of the official list are absent:

    * ``'error'`` (default): raise :class:`MissingSequencesError` naming the folder, how many are
      absent and the first names (a benchmark score over part of a benchmark is not the benchmark's);
    * ``'skip'``: return the present sequences only; :meth:`missing_report` says how many of the
      benchmark's sequences are absent and where they were looked for (the runner and the analysis
      print it). A folder with no sequence at all is still an error.

    ``len(dataset)`` is the benchmark's number of sequences either way.

    Args:
        base_path: the dataset root.
        missing: ``'error'`` or ``'skip'`` (see above).
    """

    name = "base"

    def __init__(self, base_path: Optional[str] = None, missing: str = "error"):
        self.base_path = base_path
        self.missing = check_missing_policy(missing)
        self.names: Optional[List[str]] = None  # the benchmark's sequence names, in its order
        self._missing_names: Optional[List[str]] = None

    @staticmethod
    def resolve_base_path(base_path: Optional[str], field: str, what: str) -> str:
        """``base_path`` if given (it must be a folder), else the local.py field ``field``.

        Raises:
            SettingsError: the field is unset or names a missing folder (message: field, local.py,
                environment variable).
            FileNotFoundError: an explicit ``base_path`` that is not a folder.
        """
        if base_path is not None:
            if not os.path.isdir(base_path):
                raise DatasetFolderError(f"{what}: dataset folder '{base_path}' does not exist")
            return os.fspath(base_path)
        from .environment import env_settings

        return env_settings().require(field, what=what)

    def sequence_names(self) -> List[str]:
        """Names of the sequences, in the benchmark's order (no annotation file is read)."""
        if self.names is None:
            raise NotImplementedError
        return list(self.names)

    def _sequence_by_name(self, name: str) -> "Sequence":
        """Build one sequence, reading only its own files (implemented by the name-based datasets)."""
        raise NotImplementedError

    # -- partial copies ---------------------------------------------------------------------------
    def annotation_path(self, name: str) -> str:
        """The ground-truth file of sequence ``name``; the sequence is present iff it exists.

        Datasets that do not implement it count every sequence as present."""
        raise NotImplementedError

    def missing_sequence_names(self) -> List[str]:
        """Names of the official list whose annotation file is absent (computed once per object)."""
        if self._missing_names is None:
            try:
                names = self.sequence_names()
                self._missing_names = [n for n in names if not os.path.exists(self.annotation_path(n))]
            except NotImplementedError:
                self._missing_names = []
        return list(self._missing_names)

    def present_sequence_names(self) -> List[str]:
        """Names of the official list whose annotation file exists, in the benchmark's order."""
        missing = set(self.missing_sequence_names())
        return [n for n in self.sequence_names() if n not in missing]

    def _missing_where(self, missing: Seq[str]) -> str:
        example = self.annotation_path(missing[0])
        return f"in '{self.base_path}' (e.g. '{example}' does not exist)"

    def missing_report(self) -> Optional[str]:
        """One line saying how many of the benchmark's sequences are absent and where they were looked
        for, and how many are used; None when the folder holds the whole benchmark."""
        missing = self.missing_sequence_names()
        if not missing:
            return None
        total = len(self.sequence_names())
        present = total - len(missing)
        return (f"{self.name}: {len(missing)} of the benchmark's {total} sequences {_are(len(missing))} missing "
                f"{self._missing_where(missing)}: {_short_list(missing)}; using the {present} present: "
                f"{_short_list(self.present_sequence_names())}")

    def selected_sequence_names(self) -> List[str]:
        """The names :meth:`get_sequence_list` builds, by the ``missing`` policy.

        Raises:
            MissingSequencesError: ``'error'`` and some are absent, or ``'skip'`` and none is present.
        """
        names = self.sequence_names()
        missing = self.missing_sequence_names()
        if not missing:
            return names
        where = self._missing_where(missing)
        if len(missing) == len(names):
            raise MissingSequencesError(f"{self.name}: none of the benchmark's {len(names)} sequences is "
                                        f"present {where}", missing, len(names))
        if self.missing == "error":
            raise MissingSequencesError(
                f"{self.name}: {len(missing)} of the benchmark's {len(names)} sequences {_are(len(missing))} "
                f"missing {where}: "
                f"{_short_list(missing)}. A score over part of a benchmark is not the benchmark's score; to score "
                f"the {len(names) - len(missing)} present sequences, pass --skip_missing (missing='skip' in "
                f"code)", missing, len(names))
        return self.present_sequence_names()

    # -- sequences ---------------------------------------------------------------------------------
    def get_sequence(self, key: Union[int, str]) -> "Sequence":
        """One sequence by index (int, or a string of digits that is not a name) or by name.

        An index counts in the official list (``missing='error'``) or in the present sequences
        (``missing='skip'``). Datasets that implement :meth:`_sequence_by_name` read only that
        sequence's files; others build the whole list and pick from it.

        Raises:
            IndexError: an index out of range or an unknown name (the message lists similar names).
            MissingSequencesError: a sequence of the official list that is absent from the folder.
        """
        try:
            names = self.sequence_names()
        except NotImplementedError:
            names = None
        seqs = None
        if names is None:
            seqs = self.get_sequence_list()
            names = [s.name for s in seqs]
        if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.isdigit() and key not in names):
            idx = int(key)
            if self.missing == "skip" and seqs is None:
                names = self.present_sequence_names()
            if not -len(names) <= idx < len(names):
                raise IndexError(f"sequence index {idx} out of range: {type(self).__name__} has {len(names)} sequences")
            key = names[idx]
        elif key not in names:
            close = [n for n in names if key.lower() in n.lower()][:10]
            hint = f"; similar names: {', '.join(close)}" if close else f"; first names: {', '.join(names[:5])}"
            raise IndexError(f"no sequence '{key}' in {type(self).__name__} ({len(names)} sequences){hint}")
        if seqs is None:
            if key in self.missing_sequence_names():
                present = self.present_sequence_names()
                raise MissingSequencesError(
                    f"{self.name}: sequence '{key}' is not in '{self.base_path}' ('{self.annotation_path(key)}' "
                    f"does not exist); present: {_short_list(present) or 'none'}", [key], len(names))
            try:
                return self._sequence_by_name(key)
            except NotImplementedError:
                seqs = self.get_sequence_list()
        return seqs[key]

    def get_sequence_list(self) -> SequenceList:
        """The sequences of the benchmark (the present ones with ``missing='skip'``).

        Raises:
            MissingSequencesError: see :meth:`selected_sequence_names`.
        """
        return SequenceList([self._sequence_by_name(n) for n in self.selected_sequence_names()])

    def __len__(self) -> int:
        """The benchmark's number of sequences (present or not)."""
        return len(self.sequence_names())


class InfoListDataset(BaseDataset):
    """A benchmark described by an official ``sequence_info_list`` (pytracking's format: per sequence
    ``name, path, startFrame, endFrame, nz, ext, anno_path``...): OTB, UAV123, NfS, TC128.

    Subclasses call :meth:`set_infos`; a sequence's annotation file is ``<base_path>/<anno_path>``.
    """

    def set_infos(self, entries: Seq[Dict[str, Any]], key: str = "name") -> None:
        """Keep the info entries by ``entry[key]`` (in the list's order) and their names."""
        self.infos: Dict[str, Dict[str, Any]] = {e[key]: e for e in entries}
        self.names = list(self.infos)

    def annotation_path(self, name: str) -> str:
        return os.path.join(self.base_path, self.infos[name]["anno_path"])

    def _boxes_and_frames(self, name: str, **read_kwargs):
        """``(info, ground truth (N, 4), frame paths)`` of sequence ``name``: the boxes of its annotation
        file (``read_kwargs`` go to :func:`~.annotations.read_boxes`), one per frame of its info range.

        Raises:
            DatasetFolderError / AnnotationError: a missing or malformed file, or a box count that differs
                from the frame count (message names the file and the range).
        """
        info = self.infos[name]
        anno = self.annotation_path(name)
        gt = read_boxes(anno, **read_kwargs)
        frames = frame_paths(self.base_path, info)
        check_box_count(gt, len(frames), anno, f"{info['startFrame']}..{info['endFrame']} of '{info['path']}' "
                                               f"(official sequence list)")
        return info, gt, frames
