"""Distributed data parallel (DDP) helpers: the process group from ``torchrun``'s environment variables,
rank queries and the DDP wrapper that forwards unknown attributes to the wrapped network.

``torchrun`` sets ``LOCAL_RANK``, ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; the rank
is read from them (the official code read a ``--local_rank`` argument that only the deprecated
``torch.distributed.launch`` passed). The backend is NCCL on CUDA and gloo on CPU, so multi-process
training also runs on a CPU-only machine.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["MultiGPU", "is_multi_gpu", "unwrap", "dist_env", "init_distributed", "is_dist", "get_rank",
           "get_world_size", "is_main_process", "cleanup_distributed"]


class MultiGPU(nn.parallel.DistributedDataParallel):
    """``DistributedDataParallel`` whose unknown attributes are looked up on the wrapped module."""

    def __getattr__(self, item):
        try:
            return super().__getattr__(item)
        except AttributeError:
            return getattr(self.module, item)


def is_multi_gpu(net: nn.Module) -> bool:
    return isinstance(net, (nn.parallel.DistributedDataParallel, nn.DataParallel))


def unwrap(net: nn.Module) -> nn.Module:
    """The network inside a DDP/DataParallel wrapper (the network itself otherwise)."""
    return net.module if is_multi_gpu(net) else net


def dist_env() -> Tuple[int, int, int]:
    """``(local_rank, rank, world_size)`` from the torchrun environment; ``(-1, 0, 1)`` without it."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank = int(os.environ["RANK"])
        world = int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        return local, rank, world
    return -1, 0, 1


def init_distributed(backend: Optional[str] = None) -> Tuple[int, int, int, torch.device]:
    """Join the process group described by the torchrun environment, if any.

    Returns:
        ``(local_rank, rank, world_size, device)``; ``local_rank == -1`` means a single process.
        The device is ``cuda:<local_rank>`` when CUDA is available, else CPU.

    Raises:
        RuntimeError: the process group cannot be formed (the message names the environment).
    """
    local_rank, rank, world = dist_env()
    cuda = torch.cuda.is_available()
    if local_rank == -1:
        device = torch.device("cuda:0" if cuda else "cpu")
        return -1, 0, 1, device
    backend = backend or ("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device(f"cuda:{local_rank}")
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend=backend)
        except Exception as exc:
            raise RuntimeError(f"could not join the process group (backend {backend}, rank {rank}/{world}, "
                               f"MASTER_ADDR={os.environ.get('MASTER_ADDR')}, "
                               f"MASTER_PORT={os.environ.get('MASTER_PORT')}): {exc}") from exc
    return local_rank, rank, world, device


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def cleanup_distributed(barrier: bool = False) -> None:
    """Destroy the process group (no-op without one).

    Args:
        barrier: wait for every rank first (a run that ended normally), so that no rank tears its gloo
            connections down while a peer still finishes its last collective; gloo then aborts that peer
            ("terminate called without an active exception", exit status -6). Not after an error: a rank that
            failed would leave the others waiting.
    """
    if is_dist():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()
