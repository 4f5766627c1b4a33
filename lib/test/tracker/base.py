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
from lib.utils.errors import register_user_error
from lib.utils.misc import resolve_device

__all__ = ["TrackerParams", "BaseTracker", "Preprocessor", "default_checkpoint_path", "check_init_box",
           "limit_host_threads",
           "MissingCheckpointError", "InitBoxError", "BACKENDS", "check_backend",
           # batched-step protocol
           "BatchedStepMixin", "BatchingNotSupportedError", "collate_network_inputs", "split_batch_outputs",
           "FrameGraphBatching"]


@register_user_error
class MissingCheckpointError(FileNotFoundError):
    """No checkpoint was given and none lies where the trainer saves it, or the given file does not exist."""


@register_user_error
class InitBoxError(ValueError):
    """A first-frame box that is not 4 finite numbers, has no area or lies outside the image."""


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
        extra: tracker-specific options (``visdom_info``, ``save_all_boxes``, ``device_crop``, ...).
        compile: ``torch.compile`` the tracker's per-frame network step (:mod:`lib.models.acceleration`).
        cuda_graph: capture the per-frame network step into a CUDA graph (CUDA only; fixed-shape networks).
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
    compile: bool = False
    cuda_graph: bool = False

    @classmethod
    def create(cls, name: str, config_name: str, checkpoint: Optional[str] = None, device=None, debug: int = 0,
               precision: str = "fp32", require_checkpoint: bool = True, compile: bool = False,
               cuda_graph: bool = False, **extra) -> "TrackerParams":
        """Build the parameters of tracker ``name`` with config ``config_name``.

        Without ``checkpoint`` the trainer's output path is used (``<save_dir>/checkpoints/train/...``
        with the config's ``TEST.EPOCH``). A tracker registered without a config script gets an empty
        config, and ``checkpoint`` as given.

        ``compile`` / ``cuda_graph`` (also accepted in ``extra``, as ``tracking/test.py`` passes them) ask for
        the accelerations of :mod:`lib.models.acceleration`.

        Raises:
            MissingCheckpointError: ``require_checkpoint`` and no checkpoint exists there (the message
                says where it looked and how to pass one), or ``checkpoint`` is not a file.
            ValueError: an unknown precision, or ``cuda_graph`` for a device that is not CUDA.
        """
        from lib.models import get_network_spec
        from lib.test.tracker import get_tracker_entry

        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be fp32, fp16 or bf16, got '{precision}'")
        compile = bool(extra.pop("compile", False)) or bool(compile)
        cuda_graph = bool(extra.pop("cuda_graph", False)) or bool(cuda_graph)
        accel = {"compile": compile, "cuda_graph": cuda_graph}
        if cuda_graph and resolve_device(device).type != "cuda":
            raise ValueError(f"cuda_graph (--cuda_graph) needs a CUDA device; tracker '{name}' would run on "
                             f"'{resolve_device(device)}' (use --compile on the CPU)")
        entry = get_tracker_entry(name)
        if entry.script is None:  # a tracker without experiment configs (test doubles, plugins)
            return cls(name=name, script="", config_name=str(config_name), cfg=Config({}), checkpoint=checkpoint,
                       device=resolve_device(device), debug=int(debug), precision=precision, extra=dict(extra),
                       **accel)
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
        elif checkpoint is not None and os.path.isdir(str(checkpoint)):
            raise MissingCheckpointError(f"checkpoint '{checkpoint}' (--checkpoint) is a directory, not a checkpoint "
                                         f"file (give the .pth/.pth.tar file inside it)")
        elif checkpoint is not None and not os.path.isfile(str(checkpoint)):
            raise MissingCheckpointError(f"checkpoint file '{checkpoint}' (--checkpoint) does not exist")
        return cls(name=name, script=entry.script, config_name=str(config_name), cfg=cfg, checkpoint=checkpoint,
                   device=resolve_device(device), debug=int(debug), precision=precision, extra=dict(extra), **accel)


def limit_host_threads(n: int) -> int:
    """Lower torch's intra-op CPU threads to ``n`` (never raise them); returns the number in use.

    A tracker on CUDA does little on the host per frame (box arithmetic, a few small tensors): a pool of
    many intra-op threads only spins, burning CPU time (and slowing the frame readers) while the GPU works.
    Called by :class:`BaseTracker` on CUDA with ``params.extra['host_threads']`` (default 2).
    """
    n = max(1, int(n))
    if torch.get_num_threads() > n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


