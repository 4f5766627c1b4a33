"""What every test-time tracker shares: parameters, the checkpoint lookup, input checks, the
normalising preprocessor and the debug hook.

A tracker is constructed as ``TrackerClass(params, dataset_name)`` and used as::

    tracker.initialize(image, {"init_bbox": [x, y, w, h]})      # first frame, xywh pixels
    out = tracker.track(image)                                    # {"target_bbox": [x, y, w, h], ...}

Images are ``(H, W, 3)`` RGB uint8 arrays. Ground truth never enters a tracker's state: the runner
passes it to the debug view only (see :meth:`BaseTracker.set_debug_ground_truth`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from lib.config import Config, load_config
from lib.utils.misc import resolve_device

__all__ = ["TrackerParams", "BaseTracker", "Preprocessor", "default_checkpoint_path", "check_init_box",
           "MissingCheckpointError",
           # batched-step protocol
           "BatchedStepMixin", "BatchingNotSupportedError", "collate_network_inputs", "split_batch_outputs"]


class MissingCheckpointError(FileNotFoundError):
    """No checkpoint was given and none lies where the trainer saves it."""


def default_checkpoint_path(script: str, config_name: str, net_type: str, epoch: int,
                            save_dir: Optional[str] = None) -> str:
    """``<save_dir>/checkpoints/train/<script>/<config>/<net_type>_ep<epoch:04d>.pth.tar``, the path
    the trainer writes and the official test scripts read. ``save_dir`` defaults to the test
    local.py's ``save_dir``.
    """
    if save_dir is None:
        from lib.test.evaluation.environment import env_settings

        save_dir = env_settings().save_dir
    return os.path.join(save_dir, "checkpoints", "train", script, config_name, f"{net_type}_ep{epoch:04d}.pth.tar")


@dataclass
class TrackerParams:
    """Everything a tracker needs besides the frames.

    Attributes:
        name: tracker name (``ostrack``).
        script: config script (``ostrack``; ``stark_st2`` for the ``stark_st`` tracker).
        config_name: experiment name (``vitb_256_mae_ce_32x4_ep300``).
        cfg: the merged config.
        checkpoint: checkpoint path, or None for random weights (tests and speed profiling only).
        device: torch device the tracker runs on.
        debug: debug level (0 = off; blocks of level <= debug are shown).
        precision: ``fp32``, ``fp16`` or ``bf16`` (autocast inference).
        extra: tracker-specific options (``visdom_info``, ``save_all_boxes``, ...).
    """

    name: str
    script: str
    config_name: str
    cfg: Config
    checkpoint: Optional[str] = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    debug: int = 0
    precision: str = "fp32"
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, config_name: str, checkpoint: Optional[str] = None, device=None, debug: int = 0,
               precision: str = "fp32", require_checkpoint: bool = True, **extra) -> "TrackerParams":
        """Build the parameters of tracker ``name`` with config ``config_name``.

        Without ``checkpoint`` the trainer's output path is used (``<save_dir>/checkpoints/train/...``
        with the config's ``TEST.EPOCH``). A tracker registered without a config script gets an empty
        config, and ``checkpoint`` as given.

        Raises:
            MissingCheckpointError: ``require_checkpoint`` and no checkpoint exists there (the message
                says where it looked and how to pass one).
        """
        from lib.models import get_network_spec
        from lib.test.tracker import get_tracker_entry

        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be fp32, fp16 or bf16, got '{precision}'")
        entry = get_tracker_entry(name)
        if entry.script is None:  # a tracker without experiment configs (test doubles, plugins)
            return cls(name=name, script="", config_name=str(config_name), cfg=Config({}), checkpoint=checkpoint,
                       device=resolve_device(device), debug=int(debug), precision=precision, extra=dict(extra))
        cfg = load_config(entry.script, config_name)
        if checkpoint is None and require_checkpoint:
            spec = get_network_spec(entry.script)
            epoch = int(cfg.TEST.EPOCH) if "TEST" in cfg and "EPOCH" in cfg.TEST else 0
            path = default_checkpoint_path(entry.script, os.path.basename(str(config_name)).replace(".yaml", ""),
                                           spec.net_type, epoch)
            if not os.path.isfile(path):
                raise MissingCheckpointError(
                    f"no checkpoint for tracker '{name}' with config '{config_name}': looked for '{path}' "
                    f"(<save_dir>/checkpoints/train/<script>/<config>/<NetType>_ep<TEST.EPOCH>.pth.tar, "
                    f"save_dir from lib/test/evaluation/local.py). Pass one with --checkpoint PATH.")
            checkpoint = path
        return cls(name=name, script=entry.script, config_name=str(config_name), cfg=cfg, checkpoint=checkpoint,
                   device=resolve_device(device), debug=int(debug), precision=precision, extra=dict(extra))


def check_init_box(box: Sequence[float], image_shape: Sequence[int]) -> list:
    """Validate a first-frame box (xywh pixels) against an ``(H, W, ...)`` image.

    Raises:
        ValueError: a box that is not 4 finite numbers, has zero or negative width/height, or does not
            overlap the image.
    """
    box = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ValueError(f"init box must be 4 finite numbers x, y, w, h; got {box}")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ValueError(f"init box {box} (xywh) has a zero or negative size")
    H, W = int(image_shape[0]), int(image_shape[1])
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise ValueError(f"init box {box} (xywh) lies outside the {W}x{H} image")
    return box


class Preprocessor:
    """Crop (``(H, W, 3)`` uint8 RGB) -> normalised ``(1, 3, H, W)`` float tensor on the device.

    ``(x / 255 - mean) / std`` with ImageNet mean/std, as the official trackers' ``Preprocessor``.
    """

    def __init__(self, device: torch.device, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def __call__(self, img_arr: np.ndarray, amask_arr: Optional[np.ndarray] = None):
        img = torch.from_numpy(np.ascontiguousarray(img_arr)).to(self.device).float()
        img = img.permute(2, 0, 1).unsqueeze(0)
        img = (img / 255.0 - self.mean) / self.std
        if amask_arr is None:
            return img
        return img, torch.from_numpy(amask_arr).to(torch.bool).to(self.device).unsqueeze(0)


# =====================================================================================================
# Batched-step protocol (batched evaluation, ``tracking/test.py --batch_sequences B``; issue 10).
#
# A tracker that sets ``supports_batching = True`` splits ``track`` into three steps::
#
#     track(image, info) == finish_step(forward_step(prepare_step(image, info)))
#
# * ``prepare_step(image, info) -> inputs``: crop and normalise on the tracker's own state. ``inputs`` is a
#   dict whose ``'network'`` entry holds the keyword arguments of the network call, every tensor with batch
#   dimension 1 on the device (template, search region, template / CE masks) and any non-tensor argument
#   (GRM's division threshold) that must be equal across a batch; its other entries are host-side data of
#   the frame (resize factor, previous box, crop), which the tracker also keeps until ``finish_step``.
# * ``forward_step(inputs) -> outputs``: the network call under the tracker's precision (autocast) and the
#   device-side post-processing; equal to ``forward_batch([self], [inputs])[0]``.
# * ``finish_step(outputs) -> result``: read the box, update the state, debug views; returns what
#   ``track`` returns.
#
# ``forward_batch(trackers, inputs_list)`` runs B trackers' steps as ONE network call: the ``'network'``
# tensors are concatenated on dim 0 (:func:`collate_network_inputs`), the lead tracker's
# :meth:`BaseTracker.network_forward` runs once, :meth:`BaseTracker.postprocess_batch` works on the batch on
# the device and reads what ``finish_step`` needs to the host in one transfer, and the outputs are split back
# per sequence (:func:`split_batch_outputs`): every tensor or array whose first dimension is B becomes its
# ``[i:i + 1]`` slice (batch dimension kept, so per-sample outputs look like B=1 outputs), lists / tuples /
# dicts are split element-wise, anything else (None, scalars, tensors without that batch dimension) is
# shared by all samples. The trackers of one batch must share one network (:meth:`BaseTracker.new_slot`).
# =====================================================================================================


class BatchingNotSupportedError(ValueError):
    """``--batch_sequences > 1`` with a tracker whose class does not implement the batched-step protocol."""


def collate_network_inputs(inputs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Concatenate per-sequence network keyword arguments into one batch.

    Args:
        inputs: one dict per sequence (same keys); tensors have batch dimension 1 (any ``(1, ...)`` shape).

    Returns:
        one dict: tensors ``torch.cat`` on dim 0 (``(B, ...)``); ``None`` stays None; other values (numbers,
        strings) are passed once.

    Raises:
        ValueError: different keys, a tensor in one dict and None in another, tensors whose shapes differ
            beyond dim 0, or non-tensor values that differ (e.g. two GRM division thresholds).
    """
    if not inputs:
        raise ValueError("collate_network_inputs: no inputs")
    keys = list(inputs[0])
    for k, d in enumerate(inputs[1:], start=1):
        if list(d) != keys:
            raise ValueError(f"collate_network_inputs: sequence {k} has network inputs {sorted(d)}, sequence 0 has "
                             f"{sorted(keys)}")
    batch: Dict[str, Any] = {}
    for key in keys:
        values = [d[key] for d in inputs]
        if all(v is None for v in values):
            batch[key] = None
        elif all(isinstance(v, torch.Tensor) for v in values):
            shapes = {tuple(v.shape[1:]) for v in values}
            if len(shapes) > 1:
                raise ValueError(f"collate_network_inputs: '{key}' has per-sample shapes {sorted(shapes)}")
            batch[key] = values[0] if len(values) == 1 else torch.cat(values, dim=0)
        elif any(isinstance(v, torch.Tensor) or v is None for v in values):
            raise ValueError(f"collate_network_inputs: '{key}' is a tensor for some sequences and not for others")
        else:
            if any(v != values[0] for v in values[1:]):
                raise ValueError(f"collate_network_inputs: '{key}' differs between sequences ({values}); "
                                 f"such sequences cannot share a batch")
            batch[key] = values[0]
    return batch


