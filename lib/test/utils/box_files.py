"""Reading box files (ground truth and raw tracking results) and per-frame flag files, with errors that
name the file and the line.

A box file has one ``x, y, w, h`` row per frame (pixels, top-left corner and size), values separated by
``,``, tab or spaces (the delimiter is taken from the first line; a row may end in a stray ``,``).
Trailing blank lines are ignored; any other blank line, a row without exactly four numbers, a value
that is not a number, or a NaN/inf value where none is allowed is an error naming file and line
(:class:`BoxFileError`). Files are parsed with pandas' C reader first (fast: a LaSOT result of
3000 rows takes about a millisecond); only a file that fails there is re-read line by line to find the
offending line.

Flag files (LaSOT ``full_occlusion.txt`` / ``out_of_view.txt``, GOT-10k ``cover.label``) hold one integer
per frame, comma-separated on one line or one per line.
"""

from __future__ import annotations

import io
import math
import os
import re
from typing import Optional

import numpy as np
import pandas as pd

__all__ = ["BoxFileError", "read_box_file", "read_flag_file"]

_SPLIT = re.compile(r"[,\s]+")


class BoxFileError(ValueError):
    """A box or flag file that is missing or malformed; the message names the file (and line)."""


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise BoxFileError(f"{what} file '{path}' does not exist") from None
    except IsADirectoryError:
        raise BoxFileError(f"{what} file '{path}' is a directory") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BoxFileError(f"{path}: {what} file is not text ({exc})") from None


def _parse_lines(body: str, path: str, what: str, allow_nan: bool, columns: int) -> np.ndarray:
    """Line-by-line parse that raises on the first bad line (used only when the fast path fails)."""
    rows = []
    for lineno, line in enumerate(body.split("\n"), start=1):
        stripped = line.strip().rstrip(",").strip()
        if not stripped:
            raise BoxFileError(f"{path}, line {lineno}: blank line inside the {what} file "
                               f"(expected one x,y,w,h row per frame)")
        tokens = _SPLIT.split(stripped)
        if len(tokens) != columns:
            raise BoxFileError(f"{path}, line {lineno}: expected {columns} values (x,y,w,h) separated by ',', "
                               f"tab or space, got {len(tokens)}: '{line.strip()[:80]}'")
        values = []
        for tok in tokens:
            try:
                v = float(tok)
            except ValueError:
                raise BoxFileError(f"{path}, line {lineno}: '{tok}' is not a number "
                                   f"(row '{line.strip()[:80]}')") from None
            if math.isinf(v) or (math.isnan(v) and not allow_nan):
                raise BoxFileError(f"{path}, line {lineno}: {what} box holds a {'NaN' if math.isnan(v) else 'infinite'} "
                                   f"value (row '{line.strip()[:80]}')")
            values.append(v)
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(-1, columns)


def read_box_file(path: str, what: str = "box", allow_nan: bool = False, columns: int = 4) -> np.ndarray:
    """Read a box file into an ``(N, columns)`` float64 array (row ``i`` = frame ``i`` = line ``i+1``).

    Args:
        path: the text file.
        what: words naming the file in errors (``'ground truth'``, ``'result of tracker X'``).
        allow_nan: accept ``nan`` values (UAV123 ground truth marks absent targets so; pytracking's
            protocol rejects NaN predictions later, the LaSOT toolkit repairs them).
        columns: values per row (4 for x,y,w,h).

    Returns:
        ``(N, columns)`` float64, values as written (no unit or 0/1-based conversion).

    Raises:
        BoxFileError: missing/empty file, a blank line before the last row, a row without exactly
            ``columns`` numbers, a non-numeric or infinite value, or NaN when not ``allow_nan``;
            the message names file and line.
    """
    path = os.fspath(path)
    body = _read_text(path, what).replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if not body:
        raise BoxFileError(f"{path}: empty {what} file (expected one x,y,w,h row per frame)")
    first = body.split("\n", 1)[0]
    sep = "," if "," in first else ("\t" if "\t" in first else r"\s+")
    arr: Optional[np.ndarray]
    try:
        arr = pd.read_csv(io.StringIO(body), sep=sep, header=None, dtype=np.float64, skip_blank_lines=False,
                          engine="c", skipinitialspace=True).to_numpy()
    except Exception:  # any parser complaint: the slow path names the line
        arr = None
    if (arr is None or arr.ndim != 2 or arr.shape[1] != columns or arr.shape[0] != body.count("\n") + 1
            or not np.isfinite(arr).all()):
        arr = _parse_lines(body, path, what, allow_nan, columns)
    return arr


def read_flag_file(path: str, what: str = "flag", length: Optional[int] = None) -> np.ndarray:
    """Read a per-frame 0/1 flag file (comma-separated on one line, or one value per line).

    Args:
        path: the text file.
        what: words naming the file in errors.
        length: the number of frames the flags must cover (the ground-truth rows), or None.

    Returns:
        ``(N,)`` bool array (True where the file holds a non-zero value).

    Raises:
        BoxFileError: missing/empty file, a value that is not an integer >= 0 (the message gives the
            line and the position of the value in it), or ``N != length``.
    """
    path = os.fspath(path)
    body = _read_text(path, what).strip()
    if not body:
        raise BoxFileError(f"{path}: empty {what} file (expected one 0/1 value per frame)")
    compact = body.replace("\r", "").replace("\n", ",").replace(" ", "").replace("\t", "")
    digits = compact[::2]
    if not compact[1::2].strip(",") and not digits.strip("01"):  # fast path: single-digit 0/1 values
        values = np.frombuffer(digits.encode("ascii"), dtype=np.uint8) - ord("0")
        ok = True
    else:
        try:
            values = np.asarray([t for t in _SPLIT.split(body) if t], dtype=np.float64)
            ok = bool(np.all((values >= 0) & (values == np.round(values))))
        except ValueError:
            ok = False
    if not ok:
        for lineno, line in enumerate(body.split("\n"), start=1):
            for pos, tok in enumerate([t for t in _SPLIT.split(line.strip()) if t != ""], start=1):
                try:
                    v = float(tok)
                    good = v >= 0 and v == round(v)
                except (ValueError, OverflowError):
                    good = False
                if not good:
                    raise BoxFileError(f"{path}, line {lineno}, value {pos}: '{tok}' is not a 0/1 {what} value")
        raise BoxFileError(f"{path}: unreadable {what} values")  # pragma: no cover - the loop names the value
    if length is not None and len(values) != length:
        raise BoxFileError(f"{path}: {len(values)} {what} values for {length} frames of ground truth "
                           f"(expected one value per frame)")
    return values > 0
