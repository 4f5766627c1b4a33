"""Per-sequence curves of every (sequence, tracker) pair, with an on-disk cache.

:func:`extract_results` is pytracking's ``extract_results``: for each sequence and tracker it reads the
raw result file, applies the protocol's :class:`~lib.test.analysis.protocols.FrameRules` and stores the
per-sequence success / precision / normalized-precision curves (``S x T x 21 / 51 / 51``), the mean IoU
over valid frames and, for GOT-10k, the pooled-IoU statistics of AO / SR.

Cache: ``<result_plot_path>/<report_name>/eval_data.npz`` (the role of pytracking's ``eval_data.pkl``,
without pickle: numpy arrays plus one JSON string, loaded with ``allow_pickle=False``; written
atomically). It is reused only when the protocol, the sequence names, the trackers (name, param, run
id, display name, folder), the ground truth and the result files (size and modification time) are all
unchanged; otherwise it is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence as Seq, Tuple

import numpy as np

from lib.test.evaluation.annotations import AnnotationError, read_boxes
from lib.utils.errors import register_user_error
from lib.utils.misc import atomic_write

from .metrics import GOT10K_THRESHOLDS, PredictionError, frame_errors, got10k_frame_ious, sequence_counts
from .protocols import FrameRules, ResultLengthError, UnsupportedDatasetError, fit_result_length, get_rules
from .results import TrackerResults

__all__ = ["EvalData", "extract_results", "MissingResultError", "ResultFileError", "CACHE_NAME",
           "got10k_sequence_meta"]

CACHE_NAME = "eval_data.npz"
_FORMAT = 1


@register_user_error
class MissingResultError(FileNotFoundError):
    """A tracker has no result file for a sequence (names tracker, sequence and the expected path)."""


@register_user_error
class ResultFileError(ValueError):
    """A result file that is malformed, too short, or that the protocol rejects (names file and line)."""


@dataclass
class EvalData:
    """Per-sequence results of one analysis run (arrays indexed ``[sequence, tracker, threshold]``).

    Curves are fractions in [0, 1] (counts / frames, the protocol's dtype); ``got_*`` are present for
    GOT-10k sequences only (zeros elsewhere).
    """

    dataset: str
    protocol: str
    rules: List[str]                 # rules name per sequence
    sequences: List[str]
    trackers: List[Dict]
    valid_sequence: np.ndarray       # (S,) bool
    success: np.ndarray              # (S, T, 21)
    precision: np.ndarray            # (S, T, 51)
    norm_precision: np.ndarray       # (S, T, 51)
    avg_overlap: np.ndarray          # (S, T) mean IoU over valid frames
    thresholds_overlap: np.ndarray
    thresholds_center: np.ndarray
    thresholds_norm: np.ndarray
    got_iou_sum: np.ndarray          # (S, T)
    got_frames: np.ndarray           # (S, T)
    got_above: np.ndarray            # (S, T, 101) frames with IoU > linspace(0, 1, 101)
    has_got10k: np.ndarray           # (S,) bool
    fingerprint: str = ""
    from_cache: bool = field(default=False, compare=False)

    @property
    def tracker_names(self) -> List[str]:
        return [t["display_name"] for t in self.trackers]

    def save(self, path: str) -> None:
        """Write ``path`` (.npz, no pickled objects) atomically."""
        meta = {"format": _FORMAT, "dataset": self.dataset, "protocol": self.protocol, "rules": self.rules,
                "sequences": self.sequences, "trackers": self.trackers, "fingerprint": self.fingerprint}
        arrays = {k: getattr(self, k) for k in ("valid_sequence", "success", "precision", "norm_precision",
                                                "avg_overlap", "thresholds_overlap", "thresholds_center",
                                                "thresholds_norm", "got_iou_sum", "got_frames", "got_above",
                                                "has_got10k")}
        with atomic_write(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str) -> "EvalData":
        """Read a file written by :meth:`save` (never unpickles)."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: cache format {meta.get('format')} != {_FORMAT}")
            arrays = {k: z[k] for k in z.files if k != "meta"}
        return cls(dataset=meta["dataset"], protocol=meta["protocol"], rules=meta["rules"],
                   sequences=meta["sequences"], trackers=meta["trackers"], fingerprint=meta["fingerprint"],
                   from_cache=True, **arrays)