def split_batch_outputs(outputs: Any, batch_size: int) -> list:
    """Split batched outputs into ``batch_size`` per-sample outputs (inverse of batching).

    Tensors and numpy arrays whose first dimension is ``batch_size`` give their ``[i:i + 1]`` slice (batch
    dimension kept); dicts, lists and tuples are split element-wise (keeping their type); anything else is
    shared (the same object in every sample). A batch of 1 is returned as ``[outputs]``.
    """
    if batch_size == 1:
        return [outputs]

    def take(obj: Any, i: int) -> Any:
        if isinstance(obj, (torch.Tensor, np.ndarray)):
            return obj[i:i + 1] if obj.ndim > 0 and obj.shape[0] == batch_size else obj
        if isinstance(obj, dict):
            return type(obj)((k, take(v, i)) for k, v in obj.items())
        if isinstance(obj, list):
            return [take(v, i) for v in obj]
        if isinstance(obj, tuple):
            return tuple(take(v, i) for v in obj)
        return obj

    return [take(outputs, i) for i in range(batch_size)]


class BatchedStepMixin:
    """The batched-step protocol of :class:`BaseTracker` (see the block comment above).

    A batching tracker sets ``supports_batching = True`` and implements :meth:`prepare_step`,
    :meth:`network_forward`, :meth:`postprocess_batch` and :meth:`finish_step`; :meth:`forward_step`,
    :meth:`forward_batch` and :meth:`new_slot` come from here.
    """

    #: True where the class implements the batched-step protocol (the runner's ``--batch_sequences`` checks it).
    supports_batching: bool = False

    def prepare_step(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Pre-process one frame: ``{'network': {kwargs with batch dim 1 on the device}, <host data>...}``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement the batched-step protocol")

    def network_forward(self, network_inputs: Dict[str, Any]) -> Any:
        """The network call on (possibly batched) keyword arguments; runs under no_grad and autocast."""
        raise NotImplementedError(f"{type(self).__name__} does not implement the batched-step protocol")

    def postprocess_batch(self, raw: Any, inputs_list: Sequence[Dict[str, Any]]) -> Any:
        """Device-side post-processing of the batched network output (default: none), with the host reads
        ``finish_step`` needs done in one transfer; batch-first entries are split per sequence afterwards."""
        return raw

    def forward_step(self, inputs: Dict[str, Any]) -> Any:
        """``forward_batch([self], [inputs])[0]``: the single-sequence network step."""
        return type(self).forward_batch([self], [inputs])[0]

    def finish_step(self, outputs: Any) -> Dict[str, Any]:
        """Post-process this tracker's outputs, update its state; returns ``track``'s result."""
        raise NotImplementedError(f"{type(self).__name__} does not implement the batched-step protocol")

    @classmethod
    def forward_batch(cls, trackers: Sequence["BaseTracker"], inputs_list: Sequence[Dict[str, Any]]) -> list:
        """One network call for the prepared steps of ``trackers`` (one sequence each).

        Args:
            trackers: B trackers of one class sharing one network (``trackers[0].network``).
            inputs_list: their :meth:`prepare_step` results, in the same order.

        Returns:
            B per-sequence outputs for :meth:`finish_step` (see :func:`split_batch_outputs`).

        Raises:
            ValueError: empty or mismatched lists, trackers of different classes or networks, inputs that
                cannot share a batch (:func:`collate_network_inputs`).
        """
        if not trackers or len(trackers) != len(inputs_list):
            raise ValueError(f"forward_batch: {len(trackers)} trackers for {len(inputs_list)} inputs")
        lead = trackers[0]
        for t in trackers[1:]:
            if type(t) is not type(lead):
                raise ValueError(f"forward_batch: trackers of different classes ({type(lead).__name__}, "
                                 f"{type(t).__name__}) cannot share a batch")
            if getattr(t, "network", None) is not getattr(lead, "network", None):
                raise ValueError("forward_batch: the trackers of a batch must share one network "
                                 "(create them with lead.new_slot())")
        from lib.utils.misc import autocast_context

        batch = collate_network_inputs([inp["network"] for inp in inputs_list])
        with torch.no_grad():
            with autocast_context(lead.device, lead.params.precision):
                raw = lead.network_forward(batch)
            out = lead.postprocess_batch(raw, inputs_list)
        return split_batch_outputs(out, len(trackers))

    def new_slot(self) -> "BaseTracker":
        """A tracker for another sequence that shares this one's network, pre-processing and constants
        (a shallow copy, not yet initialised; ``initialize`` sets all per-sequence state). The debug sink
        is not shared."""
        import copy

        other = copy.copy(self)
        other.debug_sink = None
        other._debug_gt = None
        other.reset_sequence_state()
        return other

    def reset_sequence_state(self) -> None:
        """Forget the per-sequence state (called on :meth:`new_slot` copies before ``initialize``)."""
        self.frame_id = 0
# ======================================= end of the batched-step protocol ===============================


class BaseTracker(BatchedStepMixin):
    """Base class of every test-time tracker.

    Subclasses implement :meth:`initialize` and :meth:`track`; they use ``self.params``,
    ``self.device`` and :meth:`debug_show` for debug views.
    """

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        self.params = params
        self.cfg = params.cfg
        self.device = params.device
        self.dataset_name = dataset_name
        self.debug = int(params.debug)
        self.frame_id = 0
        self.debug_sink = None  # attached by the runner when debug > 0 (lib/test/utils/debug)
        self._debug_gt = None

    # -- the tracking API -------------------------------------------------------------------------
    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Start tracking from ``info['init_bbox']`` (xywh pixels) on the first frame."""
        raise NotImplementedError

    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame; returns at least ``{'target_bbox': [x, y, w, h]}`` in image pixels."""
        raise NotImplementedError

    # -- debug ----------------------------------------------------------------------------------
    def set_debug_ground_truth(self, box_xywh: Optional[Sequence[float]]) -> None:
        """Ground truth of the current frame for drawing only; it never reaches the tracker state."""
        self._debug_gt = None if box_xywh is None else [float(v) for v in box_xywh]

    def debug_show(self, data: Any, mode: str, level: int, title: str, **kwargs) -> None:
        """Send a debug view to the attached sink (``lib/test/utils/debug.py``); a no-op without one
        (debug 0), so a tracker may call it unconditionally.

        Args:
            data: the view (modes and data: see ``lib.test.utils.debug``). A ``'Tracking'`` view is
                ``(image, predicted box, ...)`` (xywh pixels): the trackers never handle the ground truth;
                this method adds the box of :meth:`set_debug_ground_truth` as ``gt_bbox``, drawn in green.
                (The official OSTrack's ``(image, gt, predicted box)`` form, with ``self._debug_gt`` in the
                gt slot, is accepted for ported trackers and drawn the same way.)
            mode: ``Tracking``, ``image``, ``heatmap``, ``featmap``, ``info_dict``, ``text`` or ``lineplot``.
            level: debug level of the block: shown iff ``level <= debug``; blocks above it are still
                listed (hidden) in visdom's Block List, where they can be switched on.
            title: block name (the visdom window id).
        """
        sink = self.debug_sink
        if sink is None:
            return
        if mode == "Tracking":
            if isinstance(data, (tuple, list)) and len(data) >= 2 and data[1] is self._debug_gt:
                data = (data[0],) + tuple(data[2:])  # (image, gt, pred...): the gt slot holds our own box
            if self._debug_gt is not None:
                kwargs.setdefault("gt_bbox", self._debug_gt)
        sink.register(data, mode, level, title, **kwargs)

    def debug_frame_done(self) -> None:
        """End of a frame for the debug views (the runner calls it after ``initialize``/``track``):
        numbers the next frame's views and waits while the user has paused the run in visdom."""
        if self.debug_sink is not None:
            self.debug_sink.frame_done()

