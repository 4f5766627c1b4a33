"""The whole frame in one CUDA graph (``--cuda_graph``; issue 15): search-region crop, normalisation, network,
Hann window, arg-max, box decoding, mapping back and clipping of B sequences, captured once and replayed per
frame, with the tracker states kept on the device.

Per frame the host does three things: it copies each sequence's frame into a page-locked staging row and
uploads it (one host-to-device copy per frame), replays the graph, and reads the ``(B, frame_values)`` results
back (the boxes and, for STARK-ST, the confidence: one device-to-host copy, waited for with a blocking event, so
the host thread sleeps instead of spinning while the GPU works). Everything else stays on the device: the crop
geometry is computed from the device-held previous box (:func:`lib.utils.crop.sample_target_batch`, float64, the
host function's numbers), and the new state is written back into the state buffer inside the graph.
Host decisions that follow a frame (STARK-ST's template update, AiATrack's memory update on the predicted IoU)
stay on the host, with the values they need read in the same transfer, and rewrite the row's constants.

A tracker takes part through :class:`~lib.test.tracker.base.BaseTracker`'s whole-frame hooks (every tracker of
the toolkit implements them: OSTrack, GRM, STARK-S, STARK-ST, AiATrack, SparseTT):

* ``supports_frame_graph`` and ``frame_graph_enabled()``: whether its frames go this way
  (``params.extra['frame_graph']``; by default with ``cuda_graph`` unless ``device_crop`` is switched off,
  without debug views or ``save_all_boxes``);
* ``frame_constants()``: the per-sequence tensors of the step (template or its features, template mask,
  AiATrack's references, SparseTT's padding value), batch dimension first, ``(1, ...)``;
* ``frame_state_values()``: the 4 numbers of the state a row holds (the xywh box; SparseTT's cxcywh);
* ``frame_step(frames, sizes, state, constants)``: the step itself, ``(B, frame_values)`` float64 (the new
  clipped boxes first), with static shapes and no host reads (``tests/test_frame_graph.py`` checks it under
  ``FakeTensorMode``);
* ``frame_state_dirty``: set by the tracker whenever its host state or constants changed without the graph
  (``initialize``, a frame that took the regular path, a STARK-ST template update); the next step rewrites
  its row.

Batched evaluation (``--batch_sequences``) runs B sequences as B rows of one step: OSTrack and GRM (which also
batch without it) and, through :class:`~lib.test.tracker.base.FrameGraphBatching`, STARK-S, STARK-ST, AiATrack and
SparseTT.
Sequences keep a row while they are tracked; a row whose tracker left the batch (its sequence ended) is given to
the next new one. Rows not in a step are computed too (fixed shapes) and ignored. More sequences than rows, or a
frame larger than the rows hold, rebuild the buffers and recapture (each capture is logged in ``captures``).

Without ``cuda_graph`` (the CPU, tests) the same step runs eagerly on the same buffers: the CPU proves the
numbers; the GPU only replays them.
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from lib.utils.misc import wait_for_device

__all__ = ["FrameGraph", "DEFAULT_FRAME_PIXELS", "frame_graph_for"]

#: frame elements a row holds at least (1280 x 720 RGB): smaller videos never rebuild the buffers
DEFAULT_FRAME_PIXELS = 1280 * 720 * 3


class FrameGraph:
    """Static buffers of ``capacity`` rows and the captured (or eager) whole-frame step of ``lead``'s class.

    Args:
        lead: the tracker whose network, constants and ``frame_step`` the rows share (all trackers of a
            batch come from ``lead.new_slot()``).
        capacity: rows (sequences tracked at once).
        pixels: uint8 elements a row holds (``H * W * 3`` of the largest frame so far).

    Attributes:
        captures: graphs captured so far (1 unless the batch or the frames outgrew the buffers).

    Raises:
        lib.models.acceleration.GraphCaptureError: ``cuda_graph`` asked for on a device that is not CUDA.
    """

    def __init__(self, lead, capacity: int, pixels: int, captures: int = 0):
        self.lead = lead
        self.device = torch.device(lead.device)
        self.cuda = self.device.type == "cuda"
        self.use_graph = bool(lead.params.cuda_graph)
        if self.use_graph and not self.cuda:
            from lib.models.acceleration import GraphCaptureError

            raise GraphCaptureError(f"--cuda_graph needs a CUDA device, '{lead.params.name} whole-frame step' runs on "
                                    f"'{self.device}'")
        self.capacity = int(capacity)
        self.pixels = int(pixels)
        self.channels = 3  # RGB frames, as every tracker reads them
        dev = self.device
        self.frames = torch.zeros((self.capacity, self.pixels), dtype=torch.uint8, device=dev)
        self.sizes = torch.ones((self.capacity, 2), dtype=torch.int64, device=dev)
        self.state = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * self.capacity, dtype=torch.float64, device=dev)
        self.constants: Dict[str, Optional[torch.Tensor]] = {
            k: (None if v is None else v.new_zeros((self.capacity,) + tuple(v.shape[1:])))
            for k, v in lead.frame_constants().items()}
        # page-locked staging rows on CUDA (the upload is then asynchronous); elsewhere the frames are written
        # straight into ``frames``
        self.staging = (torch.empty((self.capacity, self.pixels), dtype=torch.uint8, pin_memory=True)
                        if self.cuda else None)
        self.values = int(lead.frame_values)
        self.output = torch.zeros((self.capacity, self.values), dtype=torch.float64, device=dev)
        self.result = torch.empty((self.capacity, self.values), dtype=torch.float64, pin_memory=self.cuda)
        self.owners: List[Optional[weakref.ref]] = [None] * self.capacity
        self.shapes: List[Optional[tuple]] = [None] * self.capacity
        self.graph = None
        self.captures = captures
        self.extras: Dict[str, torch.Tensor] = {}  # frame_step's extra outputs, batch dimension first
        self._row_of: Dict[int, int] = {}  # id(tracker) -> row, of the last run

    # -- rows --------------------------------------------------------------------------------------------
    def fits(self, count: int, images: Sequence[np.ndarray]) -> bool:
        """Whether ``count`` sequences with these frames fit the buffers."""
        return count <= self.capacity and all(img.size <= self.pixels for img in images)

    def _rows(self, trackers: Sequence[Any]) -> List[int]:
        present = {id(t) for t in trackers}
        for r, ref in enumerate(self.owners):
            owner = None if ref is None else ref()
            if owner is None or id(owner) not in present:
                self.owners[r] = None
        rows = []
        for t in trackers:
            r = next((i for i, ref in enumerate(self.owners) if ref is not None and ref() is t), None)
            if r is None:
                r = self.owners.index(None)
                self.owners[r] = weakref.ref(t)
                t.frame_state_dirty = True
            rows.append(r)
        return rows

    def _write_row(self, r: int, tracker) -> None:
        """The tracker's constants and host state into row ``r`` (after ``initialize`` or a regular frame)."""
        for key, value in tracker.frame_constants().items():
            if self.constants.get(key) is not None and value is not None:
                self.constants[key][r].copy_(value[0], non_blocking=True)
        self.state[r].copy_(torch.tensor(tracker.frame_state_values(), dtype=torch.float64), non_blocking=True)
        tracker.frame_state_dirty = False

    def _upload(self, r: int, image: np.ndarray) -> None:
        shape = tuple(image.shape[:2])
        if self.shapes[r] != shape:
            self.sizes[r].copy_(torch.tensor(shape, dtype=torch.int64), non_blocking=True)
            self.shapes[r] = shape
        n = image.size
        if self.staging is None:
            np.copyto(self.frames[r, :n].numpy().reshape(image.shape), image)
            return
        # the previous upload from this row is complete: run() waited for the step that read it
        np.copyto(self.staging[r, :n].numpy().reshape(image.shape), image)
        self.frames[r, :n].copy_(self.staging[r, :n], non_blocking=True)

    # -- the step ------------------------------------------------------------------------------------------
    def _step(self) -> None:
        out = self.lead.frame_step(self.frames, self.sizes, self.state, self.constants)
        # a step may also return device tensors the host uses after the read (AiATrack's search memory for a
        # new reference): with a graph these are the capture's outputs, overwritten by every replay
        out, self.extras = out if isinstance(out, tuple) else (out, {})
        self.output.copy_(out)
        self.state.copy_(out[:, :4])

    def _capture(self) -> None:
        from lib.models.acceleration import capture_graph

        saved = self.state.clone()  # the warm-up runs advance the states: put them back after the capture
        self.graph, _ = capture_graph(lambda: self._step(), (), self.device,
                                      name=f"{self.lead.params.name} whole-frame step")
        self.state.copy_(saved)
        self.captures += 1

    def execute(self) -> None:
        """The step on the buffers as they are: graph replay (captured on first use) or the eager step."""
        if self.use_graph:
            if self.graph is None:
                self._capture()
            self.graph.replay()
        else:
            self._step()

    def run(self, trackers: Sequence[Any], images: Sequence[np.ndarray]) -> List[List[float]]:
        """One frame of every tracker: upload, step (graph replay or eager), one read of the boxes.

        Args:
            trackers: the trackers of the step (each with ``state`` set by ``initialize``).
            images: their ``(H, W, 3)`` uint8 frames.

        Returns:
            per tracker, in order, its ``frame_values`` numbers (float64): the new ``[x, y, w, h]`` (image pixels,
            clipped), then the tracker's extra values (STARK-ST: the confidence).

        Raises:
            ValueError: a frame that is not an ``(H, W, 3)`` uint8 array (before anything is uploaded).
        """
        for image in images:
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8 \
                    or image.shape[2] != self.channels:
                raise ValueError(f"frame must be an (H, W, {self.channels}) uint8 array, got {type(image).__name__} "
                                 f"{getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}")
        rows = self._rows(trackers)
        for r, tracker, image in zip(rows, trackers, images):
            if getattr(tracker, "frame_state_dirty", True):
                self._write_row(r, tracker)
            self._upload(r, np.ascontiguousarray(image))
        self.execute()
        self.result.copy_(self.output, non_blocking=self.cuda)
        wait_for_device(self.device)
        values = self.result.tolist()
        self._row_of = {id(t): r for t, r in zip(trackers, rows)}
        return [values[r] for r in rows]

    def row_extras(self, tracker) -> Dict[str, torch.Tensor]:
        """``tracker``'s ``(1, ...)`` slices of the last step's extra outputs (views of buffers the next step
        overwrites: clone what is kept)."""
        r = self._row_of[id(tracker)]
        return {k: v[r:r + 1] for k, v in self.extras.items()}


def frame_graph_for(lead, trackers: Sequence[Any], images: Sequence[np.ndarray]) -> FrameGraph:
    """The :class:`FrameGraph` shared by ``lead``'s slots, (re)built when the batch or a frame outgrows it."""
    shared = lead.__dict__.setdefault("_shared_steps", {})
    graph: Optional[FrameGraph] = shared.get("frame_graph")
    if graph is None or not graph.fits(len(trackers), images):
        capacity = max(len(trackers), graph.capacity if graph else 1)
        pixels = max([DEFAULT_FRAME_PIXELS, graph.pixels if graph else 0] + [img.size for img in images])
        for t in trackers:
            t.frame_state_dirty = True
        graph = shared["frame_graph"] = FrameGraph(lead, capacity, pixels, captures=graph.captures if graph else 0)
    return graph
