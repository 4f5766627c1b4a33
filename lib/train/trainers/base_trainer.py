"""Epoch loop, checkpoints and resuming (pytracking/OSTrack ``lib/train/trainers/base_trainer.py``).

Checkpoints are written atomically to ``<save_dir>/checkpoints/<project_path>/<NetType>_ep<EPOCH:04d>.pth.tar``
(``project_path = 'train/<script>/<config>'``) with the official keys (``epoch``, ``actor_type``, ``net_type``,
``net``, ``net_info``, ``constructor``, ``optimizer``, ``stats``, ``settings``) holding **plain data only**
(tensors, numbers, strings, lists, dicts; ``settings`` as a dict), so ``torch.load(weights_only=True)`` reads
them. They also hold what an exact resume needs: ``lr_scheduler``, ``scaler`` (AMP) and ``rng_state``
(python, numpy, torch and CUDA generators of every rank). A run resumed from its checkpoint continues as
if it had never stopped (bitwise on CPU with the same seed). Every checkpoint also records its provenance:
``config`` (the resolved config; resuming with another one stops unless ``settings.resume_changed_config``),
``command_line``, ``launch_command``, ``git_commit`` and ``wandb_run_id``.

Which checkpoints are kept is the script's official rule (``checkpoint_epochs``); ``settings.save_every`` (epochs)
and ``settings.save_every_iters`` (training iterations, ``<NetType>_ep<EPOCH>_it<ITER>.pth.tar``, resumed at that
iteration) add temporary checkpoints, each deleted when the next checkpoint is written.

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
import shlex
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from lib.train.admin import multigpu
from lib.train.admin.stats import load_stats_state_dict, stats_state_dict
from lib.train.launch import LAUNCH_COMMAND_ENV
from lib.train.provenance import git_commit
from lib.utils.checkpoint import (CheckpointError, check_state_dict, extract_state_dict, safe_load,
                                  save_checkpoint_atomic)
from lib.utils.errors import UserError

__all__ = ["BaseTrainer", "capture_rng_state", "restore_rng_state", "CHECKPOINT_FORMAT", "ConfigChangedError",
           "config_differences", "RESUME_FREE_KEYS"]

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


def _order_of(path: str) -> tuple:
    """Sort key of a checkpoint file: ``<Net>_ep0005.pth.tar`` (epoch 5 done) -> (5, inf);
    ``<Net>_ep0005_it000100.pth.tar`` (100 iterations of epoch 5 done) -> (5, 100)."""
    m = re.search(r"_ep(\d+)(?:_it(\d+))?\.pth\.tar$", path)
    if not m:
        return (-1, 0)
    return (int(m.group(1)), float("inf") if m.group(2) is None else int(m.group(2)))


def _epoch_of(path: str) -> int:
    return _order_of(path)[0]


class ConfigChangedError(UserError):
    """Resuming a run whose checkpoint was trained with another config (without ``--resume_changed_config``)."""


#: config keys that may change between a run and its resumption (they do not change what is computed).
RESUME_FREE_KEYS = ("TRAIN.NUM_WORKER", "TRAIN.PRINT_INTERVAL")


def config_differences(old: Dict[str, Any], new: Dict[str, Any], prefix: str = "") -> List[Tuple[str, Any, Any]]:
    """``[(dotted key, old value, new value)]`` of two nested config dicts (missing values are ``'<absent>'``)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        dotted = f"{prefix}{key}"
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, dotted + ".")
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            out.append((dotted, a, b))
    return out


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
        self.max_epochs = 0
        self.stats: Dict[str, Any] = {}
        self.scaler = None
        self.config: Optional[Dict[str, Any]] = None  # the resolved config (build_trainer sets it)
        self.resume_iteration = 0  # training iterations of epoch self.epoch + 1 already done (mid-epoch resume)
        self._pending_rng = None  # generator states restored once the resumed epoch's loader iterator exists
        self.wandb_run_id: Optional[str] = None
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

    def checkpoint_path(self, epoch: int, iteration: int = 0) -> str:
        """``<Net>_ep<epoch>.pth.tar`` (epoch done) or ``<Net>_ep<epoch>_it<iteration>.pth.tar`` (``iteration``
        training iterations of ``epoch`` done)."""
        tail = f"_it{iteration:06d}" if iteration else ""
        return os.path.join(self.project_dir(), f"{type(self.net).__name__}_ep{epoch:04d}{tail}.pth.tar")

    def keeps(self, epoch: int) -> bool:
        """Whether the checkpoint at the end of ``epoch`` is kept for good (the script's official rule, or
        every epoch with ``settings.save_every_epoch``); other checkpoints (``--save_every``,
        ``--save_every_iters``) are deleted when the next checkpoint is written."""
        return bool(self.checkpoint_epochs(epoch, self.max_epochs) or getattr(self.settings, "save_every_epoch", False))

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
        self.max_epochs = max_epochs
        resumed = False
        if resume:
            resumed = self.load_checkpoint(None if resume == "latest" else resume, required=resume != "latest")
        elif load_latest:
            resumed = self.load_checkpoint()
        elif self.is_main and self.find_checkpoint() is not None:
            log.warning("--no_resume: starting from scratch; the checkpoints in %s will be overwritten",
                        self.project_dir())
        if load_previous_ckpt and not resumed:
            prv = getattr(self.settings, "project_path_prv", None)
            if not prv:
                raise ValueError("this training stage loads the previous stage's checkpoint: give --script_prv and "
                                 "--config_prv")
            self.load_state_dict(self.project_dir(prv))
        self.start_logging()
        save_every = int(getattr(self.settings, "save_every", 0) or 0)
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
                save = self.keeps(epoch) or (save_every > 0 and epoch % save_every == 0)
                if save and self._checkpoint_dir:
                    self.save_checkpoint()
        except BaseException:
            log.exception("Training crashed at epoch %d", epoch)
            raise
        log.info("Finished training!")

    def train_epoch(self) -> None:
        raise NotImplementedError

    def start_logging(self) -> None:
        """Open the loggers once the run knows whether it resumes (a resumed run continues its wandb run)."""

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
            "iteration": 0,
            "config": self.config,
            "command_line": shlex.join([sys.executable] + sys.argv),
            "launch_command": os.environ.get(LAUNCH_COMMAND_ENV) or shlex.join([sys.executable] + sys.argv),
            "git_commit": git_commit(),
            "wandb_run_id": self.wandb_run_id,
        }

    def save_checkpoint(self, iteration: int = 0) -> Optional[str]:
        """Write this epoch's checkpoint, or with ``iteration`` > 0 a mid-epoch one after that many training
        iterations of epoch ``self.epoch`` (main process; every rank takes part in gathering RNG states).
        Earlier checkpoints that the official rule does not keep are deleted once it is written."""
        state = self.state_dict()
        if iteration:
            state["epoch"], state["iteration"] = self.epoch - 1, int(iteration)
        if not self.is_main:
            return None
        path = self.checkpoint_path(self.epoch, iteration)
        save_checkpoint_atomic(state, path)
        log.info("checkpoint saved: %s", path)
        self._delete_temporary_checkpoints(keep=path)
        return path

    def _delete_temporary_checkpoints(self, keep: str) -> None:
        """Delete this run's checkpoints other than ``keep`` that the official rule does not keep."""
        for path in glob.glob(os.path.join(self.project_dir(), f"{type(self.net).__name__}_ep*.pth.tar")):
            epoch, iteration = _order_of(path)
            if path == keep or epoch < 0 or (iteration == float("inf") and self.keeps(epoch)):
                continue
            try:
                os.remove(path)
                log.info("temporary checkpoint removed: %s", path)
            except OSError:
                pass

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
            found = sorted(glob.glob(pattern), key=_order_of)
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
        changed = self._check_config(ckpt, path)
        sd = extract_state_dict(ckpt, f"checkpoint '{path}'")
        check_state_dict(self.net.state_dict(), sd, f"checkpoint '{path}'", net_type)
        self.net.load_state_dict(sd, strict=True)
        new_initial = [g.get("initial_lr", g["lr"]) for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch = int(ckpt["epoch"])
        self.resume_iteration = int(ckpt.get("iteration", 0) or 0)
        self.wandb_run_id = ckpt.get("wandb_run_id") or self.wandb_run_id
        if self.lr_scheduler is not None:
            if ckpt.get("lr_scheduler"):
                self.lr_scheduler.load_state_dict(ckpt["lr_scheduler"])
            else:  # official checkpoints carry no scheduler state
                self.lr_scheduler.last_epoch = self.epoch
        if changed:
            self._apply_new_learning_rates(new_initial)
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
            state = rng[rank] if rank < len(rng) else rng[0]
            if self.resume_iteration:
                self._pending_rng = state  # restored after the resumed epoch's loader iterator is created
            else:
                restore_rng_state(state)
        for loader in self.loaders:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(self.epoch)
        where = f", iteration {self.resume_iteration} of epoch {self.epoch + 1}" if self.resume_iteration else ""
        log.info("resumed from %s (epoch %d%s)", path, self.epoch, where)
        return True

    def _check_config(self, ckpt: Dict[str, Any], path: str) -> List[Tuple[str, Any, Any]]:
        """The config keys that differ between the checkpoint and this run (ignoring :data:`RESUME_FREE_KEYS`).

        Raises:
            ConfigChangedError: some differ and ``settings.resume_changed_config`` is not set.
        """
        old = ckpt.get("config")
        if not isinstance(old, dict) or not isinstance(self.config, dict):
            return []
        diff = [d for d in config_differences(old, self.config) if d[0] not in RESUME_FREE_KEYS]
        if not diff:
            return []
        listing = "; ".join(f"{key}: {a!r} in the checkpoint, {b!r} now" for key, a, b in diff)
        if not getattr(self.settings, "resume_changed_config", False):
            raise ConfigChangedError(
                f"checkpoint '{path}' was trained with another config ({listing}). Give --resume_changed_config to "
                f"resume with the new values, --no_resume to start from scratch, or restore the old config.")
        log.warning("resuming with a changed config (--resume_changed_config): %s", listing)
        return diff

    def _apply_new_learning_rates(self, new_initial: List[float]) -> None:
        """After resuming with a changed config: scale each group's current learning rate by new / old initial
        rate (exact for the step schedules), so that a changed ``TRAIN.LR`` takes effect."""
        groups = self.optimizer.param_groups
        if len(new_initial) != len(groups):
            return
        for g, new in zip(groups, new_initial):
            old = g.get("initial_lr", new)
            if old and old != new:
                g["lr"] = g["lr"] * new / old
                g["initial_lr"] = new
        if self.lr_scheduler is not None and hasattr(self.lr_scheduler, "base_lrs"):
            self.lr_scheduler.base_lrs = list(new_initial)
            if hasattr(self.lr_scheduler, "_last_lr"):
                self.lr_scheduler._last_lr = [g["lr"] for g in groups]

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
