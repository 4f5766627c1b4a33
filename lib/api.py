"""The public Python API: build any registered tracker from code and run it frame by frame.

Example (an OSTrack checkpoint on an OTB sequence)::

    from lib.api import load_tracker
    from PIL import Image

    tracker = load_tracker("ostrack", "vitb_256_mae_ce_32x4_ep300", checkpoint="OSTrack_ep0300.pth.tar")
    tracker.initialize(Image.open("Basketball/img/0001.jpg"), [198, 214, 34, 81])   # x, y, w, h (pixels)
    for path in frames[1:]:
        result = tracker.track(Image.open(path))
        print(result.box, result.score)   # [x, y, w, h] in pixels; score or None

The tracker is the same object ``tracking/test.py`` runs (:mod:`lib.test.tracker`), built from the same
parameters (:meth:`lib.test.tracker.base.TrackerParams.create`), so a sequence tracked through this API gives
the boxes of ``tracking/test.py``'s result file (which rounds them to integers for most benchmarks).

No ``local.py`` is needed when a checkpoint is given: the local settings only name the default checkpoint
location (``<save_dir>/checkpoints/train/...``) and the datasets, which this API does not read.

Per-benchmark settings (``dataset``). Some official trackers tune test-time values per benchmark; pass the
benchmark name (``tracking/test.py``'s ``--dataset``: ``lasot``, ``got10k_test``, ``trackingnet``, ``otb``,
``uav``, ``nfs``, ``vot20``, ... aliases such as ``got10k`` or ``vot2020`` accepted) to get them; ``None`` gives
each tracker's default:

* ``stark_st``: the dynamic-template update interval (``TEST.UPDATE_INTERVALS.<DATASET>``: 200 frames for
  LaSOT, GOT-10k test, TrackingNet, VOT2020 in the official configs; otherwise ``DATA.MAX_SAMPLE_INTERVAL``).
* ``aiatrack``: cache size, number of short-term references and IoU threshold (``TEST.HYPER.<DATASET>``, e.g.
  LaSOT ``[100, 4, 0.8]``, GOT-10k ``[80, 4, 0.7]``, NfS ``[80, 3, 0.6]``; ``DEFAULT`` otherwise).
* ``sparsett``: the ``TEST_LR`` / ``WINDOW_INFLUENCE`` / ``PENALTY_K`` of ``TEST.HYPER.<DATASET>``.
* ``grm``: the division threshold ``TEST.HYPER.<DATASET>`` (0 for every benchmark in the official configs).
* ``ostrack``, ``stark_s``: no per-benchmark setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from lib.utils.errors import UserError

__all__ = ["load_tracker", "ApiTracker", "TrackResult", "as_rgb_array", "PRECISIONS"]

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class TrackResult:
    """What :meth:`ApiTracker.track` returns for one frame.

    Attributes:
        box: the target box ``[x, y, w, h]`` (xywh, image pixels, floats).
        score: the tracker's confidence for this frame where it has one (STARK-ST ``conf_score``, AiATrack
            ``pred_iou``, SparseTT ``best_score``); None for trackers without one (OSTrack, GRM, STARK-S).
        output: the tracker's full output dict (``target_bbox`` and tracker-specific entries).
    """

    box: List[float]
    score: Optional[float] = None
    output: Dict[str, Any] = field(default_factory=dict)


def as_rgb_array(frame: Any) -> np.ndarray:
    """A frame as the ``(H, W, 3)`` RGB uint8 array the trackers take.

    Args:
        frame: a PIL image (any mode; converted to RGB) or a numpy array: ``(H, W, 3)`` RGB uint8, or
            ``(H, W)`` / ``(H, W, 1)`` uint8 grey levels (replicated to three channels).

    Raises:
        UserError: another type, dtype or shape (the message says what was given).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray):
        raise UserError(f"a frame must be a PIL image or an RGB uint8 numpy array (H, W, 3), got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise UserError(f"a frame array must have dtype uint8 (grey levels 0..255), got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return np.ascontiguousarray(np.repeat(frame[:, :, None], 3, axis=2))
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise UserError(f"a frame array must have shape (H, W, 3) (RGB), got {tuple(frame.shape)}")
    return frame


class ApiTracker:
    """A built tracker with the two-call interface of the public API.

    Attributes:
        name: registered tracker name (``ostrack``); config: config name; dataset: benchmark key or None.
        checkpoint: the checkpoint file loaded (None for random weights).
        device: the torch device it runs on; precision: ``fp32`` / ``fp16`` / ``bf16``.
        tracker: the underlying :class:`lib.test.tracker.base.BaseTracker` (``tracker.params.cfg``: the config).
    """

    def __init__(self, tracker, dataset: Optional[str]):
        self.tracker = tracker
        params = tracker.params
        self.name = params.name
        self.config = params.config_name
        self.dataset = dataset
        self.checkpoint = params.checkpoint
        self.device = params.device
        self.precision = params.precision
        self._initialized = False
        self._shape = None

    def __repr__(self) -> str:
        return (f"ApiTracker({self.name!r}, {self.config!r}, checkpoint={self.checkpoint!r}, device='{self.device}', "
                f"precision={self.precision!r}, dataset={self.dataset!r})")

    def initialize(self, frame: Any, box_xywh: Sequence[float]) -> TrackResult:
        """Start tracking the target ``box_xywh`` on the first ``frame``.

        Args:
            frame: see :func:`as_rgb_array`.
            box_xywh: the target box ``[x, y, w, h]`` in image pixels (top-left corner, width, height).

        Returns:
            :class:`TrackResult` of the first frame: the given box (score None).

        Raises:
            UserError: a bad frame, or a box that is not 4 finite numbers, has no area or lies outside the image.
        """
        from lib.test.tracker.base import check_init_box

        image = as_rgb_array(frame)
        try:
            box = check_init_box(box_xywh, image.shape)
        except (ValueError, TypeError) as exc:
            raise UserError(f"initialize: {exc}") from None
        out = self.tracker.initialize(image, {"init_bbox": box}) or {}
        self._initialized = True
        return TrackResult(box=[float(v) for v in out.get("target_bbox", box)], score=None, output=dict(out))

    def track(self, frame: Any) -> TrackResult:
        """Track the target into the next ``frame``.

        Returns:
            :class:`TrackResult`: ``box`` ``[x, y, w, h]`` (xywh pixels), ``score`` (None where the tracker has
            no confidence), ``output`` (the tracker's dict).

        Raises:
            UserError: ``initialize`` was not called, or a bad frame.
        """
        if not self._initialized:
            raise UserError("track() before initialize(): call tracker.initialize(first_frame, box_xywh) first")
        out = self.tracker.track(as_rgb_array(frame))
        key = getattr(self.tracker, "score_key", None)
        score = out.get(key) if key else None
        return TrackResult(box=[float(v) for v in out["target_bbox"]],
                           score=None if score is None else float(score), output=dict(out))


def load_tracker(tracker: str, config: str, checkpoint: Union[str, os.PathLike, None] = None, device: Any = "auto",
                 precision: str = "fp32", dataset: Optional[str] = None, random_weights: bool = False) -> ApiTracker:
    """Build a registered tracker for use from code.

    Args:
        tracker: registered tracker name: ``ostrack``, ``grm``, ``stark_s``, ``stark_st``, ``aiatrack``,
            ``sparsett`` (plus plugins, :func:`lib.test.tracker.register_tracker`).
        config: config name (``experiments/<script>/<config>.yaml``, e.g. ``vitb_256_mae_ce_32x4_ep300``) or a
            YAML path.
        checkpoint: checkpoint file (official or trained here). None: the trainer's output path for the config
            (``<save_dir>/checkpoints/train/<script>/<config>/<NetType>_ep<TEST.EPOCH>.pth.tar``, ``save_dir``
            from ``lib/test/evaluation/local.py``); local.py is only read in that case.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a torch.device.
        precision: ``fp32``, ``fp16`` or ``bf16`` (autocast inference).
        dataset: benchmark whose per-benchmark settings to use (see the module docstring); None: defaults.
        random_weights: build an untrained network (tests, speed checks); never implied by a missing checkpoint.

    Returns:
        :class:`ApiTracker` with ``initialize(frame, box_xywh)`` and ``track(frame) -> TrackResult``.

    Raises:
        UserError: an unknown tracker, config, dataset, device or precision; a checkpoint that is missing,
            unreadable or does not fit the network; ``checkpoint`` together with ``random_weights``. Each message
            names what was given or looked for.
    """
    from lib.config import ConfigError
    from lib.test.evaluation.datasets import UnknownDatasetError, canonical_name
    from lib.test.tracker import UnknownTrackerError, get_tracker_class
    from lib.test.tracker.base import MissingCheckpointError, TrackerParams
    from lib.utils.checkpoint import CheckpointError
    from lib.utils.local_settings import SettingsError
    from lib.utils.errors import is_user_error
    from lib.utils.misc import resolve_device

    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if random_weights and checkpoint is not None:
        raise UserError("load_tracker: give either checkpoint=PATH or random_weights=True, not both")
    try:
        device = resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"load_tracker: device {device!r}: {exc}") from None
    hint = "from code: pass checkpoint=PATH (a trained or official checkpoint), or random_weights=True"
    try:
        key = canonical_name(dataset) if dataset is not None else None
        if checkpoint is not None:
            checkpoint = os.fspath(checkpoint)
            if not os.path.isfile(checkpoint):
                raise UserError(f"checkpoint '{checkpoint}' does not exist (tracker '{tracker}', config '{config}')")
        params = TrackerParams.create(tracker, config, checkpoint=checkpoint, device=device, precision=precision,
                                      require_checkpoint=not random_weights)
        built = get_tracker_class(tracker)(params, key)
    except UserError:
        raise
    except SettingsError as exc:  # no checkpoint given, and no local.py to say where the trainer saves them
        raise UserError(f"load_tracker({tracker!r}, {config!r}): no checkpoint given, and its default location "
                        f"(<save_dir>/checkpoints/train/...) needs lib/test/evaluation/local.py: {exc}; {hint}") from None
    except MissingCheckpointError as exc:
        raise UserError(f"load_tracker({tracker!r}, {config!r}): {exc} ({hint})") from None
    except Exception as exc:
        if is_user_error(exc) or isinstance(exc, (UnknownTrackerError, UnknownDatasetError, ConfigError,
                                                  CheckpointError, FileNotFoundError)):
            raise UserError(f"load_tracker({tracker!r}, {config!r}): {_message(exc)}") from exc
        raise
    return ApiTracker(built, key)


def _message(exc: BaseException) -> str:
    from lib.utils.errors import format_user_error

    return format_user_error(exc)
