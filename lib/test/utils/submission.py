"""Packing raw results into the zips the GOT-10k and TrackingNet evaluation servers accept (OSTrack
``lib/test/utils/transform_got10k.py`` / ``transform_trackingnet.py``, pytracking
``util_scripts/pack_got10k_results.py`` / ``pack_trackingnet_results.py``).

- GOT-10k: reads ``<results_dir>/got10k/<seq>.txt`` and ``<seq>_time.txt`` and writes a zip holding
  ``<seq>/<seq>_001.txt`` (boxes x, y, w, h, comma-separated, one row per frame) and
  ``<seq>/<seq>_time.txt`` for every test sequence.
- TrackingNet: reads ``<results_dir>/trackingnet/<seq>.txt`` and writes a zip holding ``<seq>.txt``
  (comma-separated boxes) for every TEST sequence.

Unlike the OSTrack scripts the raw results are never deleted, the zip is written atomically, and a
result set that lacks any sequence of the benchmark (or holds a malformed file) is refused with the
names of what is missing.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from typing import Dict, List, Optional, Sequence

from lib.test.evaluation.annotations import names_in
from lib.utils.errors import register_user_error
from lib.utils.misc import atomic_write

__all__ = ["SubmissionError", "GOT10K_TEST_NAMES", "TRACKINGNET_TEST_COUNT", "pack_got10k", "pack_trackingnet",
           "read_result_boxes", "expected_sequences"]

#: the 180 GOT-10k test sequences (``test/list.txt`` of the official release).
GOT10K_TEST_NAMES = [f"GOT-10k_Test_{i:06d}" for i in range(1, 181)]
#: number of sequences of the TrackingNet TEST set.
TRACKINGNET_TEST_COUNT = 511


@register_user_error
class SubmissionError(RuntimeError):
    """A result set that cannot be packed (missing sequences or malformed files; the message says which)."""


def read_result_boxes(path: str) -> List[List[float]]:
    """Read a raw result file (tab- or comma-separated ``x y w h`` per line).

    Raises:
        SubmissionError: a row that is not 4 finite numbers (names file and line) or an empty file.
    """
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = [p for p in line.replace(",", " ").split() if p]
            try:
                values = [float(p) for p in parts]
            except ValueError:
                values = []
            if len(values) != 4 or not all(math.isfinite(v) for v in values):
                raise SubmissionError(f"{path}, line {lineno}: expected 4 finite numbers x, y, w, h, got '{line.strip()}'")
            rows.append(values)
    if not rows:
        raise SubmissionError(f"{path}: empty result file")
    return rows


def _format_rows(rows: List[List[float]]) -> str:
    def fmt(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else f"{v:.3f}"

    return "".join(",".join(fmt(v) for v in row) + "\n" for row in rows)


def _write_zip(path: str, members: Dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            zf.writestr(name, members[name])
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def expected_sequences(dataset: str, dataset_path: Optional[str] = None,
                       sequence_list: Optional[str] = None) -> Optional[Dict[str, Optional[int]]]:
    """``{sequence name: number of frames or None}`` the server expects, or None if unknown.

    Sources, in order: ``sequence_list`` (a text file, one name per line), the dataset folder
    (``dataset_path``, else the local.py field when it is set and exists), and for GOT-10k the
    official names ``GOT-10k_Test_000001`` .. ``000180``.
    """
    if sequence_list:
        with open(sequence_list) as f:
            return {line.strip(): None for line in f if line.strip()}
    from lib.test.evaluation.datasets import load_dataset
    from lib.utils.local_settings import SettingsError

    key = "got10k_test" if dataset == "got10k" else "trackingnet"
    try:
        ds = load_dataset(key, base_path=dataset_path)
    except (SettingsError, FileNotFoundError):
        if dataset_path is not None:
            raise
        ds = None
    if ds is not None:
        out = {}
        for name in ds.sequence_names():
            folder = (os.path.join(ds.base_path, name) if dataset == "got10k"
                      else os.path.join(ds.base_path, ds.subset, "frames", name))
            n = len([f for f in os.listdir(folder) if f.endswith(".jpg")]) if os.path.isdir(folder) else 0
            out[name] = n or None
        return out
    if dataset == "got10k":
        return {name: None for name in GOT10K_TEST_NAMES}
    return None


def _results_dir(tracker_name: str, cfg_name: str, run_id: Optional[int], results_path: Optional[str]) -> str:
    if results_path is None:
        from lib.test.evaluation.environment import env_settings

        results_path = env_settings().require("results_path", what="tracking results")
    folder = cfg_name if run_id is None else f"{cfg_name}_{run_id:03d}"
    return os.path.join(results_path, tracker_name, folder)


def _check(expected: Dict[str, Optional[int]], src: str, with_time: bool) -> List[str]:
    missing = []
    for name in expected:
        if not os.path.isfile(os.path.join(src, f"{name}.txt")):
            missing.append(f"{name}.txt")
        if with_time and not os.path.isfile(os.path.join(src, f"{name}_time.txt")):
            missing.append(f"{name}_time.txt")
    if missing:
        raise SubmissionError(f"incomplete result set in '{src}': {len(missing)} file(s) missing: {names_in(missing)}. "
                              f"Run tracking/test.py again (it resumes where it stopped).")
    return list(expected)


def _rows_checked(path: str, frames: Optional[int]) -> List[List[float]]:
    rows = read_result_boxes(path)
    if frames is not None and len(rows) != frames:
        raise SubmissionError(f"{path}: {len(rows)} boxes for a sequence of {frames} frames")
    return rows


def pack_got10k(tracker_name: str, cfg_name: str, run_id: Optional[int] = None, results_path: Optional[str] = None,
                dataset_path: Optional[str] = None, sequence_list: Optional[str] = None,
                output: Optional[str] = None) -> str:
    """Write the GOT-10k test submission zip (default ``<results_dir>/got10k_submit.zip``).

    Returns:
        the zip path.

    Raises:
        SubmissionError: a test sequence without ``<seq>.txt`` or ``<seq>_time.txt`` (all missing
            names listed), a malformed file, or a box count that differs from the frame count.
    """
    results_dir = _results_dir(tracker_name, cfg_name, run_id, results_path)
    src = os.path.join(results_dir, "got10k")
    if not os.path.isdir(src):
        raise SubmissionError(f"no GOT-10k results in '{src}' (run tracking/test.py {tracker_name} {cfg_name} "
                              f"--dataset got10k_test first)")
    expected = expected_sequences("got10k", dataset_path, sequence_list)
    members: Dict[str, bytes] = {}
    for name in _check(expected, src, with_time=True):
        rows = _rows_checked(os.path.join(src, f"{name}.txt"), expected[name])
        members[f"{name}/{name}_001.txt"] = _format_rows(rows).encode()
        with open(os.path.join(src, f"{name}_time.txt"), "rb") as f:
            members[f"{name}/{name}_time.txt"] = f.read()
    return _write_zip(output or os.path.join(results_dir, "got10k_submit.zip"), members)


def pack_trackingnet(tracker_name: str, cfg_name: str, run_id: Optional[int] = None,
                     results_path: Optional[str] = None, dataset_path: Optional[str] = None,
                     sequence_list: Optional[str] = None, output: Optional[str] = None) -> str:
    """Write the TrackingNet TEST submission zip (default ``<results_dir>/trackingnet_submit.zip``).

    Without a sequence list (no ``--dataset_path``/``trackingnet_path``/``--sequence_list``) the set is
    accepted only if it holds exactly 511 result files.

    Raises:
        SubmissionError: missing sequences (listed), malformed files, or a wrong count.
    """
    results_dir = _results_dir(tracker_name, cfg_name, run_id, results_path)
    src = os.path.join(results_dir, "trackingnet")
    if not os.path.isdir(src):
        raise SubmissionError(f"no TrackingNet results in '{src}' (run tracking/test.py {tracker_name} {cfg_name} "
                              f"--dataset trackingnet first)")
    expected = expected_sequences("trackingnet", dataset_path, sequence_list)
    if expected is None:
        found = sorted(f[:-4] for f in os.listdir(src) if f.endswith(".txt") and not f.endswith("_time.txt")
                       and "_all_" not in f)
        if len(found) != TRACKINGNET_TEST_COUNT:
            raise SubmissionError(f"'{src}' holds {len(found)} result files, the TrackingNet TEST set has "
                                  f"{TRACKINGNET_TEST_COUNT}; give the dataset (--dataset_path or trackingnet_path in "
                                  f"local.py) or --sequence_list to see which are missing")
        expected = {name: None for name in found}
    members = {}
    for name in _check(expected, src, with_time=False):
        members[f"{name}.txt"] = _format_rows(_rows_checked(os.path.join(src, f"{name}.txt"), expected[name])).encode()
    return _write_zip(output or os.path.join(results_dir, "trackingnet_submit.zip"), members)


def main_transform(kind: str, argv: Optional[Sequence[str]] = None) -> int:
    """Command line of ``transform_got10k.py`` / ``transform_trackingnet.py``; returns the exit status (0, or 2
    with one message for an incomplete or malformed result set; ``--verbose`` shows the traceback)."""
    from lib.utils.errors import run_cli

    return run_cli(lambda args=None: _transform(kind, args), prog=f"transform_{kind}.py", argv=argv)


def _transform(kind: str, argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    from lib.utils.errors import UserError, add_verbose_argument, is_user_error

    label = {"got10k": "GOT-10k test", "trackingnet": "TrackingNet TEST"}[kind]
    parser = argparse.ArgumentParser(description=f"Pack raw {label} results into the zip the evaluation server accepts "
                                                 f"(raw results are kept).")
    parser.add_argument("--tracker_name", required=True, help="tracker name (results folder level 1)")
    parser.add_argument("--cfg_name", required=True, help="config name (results folder level 2)")
    parser.add_argument("--runid", type=int, default=None, help="run id (<cfg>_<runid:03d>)")
    parser.add_argument("--results_path", default=None, help="results root (default: results_path of local.py)")
    parser.add_argument("--dataset_path", default=None, help="dataset folder to take the sequence list (and frame counts) from")
    parser.add_argument("--sequence_list", default=None, help="text file with the expected sequence names, one per line")
    parser.add_argument("--output", default=None, help=f"zip to write (default <results_dir>/{kind}_submit.zip)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    pack = pack_got10k if kind == "got10k" else pack_trackingnet
    try:
        path = pack(args.tracker_name, args.cfg_name, run_id=args.runid, results_path=args.results_path,
                    dataset_path=args.dataset_path, sequence_list=args.sequence_list, output=args.output)
    except (FileNotFoundError, ValueError) as exc:  # an unreadable list or result file: the message names it
        if is_user_error(exc):
            raise
        raise UserError(str(exc)) from exc
    print(f"wrote {path}")
    return 0