#: network-step backends of ``params.extra['backend']`` (``tracking/test.py --backend``)
BACKENDS = ("pytorch", "onnxruntime")


def check_backend(params: "TrackerParams") -> str:
    """``params.extra['backend']`` (default ``pytorch``), checked.

    Raises:
        ValueError: an unknown backend, or ``onnxruntime`` without the onnx / onnxruntime packages, with
            ``precision`` other than fp32 or with ``compile`` / ``cuda_graph``.
    """
    backend = str(params.extra.get("backend") or "pytorch")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}' (expected one of {', '.join(BACKENDS)})")
    if backend == "onnxruntime":
        from lib.models.onnx_export import onnxruntime_available

        if not onnxruntime_available():
            raise ValueError("--backend onnxruntime needs the packages 'onnx' and 'onnxruntime' "
                             "(pip install onnx onnxruntime)")
        if params.precision != "fp32":
            raise ValueError(f"--backend onnxruntime runs the fp32 exports; --precision {params.precision} is not "
                             f"supported with it")
        if params.compile or params.cuda_graph:
            raise ValueError("--backend onnxruntime cannot be combined with --compile / --cuda_graph")
    return backend


def check_init_box(box: Sequence[float], image_shape: Sequence[int]) -> list:
    """Validate a first-frame box (xywh pixels) against an ``(H, W, ...)`` image.

    Raises:
        InitBoxError (a ValueError): a box that is not 4 finite numbers, has zero or negative width/height, or
            does not overlap the image.
    """
    box = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise InitBoxError(f"init box must be 4 finite numbers x, y, w, h; got {box}")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise InitBoxError(f"init box {box} (xywh) has a zero or negative size")
    H, W = int(image_shape[0]), int(image_shape[1])
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise InitBoxError(f"init box {box} (xywh) lies outside the {W}x{H} image")
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

    def normalize(self, crop: torch.Tensor) -> torch.Tensor:
        """``(1, 3, S, S)`` float crop of grey levels 0..255 on the device -> normalised crop (the same
        arithmetic as :meth:`__call__`, so equal crops give equal tensors)."""
        return (crop / 255.0 - self.mean) / self.std

    def crop(self, frame: torch.Tensor, box: Sequence[float], factor: float, size: int):
        """Device-side :func:`~lib.utils.crop.sample_target` + normalisation of a frame already on the device.

        Args:
            frame: ``(H, W, 3)`` uint8 tensor on the device (:meth:`BaseTracker.frame_tensor`).
            box: xywh box (image pixels) the crop is centred on.
            factor: search / template factor; size: output side S.

        Returns:
            ``(img (1, 3, S, S) normalised, mask (1, S, S) bool, resize_factor, crop (1, 3, S, S) grey levels)``.
        """
        from lib.utils.crop import sample_target_tensor

        crop, resize_factor, mask = sample_target_tensor(frame, box, factor, size)
        return self.normalize(crop), mask, resize_factor, crop


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


@register_user_error
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
        done_rows = [i for i, inp in enumerate(inputs_list) if isinstance(inp, dict) and "result" in inp]
        if done_rows:  # frames a whole-frame batching tracker tracked alone in prepare_step (FrameGraphBatching)
            outputs = list(inputs_list)
            rest = [i for i in range(len(trackers)) if i not in set(done_rows)]
            if rest:
                for i, out in zip(rest, cls.forward_batch([trackers[i] for i in rest], [inputs_list[i] for i in rest])):
                    outputs[i] = out
            return outputs
        frame_rows = [i for i, inp in enumerate(inputs_list) if isinstance(inp, dict) and "frame_image" in inp]
        if frame_rows:  # the whole frame in one step (lib/test/tracker/frame_graph.py); the others as below
            from lib.test.tracker.frame_graph import frame_graph_for

            outputs: list = [None] * len(trackers)
            members = [trackers[i] for i in frame_rows]
            images = [inputs_list[i]["frame_image"] for i in frame_rows]
            with torch.no_grad():
                boxes = frame_graph_for(lead, members, images).run(members, images)
            for i, box in zip(frame_rows, boxes):
                outputs[i] = {"frame_box": box}
            rest = [i for i in range(len(trackers)) if outputs[i] is None]
            if rest:
                for i, out in zip(rest, cls.forward_batch([trackers[i] for i in rest], [inputs_list[i] for i in rest])):
                    outputs[i] = out
            return outputs
        from lib.utils.misc import autocast_context

        batch = collate_network_inputs([inp["network"] for inp in inputs_list])
        with torch.no_grad():
            with autocast_context(lead.device, lead.params.precision):
                raw = lead._network_step()(batch)
            out = lead.postprocess_batch(raw, inputs_list)
        return split_batch_outputs(out, len(trackers))

    def _network_step(self):
        """:meth:`network_forward`, compiled / graph-captured as the parameters ask (:meth:`accelerated`);
        built once and shared by the slots made with :meth:`new_slot`."""
        shared = self.__dict__.setdefault("_shared_steps", {})  # the same dict in every slot (shallow copies)
        if "network_forward" not in shared:
            shared["network_forward"] = self.accelerated(self.network_forward, "network forward")
        return shared["network_forward"]

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
        self._pinned_frame = None  # each slot stages its frames in its own pinned buffer
