"""Strict readers of benchmark annotation files and the packaged sequence lists.

Every reader names the file and the 1-based line of a bad row, so a damaged or half-copied dataset
gives one clear message instead of a numpy traceback. Boxes are ``(N, 4)`` float64 **xywh in
pixels**, exactly as written in the file (pytracking ``load_text`` semantics: no 0/1-based shift).

Accepted separators: commas, tabs and spaces (any mix), which covers every official layout (UAV123
and GOT-10k commas, NfS tabs, AVisT spaces, OTB/TC128 either).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["AnnotationError", "AnnotationWarning", "DatasetFolderError", "read_boxes", "read_flags", "read_vot_regions",
           "check_box_count", "require_dir", "require_file", "load_packaged_list", "frame_paths", "sorted_frames",
           "names_in", "LISTS_DIR"]

LISTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lists")

_SPLIT = re.compile(r"[,\s]+")


class AnnotationError(ValueError):
    """An annotation file with a bad row, a wrong number of boxes or bad flags (message: file and line)."""


class AnnotationWarning(UserWarning):
    """A suspicious but official-looking annotation (e.g. LaSOT's ``1,1,-1,-1`` rows): kept, reported."""


class DatasetFolderError(FileNotFoundError):
    """A dataset folder or annotation file that is missing (the message names it and what it holds)."""


def require_dir(path: str, what: str) -> str:
    """Return ``path`` if it is a folder.

    Raises:
        DatasetFolderError: naming ``path`` and ``what`` it should hold.
    """
    if not os.path.isdir(path):
        raise DatasetFolderError(f"{what}: folder '{path}' does not exist")
    return path


def require_file(path: str, what: str) -> str:
    """Return ``path`` if it is a file.

    Raises:
        DatasetFolderError: naming ``path`` and ``what`` it should hold.
    """
    if not os.path.isfile(path):
        raise DatasetFolderError(f"{what}: file '{path}' does not exist")
    return path


def _lines(path: str, what: str) -> List[str]:
    require_file(path, what)
    with open(path, "r", encoding="utf-8-sig", errors="replace") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():  # trailing blank lines are harmless
        lines.pop()
    return lines


def _parse_numbers(text: str, path: str, lineno: int) -> List[float]:
    fields = [t for t in _SPLIT.split(text.strip()) if t]
    try:
        return [float(t) for t in fields]
    except ValueError:
        raise AnnotationError(f"{path}, line {lineno}: '{text.strip()}' is not a list of numbers") from None


def read_boxes(path: str, allow_nan: bool = False, max_rows: Optional[int] = None,
               what: str = "ground truth", negative: str = "warn") -> np.ndarray:
    """Read an xywh box file (one box per line).

    Args:
        path: annotation file.
        allow_nan: accept rows of NaN (UAV123 marks absent targets so); other datasets forbid NaN,
            as the official analysis does.
        max_rows: read at most this many rows (GOT-10k/TrackingNet test files hold one box).
        what: what the file is, for messages.
        negative: a negative width or height is ``'warn'`` (kept, one :class:`AnnotationWarning` per
            file naming the lines: official files have such rows, e.g. LaSOT lion-5 line 553
            ``1,1,-1,-1``, and the analysis counts them as invalid frames) or ``'error'`` (for files
            whose boxes initialise a tracker: GOT-10k/TrackingNet test).

    Returns:
        ``(N, 4)`` float64 array, xywh in pixels.

    Raises:
        DatasetFolderError: the file does not exist.
        AnnotationError: an empty file, a row that is not 4 numbers, a NaN (unless allowed) or
            infinite value, or (with ``negative='error'``) a negative width/height; the message names
            file and line.
    """
    if negative not in ("warn", "error"):
        raise ValueError(f"negative must be 'warn' or 'error', got {negative!r}")
    lines = _lines(path, what)
    negative_lines: List[int] = []
    if max_rows is not None:
        lines = lines[:max_rows]
    if not lines:
        raise AnnotationError(f"{path}: {what} file is empty (expected one 'x,y,w,h' row per frame)")
    boxes = np.empty((len(lines), 4), dtype=np.float64)
    for i, line in enumerate(lines):
        values = _parse_numbers(line, path, i + 1)
        if len(values) != 4:
            raise AnnotationError(f"{path}, line {i + 1}: expected 4 values x, y, w, h, got {len(values)}: "
                                  f"'{line.strip()}'")
        nan = [math.isnan(v) for v in values]
        if any(nan):
            if not allow_nan:
                raise AnnotationError(f"{path}, line {i + 1}: NaN in box '{line.strip()}' (this benchmark has no "
                                      f"NaN rows; absent targets are marked otherwise)")
            if not all(nan):
                raise AnnotationError(f"{path}, line {i + 1}: partly NaN box '{line.strip()}' (an absent target "
                                      f"is a row of 4 NaN)")
        elif any(math.isinf(v) for v in values):
            raise AnnotationError(f"{path}, line {i + 1}: infinite value in box '{line.strip()}'")
        elif values[2] < 0 or values[3] < 0:
            if negative == "error":
                raise AnnotationError(f"{path}, line {i + 1}: negative width or height in box '{line.strip()}' "
                                      f"(x, y, w, h with w, h >= 0)")
            negative_lines.append(i + 1)
        boxes[i] = values
    if negative_lines:
        import warnings

        shown = ", ".join(str(n) for n in negative_lines[:10]) + (" ..." if len(negative_lines) > 10 else "")
        warnings.warn(AnnotationWarning(f"{path}: negative width or height on line(s) {shown}; kept (the analysis "
                                        f"counts these frames as invalid)"), stacklevel=2)
    return boxes


def read_flags(path: str, num_frames: Optional[int] = None, what: str = "flags") -> np.ndarray:
    """Read per-frame 0/1 flags (LaSOT/AVisT ``full_occlusion``/``out_of_view``: one comma-separated line;
    one flag per line is accepted too).

    Returns:
        ``(N,)`` bool array.

    Raises:
        DatasetFolderError: missing file.
        AnnotationError: a value other than 0/1 or, with ``num_frames``, a count that differs.
    """
    lines = _lines(path, what)
    flags: List[bool] = []
    for i, line in enumerate(lines):
        for v in _parse_numbers(line, path, i + 1):
            if v not in (0.0, 1.0):
                raise AnnotationError(f"{path}, line {i + 1}: {what} must be 0 or 1, found {v:g}")
            flags.append(v == 1.0)
    if num_frames is not None and len(flags) != num_frames:
        raise AnnotationError(f"{path}: {len(flags)} {what} values for {num_frames} frames")
    return np.asarray(flags, dtype=bool)


def _vot_line_to_box(line: str, path: str, lineno: int) -> List[float]:
    text = line.strip()
    if text.startswith("m"):
        # VOT2020+ mask: 'm<x0>,<y0>,<w>,<h>,<RLE...>'; the box is the mask's region (as OSTrack reads it).
        values = _parse_numbers(text[1:], path, lineno)
        if len(values) < 4:
            raise AnnotationError(f"{path}, line {lineno}: mask region needs x0, y0, w, h before the RLE")
        return values[:4]
    values = _parse_numbers(text, path, lineno)
    if len(values) == 4:
        return values
    if len(values) >= 6 and len(values) % 2 == 0:
        xs, ys = values[0::2], values[1::2]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        return [x1, y1, x2 - x1, y2 - y1]
    raise AnnotationError(f"{path}, line {lineno}: expected a rectangle (4 values), a polygon (8 values) or a "
                          f"mask ('m...'), got {len(values)} values")


def read_vot_regions(path: str) -> np.ndarray:
    """Read a VOT ``groundtruth.txt``: rectangles, polygons (converted to the axis-aligned min/max box
    ``(x1, y1, x2 - x1, y2 - y1)`` as pytracking/OSTrack do) or VOT2020 RLE masks (their region box).

    Returns:
        ``(N, 4)`` float64 xywh.

    Raises:
        DatasetFolderError / AnnotationError as :func:`read_boxes`.
    """
    lines = _lines(path, "VOT ground truth")
    if not lines:
        raise AnnotationError(f"{path}: VOT ground truth file is empty")
    boxes = np.array([_vot_line_to_box(line, path, i + 1) for i, line in enumerate(lines)], dtype=np.float64)
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise AnnotationError(f"{path}, line {i + 1}: non-finite region '{lines[i].strip()}'")
    return boxes


def check_box_count(boxes: np.ndarray, num_frames: int, path: str, frames_from: str) -> None:
    """Require one box per frame.

    Raises:
        AnnotationError: naming the file, both counts and where the frame count came from.
    """
    if len(boxes) != num_frames:
        rel = "fewer" if len(boxes) < num_frames else "more"
        raise AnnotationError(f"{path}: {len(boxes)} boxes for {num_frames} frames ({rel} boxes than frames; "
                              f"the frames are {frames_from})")


_LIST_CACHE: Dict[str, dict] = {}


def load_packaged_list(name: str) -> dict:
    """The packaged sequence list ``lib/test/evaluation/lists/<name>.json``.

    Info lists (``columns`` + ``rows``) are returned with ``'sequences'``: a list of dicts with the
    official ``sequence_info_list`` keys (``name, path, startFrame, endFrame, nz, ext, anno_path``...).
    """
    if name not in _LIST_CACHE:
        path = os.path.join(LISTS_DIR, f"{name}.json")
        with open(path) as f:
            data = json.load(f)
        if "rows" in data:
            cols = data["columns"]
            data["sequences"] = [{c: v for c, v in zip(cols, row) if v is not None} for row in data["rows"]]
        _LIST_CACHE[name] = data
    return _LIST_CACHE[name]


def frame_paths(base: str, info: dict, start: Optional[int] = None, end: Optional[int] = None) -> List[str]:
    """``{base}/{path}/{frame:0{nz}d}.{ext}`` for frames ``startFrame + initOmit .. endFrame`` of an
    official info entry (pytracking ``_construct_sequence``)."""
    start = info["startFrame"] if start is None else start
    end = info["endFrame"] if end is None else end
    nz, ext = int(info["nz"]), info["ext"]
    folder = os.path.join(base, info["path"])
    return [os.path.join(folder, f"{i:0{nz}d}.{ext}") for i in range(start + int(info.get("initOmit", 0)), end + 1)]


def sorted_frames(folder: str, ext: str = ".jpg") -> List[str]:
    """Image files of ``folder`` sorted by their integer stem (``1.jpg`` < ``10.jpg``); [] if the
    folder holds none. Names that are not integers sort after, by name."""
    if not os.path.isdir(folder):
        return []
    names = [f for f in os.listdir(folder) if f.lower().endswith(ext)]

    def key(f: str):
        stem = f[: -len(ext)]
        return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)

    return [os.path.join(folder, f) for f in sorted(names, key=key)]


def names_in(values: Sequence[str]) -> str:
    """Short, readable list of names for messages."""
    values = list(values)
    head = ", ".join(values[:8])
    return head + (f", ... ({len(values)} in all)" if len(values) > 8 else "")
