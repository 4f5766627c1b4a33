"""Running trackers over datasets, crash-safe and resumable (pytracking/OSTrack ``running.py``).

- Every (sequence, tracker) pair is one job. ``threads == 0`` runs the jobs in this process;
  ``threads = N > 0`` runs them in ``min(N, jobs)`` worker processes started with ``spawn``, each
  with ``cpu_count // workers`` torch threads on the CPU
  (``concurrent.futures.ProcessPoolExecutor``: a worker that dies, e.g. killed for memory, fails the
  unfinished jobs instead of hanging the run). Worker ``k``
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
- A tqdm bar counts finished jobs and shows the frames per second of the last sequence and of all
  sequences tracked so far.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
import sys
import time
import traceback
from dataclasses import dataclass
from itertools import product
from typing import Iterable, List, Optional, Sequence as Seq

import numpy as np

from lib.utils.misc import atomic_write

from .data import Sequence
from .tracker import Tracker

__all__ = ["SequenceResult", "run_sequence", "run_dataset", "save_tracker_output", "worker_device", "run_tracker",
           "SetupError"]


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


def _init_worker(counter, num_gpus, device, threads_per_worker, plugin_env):
    global _WORKER_INDEX, _WORKER_GPUS, _WORKER_DEVICE
    with counter.get_lock():
        _WORKER_INDEX = counter.value
        counter.value += 1
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
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}"
        log = files["error_log"]
        try:
            with atomic_write(log) as f:
                f.write(f"tracker {tracker.name} {tracker.parameter_name} run_id={tracker.run_id} sequence {seq.name} "
                        f"device {device}\n{tb}")
        except OSError:
            log = None
        print(f"\nFAILED {label} {seq.name}: {error}" + (f" (traceback in {log})" if log else "") + f"\n{tb}",
              file=sys.stderr, flush=True)
        return SequenceResult(seq.name, label, "failed", error=error, error_log=log, device=str(device or ""))
    if os.path.isfile(files["error_log"]):
        os.remove(files["error_log"])
    return SequenceResult(seq.name, label, "done", len(output["time"]), float(sum(output["time"])),
                          device=str(device or ""))


def _run_job(job) -> SequenceResult:
    seq, tracker, debug = job
    return run_sequence(seq, tracker, debug=debug, device=_WORKER_DEVICE)


# -- datasets -----------------------------------------------------------------------------------------
def run_dataset(dataset: Iterable[Sequence], trackers: Seq[Tracker], debug: int = 0, threads: int = 0,
                num_gpus: Optional[int] = None, device: Optional[str] = None, progress: bool = True) -> List[SequenceResult]:
    """Run every tracker on every sequence (sequence-major order, as the official runner).

    Args:
        dataset: sequences.
        trackers: :class:`Tracker` objects.
        debug: debug level (see the module docstring).
        threads: 0 = run in this process; N > 0 = N spawned worker processes.
        num_gpus: GPUs to spread workers over (default: all visible); ignored without CUDA.
        device: force one device (``cpu``, ``cuda:1``) for every job.
        progress: show the tqdm bar (on stderr).

    Returns:
        One :class:`SequenceResult` per job, in completion order.
    """
    from tqdm import tqdm

    sequences = list(dataset)
    jobs = [(seq, trk, debug) for seq, trk in product(sequences, trackers)]
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
    try:
        if threads <= 0:
            dev = worker_device(0, num_gpus, device)
            for seq, trk, dbg in jobs:
                record(run_sequence(seq, trk, debug=dbg, device=dev))
        else:
            from lib.test.tracker import TRACKER_MODULES_ENV

            ctx = multiprocessing.get_context("spawn")
            counter = ctx.Value("i", 0)
            workers = max(1, min(threads, len(jobs)))  # no idle workers: fewer jobs than threads
            threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(counter, num_gpus, device, threads_per_worker,
                                               os.environ.get(TRACKER_MODULES_ENV, ""))) as pool:
                futures = {pool.submit(_run_job, job): job for job in jobs}
                try:
                    for fut in as_completed(futures):
                        seq, trk, _ = futures[fut]
                        try:
                            record(fut.result())
                        except BrokenProcessPool as exc:
                            # A worker died (killed, out of memory, segfault): the pool cannot go on. The
                            # unfinished jobs are reported failed; rerunning the command resumes them.
                            record(SequenceResult(seq.name, os.path.relpath(trk.results_dir, trk.results_path),
                                                  "failed", error=f"worker process died before finishing this "
                                                                  f"sequence ({exc})"))
                except KeyboardInterrupt:
                    pool.shutdown(wait=False, cancel_futures=True)  # finished results stay; a rerun resumes
                    raise
    finally:
        bar.close()
    done = sum(r.status == "done" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    fps = f", {frames_total / seconds_total:.1f} fps" if seconds_total > 0 else ""
    print(f"{len(jobs)} jobs: {done} done, {skipped} skipped (results existed), {failed} failed "
          f"in {time.time() - start:.1f} s{fps}", file=sys.stderr, flush=True)
    return results


# -- the test.py entry point ------------------------------------------------------------------------------
class SetupError(RuntimeError):
    """A run that cannot start: unknown tracker/dataset/sequence, a local.py field or dataset folder that
    is missing, a bad annotation file, a missing checkpoint or config (the message says which)."""


def run_tracker(tracker_name: str, tracker_param: str, dataset_name: str = "otb", sequence=None,
                run_id: Optional[int] = None, debug: int = 0, threads: int = 0, num_gpus: Optional[int] = None,
                checkpoint: Optional[str] = None, device: Optional[str] = None, precision: str = "fp32",
                dataset_path: Optional[str] = None, tracker_modules: Seq[str] = (),
                visdom_server: Optional[str] = None, visdom_port: Optional[int] = None, progress: bool = True,
                results_path: Optional[str] = None) -> List[SequenceResult]:
    """What ``tracking/test.py`` does: build the tracker and the sequences, then :func:`run_dataset`.

    The tracker's parameters (config, checkpoint) are built once here before any worker starts, so
    a wrong name or a missing checkpoint fails at once. A dataset folder that holds only part of the
    benchmark (sequences of the official list without their annotation file) is run on the sequences
    present, and one line on stderr says how many of the benchmark's sequences are missing and where
    they were looked for; a folder with none of them is a :class:`SetupError`.

    Raises:
        SetupError: everything that prevents the run from starting (message names the cause).
    """
    from lib.config import ConfigError
    from lib.test.tracker import UnknownTrackerError, add_tracker_module
    from lib.test.tracker.base import MissingCheckpointError
    from lib.utils.local_settings import SettingsError

    from .annotations import AnnotationError, DatasetFolderError
    from .datasets import UnknownDatasetError, canonical_name, load_dataset

    try:
        for module in tracker_modules:
            add_tracker_module(module)
        key = canonical_name(dataset_name)
        extra = {}
        if visdom_server is not None or visdom_port is not None:
            extra["visdom_info"] = {"server": visdom_server or "127.0.0.1", "port": int(visdom_port or 8097)}
        tracker = Tracker(tracker_name, tracker_param, key, run_id, checkpoint=checkpoint, results_path=results_path,
                          device=device, precision=precision, extra=extra)
        try:
            tracker.get_parameters(device=device or "cpu")
        except RuntimeError as exc:  # e.g. --device cuda without CUDA
            raise SetupError(str(exc)) from exc
        dataset = load_dataset(key, base_path=dataset_path, missing="skip")
        if sequence is not None:
            sequences = [dataset.get_sequence(sequence)]
        else:
            sequences = list(dataset.get_sequence_list())
            report = dataset.missing_report()
            if report:  # a partial copy of the benchmark: run what is there, say so once
                print(f"note: {report}", file=sys.stderr, flush=True)
    except (UnknownTrackerError, UnknownDatasetError, SettingsError, DatasetFolderError, AnnotationError,
            MissingCheckpointError, ConfigError, ImportError, IndexError, KeyError, ValueError) as exc:
        raise SetupError(str(exc)) from exc
    return run_dataset(sequences, [tracker], debug=debug, threads=threads, num_gpus=num_gpus, device=device,
                       progress=progress)
