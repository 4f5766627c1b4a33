"""Batched evaluation: B sequences tracked in lockstep, one batched network forward per step
(``tracking/test.py ... --batch_sequences B``; issue 10).

:func:`track_sequences_batched` drives the sequences of one tracker configuration through B *slots*:

1. a slot takes the next sequence, reads its first frame and initialises a tracker on it alone
   (``initialize``, unbatched, timed as in the single-sequence runner); the slot's tracker is
   ``lead.new_slot()``, which shares the lead tracker's network (built once);
2. each step gathers the next frame of every active slot, calls ``prepare_step`` per tracker, ONE
   ``forward_batch`` over all of them, then ``finish_step`` per tracker (the batched-step protocol of
   :mod:`lib.test.tracker.base`);
3. a finished sequence is handed to ``on_done`` (the runner writes its result files) and its slot takes
   the next sequence before the next step; when no sequence is left the batch shrinks.

Times: frame 0 holds the initialisation time of its sequence; a tracked frame holds the step time (from
the first ``prepare_step`` to the last ``finish_step`` of the step, frame reads excluded) divided by the
number of slots in that step, so a sequence's times add up to its share of the wall-clock tracking time.

Crash safety: a sequence whose frame cannot be read, whose tracker raises in ``initialize``,
``prepare_step`` or ``finish_step``, or that returns a bad box is handed to ``on_failed`` and its slot
goes on with the next sequence. An exception in ``forward_batch`` (shared by the step) fails every sequence
of that step.

What differs from B = 1 (fp32): only float rounding. A batched network call computes every sample with the same
operations, but the matrix products (linear layers, attention, the head's convolutions) of a batch run with
other BLAS/oneDNN blockings than a batch of 1 and sum in another order, so network outputs differ by about
1e-6 (measured on CPU: score/size/offset maps up to 2e-6 apart, relative ~1e-6). Everything per sample is
exact: candidate elimination sorts and keeps tokens per row (the same tokens were removed in every checked
step), GRM divides tokens per sample, the Hann window, argmax and box decoding are element-wise, and the
box arithmetic after the one device-to-host read runs on the host, identically for B = 1 and B > 1. The
boxes therefore agree to a few 1e-4 pixels, and the integer result files were identical in every
comparison (``tests/test_batched_eval.py``; 4 OTB sequences x 20 frames, random seed-0 weights: OSTrack
ViT-B CE, ViT-B, GRM ViT-B and the tiny configs, largest box difference 5.2e-4 px). A difference can grow
where a box lies on a rounding edge of the search crop (``sample_target`` rounds the crop corners) or
two score-map peaks tie within 1e-6, so over long sequences an integer box can occasionally differ.

Frames are read ahead by a thread pool of decoders (OpenCV and jpeg4py release the GIL): each slot keeps
its next ``read_ahead`` frames in flight, and the first frames of the next sequences waiting for a slot are
read while the current step runs.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence as Seq

from lib.utils.image import imread_rgb

from .data import Sequence
from .tracker import check_track_output, initialize_sequence

__all__ = ["track_sequences_batched"]


class _Slot:
    """One sequence in flight: its tracker, boxes and times so far, and its frame reads in flight."""

    def __init__(self, seq: Sequence, tracker, boxes: List[List[float]], times: List[float], prev: Dict[str, Any]):
        self.seq = seq
        self.tracker = tracker
        self.boxes = boxes
        self.times = times
        self.prev = OrderedDict(prev)
        self.next_frame = 1  # index of the frame the next step tracks
        self.reads: Deque[Future] = deque()
        self.requested = 1  # index of the next frame to submit for reading

    def read_ahead(self, pool: ThreadPoolExecutor, depth: int) -> None:
        while self.requested < len(self.seq.frames) and len(self.reads) < depth:
            self.reads.append(pool.submit(imread_rgb, self.seq.frames[self.requested]))
            self.requested += 1

    def cancel_reads(self) -> None:
        for fut in self.reads:
            fut.cancel()
        self.reads.clear()

    @property
    def finished(self) -> bool:
        return self.next_frame >= len(self.seq.frames)

    def output(self) -> Dict[str, List]:
        return {"target_bbox": self.boxes, "time": self.times}


def track_sequences_batched(make_lead: Callable[[], Any], sequences: Seq[Sequence], batch_size: int,
                            on_done: Callable[[Sequence, Dict[str, List]], None],
                            on_failed: Callable[[Sequence, BaseException, str], None],
                            decoders: int = 4, read_ahead: int = 2) -> None:
    """Track ``sequences`` in slots of ``batch_size`` with one batched network forward per step.

    Args:
        make_lead: builds the lead tracker (called once, before the first sequence); its class must set
            ``supports_batching``, or ``batches_with_frame_graph`` with the whole-frame step enabled
            (:class:`~lib.test.tracker.base.FrameGraphBatching`); every sequence is tracked by a
            ``lead.new_slot()`` copy sharing its network.
        sequences: the sequences to track (results already on disk must be filtered out by the caller).
        batch_size: B >= 1, the number of slots.
        on_done: ``on_done(seq, {'target_bbox': [[x, y, w, h]...], 'time': [s...]})`` for a finished sequence
            (frame 0 = the init box and time, as :func:`~lib.test.evaluation.tracker.track_sequence`).
        on_failed: ``on_failed(seq, exception, traceback text)`` for a sequence that failed.
        decoders: frame-reading threads.
        read_ahead: frames each slot keeps in flight.

    Raises:
        ValueError: ``batch_size < 1``. Nothing else: failures go to ``on_failed`` (a lead tracker that
        cannot be built fails every sequence).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pending: Deque[Sequence] = deque(sequences)
    if not pending:
        return
    try:
        lead = make_lead()
        through_frame_graph = getattr(type(lead), "batches_with_frame_graph", False) and lead.frame_graph_enabled()
        if not (getattr(type(lead), "supports_batching", False) or through_frame_graph):
            raise TypeError(f"{type(lead).__name__} does not implement the batched-step protocol (or batches only "
                            f"through the whole-frame step, which its parameters do not ask for)")
    except Exception as exc:  # e.g. a checkpoint that does not fit: every sequence fails with it
        tb = traceback.format_exc()
        for seq in pending:
            on_failed(seq, exc, tb)
        return
    cls = type(lead)
    slots: List[_Slot] = []
    first_reads: Dict[int, Future] = {}  # id(seq) -> read of its frame 0

    def fail(seq: Sequence, exc: BaseException) -> None:
        on_failed(seq, exc, traceback.format_exc())

    with ThreadPoolExecutor(max_workers=max(1, decoders), thread_name_prefix="frame-reader") as pool:

        def prefetch_first_frames() -> None:
            for seq in list(pending)[:batch_size]:
                if id(seq) not in first_reads and seq.frames:
                    first_reads[id(seq)] = pool.submit(imread_rgb, seq.frames[0])

        def start_slot(seq: Sequence) -> None:
            """Initialise ``seq`` alone; a one-frame sequence is done at once."""
            fut = first_reads.pop(id(seq), None)
            try:
                if not seq.frames:
                    raise RuntimeError(f"sequence '{seq.name}' has no frames (its image folder is missing or empty)")
                image = fut.result() if fut is not None else imread_rgb(seq.frames[0])
                tracker = lead.new_slot()
                out, boxes, times = initialize_sequence(tracker, seq, image)
            except Exception as exc:
                fail(seq, exc)
                return
            slot = _Slot(seq, tracker, boxes, times, out)
            if slot.finished:
                on_done(seq, slot.output())
                return
            slot.read_ahead(pool, read_ahead)
            slots.append(slot)

        while slots or pending:
            while len(slots) < batch_size and pending:
                start_slot(pending.popleft())
            prefetch_first_frames()
            if not slots:
                continue

            # Gather the next frame of every slot (read errors fail that sequence only).
            images: List[Any] = []
            for slot in list(slots):
                try:
                    images.append(slot.reads.popleft().result())
                except Exception as exc:
                    slots.remove(slot)
                    slot.cancel_reads()
                    fail(slot.seq, exc)
            for slot in slots:
                slot.read_ahead(pool, read_ahead)  # decode while the step below runs
            if not slots:
                continue

            start = time.perf_counter()
            active: List[_Slot] = []
            inputs: List[Dict[str, Any]] = []
            for slot, image in zip(list(slots), images):
                info = slot.seq.frame_info(slot.next_frame)
                info["previous_output"] = slot.prev
                try:
                    inputs.append(slot.tracker.prepare_step(image, info))
                    active.append(slot)
                except Exception as exc:
                    slots.remove(slot)
                    slot.cancel_reads()
                    fail(slot.seq, exc)
            if not active:
                continue
            try:
                outputs = cls.forward_batch([s.tracker for s in active], inputs)
            except Exception as exc:  # the step is shared: every sequence in it fails
                tb = traceback.format_exc()
                for slot in active:
                    slots.remove(slot)
                    slot.cancel_reads()
                    on_failed(slot.seq, exc, tb)
                continue
            results: List[Optional[Dict[str, Any]]] = []
            for slot, out in zip(active, outputs):
                try:
                    res = slot.tracker.finish_step(out)
                    slot.boxes.append(check_track_output(res, slot.next_frame, slot.seq))
                    results.append(res)
                except Exception as exc:
                    slots.remove(slot)
                    slot.cancel_reads()
                    fail(slot.seq, exc)
                    results.append(None)
            per_frame = (time.perf_counter() - start) / len(active)

            for slot, res in zip(active, results):
                if res is None:
                    continue
                slot.times.append(per_frame)
                slot.prev = OrderedDict(res)
                slot.next_frame += 1
                if slot.finished:
                    slots.remove(slot)
                    on_done(slot.seq, slot.output())
