"""The training loop of every pytracking-style tracker (pytracking/OSTrack ``ltr_trainer.py``): forward
through the actor, backward, gradient clipping, optimizer step, optional mixed precision, running
statistics, console/file log with tqdm, TensorBoard scalars and wandb.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import time
from collections import OrderedDict
from typing import Callable, List, Optional

import torch
from tqdm import tqdm

from lib.train.admin import multigpu
from lib.train.admin.stats import AverageMeter, StatValue

from .base_trainer import BaseTrainer

__all__ = ["LTRTrainer"]

log = logging.getLogger("lib.train")


class LTRTrainer(BaseTrainer):
    """Loop over the loaders of each epoch.

    Args:
        actor, loaders, optimizer, settings, lr_scheduler, checkpoint_epochs: see :class:`BaseTrainer`.
        amp_dtype: None (float32), ``torch.float16`` (autocast + gradient scaler, the official ``TRAIN.AMP``)
            or ``torch.bfloat16`` (autocast, no scaler).
        wandb_cfg: configuration stored with the wandb run (``settings.use_wandb``).
        on_iteration: optional ``fn(trainer, loader, i)`` called after each iteration (tests, profiling).
    """

    def __init__(self, actor, loaders: List, optimizer, settings, lr_scheduler=None,
                 checkpoint_epochs: Optional[Callable] = None, amp_dtype: Optional[torch.dtype] = None,
                 wandb_cfg: Optional[dict] = None, on_iteration: Optional[Callable] = None):
        super().__init__(actor, loaders, optimizer, settings, lr_scheduler, checkpoint_epochs)
        for name, default in (("print_interval", 10), ("print_stats", None), ("description", "")):
            if getattr(self.settings, name, None) is None:
                setattr(self.settings, name, default)
        self.stats = OrderedDict((loader.name, None) for loader in self.loaders)
        self.amp_dtype = amp_dtype
        self.scaler = None
        if amp_dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device.type)
        self.on_iteration = on_iteration
        self.tensorboard_writer = None
        self.wandb_writer = None
        if self.is_main:
            tb_root = getattr(settings.env, "tensorboard_dir", "") or os.path.join(settings.save_dir, "tensorboard")
            tb_dir = os.path.join(tb_root, settings.project_path)
            os.makedirs(tb_dir, exist_ok=True)
            from lib.train.admin.tensorboard import TensorboardWriter

            self.tensorboard_writer = TensorboardWriter(tb_dir, [l.name for l in self.loaders])
            if getattr(settings, "use_wandb", False):
                from lib.train.admin.wandb_writer import WandbWriter

                samples = getattr(self.loaders[0].dataset, "samples_per_epoch", 0)
                interval = multigpu.get_world_size() * settings.batchsize
                self.wandb_writer = WandbWriter(settings.project_path[len("train/"):], wandb_cfg or {}, tb_dir,
                                                samples * max(0, self.epoch - 1), interval)

    # ------------------------------------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def training_step(self, data, loader) -> dict:
        """Forward one batch and, for a training loader, update the network. Returns the actor's stats."""
        with self._autocast():
            loss, stats = self.actor(data)
        if loader.training:
            self.optimizer.zero_grad()
            clip = float(getattr(self.settings, "grad_clip_norm", 0) or 0)
            if self.scaler is None:
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.actor.net.parameters(), clip)
                self.optimizer.step()
            else:
                self.scaler.scale(loss).backward()
                if clip > 0:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.actor.net.parameters(), clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
        return stats

    def cycle_dataset(self, loader) -> None:
        """One pass over ``loader``."""
        self.actor.train(loader.training)
        torch.set_grad_enabled(loader.training)
        self._init_timing()
        n = len(loader)
        bar = tqdm(total=n, desc=f"[{loader.name}: {self.epoch}]", disable=not self.is_main or
                   not getattr(self.settings, "progress_bar", True), leave=False, dynamic_ncols=True)
        batch_size = 0
        try:
            for i, data in enumerate(loader, 1):
                self.data_read_done_time = time.time()
                data = data.to(self.device)
                self.data_to_gpu_time = time.time()
                data["epoch"] = self.epoch
                stats = self.training_step(data, loader)
                batch_size = self._batch_size(data, loader)
                self._update_stats(stats, batch_size, loader)
                self._print_stats(i, loader, batch_size)
                bar.update(1)
                if self.wandb_writer is not None and i % self.settings.print_interval == 0:
                    self.wandb_writer.write_log(self.stats, self.epoch)
                if self.on_iteration is not None:
                    self.on_iteration(self, loader, i)
        finally:
            bar.close()
            torch.set_grad_enabled(True)
        if self.num_frames and batch_size:
            epoch_time = self.prev_time - self.start_time
            self._log(f"Epoch Time: {datetime.timedelta(seconds=epoch_time)}  Avg Data Time: "
                      f"{self.avg_data_time / self.num_frames * batch_size:.5f}  Avg Forward Time: "
                      f"{self.avg_forward_time / self.num_frames * batch_size:.5f}")

    @staticmethod
    def _batch_size(data, loader) -> int:
        """Samples in a batch: the size of ``template_images`` (or ``search_images``, for trackers without
        templates such as AiATrack) along the loader's stacking dim."""
        key = "template_images" if "template_images" in data else "search_images"
        return int(data[key].shape[loader.stack_dim])

    def train_epoch(self) -> None:
        """One epoch of every loader whose ``epoch_interval`` divides the epoch."""
        for loader in self.loaders:
            if self.epoch % loader.epoch_interval == 0:
                if hasattr(loader, "set_epoch"):
                    loader.set_epoch(self.epoch)
                self.cycle_dataset(loader)
        self._stats_new_epoch()
        if self.tensorboard_writer is not None:
            if self.epoch == 1:
                self.tensorboard_writer.write_info(getattr(self.settings, "script_name", ""), self.settings.description)
            self.tensorboard_writer.write_epoch(self.stats, self.epoch)

    # statistics --------------------------------------------------------------------------------------------
    def _init_timing(self) -> None:
        self.num_frames = 0
        self.start_time = time.time()
        self.prev_time = self.start_time
        self.avg_data_time = 0.0
        self.avg_forward_time = 0.0

    def _lr_list(self):
        try:
            return self.lr_scheduler.get_last_lr()
        except Exception:
            return [g["lr"] for g in self.optimizer.param_groups]

    def _update_stats(self, new_stats: dict, batch_size: int, loader) -> None:
        if self.stats.get(loader.name) is None:
            self.stats[loader.name] = OrderedDict((name, AverageMeter()) for name in new_stats)
        meters = self.stats[loader.name]
        if loader.training and self.lr_scheduler is not None:
            for i, lr in enumerate(self._lr_list()):
                meters.setdefault(f"LearningRate/group{i}", StatValue()).update(lr)
        for name, val in new_stats.items():
            meters.setdefault(name, AverageMeter()).update(val, batch_size)

    def _log(self, msg: str) -> None:
        if not self.is_main:
            return
        log_file = getattr(self.settings, "log_file", None)
        if log_file:
            with open(log_file, "a") as f:
                f.write(msg + "\n")
        if getattr(self.settings, "console", True):
            tqdm.write(msg)

    def _print_stats(self, i: int, loader, batch_size: int) -> None:
        self.num_frames += batch_size
        now = time.time()
        batch_fps = batch_size / max(now - self.prev_time, 1e-9)
        average_fps = self.num_frames / max(now - self.start_time, 1e-9)
        prev = self.prev_time
        self.prev_time = now
        self.avg_data_time += self.data_read_done_time - prev
        self.avg_forward_time += now - self.data_to_gpu_time
        if i % self.settings.print_interval == 0 or i == len(loader):
            parts = [f"[{loader.name}: {self.epoch}, {i} / {len(loader)}] FPS: {average_fps:.1f} ({batch_fps:.1f})",
                     f"DataTime: {self.avg_data_time / self.num_frames * batch_size:.3f}",
                     f"ForwardTime: {self.avg_forward_time / self.num_frames * batch_size:.3f}"]
            for name, val in self.stats[loader.name].items():
                if (self.settings.print_stats is None or name in self.settings.print_stats) and hasattr(val, "avg"):
                    parts.append(f"{name}: {val.avg:.5f}")
            self._log("  ,  ".join(parts))

    def _stats_new_epoch(self) -> None:
        for loader in self.loaders:
            if loader.training and self.lr_scheduler is not None and self.stats.get(loader.name) is not None:
                for i, lr in enumerate(self._lr_list()):
                    self.stats[loader.name].setdefault(f"LearningRate/group{i}", StatValue()).update(lr)
        for meters in self.stats.values():
            if meters is None:
                continue
            for meter in meters.values():
                if hasattr(meter, "new_epoch"):
                    meter.new_epoch()
