"""Epoch loop, checkpoints and resuming (pytracking/OSTrack ``lib/train/trainers/base_trainer.py``).

Checkpoints are written atomically to ``<save_dir>/checkpoints/<project_path>/<NetType>_ep<EPOCH:04d>.pth.tar``
(``project_path = 'train/<script>/<config>'``) with the official keys (``epoch``, ``actor_type``, ``net_type``,
``net``, ``net_info``, ``constructor``, ``optimizer``, ``stats``, ``settings``) holding **plain data only**
(tensors, numbers, strings, lists, dicts; ``settings`` as a dict), so ``torch.load(weights_only=True)`` reads
them. They also hold what an exact resume needs: ``lr_scheduler``, ``scaler`` (AMP) and ``rng_state``
(python, numpy, torch and CUDA generators of every rank). A run resumed from its checkpoint continues as
if it had never stopped (bitwise on CPU with the same seed).

Differences from the official trainer: the scheduler state is restored from the checkpoint (the official
code set ``last_epoch`` only); a crash is logged and re-raised (the official ``fail_safe`` swallowed it and
reported "Finished training!"); the previous stage's checkpoint (``--script_prv/--config_prv``) is loaded only
when the run does not resume from its own checkpoint (the official code loaded it after resuming too,
overwriting the resumed weights).
"""

from __future__ import annotations

import glob
import logging
import os
import random
import re
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import torch

from lib.train.admin import multigpu
from lib.train.admin.stats import load_stats_state_dict, stats_state_dict
from lib.utils.checkpoint import (CheckpointError, check_state_dict, extract_state_dict, safe_load,
                                  save_checkpoint_atomic)

__all__ = ["BaseTrainer", "capture_rng_state", "restore_rng_state", "CHECKPOINT_FORMAT"]

log = logging.getLogger("lib.train")

#: version of the plain-data checkpoint layout written by this trainer.
CHECKPOINT_FORMAT = 1