# ======================================= end of the batched-step protocol ===============================


class FrameGraphBatching:
    """The batched-step protocol through the whole-frame step only, for trackers whose per-call path is not
    batched (STARK-S, STARK-ST, AiATrack, SparseTT): ``--batch_sequences B`` with the whole-frame step
    (``--cuda_graph``, or ``extra['frame_graph']``) runs B sequences as the B rows of one step. A frame whose
    search crop misses the image (an initial box mostly outside it) is tracked alone in :meth:`prepare_step` by
    the regular path.

    The class implements ``finish_whole_frame(image, values)``: the tracker's work after the step's values are
    read (state, outputs, template or memory updates), shared with its ``track``.
    """

    #: batched evaluation is available when the whole-frame step is (:meth:`BaseTracker.frame_graph_requested`)
    batches_with_frame_graph: bool = True

    def prepare_step(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """``{'frame_image': image}`` for the batched whole-frame step, or ``{'result': track(image)}`` for a frame
        the step cannot take.

        Raises:
            RuntimeError: called before ``initialize``.
        """
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}.track() called before initialize()")
        if self.frame_graph_enabled() and self.regular_search_crop(image.shape):
            self.frame_id += 1
            self._frame_image = image
            return {"frame_image": image}
        return {"result": self.track(image, info)}

    def finish_step(self, outputs: Dict[str, Any]) -> Dict[str, Any]:
        """``track``'s result for the frame (:meth:`prepare_step`'s, or from the step's values)."""
        if "result" in outputs:
            return outputs["result"]
        image, self._frame_image = self._frame_image, None
        return self.finish_whole_frame(image, outputs["frame_box"])


