"""Running trackers over datasets, crash-safe and resumable (pytracking/OSTrack ``running.py``).

- Every (sequence, tracker) pair is one job. ``threads == 0`` runs the jobs in this process;
  ``threads = N > 0`` runs them in ``min(N, jobs)`` worker processes started with ``spawn``, each
  with ``cpu_count // workers`` torch threads on the CPU. Each worker has its own pipe to the parent, which
  knows the sequence every worker is tracking: a worker that dies (killed for memory, segfault) fails only
  that sequence (the message names the worker's PID and the signal) and a new worker takes over the rest.
  Workers never outlive the parent: killed with SIGTERM, SIGKILL or Ctrl-C, the parent's workers stop within
  about a second (:func:`lib.utils.process.stop_with_parent`; the parent also stops them on SIGTERM/SIGHUP/
  Ctrl-C, prints the summary and raises :class:`RunInterrupted`, a KeyboardInterrupt). Worker ``k``
  (0-based, in start order) uses GPU ``k % num_gpus`` when CUDA is available and ``num_gpus > 0``,
  else the CPU; an explicit ``device`` overrides this for every worker.
- A job whose ``<seq>.txt`` exists is skipped, so a killed or failed run is resumed by running the
  same command again.
- Result files are written atomically (temporary file + rename): ``<seq>_time.txt`` first, then
  ``<seq>.txt``, so ``<seq>.txt`` exists only for a finished sequence.
- An exception in a sequence is caught: its traceback goes to ``<seq>_error.log`` beside the
  results and to stderr, the run goes on, and the job is reported ``failed`` (``tracking/test.py``
  then exits with status 1). A later successful run removes the stale log.
- ``debug > 0`` follows the official toolkits: existing results are not skipped, nothing is written
  and exceptions propagate (so a debugger stops at them).
- ``batch_sequences = B > 1`` (batched evaluation, trackers with the batched-step protocol of
  ``lib/test/tracker/base.py``): each worker tracks its sequences in lockstep slots of B with one batched
  network forward per step (:mod:`lib.test.evaluation.batched`); skipping, atomic result files and
  failure reports are as above; a ``<seq>_time.txt`` holds the initialisation time for frame 0 and, for
  every tracked frame, the step time divided by the number of sequences in that step.
- A tqdm bar counts finished jobs and shows the frames per second of the last sequence and of all
  sequences tracked so far.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection as mp_connection
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from itertools import product
from typing import Callable, Dict, Iterable, List, Optional, Sequence as Seq, Tuple

import numpy as np

from lib.utils.errors import register_user_error
from lib.utils.misc import atomic_write

from .data import Sequence
from .tracker import Tracker

__all__ = ["SequenceResult", "run_sequence", "run_dataset", "save_tracker_output", "worker_device", "run_tracker",
           "SetupError", "run_sequences_batched", "check_batching"]


@dataclass
class SequenceResult:
    """Outcome of one (sequence, tracker) job.

    Attributes:
        sequence: sequence name.
        tracker: ``<tracker>/<results folder>``.
        status: ``'done'``, ``'skipped'`` (results existed) or ``'failed'``.
        frames: frames tracked (0 unless done).
        seconds: summed per-frame tracker time (0 unless done).
        error: ``'<ExceptionType>: message'`` when failed.
        error_log: path of the traceback log when failed.
        device: device the job ran on.
    """

    sequence: str
    tracker: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    error: Optional[str] = None
    error_log: Optional[str] = None
    device: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def save_tracker_output(seq: Sequence, tracker: Tracker, output: dict) -> None:
    """Write ``<seq>_time.txt`` (``%f`` seconds) then ``<seq>.txt`` (boxes ``astype(int)``, ``%d``,
    tab-separated), each atomically, in the official layout."""
    files = tracker.result_files(seq)
    boxes = np.asarray(output["target_bbox"], dtype=np.float64).reshape(-1, 4).astype(int)
    times = np.asarray(output["time"], dtype=np.float64).reshape(-1)
    with atomic_write(files["time"]) as f:
        np.savetxt(f, times, delimiter="\t", fmt="%f")
    with atomic_write(files["boxes"]) as f:
        np.savetxt(f, boxes, delimiter="\t", fmt="%d")


# -- devices ------------------------------------------------------------------------------------------
_WORKER_INDEX: Optional[int] = None
_WORKER_GPUS: Optional[int] = None
_WORKER_DEVICE: Optional[str] = None


def worker_device(index: int, num_gpus: Optional[int], device: Optional[str] = None) -> str:
    """Device of worker ``index``: ``device`` if given, else ``cuda:<index % num_gpus>`` when CUDA is
    available and ``num_gpus`` (default: all visible GPUs) is > 0, else ``cpu``."""
    if device:
        return str(device)
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    count = torch.cuda.device_count() if num_gpus is None else min(int(num_gpus), torch.cuda.device_count())
    return f"cuda:{index % count}" if count > 0 else "cpu"


def worker_count(threads: int, jobs: int, device=None, what: str = "sequences") -> int:
    """Worker processes for ``--threads threads`` and ``jobs`` jobs: at most one per job and, when the workers
    track on the CPU (``device`` cpu, or no CUDA), one per CPU core.

    Prints one notice line on stderr when fewer than ``threads`` are used, saying how many and why.
    """
    import torch

    cores = os.cpu_count() or 1
    on_cpu = (device is not None and str(device).startswith("cpu")) or not torch.cuda.is_available()
    workers = max(1, min(threads, jobs, cores if on_cpu else threads))
    if workers < threads:
        why = f"{jobs} {what} to track" if workers == jobs else f"{cores} CPU cores"
        print(f"note: --threads {threads}: using {workers} worker process{'es' if workers > 1 else ''} "
              f"({why})", file=sys.stderr, flush=True)
    return workers


def _init_worker(index, num_gpus, device, threads_per_worker, plugin_env):
    global _WORKER_INDEX, _WORKER_GPUS, _WORKER_DEVICE
    _WORKER_INDEX = int(index)
    _WORKER_GPUS = num_gpus
    _WORKER_DEVICE = worker_device(_WORKER_INDEX, num_gpus, device)
    if plugin_env:
        from lib.test.tracker import TRACKER_MODULES_ENV

        os.environ[TRACKER_MODULES_ENV] = plugin_env
    import torch

    if _WORKER_DEVICE.startswith("cuda"):
        torch.cuda.set_device(torch.device(_WORKER_DEVICE))
    elif threads_per_worker:
        torch.set_num_threads(threads_per_worker)


# -- the worker pool -----------------------------------------------------------------------------------
class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT: Ctrl-C, SIGTERM, SIGHUP); ``signum`` says which. Finished
    sequences are on disk; running the same command again resumes the run."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


@contextlib.contextmanager
def _stop_on_signals():
    """Turn SIGTERM / SIGHUP into :class:`RunInterrupted` in the main thread while the block runs (Ctrl-C is a
    KeyboardInterrupt already), so that the worker processes are stopped and the summary is printed."""
    previous = {}

    def handler(signum, _frame):
        raise RunInterrupted(signum)

    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _worker_main(conn, index: int, parent_pid: int, init_args: tuple) -> None:
    """A worker process: dies with its parent, ignores Ctrl-C (the parent stops it), runs the tasks the parent
    sends (``(key, kind, payload)``; None ends it) and answers ``('progress', key, result)`` messages and one
    ``('end', key, result)`` per task."""
    from lib.utils.process import stop_with_parent

    # Nothing to clean up (result files are written atomically): SIGKILL where the system has it.
    stop_with_parent(parent_pid, sig=getattr(signal, "SIGKILL", signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole terminal group; the parent stops us
    _init_worker(index, *init_args)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        key, kind, payload = task
        if kind == "job":
            conn.send(("end", key, _run_job(payload)))
        else:  # a batched chunk: one message per finished sequence
            def report(res, key=key):
                conn.send(("progress", key, res))

            for trk, seqs in _group_by_tracker(payload):
                run_sequences_batched(seqs, trk, int(kind), _WORKER_DEVICE, report)
            conn.send(("end", key, None))


def _exit_reason(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class _Worker:
    """One spawned worker process with its own pipe (a worker that dies breaks nothing but its own pipe)."""

    def __init__(self, ctx, index: int, init_args: tuple):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, index, os.getpid(), init_args), daemon=True,
                                name=f"tracking-worker-{index}")
        self.proc.start()
        child.close()
        self.task = None  # (key, kind, payload) in flight


def _run_pool(tasks, workers: int, init_args: tuple, on_progress: Callable, on_end: Callable,
              on_death: Callable) -> None:
    """Run ``tasks`` (``(key, kind, payload)``) in up to ``workers`` spawned processes, one task at a time each.

    ``on_progress(key, result)`` / ``on_end(key, result)`` receive the workers' messages; a worker that dies
    (killed, out of memory, segfault) calls ``on_death(key, pid, reason)`` for the task it was running only, and
    a new worker takes over the remaining tasks. However the call ends (also by an exception such as Ctrl-C)
    every worker process is stopped before it returns.
    """
    ctx = multiprocessing.get_context("spawn")
    pending = deque(tasks)
    pool: List[_Worker] = []
    started = 0

    def dispatch(w: _Worker) -> None:
        w.task = pending.popleft() if pending else None
        try:
            w.conn.send(w.task)
        except (BrokenPipeError, EOFError, OSError):
            pass  # the worker died meanwhile: its sentinel reports it

    def start() -> None:
        nonlocal started
        w = _Worker(ctx, started, init_args)
        started += 1
        pool.append(w)
        dispatch(w)

    def handle(w: _Worker, msg) -> None:
        kind, key, res = msg
        if kind == "progress":
            on_progress(key, res)
        else:
            on_end(key, res)
            dispatch(w)

    def gone(w: _Worker) -> None:
        while True:  # messages sent before the worker ended are still in the pipe
            try:
                if not w.conn.poll():
                    break
                handle(w, w.conn.recv())
            except (EOFError, OSError):
                break
        w.proc.join()
        pool.remove(w)
        w.conn.close()
        if w.task is not None:
            task, w.task = w.task, None
            on_death(task[0], w.proc.pid, _exit_reason(w.proc.exitcode))
        if pending and len(pool) < workers:
            start()

    try:
        for _ in range(min(workers, len(pending))):
            start()
        while pool:
            by_conn = {w.conn: w for w in pool}
            by_sentinel = {w.proc.sentinel: w for w in pool}
            for ready in mp_connection.wait(list(by_conn) + list(by_sentinel), timeout=1.0):
                w = by_conn.get(ready) or by_sentinel.get(ready)
                if w not in pool:
                    continue
                if ready is w.conn:
                    try:
                        handle(w, w.conn.recv())
                        continue
                    except (EOFError, OSError):  # the worker is ending: wait for it below
                        pass
                gone(w)
    finally:
        _stop_workers(pool)


def _stop_workers(pool: List[_Worker], grace_s: float = 2.0) -> None:
    """Terminate (SIGTERM, then SIGKILL after ``grace_s``) and reap every worker still running."""
    for w in pool:
        if w.proc.is_alive():
            w.proc.terminate()
    deadline = time.time() + grace_s
    for w in pool:
        w.proc.join(max(0.0, deadline - time.time()))
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join()
        w.conn.close()
    pool.clear()


# -- one job -------------------------------------------------------------------------------------------
def run_sequence(seq: Sequence, tracker: Tracker, debug: int = 0, device: Optional[str] = None) -> SequenceResult:
    """Run one job: skip if its results exist, else track, save atomically and report.

    Never raises for a failing sequence unless ``debug > 0`` (then nothing is saved either).
    """
    label = os.path.relpath(tracker.results_dir, tracker.results_path)
    files = tracker.result_files(seq)
    if not debug and os.path.isfile(files["boxes"]):
        return SequenceResult(seq.name, label, "skipped", device=str(device or ""))
    if debug:
        output = tracker.run_sequence(seq, debug=debug, device=device)
        return SequenceResult(seq.name, label, "done", len(output["time"]), float(sum(output["time"])),
                              device=str(device or ""))
    try:
        output = tracker.run_sequence(seq, debug=debug, device=device)
        save_tracker_output(seq, tracker, output)
    except Exception as exc:  # one sequence must not stop the run
        return _failed(seq, tracker, exc, traceback.format_exc(), device)
    return _done(seq, tracker, output, device)


def _failed(seq: Sequence, tracker: Tracker, exc: BaseException, tb: str, device) -> SequenceResult:
    """Report a failed job: traceback to ``<seq>_error.log`` and stderr."""
    label = os.path.relpath(tracker.results_dir, tracker.results_path)
    error = f"{type(exc).__name__}: {exc}"
    log = tracker.result_files(seq)["error_log"]
    try:
        with atomic_write(log) as f:
            f.write(f"tracker {tracker.name} {tracker.parameter_name} run_id={tracker.run_id} sequence {seq.name} "
                    f"device {device}\n{tb}")
    except OSError:
        log = None
    print(f"\nFAILED {label} {seq.name}: {error}" + (f" (traceback in {log})" if log else "") + f"\n{tb}",
          file=sys.stderr, flush=True)
    return SequenceResult(seq.name, label, "failed", error=error, error_log=log, device=str(device or ""))


def _done(seq: Sequence, tracker: Tracker, output: dict, device) -> SequenceResult:
    """Report a finished job whose results are saved; remove a stale error log."""
    files = tracker.result_files(seq)
    if os.path.isfile(files["error_log"]):
        os.remove(files["error_log"])
    return SequenceResult(seq.name, os.path.relpath(tracker.results_dir, tracker.results_path), "done",
                          len(output["time"]), float(sum(output["time"])), device=str(device or ""))


def _run_job(job) -> SequenceResult:
    seq, tracker, debug = job
    return run_sequence(seq, tracker, debug=debug, device=_WORKER_DEVICE)


# -- batched jobs (--batch_sequences B > 1) ----------------------------------------------------------------
def check_batching(tracker_name: str, params=None) -> None:
    """Raise :class:`~lib.test.tracker.base.BatchingNotSupportedError` unless the class of ``tracker_name``
    implements the batched-step protocol (``supports_batching``), or batches through the whole-frame step
    (``batches_with_frame_graph``: STARK-S/ST, AiATrack, SparseTT) and ``params`` (its
    :class:`~lib.test.tracker.base.TrackerParams`) ask for that step; the message says what to do.

    Raises:
        BatchingNotSupportedError: (a ValueError) as above.
    """
    from lib.test.tracker import get_tracker_class, list_trackers
    from lib.test.tracker.base import BatchingNotSupportedError

    cls = get_tracker_class(tracker_name)
    if getattr(cls, "supports_batching", False):
        return
    if getattr(cls, "batches_with_frame_graph", False):
        if params is None or cls.frame_graph_requested(params):  # without parameters: checked again with them
            return
        raise BatchingNotSupportedError(
            f"tracker '{tracker_name}' batches sequences (--batch_sequences > 1) only through the whole-frame step: "
            f"add --cuda_graph (CUDA; without --crop cv2, --compile, --debug or another backend), or run it with "
            f"--batch_sequences 1.")
    supported, with_graph = [], []
    for name in list_trackers():
        try:
            other = get_tracker_class(name)
        except Exception:  # a registered tracker that cannot be imported here is not offered
            continue
        if getattr(other, "supports_batching", False):
            supported.append(name)
        elif getattr(other, "batches_with_frame_graph", False):
            with_graph.append(name)
    raise BatchingNotSupportedError(
        f"tracker '{tracker_name}' does not support batched evaluation (--batch_sequences > 1): its class "
        f"{get_tracker_class(tracker_name).__name__} does not implement the batched-step protocol of "
        f"lib/test/tracker/base.py. Trackers that do: {', '.join(supported) or 'none'}"
        f"{'; with --cuda_graph also ' + ', '.join(with_graph) if with_graph else ''}. "
        f"Run it with --batch_sequences 1.")


def run_sequences_batched(sequences: Seq[Sequence], tracker: Tracker, batch_size: int, device: Optional[str],
                          report: Callable[[SequenceResult], None], decoders: int = 4) -> None:
    """Track ``sequences`` (results not on disk) with ``tracker`` in lockstep slots of ``batch_size``
    (:func:`lib.test.evaluation.batched.track_sequences_batched`); each finished sequence's results are saved
    atomically (:func:`save_tracker_output`) and every job is passed to ``report`` as it ends."""
    from .batched import track_sequences_batched

    def make_lead():
        return tracker.create_tracker(tracker.get_parameters(device=device))

    def on_done(seq: Sequence, output: dict) -> None:
        try:
            save_tracker_output(seq, tracker, output)
        except Exception as exc:
            report(_failed(seq, tracker, exc, traceback.format_exc(), device))
            return
        report(_done(seq, tracker, output, device))

    def on_failed(seq: Sequence, exc: BaseException, tb: str) -> None:
        report(_failed(seq, tracker, exc, tb, device))

    track_sequences_batched(make_lead, sequences, batch_size, on_done, on_failed, decoders=decoders)


def _group_by_tracker(jobs) -> List[Tuple[Tracker, List[Sequence]]]:
    groups: Dict[int, Tuple[Tracker, List[Sequence]]] = {}
    for seq, trk in jobs:
        groups.setdefault(id(trk), (trk, []))[1].append(seq)
    return list(groups.values())


# -- datasets -----------------------------------------------------------------------------------------
def run_dataset(dataset: Iterable[Sequence], trackers: Seq[Tracker], debug: int = 0, threads: int = 0,
                num_gpus: Optional[int] = None, device: Optional[str] = None, progress: bool = True,
                batch_sequences: int = 1, overwrite: bool = False) -> List[SequenceResult]:
    """Run every tracker on every sequence (sequence-major order, as the official runner).

    With ``batch_sequences`` B > 1 (batched evaluation) the jobs whose results are not on disk are split
    round-robin over the workers (this process for ``threads == 0``); each worker tracks its sequences of a
    tracker in lockstep slots of B with one batched network forward per step (:func:`run_sequences_batched`,
    :mod:`lib.test.evaluation.batched`). Result files, skipping and failure reports are as for B = 1; the
    per-frame times are the step time divided by the sequences in the step.

    Args:
        dataset: sequences.
        trackers: :class:`Tracker` objects.
        debug: debug level (see the module docstring).
        threads: 0 = run in this process; N > 0 = N spawned worker processes.
        num_gpus: GPUs to spread workers over (default: all visible); ignored without CUDA.
        device: force one device (``cpu``, ``cuda:1``) for every job.
        progress: show the tqdm bar (on stderr).
        batch_sequences: B, sequences tracked in lockstep per worker (1 = one sequence at a time).
        overwrite: track again the sequences whose existing results were made with another config, checkpoint or
            precision, or whose provenance is unknown (:mod:`lib.test.evaluation.provenance`).

    Before any tracking (:func:`_prepare_run`): the checkpoints exist and fit the networks, the sequences to track
    have frames, the results folders are writable, and existing results were made as this run would make them;
    the provenance of the sequences to track is recorded in ``<results folder>/_provenance.json``.

    Returns:
        One :class:`SequenceResult` per job, in completion order.

    Raises:
        PreflightError: a check before tracking failed (nothing was tracked);
        ProvenanceMismatchError: existing results were made differently and ``overwrite`` is off;
        ValueError: ``batch_sequences < 1``, or > 1 together with ``debug > 0`` (the debug views follow one
            sequence); BatchingNotSupportedError: B > 1 for a tracker without the batched-step protocol.
    """
    from tqdm import tqdm

    from lib.test.tracker import get_tracker_class

    batch_sequences = int(batch_sequences)
    if batch_sequences < 1:
        raise ValueError(f"batch_sequences must be >= 1, got {batch_sequences}")
    if batch_sequences > 1:
        if debug:
            raise ValueError("--debug and --batch_sequences > 1 cannot be combined (the debug views follow one "
                             "sequence at a time); use --batch_sequences 1")
        for trk in trackers:
            check_batching(trk.name)  # the class; then the parameters of one that batches through the frame graph
            if getattr(get_tracker_class(trk.name), "batches_with_frame_graph", False):
                check_batching(trk.name, trk.get_parameters(device=device))
    sequences = list(dataset)
    jobs = [(seq, trk, debug) for seq, trk in product(sequences, trackers)]
    if jobs:
        _prepare_run(jobs, trackers, debug, overwrite, {"device": device, "batch_sequences": batch_sequences})
    results: List[SequenceResult] = []
    bar = tqdm(total=len(jobs), desc="sequences", unit="seq", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    frames_total, seconds_total, failed = 0, 0.0, 0

    def record(res: SequenceResult):
        nonlocal frames_total, seconds_total, failed
        results.append(res)
        if res.status == "done":
            frames_total += res.frames
            seconds_total += res.seconds
        failed += res.status == "failed"
        postfix = {"last": f"{res.sequence} {res.status}" + (f" {res.fps:.1f} fps" if res.status == "done" else "")}
        if seconds_total > 0:
            postfix["mean"] = f"{frames_total / seconds_total:.1f} fps"
        if failed:
            postfix["failed"] = failed
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)

    start = time.time()
    interrupted: Optional[KeyboardInterrupt] = None
    try:
        with _stop_on_signals():
            _run_jobs(jobs, record, batch_sequences, threads, num_gpus, device)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the workers are stopped already
        interrupted = exc
    finally:
        bar.close()
    done = sum(r.status == "done" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    fps = f", {frames_total / seconds_total:.1f} fps" if seconds_total > 0 else ""
    stopped = ""
    if interrupted is not None:
        signum = getattr(interrupted, "signum", signal.SIGINT)
        stopped = f"interrupted by {signal.Signals(signum).name}: {len(jobs) - len(results)} not finished, "
    print(f"{stopped}{len(jobs)} jobs: {done} done, {skipped} skipped (results existed), {failed} failed "
          f"in {time.time() - start:.1f} s{fps}", file=sys.stderr, flush=True)
    if interrupted is not None:
        raise interrupted
    return results


def _prepare_run(jobs, trackers: Seq[Tracker], debug: int, overwrite: bool, options: Dict) -> None:
    """The checks of :func:`run_dataset` before any tracking (:mod:`.preflight`, :mod:`.provenance`); removes the
    results that ``overwrite`` replaces and records the provenance of the sequences to track."""
    from .preflight import check_checkpoints, check_frames, check_writable
    from .provenance import ProvenanceMismatchError, ResultProvenance, describe_differences, make_record

    check_checkpoints(trackers)
    if debug:  # nothing is skipped or written
        check_frames([seq for seq, _, _ in jobs])
        return
    plans = []
    for trk in trackers:
        record, prov = make_record(trk, options), ResultProvenance(trk.results_dir)
        fresh, unknown, differ = [], [], {}
        for seq in [seq for seq, t, _ in jobs if t is trk]:
            base = seq.result_base(trk.results_dir)
            if not os.path.isfile(trk.result_files(seq)["boxes"]):
                fresh.append(seq)
                continue
            old = prov.record_of(base)
            if old is None:
                unknown.append(seq)
            elif describe_differences(old, record):
                differ.setdefault(tuple(describe_differences(old, record)), []).append(seq)
        if differ and not overwrite:
            count = sum(len(v) for v in differ.values())
            reasons = "; ".join(f"{', '.join(lines)} ({len(seqs)} sequences, e.g. {seqs[0].name})"
                                for lines, seqs in differ.items())
            raise ProvenanceMismatchError(
                f"{count} existing results in '{trk.results_dir}' were made differently from this run: {reasons}. "
                f"Nothing was tracked. Run with --overwrite to track them again, or write this run elsewhere "
                f"(--runid)")
        redo = [seq for seqs in differ.values() for seq in seqs] + unknown if overwrite else []
        if unknown and not overwrite:
            print(f"note: {len(unknown)} existing results in '{trk.results_dir}' have no provenance record (made "
                  f"before records were kept, or by another tool): they are kept and skipped; --overwrite tracks them "
                  f"again", file=sys.stderr, flush=True)
        plans.append((trk, record, prov, fresh + redo, redo))
    check_frames([seq for _, _, _, track, _ in plans for seq in track])
    check_writable([os.path.dirname(trk.result_files(seq)["boxes"])
                    for trk, _, _, track, _ in plans for seq in track])
    for trk, record, prov, track, redo in plans:
        for seq in redo:
            for kind in ("boxes", "time"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(trk.result_files(seq)[kind])
        prov.enter([seq.result_base(trk.results_dir) for seq in track], record)


def _run_jobs(jobs, record: Callable[[SequenceResult], None], batch_sequences: int, threads: int,
              num_gpus: Optional[int], device: Optional[str]) -> None:
    """The tracking part of :func:`run_dataset`: in this process, or in a pool of ``threads`` workers."""
    if batch_sequences > 1:
        _run_batched_jobs(jobs, record, batch_sequences, threads, num_gpus, device)
    elif threads <= 0:
        dev = worker_device(0, num_gpus, device)
        for seq, trk, dbg in jobs:
            record(run_sequence(seq, trk, debug=dbg, device=dev))
    else:
        workers = worker_count(threads, len(jobs), device)  # no idle workers: fewer jobs than threads

        def died(index, pid, reason):
            seq, trk, _ = jobs[index]
            # Only the sequence the worker was tracking is lost; the other workers go on and a new worker
            # takes over the remaining sequences. Rerunning the command tracks this one again.
            record(SequenceResult(seq.name, os.path.relpath(trk.results_dir, trk.results_path), "failed",
                                  error=f"worker process {pid} died ({reason}) while tracking this sequence"))

        _run_pool([(k, "job", job) for k, job in enumerate(jobs)], workers, _worker_init_args(workers, num_gpus, device),
                  on_progress=lambda key, res: record(res), on_end=lambda key, res: record(res), on_death=died)


def _run_batched_jobs(jobs, record: Callable[[SequenceResult], None], batch_size: int, threads: int,
                      num_gpus: Optional[int], device: Optional[str]) -> None:
    """The ``batch_sequences > 1`` part of :func:`run_dataset`: skip finished jobs, spread the others over the
    workers, record each job as it ends (workers report through a queue)."""
    todo = []
    for seq, trk, _ in jobs:
        if os.path.isfile(trk.result_files(seq)["boxes"]):
            record(SequenceResult(seq.name, os.path.relpath(trk.results_dir, trk.results_path), "skipped"))
        else:
            todo.append((seq, trk))
    if not todo:
        return
    if threads <= 0:
        dev = worker_device(0, num_gpus, device)
        for trk, seqs in _group_by_tracker(todo):
            run_sequences_batched(seqs, trk, batch_size, dev, record)
        return

    workers = worker_count(threads, len(todo), device)
    chunks = [todo[k::workers] for k in range(workers)]
    recorded = set()

    def key(res_or_job) -> Tuple[str, str]:
        if isinstance(res_or_job, SequenceResult):
            return res_or_job.tracker, res_or_job.sequence
        seq, trk = res_or_job
        return os.path.relpath(trk.results_dir, trk.results_path), seq.name

    def record_once(res: SequenceResult) -> None:
        if key(res) not in recorded:
            recorded.add(key(res))
            record(res)

    def died(index, pid, reason):
        for job in chunks[index]:  # the worker's unfinished sequences fail; a rerun resumes them
            if key(job) not in recorded:
                record_once(SequenceResult(job[0].name, key(job)[0], "failed",
                                           error=f"worker process {pid} died ({reason}) before finishing this "
                                                 f"sequence (its batch of {batch_size} was in flight)"))

    _run_pool([(k, str(batch_size), chunk) for k, chunk in enumerate(chunks)], workers,
              _worker_init_args(workers, num_gpus, device), on_progress=lambda k, res: record_once(res),
              on_end=lambda k, res: None, on_death=died)


def _worker_init_args(workers: int, num_gpus: Optional[int], device: Optional[str]) -> tuple:
    """What every worker of a pool of ``workers`` needs besides its index (see :func:`_init_worker`)."""
    from lib.test.tracker import TRACKER_MODULES_ENV

    threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
    return (num_gpus, device, threads_per_worker, os.environ.get(TRACKER_MODULES_ENV, ""))


# -- the test.py entry point ------------------------------------------------------------------------------
@register_user_error
class SetupError(RuntimeError):
    """A run that cannot start: unknown tracker/dataset/sequence, a local.py field or dataset folder that
    is missing, a bad annotation file, a missing checkpoint or config (the message says which)."""


def run_tracker(tracker_name: str, tracker_param: str, dataset_name: str = "otb", sequence=None,
                run_id: Optional[int] = None, debug: int = 0, threads: int = 0, num_gpus: Optional[int] = None,
                checkpoint: Optional[str] = None, device: Optional[str] = None, precision: str = "fp32",
                dataset_path: Optional[str] = None, tracker_modules: Seq[str] = (),
                visdom_server: Optional[str] = None, visdom_port: Optional[int] = None, progress: bool = True,
                results_path: Optional[str] = None, batch_sequences: int = 1, compile: bool = False,
                cuda_graph: bool = False, overwrite: bool = False, backend: str = "pytorch",
                onnx_dir: Optional[str] = None, crop: str = "auto") -> List[SequenceResult]:
    """What ``tracking/test.py`` does: build the tracker and the sequences, then :func:`run_dataset`.

    The tracker's parameters (config, checkpoint) are built once here before any worker starts, so
    a wrong name or a missing checkpoint fails at once. A dataset folder that holds only part of the
    benchmark (sequences of the official list without their annotation file) is run on the sequences
    present, and one line on stderr says how many of the benchmark's sequences are missing and where
    they were looked for; a folder with none of them is a :class:`SetupError`. ``batch_sequences`` > 1: batched
    evaluation (see :func:`run_dataset`). ``compile`` / ``cuda_graph``: the tracker's per-frame network step
    compiled with ``torch.compile`` / captured into a CUDA graph (:class:`~lib.test.tracker.base.TrackerParams`).
    ``overwrite``: see :func:`run_dataset`. ``crop``: ``auto`` (the tracker's default: cv2 on the CPU, on the
    device on CUDA, the whole frame in one graph with ``cuda_graph``), ``cv2`` (the official crop pixels; with
    ``cuda_graph`` only the network step is captured) or ``device`` (``TrackerParams.extra['device_crop']``).
    ``backend='onnxruntime'``: the network steps run in ONNX Runtime (exported to the cache, or read from and
    exported into ``onnx_dir``; :meth:`~lib.test.tracker.base.BaseTracker.onnx_step`).

    Raises:
        SetupError: everything that prevents the run from starting (message names the cause), including the checks
            before tracking of :func:`run_dataset` (PreflightError, ProvenanceMismatchError).
    """
    from lib.config import ConfigError
    from lib.test.tracker import UnknownTrackerError, add_tracker_module
    from lib.test.tracker.base import BatchingNotSupportedError, MissingCheckpointError, check_backend
    from lib.utils.local_settings import SettingsError

    from .annotations import AnnotationError, DatasetFolderError
    from .datasets import UnknownDatasetError, canonical_name, load_dataset
    from .preflight import check_checkpoints

    try:
        for module in tracker_modules:
            add_tracker_module(module)
        if int(batch_sequences) < 1:
            raise ValueError(f"--batch_sequences must be >= 1, got {batch_sequences}")
        if int(batch_sequences) > 1:
            if debug:
                raise ValueError("--debug and --batch_sequences > 1 cannot be combined (the debug views follow one "
                                 "sequence at a time); use --batch_sequences 1")
            check_batching(tracker_name)  # the class (its parameters are checked below)
        key = canonical_name(dataset_name)
        extra = {k: True for k, on in (("compile", compile), ("cuda_graph", cuda_graph)) if on}
        if crop not in ("auto", "cv2", "device"):
            raise ValueError(f"--crop must be auto, cv2 or device, got '{crop}'")
        if crop != "auto":
            extra["device_crop"] = crop == "device"
        if backend != "pytorch" or onnx_dir is not None:
            extra.update(backend=backend, **({"onnx_dir": onnx_dir} if onnx_dir is not None else {}))
        if visdom_server is not None or visdom_port is not None:
            extra["visdom_info"] = {"server": visdom_server or "127.0.0.1", "port": int(visdom_port or 8097)}
        tracker = Tracker(tracker_name, tracker_param, key, run_id, checkpoint=checkpoint, results_path=results_path,
                          device=device, precision=precision, extra=extra)
        try:
            # the parameters on the run's device (a CPU would refuse --cuda_graph); checked before any sequence
            params = tracker.get_parameters(device=device)
        except RuntimeError as exc:  # e.g. --device cuda without CUDA
            raise SetupError(str(exc)) from exc
        check_backend(params)
        if int(batch_sequences) > 1:
            check_batching(tracker_name, params)
        check_checkpoints([tracker])  # before the dataset is read: an unsafe or unfitting file stops the run at once
        dataset = load_dataset(key, base_path=dataset_path, missing="skip")
        if sequence is not None:
            sequences = [dataset.get_sequence(sequence)]
        else:
            sequences = list(dataset.get_sequence_list())
            report = dataset.missing_report()
            if report:  # a partial copy of the benchmark: run what is there, say so once
                print(f"note: {report}", file=sys.stderr, flush=True)
    except (UnknownTrackerError, UnknownDatasetError, SettingsError, DatasetFolderError, AnnotationError,
            MissingCheckpointError, ConfigError, ImportError, IndexError, KeyError, ValueError,
            BatchingNotSupportedError) as exc:
        raise SetupError(str(exc)) from exc
    return run_dataset(sequences, [tracker], debug=debug, threads=threads, num_gpus=num_gpus, device=device,
                       progress=progress, batch_sequences=batch_sequences, overwrite=overwrite)
