"""The evaluation-side tracker wrapper: which tracker/config/run a result set belongs to, where its
result files go, and how one sequence is tracked (pytracking/OSTrack ``evaluation/tracker.py``).

Result layout (as the official toolkits write it)::

    <results_path>/<tracker>/<config>[_<runid:03d>]/<seq>.txt         integer boxes x, y, w, h, tab-separated
    <results_path>/<tracker>/<config>[_<runid:03d>]/<seq>_time.txt    seconds per frame
    .../got10k/<seq>.txt, .../trackingnet/<seq>.txt                   GOT-10k and TrackingNet (OSTrack)
    .../vot2018/<seq>.txt (vot2020/, vot2022/)                        VOT years (they share names)
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional

import numpy as np

from lib.test.tracker import get_tracker_class, get_tracker_entry
from lib.test.tracker.base import TrackerParams, check_init_box
from lib.utils.image import imread_rgb

from .data import Sequence

__all__ = ["Tracker", "trackerlist", "TrackerOutputError", "track_sequence", "initialize_sequence",
           "check_track_output"]


class TrackerOutputError(RuntimeError):
    """A tracker returned something that is not a box ``[x, y, w, h]`` of 4 finite numbers."""


def trackerlist(name: str, parameter_name: str, dataset_name: Optional[str] = None, run_ids=None,
                display_name: Optional[str] = None, **kwargs) -> List["Tracker"]:
    """One :class:`Tracker` per run id (``run_ids``: None, an int or a list of ints)."""
    if run_ids is None or isinstance(run_ids, int):
        run_ids = [run_ids]
    return [Tracker(name, parameter_name, dataset_name, run_id, display_name=display_name, **kwargs)
            for run_id in run_ids]


class Tracker:
    """A tracker (registry name), its config and run id, as used by the runner and the analysis.

    Args:
        name: registered tracker name (``ostrack``).
        parameter_name: config name (``vitb_256_mae_ce_32x4_ep300``).
        dataset_name: dataset key passed to the tracker class (per-benchmark settings).
        run_id: run number; results go to ``<config>_<run_id:03d>``.
        checkpoint: checkpoint file (default: the trainer's output path for the config).
        display_name: name in tables and plots.
        results_path: root of the results (default: ``results_path`` of local.py).
        device: torch device for single-process runs; None = CUDA when available, else CPU.
        precision: ``fp32`` / ``fp16`` / ``bf16``.
        extra: tracker-specific parameters (stored in ``TrackerParams.extra``, e.g. ``visdom_info``).

    Raises:
        UnknownTrackerError: ``name`` is not registered (the message lists the registered names).
    """

    def __init__(self, name: str, parameter_name: str, dataset_name: Optional[str] = None, run_id: Optional[int] = None,
                 checkpoint: Optional[str] = None, display_name: Optional[str] = None,
                 results_path: Optional[str] = None, device: Optional[str] = None, precision: str = "fp32",
                 extra: Optional[Dict[str, Any]] = None):
        if run_id is not None and not isinstance(run_id, int):
            raise TypeError(f"run_id must be an int or None, got {run_id!r}")
        self.entry = get_tracker_entry(name)
        self.name = name
        self.parameter_name = parameter_name
        self.dataset_name = dataset_name
        self.run_id = run_id
        self.checkpoint = checkpoint
        self.display_name = display_name
        self.device = device
        self.precision = precision
        self.extra = dict(extra or {})
        if results_path is None:
            from .environment import env_settings

            results_path = env_settings().require("results_path", must_exist=False, what="tracking results")
        self.results_path = results_path
        folder = parameter_name if run_id is None else f"{parameter_name}_{run_id:03d}"
        self.results_dir = os.path.join(results_path, name, os.path.basename(str(folder)).replace(".yaml", ""))

    def __repr__(self) -> str:
        return f"Tracker({self.name!r}, {self.parameter_name!r}, run_id={self.run_id})"

    # -- result files -------------------------------------------------------------------------------
    def result_files(self, seq: Sequence) -> Dict[str, str]:
        """``{'boxes': <seq>.txt, 'time': <seq>_time.txt, 'error_log': <seq>_error.log}`` of ``seq``."""
        base = seq.result_base(self.results_dir)
        return {"boxes": base + ".txt", "time": base + "_time.txt", "error_log": base + "_error.log"}

    # -- running ------------------------------------------------------------------------------------
    def get_parameters(self, device=None, debug: int = 0) -> TrackerParams:
        """The tracker's :class:`TrackerParams` (config, checkpoint, device, precision, extra).

        Raises:
            MissingCheckpointError, ConfigError: from :meth:`TrackerParams.create`.
        """
        return TrackerParams.create(self.name, self.parameter_name, checkpoint=self.checkpoint,
                                    device=device if device is not None else self.device, debug=debug,
                                    precision=self.precision, **self.extra)

    def create_tracker(self, params: TrackerParams):
        """Instantiate the registered class as ``cls(params, dataset_name)`` (the OSTrack convention)."""
        return get_tracker_class(self.name)(params, self.dataset_name)

    def run_sequence(self, seq: Sequence, debug: int = 0, device=None) -> Dict[str, List]:
        """Track ``seq`` from its first-frame box.

        Returns:
            ``{'target_bbox': [[x, y, w, h] per frame], 'time': [seconds per frame]}``; frame 0 holds
            the init box (or the box ``initialize`` returns) and the initialisation time.

        Raises:
            FrameReadError: a missing or unreadable frame.
            TrackerOutputError: a box that is not 4 finite numbers.
            Whatever the tracker raises.
        """
        params = self.get_parameters(device=device, debug=debug)
        tracker = self.create_tracker(params)
        if debug > 0:
            attach_debug_sink(tracker, params, seq.name)
        try:
            return track_sequence(tracker, seq, debug=debug)
        finally:
            sink = getattr(tracker, "debug_sink", None)
            if sink is not None:
                sink.close()


def attach_debug_sink(tracker, params: TrackerParams, seq_name: str) -> None:
    """Attach the debug views of ``--debug L`` (visdom when a server answers, PNG files otherwise)."""
    from lib.test.utils.debug import make_debug_sink

    visdom = dict(params.extra.get("visdom_info") or {})
    tracker.debug_sink = make_debug_sink(params.debug, params.name, params.config_name, seq_name,
                                         visdom_server=visdom.get("server", "127.0.0.1"),
                                         visdom_port=int(visdom.get("port", 8097)))


def _as_box(value: Any, frame: int, seq: Sequence) -> List[float]:
    try:
        box = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        box = np.empty(0)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise TrackerOutputError(f"sequence '{seq.name}', frame {frame}: the tracker returned target_bbox {value!r}; "
                                 f"expected 4 finite numbers x, y, w, h")
    return [float(v) for v in box]


def check_track_output(out: Any, frame: int, seq: Sequence) -> List[float]:
    """The box ``[x, y, w, h]`` of a ``track`` result.

    Raises:
        TrackerOutputError: not a dict with ``'target_bbox'``, or a box that is not 4 finite numbers (the
            message names sequence and frame).
    """
    if not isinstance(out, dict) or "target_bbox" not in out:
        raise TrackerOutputError(f"sequence '{seq.name}', frame {frame}: track() must return a dict with "
                                 f"'target_bbox', got {type(out).__name__}")
    return _as_box(out["target_bbox"], frame, seq)


def initialize_sequence(tracker, seq: Sequence, image: np.ndarray):
    """Check ``seq``'s first-frame box against its first ``image`` and initialise ``tracker`` (timed).

    Returns:
        ``(out, boxes, times)``: ``initialize``'s output dict (``{}`` for None), ``[frame-0 box]`` (the init
        box, or the ``target_bbox`` that ``initialize`` returns) and ``[initialisation seconds]``.

    Raises:
        RuntimeError: no frames or no first-frame box; ValueError: a box that cannot initialise a tracker
        (the message names the sequence); TrackerOutputError; whatever ``initialize`` raises.
    """
    if not seq.frames:
        raise RuntimeError(f"sequence '{seq.name}' has no frames (its image folder is missing or empty)")
    init_info = seq.init_info()
    if "init_bbox" not in init_info:
        raise RuntimeError(f"sequence '{seq.name}' has no first-frame box")
    try:
        check_init_box(init_info["init_bbox"], image.shape)
    except ValueError as exc:
        raise ValueError(f"sequence '{seq.name}': cannot initialise: {exc}") from None
    start = time.perf_counter()
    out = tracker.initialize(image, init_info) or {}
    elapsed = time.perf_counter() - start
    return out, [_as_box(out.get("target_bbox", init_info["init_bbox"]), 0, seq)], [elapsed]


def track_sequence(tracker, seq: Sequence, debug: int = 0) -> Dict[str, List]:
    """Run an already built tracker over ``seq`` (see :meth:`Tracker.run_sequence`).

    Frames are read as RGB uint8 (:func:`lib.utils.image.imread_rgb`). ``track`` receives
    ``info = seq.frame_info(i)`` plus ``'previous_output'``; ground truth never enters ``info``: with
    ``debug > 0`` each frame's ground-truth box goes to ``tracker.set_debug_ground_truth`` (drawing only).
    Times cover the tracker calls only, not the frame reads.
    """
    if not seq.frames:
        raise RuntimeError(f"sequence '{seq.name}' has no frames (its image folder is missing or empty)")
    gt = seq.ground_truth_rect
    show_gt = debug > 0 and hasattr(tracker, "set_debug_ground_truth")

    def debug_gt(i: int):
        if show_gt:
            tracker.set_debug_ground_truth(gt[i] if gt.ndim == 2 and i < len(gt) and np.isfinite(gt[i]).all() else None)

    def frame_done():
        # Outside the timed region: the debug views number frames and wait here while paused.
        if debug > 0 and hasattr(tracker, "debug_frame_done"):
            tracker.debug_frame_done()

    image = imread_rgb(seq.frames[0])
    debug_gt(0)
    out, boxes, times = initialize_sequence(tracker, seq, image)
    frame_done()
    prev = OrderedDict(out)
    for i in range(1, len(seq.frames)):
        image = imread_rgb(seq.frames[i])
        info = seq.frame_info(i)
        info["previous_output"] = prev
        debug_gt(i)
        start = time.perf_counter()
        out = tracker.track(image, info)
        elapsed = time.perf_counter() - start
        frame_done()
        boxes.append(check_track_output(out, i, seq))
        times.append(elapsed)
        prev = OrderedDict(out)
    return {"target_bbox": boxes, "time": times}