def capture_rng_state() -> Dict[str, Any]:
    """The python, numpy, torch (and CUDA) generator states as plain data."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _epoch_of(path: str) -> int:
    m = re.search(r"_ep(\d+)\.pth\.tar$", path)
    return int(m.group(1)) if m else -1


class BaseTrainer:
    """Epoch loop with checkpoints.

    Args:
        actor: the :class:`~lib.train.actors.BaseActor` (holds the network).
        loaders: loaders run each epoch (those whose ``epoch_interval`` divides it).
        optimizer: the optimizer.
        settings: training settings (``save_dir``, ``project_path``, ``local_rank``, ``rank``, ...).
        lr_scheduler: epoch scheduler (stepped after every epoch).
        checkpoint_epochs: ``fn(epoch, max_epochs) -> bool``; default: every epoch.
    """

    def __init__(self, actor, loaders: List, optimizer, settings, lr_scheduler=None,
                 checkpoint_epochs: Optional[Callable[[int, int], bool]] = None):
        self.actor = actor
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.loaders = [l for l in loaders if l is not None]
        self.settings = settings
        self.checkpoint_epochs = checkpoint_epochs or (lambda epoch, max_epochs: True)
        self.epoch = 0
        self.stats: Dict[str, Any] = {}
        self.scaler = None
        self.device = getattr(settings, "device", None) or torch.device("cpu")
        self.actor.to(self.device)
        save_dir = getattr(settings, "save_dir", None) or getattr(settings.env, "workspace_dir", "")
        self._checkpoint_dir = os.path.join(os.path.expanduser(save_dir), "checkpoints") if save_dir else None
        if self._checkpoint_dir and self.is_main:
            os.makedirs(self._checkpoint_dir, exist_ok=True)

    # ------------------------------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return int(getattr(self.settings, "local_rank", -1)) in (-1, 0) and multigpu.get_rank() == 0

    @property
    def net(self) -> torch.nn.Module:
        """The network without its DDP wrapper."""
        return multigpu.unwrap(self.actor.net)

    def project_dir(self, project_path: Optional[str] = None) -> str:
        return os.path.join(self._checkpoint_dir, project_path or self.settings.project_path)

    def checkpoint_path(self, epoch: int) -> str:
        return os.path.join(self.project_dir(), f"{type(self.net).__name__}_ep{epoch:04d}.pth.tar")

    # ------------------------------------------------------------------------------------------------------
    def train(self, max_epochs: int, load_latest: bool = True, load_previous_ckpt: bool = False,
              resume: Optional[str] = None) -> None:
        """Train until ``max_epochs``.

        Args:
            max_epochs: last epoch (``TRAIN.EPOCH``).
            load_latest: resume from the newest checkpoint of this project if there is one.
            load_previous_ckpt: load the previous stage's newest checkpoint (``settings.project_path_prv``)
                into the network (non-strict) when not resuming.
            resume: ``'latest'`` or a checkpoint path (overrides ``load_latest``).

        Raises:
            CheckpointError: a checkpoint that cannot be used; any error of the training loop (logged
                with its epoch first).
        """
        resumed = False
        if resume:
            resumed = self.load_checkpoint(None if resume == "latest" else resume, required=resume != "latest")
        elif load_latest:
            resumed = self.load_checkpoint()
        if load_previous_ckpt and not resumed:
            prv = getattr(self.settings, "project_path_prv", None)
            if not prv:
                raise ValueError("this training stage loads the previous stage's checkpoint: give --script_prv and "
                                 "--config_prv")
            self.load_state_dict(self.project_dir(prv))
        epoch = self.epoch
        try:
            for epoch in range(self.epoch + 1, max_epochs + 1):
                self.epoch = epoch
                self.train_epoch()
                if self.lr_scheduler is not None:
                    if getattr(self.settings, "scheduler_type", "step") == "cosine":
                        self.lr_scheduler.step(epoch - 1)
                    else:
                        self.lr_scheduler.step()
                save = self.checkpoint_epochs(epoch, max_epochs) or getattr(self.settings, "save_every_epoch", False)
                if save and self._checkpoint_dir:
                    self.save_checkpoint()
        except BaseException:
            log.exception("Training crashed at epoch %d", epoch)
            raise
        log.info("Finished training!")

    def train_epoch(self) -> None:
        raise NotImplementedError

    # checkpoints -------------------------------------------------------------------------------------------
    def _all_rank_rng(self) -> List[Dict[str, Any]]:
        state = capture_rng_state()
        if multigpu.is_dist():
            states = [None] * multigpu.get_world_size()
            torch.distributed.all_gather_object(states, state)
            return states
        return [state]

    def state_dict(self) -> Dict[str, Any]:
        """The checkpoint dict (plain data)."""
        net = self.net
        settings = self.settings.to_dict() if hasattr(self.settings, "to_dict") else {}
        return {
            "epoch": self.epoch,
            "actor_type": type(self.actor).__name__,
            "net_type": type(net).__name__,
            "net": net.state_dict(),
            "net_info": None,
            "constructor": None,
            "optimizer": self.optimizer.state_dict(),
            "stats": stats_state_dict(self.stats),
            "settings": settings,
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng_state": self._all_rank_rng(),
            "format": CHECKPOINT_FORMAT,
        }

    def save_checkpoint(self) -> Optional[str]:
        """Write this epoch's checkpoint (main process; every rank takes part in gathering RNG states)."""
        state = self.state_dict()
        if not self.is_main:
            return None
        path = self.checkpoint_path(self.epoch)
        save_checkpoint_atomic(state, path)
        log.info("checkpoint saved: %s", path)
        return path

    def find_checkpoint(self, checkpoint: Union[None, int, str] = None,
                        project_path: Optional[str] = None) -> Optional[str]:
        """Resolve ``None`` (newest of the project), an epoch number, a folder (its newest) or a file path.

        Returns None when ``checkpoint`` is None and the project has no checkpoint yet.

        Raises:
            FileNotFoundError: the epoch, folder or file given has no checkpoint.
        """
        net_type = type(self.net).__name__
        if checkpoint is None or (isinstance(checkpoint, str) and os.path.isdir(checkpoint)):
            folder = checkpoint if checkpoint is not None else self.project_dir(project_path)
            pattern = os.path.join(folder, f"{net_type}_ep*.pth.tar" if checkpoint is None else "*_ep*.pth.tar")
            found = sorted(glob.glob(pattern), key=_epoch_of)
            if not found:
                if checkpoint is not None:
                    raise FileNotFoundError(f"no checkpoint (*_ep*.pth.tar) in '{folder}'")
                return None
            return found[-1]
        if isinstance(checkpoint, int):
            path = os.path.join(self.project_dir(project_path), f"{net_type}_ep{checkpoint:04d}.pth.tar")
        else:
            path = os.path.expanduser(checkpoint)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint '{path}' does not exist")
        return path

    def load_checkpoint(self, checkpoint: Union[None, int, str] = None, required: bool = False) -> bool:
        """Resume: restore network, optimizer, scheduler, AMP scaler, epoch, statistics and RNG states.

        Returns:
            True if a checkpoint was loaded (False: none found and not ``required``).

        Raises:
            CheckpointError: wrong ``net_type`` or keys/shapes that do not fit (named).
            FileNotFoundError: ``required`` and nothing found.
        """
        path = self.find_checkpoint(checkpoint)
        if path is None:
            if required:
                raise FileNotFoundError(f"no checkpoint to resume from in '{self.project_dir()}'")
            log.info("no checkpoint in %s: training from the start", self.project_dir())
            return False
        ckpt = safe_load(path)
        net_type = type(self.net).__name__
        if not isinstance(ckpt, dict) or ckpt.get("net_type") != net_type:
            found = ckpt.get("net_type") if isinstance(ckpt, dict) else "?"
            raise CheckpointError(f"checkpoint '{path}' holds net_type {found}, this run trains {net_type}")
        sd = extract_state_dict(ckpt, f"checkpoint '{path}'")
        check_state_dict(self.net.state_dict(), sd, f"checkpoint '{path}'", net_type)
        self.net.load_state_dict(sd, strict=True)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch = int(ckpt["epoch"])
        if self.lr_scheduler is not None:
            if ckpt.get("lr_scheduler"):
                self.lr_scheduler.load_state_dict(ckpt["lr_scheduler"])
            else:  # official checkpoints carry no scheduler state
                self.lr_scheduler.last_epoch = self.epoch
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        stats = ckpt.get("stats")
        if isinstance(stats, dict) and all(v is None or isinstance(v, dict) for v in stats.values()):
            try:
                self.stats = load_stats_state_dict(stats)
            except (KeyError, TypeError, AttributeError):
                log.warning("checkpoint '%s': statistics not restored (unknown layout)", path)
        rng = ckpt.get("rng_state")
        if rng:
            rank = multigpu.get_rank()
            restore_rng_state(rng[rank] if rank < len(rng) else rng[0])
        for loader in self.loaders:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(self.epoch)
        log.info("resumed from %s (epoch %d)", path, self.epoch)
        return True

    def load_state_dict(self, checkpoint: str) -> str:
        """Load the network weights of another run's newest checkpoint (non-strict, like the official
        two-stage training: STARK-ST stage 2 starts from stage 1).

        Raises:
            FileNotFoundError: no checkpoint there; CheckpointError: another network type.
        """
        path = self.find_checkpoint(checkpoint)
        ckpt = safe_load(path)
        net_type = type(self.net).__name__
        if isinstance(ckpt, dict) and "net_type" in ckpt and ckpt["net_type"] != net_type:
            raise CheckpointError(f"previous-stage checkpoint '{path}' holds net_type {ckpt['net_type']}, "
                                  f"this run trains {net_type}")
        missing, unexpected = self.net.load_state_dict(extract_state_dict(ckpt, f"checkpoint '{path}'"), strict=False)
        log.info("previous stage loaded from %s (missing keys: %s; unexpected keys: %s)", path, list(missing),
                 list(unexpected))
        return path