def got10k_sequence_meta(seq) -> Tuple[np.ndarray, Tuple[float, float]]:
    """``cover`` flags and ``(W, H)`` of a GOT-10k sequence from its folder (``cover.label``,
    ``meta_info.ini``'s ``resolution: (W, H)``), the folder being that of the first frame.

    Raises:
        AnnotationError / FileNotFoundError: a missing or malformed file (message names it).
    """
    frame0 = seq.frames[0]
    if not isinstance(frame0, str):
        raise FileNotFoundError(f"GOT-10k sequence '{seq.name}': AO needs the sequence folder (cover.label, "
                                f"meta_info.ini), but its frames are not file paths ({frame0!r})")
    seq_dir = os.path.dirname(frame0)
    cover_path = os.path.join(seq_dir, "cover.label")
    cover = None
    if os.path.isfile(cover_path):
        with open(cover_path) as f:
            try:
                cover = np.array([float(v) for v in f.read().split()], dtype=np.float64)
            except ValueError:
                raise AnnotationError(f"{cover_path}: expected one integer cover value per line") from None
        if len(cover) != len(seq.ground_truth_rect):
            raise AnnotationError(f"{cover_path}: {len(cover)} values for {len(seq.ground_truth_rect)} frames")
    elif seq.target_visible is not None:
        cover = seq.target_visible.astype(np.float64)
    else:
        raise FileNotFoundError(f"GOT-10k sequence '{seq.name}': '{cover_path}' does not exist (AO scores "
                                f"only frames with cover > 0)")
    meta_path = os.path.join(seq_dir, "meta_info.ini")
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"GOT-10k sequence '{seq.name}': '{meta_path}' does not exist (AO clips boxes "
                                f"to the image resolution given there)")
    with open(meta_path) as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip().startswith("resolution"):
                try:
                    w, h = (float(v) for v in line.split(":", 1)[1].strip().strip("()").split(","))
                except ValueError:
                    raise AnnotationError(f"{meta_path}, line {lineno}: expected 'resolution: (W, H)', got "
                                       f"'{line.strip()}'") from None
                return cover, (w, h)
    raise AnnotationError(f"{meta_path}: no 'resolution: (W, H)' line")


