"""``LTRLoader``: a ``torch.utils.data.DataLoader`` with a name, a training flag, an epoch interval and a
collate function that stacks along dim 0 or dim 1 (pytracking ``ltr/data/loader.py``; OSTrack stacks on
dim 1, so a batch holds ``template_images`` of shape ``(N_t, B, 3, H, W)``).

Worker processes are seeded from ``(seed, epoch, rank, worker_id)`` (python ``random``, numpy and torch),
so the samples of an epoch do not depend on how the run got there (a resumed run draws the same samples
as an uninterrupted one).
"""

from __future__ import annotations

import collections.abc
import random
from typing import Callable, Optional

import numpy as np
import torch
import torch.utils.data

from .tensordict import TensorDict, TensorList

__all__ = ["ltr_collate", "ltr_collate_stack1", "LTRLoader", "WorkerSeeder", "seed_from"]


def seed_from(*parts: int) -> int:
    """A 63-bit seed derived from integers (numpy ``SeedSequence``)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)
    return int(state[0] % (2 ** 63))


def _collate(batch, stack_dim: int):
    elem = batch[0]
    if isinstance(elem, torch.Tensor):
        return torch.stack(batch, stack_dim)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "SaUO":
            raise TypeError(f"cannot collate numpy arrays of dtype {elem.dtype}")
        return torch.stack([torch.from_numpy(b) for b in batch], stack_dim)
    if isinstance(elem, np.generic):
        return torch.as_tensor(np.array(batch))
    if isinstance(elem, bool):
        return torch.tensor(batch)
    if isinstance(elem, int):
        return torch.LongTensor(batch)
    if isinstance(elem, float):
        return torch.DoubleTensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, TensorDict):
        return TensorDict({key: _collate([d[key] for d in batch], stack_dim) for key in elem})
    if isinstance(elem, collections.abc.Mapping):
        return {key: _collate([d[key] for d in batch], stack_dim) for key in elem}
    if isinstance(elem, TensorList):
        return TensorList([_collate(list(s), stack_dim) for s in zip(*batch)])
    if isinstance(elem, collections.abc.Sequence):
        return [_collate(list(s), stack_dim) for s in zip(*batch)]
    if elem is None:
        return batch
    raise TypeError(f"batch must contain tensors, numbers, dicts or lists; found {type(elem).__name__}")


def ltr_collate(batch):
    """Stack every field along a new dim 0 (the batch dimension first)."""
    return _collate(batch, 0)


def ltr_collate_stack1(batch):
    """Stack every field along dim 1: ``(N_frames, B, ...)`` (OSTrack/STARK)."""
    return _collate(batch, 1)


class WorkerSeeder:
    """``worker_init_fn`` seeding python, numpy and torch in each worker from ``(seed, epoch, rank, worker_id)``.

    The trainer sets :attr:`epoch` before each epoch's iterator is created (workers are re-created every
    epoch), so worker streams differ between epochs and ranks but are reproducible.
    """

    def __init__(self, seed: int, rank: int = 0):
        self.seed = int(seed)
        self.rank = int(rank)
        self.epoch = 0

    def __call__(self, worker_id: int) -> None:
        s = seed_from(self.seed, self.epoch, self.rank, worker_id)
        random.seed(s)
        np.random.seed(s % (2 ** 32))
        torch.manual_seed(s)


class _SkipBatches:
    """A batch sampler whose iterators start after the first ``start`` batches (advanced eagerly, when the
    iterator is created)."""

    def __init__(self, base, start: int):
        self.base = base
        self.start = start

    def __iter__(self):
        it = iter(self.base)
        for _ in range(self.start):
            next(it, None)
        return it

    def __len__(self) -> int:
        return max(0, len(self.base) - self.start)


class LTRLoader(torch.utils.data.DataLoader):
    """Data loader of the training loop.

    Args:
        name: loader name (``'train'``, ``'val'``); the statistics and TensorBoard use it.
        dataset: a :class:`~lib.train.data.sampler.TrackingSampler`.
        training: True for the loader whose batches update the network.
        batch_size, shuffle, sampler, batch_sampler, num_workers, pin_memory, drop_last, timeout,
            worker_init_fn, persistent_workers, prefetch_factor: as ``torch.utils.data.DataLoader``.
        epoch_interval: the loader runs in epochs divisible by this (``TRAIN.VAL_EPOCH_INTERVAL`` for val).
        collate_fn: default :func:`ltr_collate` (``stack_dim=0``) or :func:`ltr_collate_stack1` (1).
        stack_dim: 0 or 1.
        seed, rank: when ``worker_init_fn`` is None and ``num_workers > 0``, workers are seeded by a
            :class:`WorkerSeeder` built from them.
    """

    def __init__(self, name: str, dataset, training: bool = True, batch_size: int = 1, shuffle: bool = False,
                 sampler=None, batch_sampler=None, num_workers: int = 0, epoch_interval: int = 1,
                 collate_fn: Optional[Callable] = None, stack_dim: int = 0, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Optional[Callable] = None,
                 seed: int = 0, rank: int = 0, **kwargs):
        if collate_fn is None:
            if stack_dim not in (0, 1):
                raise ValueError(f"stack_dim must be 0 or 1, got {stack_dim}")
            collate_fn = ltr_collate if stack_dim == 0 else ltr_collate_stack1
        self.worker_seeder = None
        if worker_init_fn is None and num_workers > 0:
            worker_init_fn = self.worker_seeder = WorkerSeeder(seed, rank)
        super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                         batch_sampler=batch_sampler, num_workers=num_workers, collate_fn=collate_fn,
                         pin_memory=pin_memory, drop_last=drop_last, timeout=timeout, worker_init_fn=worker_init_fn,
                         **kwargs)
        self.name = name
        self.training = training
        self.epoch_interval = epoch_interval
        self.stack_dim = stack_dim

    @property
    def _index_sampler(self):
        base = super()._index_sampler
        start = getattr(self, "_start_batch", 0)
        return _SkipBatches(base, start) if start else base

    def iter_from(self, start: int):
        """An iterator over this epoch's batches ``start + 1, start + 2, ...`` (0-based: from ``start``): the
        index stream is advanced by ``start`` batches without loading them (a run resumed mid-epoch). The
        sampler's own randomness (a shuffling ``RandomSampler``) is drawn when the iterator is created."""
        self._start_batch = int(start)
        try:
            return iter(self)
        finally:
            self._start_batch = 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the distributed sampler, the worker seeder and the dataset which epoch is starting."""
        sampler = self.sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        if self.worker_seeder is not None:
            self.worker_seeder.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
