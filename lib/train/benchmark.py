"""Speed of the training pipeline: frame decoding, samples per second of one data worker, and training
iterations per second (used by ``tracking/benchmark_train.py``; figures are printed, never asserted)."""

from __future__ import annotations

import time
from typing import Dict, List, Sequence

import torch

from lib.utils.image import imread_rgb

__all__ = ["bench_decode", "bench_samples", "bench_iterations", "with_backend"]


def with_backend(datasets: Sequence, backend: str) -> None:
    """Make every folder dataset decode its frames with ``backend`` (``'jpeg4py'`` or ``'opencv'``)."""
    for d in datasets:
        d.image_loader = lambda path, _b=backend: imread_rgb(path, backend=_b)


def bench_decode(paths: List[str], backend: str, repeat: int = 1) -> float:
    """Frames decoded per second by :func:`imread_rgb` with ``backend`` (one thread)."""
    imread_rgb(paths[0], backend=backend)
    t0 = time.perf_counter()
    for _ in range(repeat):
        for p in paths:
            imread_rgb(p, backend=backend)
    return repeat * len(paths) / (time.perf_counter() - t0)


def bench_samples(sampler, n: int, warmup: int = 2, threads: int = 1) -> float:
    """Samples per second of one data worker: ``sampler[i]`` (reading, cropping, augmenting) in this process
    with ``threads`` torch threads (DataLoader workers run with one)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for i in range(warmup):
            sampler[i]
        t0 = time.perf_counter()
        for i in range(n):
            sampler[i]
        return n / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)


def bench_iterations(trainer, loader, iters: int, warmup: int = 1) -> Dict[str, float]:
    """Training iterations per second: forward, backward and optimizer step on batches fetched beforehand
    (``compute``), and the whole loop including the loader (``end_to_end``)."""
    batches = []
    for i, b in enumerate(loader):
        batches.append(b)
        if len(batches) >= iters + warmup:
            break
    trainer.actor.train(True)

    def step(b):
        b = b.to(trainer.device)
        b["epoch"] = max(trainer.epoch, 1)
        trainer.training_step(b, loader)

    for b in batches[:warmup]:
        step(b)
    _sync(trainer.device)
    t0 = time.perf_counter()
    for b in batches[warmup:]:
        step(b)
    _sync(trainer.device)
    compute = len(batches[warmup:]) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    done = 0
    for b in loader:
        step(b)
        done += 1
        if done >= iters:
            break
    _sync(trainer.device)
    return {"compute": compute, "end_to_end": done / (time.perf_counter() - t0)}


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
