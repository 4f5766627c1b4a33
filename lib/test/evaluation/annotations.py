"""Strict readers of benchmark annotation files and the packaged sequence lists.

Every reader names the file and the 1-based line of a bad row, so a damaged or half-copied dataset
gives one clear message instead of a numpy traceback. Boxes are ``(N, 4)`` float64 **xywh in
pixels**, exactly as written in the file (pytracking ``load_text`` semantics: no 0/1-based shift).

Accepted separators: commas, tabs and spaces (any mix), which covers every official layout (UAV123
and GOT-10k commas, NfS tabs, AVisT spaces, OTB/TC128 either).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from lib.utils.errors import register_user_error

__all__ = ["AnnotationError", "AnnotationWarning", "DatasetFolderError", "read_boxes", "read_flags", "read_vot_regions", "polygon_to_box",
           "check_box_count", "require_dir", "require_file", "load_packaged_list", "frame_paths", "sorted_frames",
           "names_in", "LISTS_DIR"]

LISTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lists")

_SPLIT = re.compile(r"[,\s]+")


@register_user_error
class AnnotationError(ValueError):
    """An annotation file with a bad row, a wrong number of boxes or bad flags (message: file and line)."""


class AnnotationWarning(UserWarning):
    """A suspicious but official-looking annotation (e.g. LaSOT's ``1,1,-1,-1`` rows): kept, reported."""


@register_user_error
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


def _read_text(path: str, what: str) -> str:
    require_file(path, what)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: {what} file is not text ({exc})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lines(path: str, what: str) -> List[str]:
    lines = _read_text(path, what).split("\n")
    while lines and not lines[-1].strip():  # trailing blank lines are harmless
        lines.pop()
    return lines


def _parse_numbers(text: str, path: str, lineno: int) -> List[float]:
    fields = [t for t in _SPLIT.split(text.strip()) if t]
    values = []
    for t in fields:
        try:
            values.append(float(t))
        except ValueError:
            raise AnnotationError(f"{path}, line {lineno}: '{t}' is not a number (row '{text.strip()[:80]}' is not "
                                  f"a list of numbers)") from None
    return values


def _fast_parse(body: str, columns: int) -> Optional[np.ndarray]:
    """pandas' C reader on a file with one separator (taken from the first line); None if it complains
    or the shape is off (then the line-by-line parser finds and names the bad line)."""
    first = body.split("\n", 1)[0]
    sep = "," if "," in first else ("\t" if "\t" in first else r"\s+")
    try:
        arr = pd.read_csv(io.StringIO(body), sep=sep, header=None, dtype=np.float64, skip_blank_lines=False,
                          engine="c" if sep != r"\s+" else "python", skipinitialspace=True).to_numpy()
    except Exception:
        return None
    if arr.ndim == 2 and arr.shape[1] == columns + 1 and np.isnan(arr[:, -1]).all():
        arr = arr[:, :columns]  # rows ending in a stray separator ('1,2,3,4,')
    if arr.ndim != 2 or arr.shape[1] != columns or arr.shape[0] != body.count("\n") + 1:
        return None
    return arr


def read_boxes(path: str, allow_nan: Union[bool, str] = False, max_rows: Optional[int] = None,
               what: str = "ground truth", negative: str = "warn") -> np.ndarray:
    """Read an xywh box file (one box per line): ground truth and raw tracking results alike.

    Values may be separated by commas, tabs or spaces (any mix; a stray trailing comma is allowed).
    Well-formed files are parsed by pandas' C reader (a 3000-row LaSOT file takes about a
    millisecond); any other file is re-read line by line to name the first bad line.

    Args:
        path: annotation or result file.
        allow_nan: ``False`` (no NaN: most benchmarks), ``'rows'`` (rows of four NaN mark an absent
            target, as in UAV123; a partly NaN row is an error) or ``True`` (any NaN: raw results,
            which the analysis protocols repair or reject).
        max_rows: read at most this many rows (GOT-10k/TrackingNet test files hold one box).
        what: what the file is, for messages.
        negative: a negative width or height is ``'warn'`` (kept, one :class:`AnnotationWarning` per
            file naming the lines: official files have such rows, e.g. LaSOT lion-5 line 553
            ``1,1,-1,-1``, and the analysis counts them as invalid frames), ``'error'`` (for files
            whose boxes initialise a tracker: GOT-10k/TrackingNet test) or ``'allow'`` (raw results).

    Returns:
        ``(N, 4)`` float64 array, xywh in pixels, as written (no 0/1-based shift).

    Raises:
        DatasetFolderError: the file does not exist.
        AnnotationError: an empty file, a blank line before the last row, a row that is not 4 numbers,
            a NaN (unless allowed) or infinite value, or (with ``negative='error'``) a negative
            width/height; the message names file and line.
    """
    if negative not in ("warn", "error", "allow"):
        raise ValueError(f"negative must be 'warn', 'error' or 'allow', got {negative!r}")
    body = "\n".join(_lines(path, what))
    if max_rows is not None:
        body = "\n".join(body.split("\n")[:max_rows])
    if not body.strip():
        raise AnnotationError(f"{path}: {what} file is empty (expected one 'x,y,w,h' row per frame)")
    boxes = _fast_parse(body, 4)
    if boxes is None or not np.isfinite(boxes).all():  # pandas reads blanks and short rows as NaN too
        lines = body.split("\n")
        boxes = np.empty((len(lines), 4), dtype=np.float64)
        for i, line in enumerate(lines):
            values = _parse_numbers(line.strip().rstrip(","), path, i + 1)
            if len(values) != 4:
                blank = " (blank line)" if not line.strip() else ""
                raise AnnotationError(f"{path}, line {i + 1}: expected 4 values x, y, w, h, got {len(values)}{blank}: "
                                      f"'{line.strip()[:80]}'")
            if any(math.isinf(v) for v in values):
                raise AnnotationError(f"{path}, line {i + 1}: infinite value in {what} box '{line.strip()}' (an "
                                      f"infinite value is never valid)")
            boxes[i] = values
    nan_rows = np.isnan(boxes)
    if nan_rows.any():
        i = int(np.argmax(nan_rows.any(axis=1)))
        if not allow_nan:
            raise AnnotationError(f"{path}, line {i + 1}: NaN in {what} box {boxes[i].tolist()} (this file may hold "
                                  f"no NaN rows)")
        if allow_nan == "rows":
            partial = nan_rows.any(axis=1) & ~nan_rows.all(axis=1)
            if partial.any():
                i = int(np.argmax(partial))
                raise AnnotationError(f"{path}, line {i + 1}: partly NaN box {boxes[i].tolist()} (an absent target "
                                      f"is a row of 4 NaN)")
    if negative != "allow":
        neg = np.flatnonzero((boxes[:, 2] < 0) | (boxes[:, 3] < 0))
        if len(neg):
            if negative == "error":
                raise AnnotationError(f"{path}, line {neg[0] + 1}: negative width or height in {what} box "
                                      f"{boxes[neg[0]].tolist()} (x, y, w, h with w, h >= 0)")
            shown = ", ".join(str(n + 1) for n in neg[:10]) + (" ..." if len(neg) > 10 else "")
            warnings.warn(AnnotationWarning(f"{path}: negative width or height on line(s) {shown}; kept (the "
                                            f"analysis counts these frames as invalid)"), stacklevel=2)
    return boxes


def read_flags(path: str, num_frames: Optional[int] = None, what: str = "flags") -> np.ndarray:
    """Read per-frame flags (LaSOT/AVisT ``full_occlusion``/``out_of_view``: one comma-separated line;
    one value per line is accepted too).

    Returns:
        ``(N,)`` bool array.

    Raises:
        DatasetFolderError: missing file.
        AnnotationError: an empty file, a value other than 0 or 1 (the message gives the line and the
            position of the value in it) or, with ``num_frames``, a count that differs.
    """
    body = _read_text(path, what).strip()
    if not body:
        raise AnnotationError(f"{path}: {what} file is empty (expected one 0/1 value per frame)")
    compact = body.replace("\n", ",").replace(" ", "").replace("\t", "")
    digits = compact[::2]
    values: Optional[np.ndarray] = None
    if not compact[1::2].strip(",") and not digits.strip("01"):  # fast path: single-digit 0/1 values
        values = np.frombuffer(digits.encode("ascii"), dtype=np.uint8) - ord("0")
    else:
        for lineno, line in enumerate(body.split("\n"), start=1):
            for pos, tok in enumerate([t for t in _SPLIT.split(line.strip()) if t], start=1):
                try:
                    good = float(tok) in (0.0, 1.0)
                except ValueError:
                    good = False
                if not good:
                    raise AnnotationError(f"{path}, line {lineno}, value {pos}: {what} must be 0 or 1, found '{tok}'")
        values = np.asarray([t for t in _SPLIT.split(body) if t], dtype=np.float64)
    if num_frames is not None and len(values) != num_frames:
        raise AnnotationError(f"{path}: {len(values)} {what} values for {num_frames} frames (expected one value "
                              f"per frame)")
    return values > 0


def polygon_to_box(points) -> List[float]:
    """The axis-aligned min/max box ``[x1, y1, x2 - x1, y2 - y1]`` (xywh pixels) of a polygon given as
    ``x1, y1, x2, y2, ...`` (flat) or ``[(x, y), ...]``: how the VOT toolkit (``Polygon.convert`` to a rectangle),
    pytracking and OSTrack reduce VOT polygons to boxes.

    Raises:
        ValueError: fewer than 3 points or an odd number of values.
    """
    values = np.asarray(points, dtype=np.float64).reshape(-1)
    if values.size < 6 or values.size % 2:
        raise ValueError(f"a polygon needs 3 or more (x, y) points, got {values.size} values")
    xs, ys = values[0::2], values[1::2]
    x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())
    return [x1, y1, x2 - x1, y2 - y1]


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
        return polygon_to_box(values)
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


def frame_paths(base: str, info: dict, start: Optional[int] = None, end: Optional[int] = None) -> "FramePaths":
    """``{base}/{path}/{frame:0{nz}d}.{ext}`` for frames ``startFrame + initOmit .. endFrame`` of an
    official info entry (pytracking ``_construct_sequence``), as a lazy :class:`FramePaths` list."""
    from .frames import FramePaths

    start = info["startFrame"] if start is None else start
    end = info["endFrame"] if end is None else end
    folder = os.path.join(base, info["path"])
    return FramePaths(folder, range(start + int(info.get("initOmit", 0)), end + 1), int(info["nz"]), info["ext"])


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