def _fingerprint(protocol: str, sequences, trackers: Seq[TrackerResults], files: List[List[Optional[str]]]) -> str:
    h = hashlib.sha1()
    h.update(json.dumps({"format": _FORMAT, "protocol": protocol, "trackers": [t.identity() for t in trackers]},
                        sort_keys=True).encode())
    for s, seq in enumerate(sequences):
        h.update(f"|{seq.name}|{seq.dataset}|".encode())
        h.update(np.ascontiguousarray(seq.ground_truth_rect, dtype=np.float64).tobytes())
        if seq.target_visible is not None:
            h.update(np.ascontiguousarray(seq.target_visible, dtype=bool).tobytes())
        for path in files[s]:
            if path is None:
                h.update(b"<missing>")
            else:
                st = os.stat(path)
                h.update(f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _check_ground_truth(seq) -> None:
    gt = seq.ground_truth_rect
    if gt.ndim != 2 or gt.shape[1] != 4:
        raise ValueError(f"sequence '{seq.name}': ground truth must be (N, 4) xywh, got shape {gt.shape}")
    if len(gt) < len(seq.frames) and len(gt) <= 1:
        raise UnsupportedDatasetError(f"sequence '{seq.name}' ({seq.dataset}) has ground truth for {len(gt)} of "
                                      f"{len(seq.frames)} frames: its test ground truth is withheld; evaluate on the "
                                      f"benchmark's server (GOT-10k test, TrackingNet)")


def extract_results(trackers: Seq[TrackerResults], sequences, protocol: str = "pytracking",
                    dataset_name: str = "", report_dir: Optional[str] = None, skip_missing: bool = False,
                    force: bool = False, verbose: bool = True) -> EvalData:
    """Compute (or load from the cache) the per-sequence results of ``trackers`` on ``sequences``.

    Args:
        trackers: result sources (:func:`~lib.test.analysis.results.own_tracker_results`,
            :func:`~lib.test.analysis.results.external_tracker_results`).
        sequences: a SequenceList (ground truth, ``target_visible``, dataset string per sequence).
        protocol: ``'pytracking'`` or ``'official'`` (rules per sequence by :func:`get_rules`).
        dataset_name: stored with the results (reports and JSON).
        report_dir: folder of the cache (``<result_plot_path>/<report_name>``); None: no cache.
        skip_missing: a missing result file leaves the sequence out for all trackers (with a warning)
            instead of raising. A result file with more or fewer rows than ground-truth frames is not
            "missing": each protocol's own rule applies (:func:`~lib.test.analysis.protocols.fit_result_length`:
            pytracking cuts a long file and pads a short one with zero boxes, i.e. failures, except on LaSOT;
            the LaSOT toolkit cuts a long one; pysot and the GOT-10k toolkit accept neither), with one warning
            per file naming it and both lengths.
        force: recompute even if the cache matches.
        verbose: print progress lines.

    Returns:
        :class:`EvalData`.

    Raises:
        MissingResultError: a missing result file (names tracker, sequence, expected path).
        ResultFileError: a malformed result file, a length the protocol cannot score, or a box the protocol
            rejects (names file, line, tracker and sequence).
        UnsupportedDatasetError: ground truth not available locally.
    """
    trackers = list(trackers)
    if not trackers:
        raise ValueError("no trackers to analyse")
    names = [t.display_name for t in trackers]
    if len(set(names)) != len(names):
        raise ValueError(f"tracker display names must be distinct, got {names}")
    rules_by_dataset: Dict[str, FrameRules] = {}
    for seq in sequences:
        if seq.dataset not in rules_by_dataset:
            rules_by_dataset[seq.dataset] = get_rules(protocol, seq.dataset)
        _check_ground_truth(seq)

    files = [[t.result_file(seq.name, seq.dataset) for t in trackers] for seq in sequences]
    fingerprint = _fingerprint(protocol, sequences, trackers, files)
    cache_path = os.path.join(report_dir, CACHE_NAME) if report_dir else None
    if cache_path and not force and os.path.isfile(cache_path):
        try:
            cached = EvalData.load(cache_path)
        except Exception as exc:  # a broken or old cache is recomputed, never trusted
            warnings.warn(f"ignoring unreadable cache '{cache_path}': {exc}")
        else:
            if (cached.fingerprint == fingerprint and cached.sequences == [s.name for s in sequences]
                    and cached.trackers == [t.identity() for t in trackers] and cached.protocol == protocol):
                if verbose:
                    print(f"Using cached results from {cache_path}")
                cached.dataset = dataset_name or cached.dataset
                return cached
            if verbose:
                print(f"Cache {cache_path} is for other sequences, trackers, protocol or result files: recomputing")

    first = rules_by_dataset[sequences[0].dataset]
    S, T = len(sequences), len(trackers)
    n_o, n_c, n_n = len(first.thresholds_overlap), len(first.thresholds_center), len(first.thresholds_norm)
    success = np.zeros((S, T, n_o))
    precision = np.zeros((S, T, n_c))
    norm_precision = np.zeros((S, T, n_n))
    avg_overlap = np.full((S, T), np.nan)
    got_iou_sum = np.zeros((S, T))
    got_frames = np.zeros((S, T), dtype=np.int64)
    got_above = np.zeros((S, T, len(GOT10K_THRESHOLDS)), dtype=np.int64)
    has_got = np.array([seq.dataset == "got10k" for seq in sequences])
    valid_sequence = np.ones(S, dtype=bool)
    skipped: List[str] = []

    for s, seq in enumerate(sequences):
        rules = rules_by_dataset[seq.dataset]
        gt = seq.ground_truth_rect
        n = len(gt)
        got_meta = got10k_sequence_meta(seq) if has_got[s] else None
        for t, trk in enumerate(trackers):
            path = files[s][t]
            if path is None:
                expected = os.path.join(trk.results_dir, f"{seq.name}.txt")
                msg = (f"tracker '{trk.display_name}' has no result for sequence '{seq.name}' "
                       f"(expected '{expected}'{', matched ignoring case and -/_' if trk.match_names else ''})")
                if skip_missing:
                    skipped.append(msg)
                    valid_sequence[s] = False
                    break
                raise MissingResultError(msg + "; run the tracker on it or pass --skip_missing")
            who = f"tracker '{trk.display_name}', sequence '{seq.name}'"
            try:
                pred = read_boxes(path, what=f"result ({who})", allow_nan=True, negative="allow")
            except AnnotationError as exc:
                raise ResultFileError(str(exc)) from None
            try:
                fit = fit_result_length(len(pred), n, rules)
            except ResultLengthError as exc:
                raise ResultFileError(f"{path}: {who}: {exc}; re-run the tracker on it, or fix the file") from None
            if fit:
                warnings.warn(f"{path}: {who}: {len(pred)} rows for {n} frames: "
                              + ("padded with zero boxes (failures)" if fit == "pad" else "extra rows ignored")
                              + f", as protocol '{rules.name}' does")
            try:
                iou, center, norm, valid = frame_errors(pred, gt, seq.target_visible, rules)
            except PredictionError as exc:
                raise ResultFileError(f"{path}, line {exc.frame + 1}: {who}: {exc}") from None
            except ValueError as exc:
                raise ResultFileError(f"{who}: {exc}") from None
            cs, cp, cn = sequence_counts(iou, center, norm, rules)
            if rules.curve_dtype == "float32":  # pytracking: counts.float() / seq_length in float32
                denom = np.float32(n)
                success[s, t] = cs.astype(np.float32) / denom
                precision[s, t] = cp.astype(np.float32) / denom
                norm_precision[s, t] = cn.astype(np.float32) / denom
            else:
                denom = n + rules.denominator_eps
                success[s, t], precision[s, t], norm_precision[s, t] = cs / denom, cp / denom, cn / denom
            if valid.any():
                avg_overlap[s, t] = float(np.mean(iou[valid]))
            if got_meta is not None:
                cover, resolution = got_meta
                try:
                    fitted = np.concatenate([pred[:n], np.zeros((max(0, n - len(pred)), 4))])  # zero-padded
                    ious = got10k_frame_ious(fitted, gt, cover, resolution)
                except PredictionError as exc:
                    raise ResultFileError(f"{path}: {who}: {exc}") from None
                got_iou_sum[s, t] = float(ious.sum())
                got_frames[s, t] = len(ious)
                got_above[s, t] = (ious[:, None] > GOT10K_THRESHOLDS[None, :]).sum(axis=0)

    for msg in skipped:
        warnings.warn(msg + "; sequence left out for all trackers (--skip_missing)")
    if verbose:
        print(f"Computed results over {int(valid_sequence.sum())} / {S} sequences")
    data = EvalData(dataset=dataset_name, protocol=protocol, rules=[rules_by_dataset[q.dataset].name for q in sequences],
                    sequences=[q.name for q in sequences], trackers=[t.identity() for t in trackers],
                    valid_sequence=valid_sequence, success=success, precision=precision,
                    norm_precision=norm_precision, avg_overlap=avg_overlap,
                    thresholds_overlap=np.asarray(first.thresholds_overlap),
                    thresholds_center=np.asarray(first.thresholds_center),
                    thresholds_norm=np.asarray(first.thresholds_norm), got_iou_sum=got_iou_sum,
                    got_frames=got_frames, got_above=got_above, has_got10k=has_got, fingerprint=fingerprint)
    if cache_path:
        data.save(cache_path)
    return data