class BaseTracker(BatchedStepMixin):
    """Base class of every test-time tracker.

    Subclasses implement :meth:`initialize` and :meth:`track`; they use ``self.params``,
    ``self.device`` and :meth:`debug_show` for debug views.
    """

    #: the key of ``track``'s output holding the tracker's per-frame confidence (None: the tracker has none);
    #: the public API (:mod:`lib.api`) reports it as ``TrackResult.score``.
    score_key: Optional[str] = None

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        self.params = params
        self.cfg = params.cfg
        self.device = params.device
        self.dataset_name = dataset_name
        self.debug = int(params.debug)
        self.frame_id = 0
        self.debug_sink = None  # attached by the runner when debug > 0 (lib/test/utils/debug)
        self._debug_gt = None
        self._shared_steps: Dict[str, Any] = {}  # accelerated network steps, shared with new_slot() copies
        #: crop on the device (lib.utils.crop.sample_target_tensor) instead of with cv2 on the host: the
        #: default on CUDA without a CUDA graph (one host-to-device copy of the frame, no crop transfer); on
        #: the CPU cv2 is faster and the crop is already where the network runs. With ``cuda_graph`` the cv2
        #: crop is the default: the device crop's ~150 eager kernel launches then dominate the frame (H200,
        #: OSTrack-256 fp32: 6.53 ms/frame with the device crop, 3.99 ms with cv2; issue 15).
        #: ``params.extra['device_crop']`` forces either.
        default_crop = torch.device(self.device).type != "cpu" and not params.cuda_graph
        self.use_device_crop = bool(params.extra.get("device_crop", default_crop))
        self._pinned_frame = None  # (page-locked staging buffer, upload event), reused on CUDA
        if torch.device(self.device).type == "cuda":
            limit_host_threads(params.extra.get("host_threads", 2))
        #: ``pytorch`` or ``onnxruntime`` (``params.extra['backend']``): who runs the network steps (:meth:`onnx_step`)
        self.backend = check_backend(params)

    # -- the tracking API -------------------------------------------------------------------------
    def initialize(self, image: np.ndarray, info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Start tracking from ``info['init_bbox']`` (xywh pixels) on the first frame."""
        raise NotImplementedError

    def track(self, image: np.ndarray, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Track one frame; returns at least ``{'target_bbox': [x, y, w, h]}`` in image pixels."""
        raise NotImplementedError

    # -- the whole frame in one step (lib/test/tracker/frame_graph.py) ---------------------------------------
    #: True where the class implements :meth:`frame_constants` and :meth:`frame_step` (every tracker of the toolkit)
    supports_frame_graph: bool = False
    #: numbers per sequence that :meth:`frame_step` returns: the xywh box, then what else the host needs
    frame_values: int = 4
    #: set whenever the host state or the constants changed without the whole-frame step: its row is rewritten
    frame_state_dirty: bool = True

    def frame_graph_allowed(self) -> bool:
        """Tracker-specific conditions for the whole-frame step (default: none)."""
        return True

    @classmethod
    def frame_graph_requested(cls, params: "TrackerParams") -> bool:
        """Whether ``params`` ask for the whole-frame step (:mod:`lib.test.tracker.frame_graph`):
        ``params.extra['frame_graph']`` if given, else with ``cuda_graph`` (unless ``device_crop`` is switched
        off, which keeps the cv2 crop, or with ``compile``); never for a class without it, with a debug level,
        ``save_all_boxes`` or the ONNX Runtime backend."""
        extra = params.extra
        if not cls.supports_frame_graph or int(params.debug) > 0 or extra.get("save_all_boxes"):
            return False
        if str(extra.get("backend") or "pytorch") != "pytorch":
            return False
        if extra.get("frame_graph") is not None:
            return bool(extra["frame_graph"])
        return bool(params.cuda_graph) and bool(extra.get("device_crop", True)) and not params.compile

    def frame_graph_enabled(self) -> bool:
        """:meth:`frame_graph_requested` for this tracker's parameters, and no debug view attached and
        :meth:`frame_graph_allowed` (tracker-specific conditions)."""
        if self.debug_sink is not None or getattr(self, "save_all_boxes", False):
            return False
        return type(self).frame_graph_requested(self.params) and self.frame_graph_allowed()

    def adopt_frame_graph_crop(self) -> None:
        """With the whole-frame step (and no explicit ``device_crop``), crop the templates on the device too, so
        that a graph tracks exactly as the eager device-crop path (called at the end of a subclass' __init__)."""
        if "device_crop" not in self.params.extra and self.frame_graph_enabled():
            self.use_device_crop = True

    def regular_search_crop(self, image_shape: Sequence[int]) -> bool:
        """Whether the search crop around ``self.state`` overlaps the image, so that the device-side geometry of
        :func:`~lib.utils.crop.sample_target_batch` is the official slices' (always true for a state clipped with
        a margin; an initial box may lie mostly outside the image: that frame takes the regular path)."""
        from lib.utils.crop import crop_square

        H, W = int(image_shape[0]), int(image_shape[1])
        try:
            x1, y1, side = crop_square(self.state, self.search_factor)
        except ValueError:
            return False
        return -side < x1 < W - 1 and -side < y1 < H - 1

    def frame_state_values(self) -> list:
        """The state as the whole-frame step's row holds it: 4 numbers (default: ``self.state``, the xywh box)."""
        return [float(v) for v in self.state]

    def frame_constants(self) -> Dict[str, Optional[torch.Tensor]]:
        """The per-sequence tensors of the whole-frame step, each ``(1, ...)`` on the device (batch dim first)."""
        raise NotImplementedError(f"{type(self).__name__} has no whole-frame step")

    def frame_step(self, frames: torch.Tensor, sizes: torch.Tensor, state: torch.Tensor,
                   constants: Dict[str, Optional[torch.Tensor]]) -> torch.Tensor:
        """The whole tracking step of B sequences on the device (static shapes, no host reads).

        Args:
            frames: ``(B, N)`` uint8 flattened ``(H, W, 3)`` frames; sizes: ``(B, 2)`` int64 ``(H, W)``.
            state: ``(B, 4)`` float64 previous states (:meth:`frame_state_values`: xywh boxes, SparseTT cxcywh).
            constants: :meth:`frame_constants` entries batched to ``(B, ...)``.

        Returns:
            ``(B, frame_values)`` float64: the new states (the clipped xywh boxes), then the tracker's extra
            values; or that and a dict of device tensors (batch dimension first) the host uses after the read
            (:meth:`FrameGraph.row_extras <lib.test.tracker.frame_graph.FrameGraph.row_extras>`).
        """
        raise NotImplementedError(f"{type(self).__name__} has no whole-frame step")

    def run_frame_graph(self, image: np.ndarray) -> list:
        """One frame of this tracker alone through the whole-frame step: its ``frame_values`` numbers."""
        from lib.test.tracker.frame_graph import frame_graph_for

        with torch.no_grad():
            return frame_graph_for(self, [self], [image]).run([self], [image])[0]

    # -- accelerations ----------------------------------------------------------------------------------
    def accelerated(self, fn, name: str = "per-frame step"):
        """``fn`` (the per-frame network step: tensors in, tensors out) compiled and/or captured into a CUDA
        graph as ``params.compile`` / ``params.cuda_graph`` ask (:func:`lib.models.acceleration.accelerate_step`);
        ``fn`` itself otherwise. With a CUDA graph the results are static buffers overwritten by the next call:
        clone what is kept beyond the frame.

        Raises:
            lib.models.acceleration.GraphCaptureError: ``cuda_graph`` on a non-CUDA device.
            RuntimeError: ``compile`` on a CPU without a C++ compiler.
        """
        if self.backend == "onnxruntime":
            return self.onnx_step(fn, name)
        if not (self.params.compile or self.params.cuda_graph):
            return fn
        from lib.models.acceleration import accelerate_step

        return accelerate_step(fn, self.device, compile=self.params.compile, cuda_graph=self.params.cuda_graph,
                               name=f"{self.params.name} {name}")

    # -- ONNX Runtime backend ------------------------------------------------------------------------------
    #: step name (the ``name`` given to :meth:`accelerated` / :meth:`onnx_step`) -> file stem of its ONNX export
    onnx_step_names: Dict[str, str] = {}
    #: step name -> names of the positions of a tuple result (dict positions keep their keys)
    onnx_output_names: Dict[str, Sequence[str]] = {}

    def onnx_step(self, fn, name: str):
        """``fn`` (a network step: tensors in containers in and out) run by ONNX Runtime when
        ``params.extra['backend']`` is ``onnxruntime`` (:class:`lib.models.onnx_export.OnnxStep`: exported on
        the first call with given shapes into :meth:`onnx_directory`, or taken from the files listed there);
        ``fn`` itself with the PyTorch backend. Shared by the slots made with :meth:`new_slot`."""
        if self.backend != "onnxruntime":
            return fn
        shared = self.__dict__.setdefault("_shared_steps", {})
        key = f"onnx:{name}"
        if key not in shared:
            from lib.models.onnx_export import OnnxStep

            stem = self.onnx_step_names.get(name, name)
            shared[key] = OnnxStep(fn, stem, self.onnx_directory(), owner=getattr(self, "network", None),
                                   output_names=self.onnx_output_names.get(name),
                                   threads=self.params.extra.get("onnx_threads"),
                                   manifest_info=self._onnx_manifest_info(),
                                   verify=bool(self.params.extra.get("onnx_verify", False)))
        return shared[key]

    def onnx_directory(self) -> str:
        """Where the tracker's ONNX files are: ``params.extra['onnx_dir']``; else, with a checkpoint, the cache
        folder ``<cache>/<script>__<config>__<key of config + checkpoint SHA-256>``
        (:func:`lib.models.onnx_export.default_cache_dir`); else (random weights) a temporary folder of this
        tracker."""
        shared = self.__dict__.setdefault("_shared_steps", {})
        if "onnx_dir" in shared:
            return shared["onnx_dir"]
        from lib.models import onnx_export

        directory = self.params.extra.get("onnx_dir")
        if directory is None and self.params.checkpoint is not None:
            info = self._onnx_manifest_info()
            key = onnx_export.weights_key(info["config_text"], info["checkpoint_sha256"])
            directory = os.path.join(onnx_export.default_cache_dir(),
                                     f"{self.params.script}__{os.path.basename(str(self.params.config_name))}__{key}")
        if directory is None:
            import tempfile

            holder = tempfile.TemporaryDirectory(prefix="tracker_onnx_")
            shared["onnx_tmp"] = holder  # removed with the tracker
            directory = holder.name
        shared["onnx_dir"] = str(directory)
        return shared["onnx_dir"]

    def _onnx_manifest_info(self) -> Dict[str, Any]:
        shared = self.__dict__.setdefault("_shared_steps", {})
        if "onnx_info" not in shared:
            import json

            from lib.utils.misc import file_sha256

            ckpt = self.params.checkpoint
            shared["onnx_info"] = {
                "script": self.params.script, "config": str(self.params.config_name),
                "config_text": json.dumps(self.cfg.to_dict(), sort_keys=True, default=str),
                "checkpoint": None if ckpt is None else os.path.abspath(str(ckpt)),
                "checkpoint_sha256": "random weights" if ckpt is None else file_sha256(str(ckpt))}
        return shared["onnx_info"]

    # -- device-side pre-processing ------------------------------------------------------------------
    def frame_tensor(self, image: np.ndarray) -> torch.Tensor:
        """The frame as an ``(H, W, 3)`` uint8 tensor on the tracker's device: the one host-to-device copy of
        a frame (:func:`lib.utils.crop.frame_to_tensor`)."""
        from lib.utils.crop import frame_to_tensor

        if torch.device(self.device).type != "cuda":
            return frame_to_tensor(image, self.device)
        # One page-locked buffer per tracker (slot), reused while the frame size stays: pinning a new buffer
        # every frame (cudaHostAlloc) costs more host time than the copy. Before it is overwritten, the event
        # recorded after the previous upload is waited for (already complete after the frame's box read).
        array = np.ascontiguousarray(image)
        if array.ndim != 3 or array.dtype != np.uint8:
            return frame_to_tensor(image, self.device)  # raises its ValueError
        staged = self._pinned_frame
        if staged is None or tuple(staged[0].shape) != array.shape:
            staged = self._pinned_frame = (torch.empty(array.shape, dtype=torch.uint8, pin_memory=True),
                                           torch.cuda.Event())
        else:
            staged[1].synchronize()
        buf, done = staged
        np.copyto(buf.numpy(), array)
        frame = buf.to(self.device, non_blocking=True)
        done.record(torch.cuda.current_stream(self.device))
        return frame

    def prepare_frame(self, image: np.ndarray):
        """What :meth:`crop_normalized` crops from: the frame on the device (:meth:`frame_tensor`) with
        :attr:`use_device_crop`, else the array itself."""
        return self.frame_tensor(image) if self.use_device_crop else image

    def crop_normalized(self, frame, box: Sequence[float], factor: float, size: int,
                        preprocessor: "Preprocessor"):
        """``sample_target`` crop + normalisation, on the device or with cv2 (see :attr:`use_device_crop`).

        Args:
            frame: :meth:`prepare_frame`'s result.
            box: xywh box (pixels) the crop is centred on; factor: search/template factor; size: side S.
            preprocessor: the tracker's :class:`Preprocessor` (mean/std).

        Returns:
            ``(img (1, 3, S, S), mask (1, S, S) bool, resize_factor, patch)``; ``patch`` is the crop for the
            debug views (an array on the cv2 path, a device tensor otherwise: see :meth:`patch_image`).
        """
        if isinstance(frame, torch.Tensor):
            return preprocessor.crop(frame, box, factor, size)
        from lib.utils.crop import sample_target

        patch, resize_factor, amask = sample_target(frame, box, factor, output_sz=size)
        img, mask = preprocessor(patch, amask)
        return img, mask, resize_factor, patch

    @classmethod
    def patch_image(cls, patch) -> np.ndarray:
        """A :meth:`crop_normalized` patch as an ``(S, S, 3)`` uint8 array (copies device crops to the host:
        debug views only)."""
        return cls.crop_image(patch) if isinstance(patch, torch.Tensor) else patch

    @staticmethod
    def crop_image(crop: torch.Tensor) -> np.ndarray:
        """A ``(1, 3, S, S)`` grey-level crop as an ``(S, S, 3)`` uint8 array (debug views only: it copies
        to the host)."""
        return crop[0].permute(1, 2, 0).to(torch.uint8).cpu().numpy()

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

