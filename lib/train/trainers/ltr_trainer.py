"""The training loop of every pytracking-style tracker (pytracking/OSTrack ``ltr_trainer.py``): forward
through the actor, backward, gradient clipping, optimizer step, optional mixed precision, running
statistics, console/file log with tqdm, TensorBoard scalars and wandb.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import logging
import os
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

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
        self.wandb_cfg = wandb_cfg
        self.tensorboard_writer = None
        self.wandb_writer = None
        self._iter_time: Dict[str, float] = {}  # seconds per iteration of each loader (ETA)

    def start_logging(self) -> None:
        """TensorBoard under ``<save_dir>/tensorboard/<project_path>`` and, with ``use_wandb``, a wandb run under
        ``<save_dir>/wandb/<project_path>`` whose id is stored in the checkpoints (a resumed run continues it;
        its step is the training iteration). Main process only."""
        if not self.is_main or self.tensorboard_writer is not None:
            return
        settings = self.settings
        tb_dir = os.path.join(settings.save_dir, "tensorboard", settings.project_path)
        os.makedirs(tb_dir, exist_ok=True)
        from lib.train.admin.tensorboard import TensorboardWriter

        self.tensorboard_writer = TensorboardWriter(tb_dir, [l.name for l in self.loaders])
        if getattr(settings, "use_wandb", False):
            from lib.train.admin.wandb_writer import WandbWriter

            wandb_dir = os.path.join(settings.save_dir, "wandb", settings.project_path)
            os.makedirs(wandb_dir, exist_ok=True)
            self.wandb_writer = WandbWriter(settings.project_path[len("train/"):], self.wandb_cfg or {}, wandb_dir,
                                            run_id=self.wandb_run_id)
            self.wandb_run_id = self.wandb_writer.run_id

    # ------------------------------------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def training_step(self, data, loader, scale: float = 1.0, step: bool = True, start: bool = True) -> dict:
        """Forward one batch and, for a training loader, back-propagate ``loss * scale``; with ``step`` clip the
        gradients (``settings.grad_clip_norm``) and update the network. Gradient accumulation over k batches
        calls it with ``scale = 1/k``, ``start`` on the first batch (gradients zeroed) and ``step`` on the last,
        which gives the update of one batch k times larger (equal batch sizes, losses that are batch means).
        Returns the actor's stats (unscaled loss)."""
        if loader.training and start:
            self.optimizer.zero_grad()
        sync = contextlib.nullcontext()
        if loader.training and not step and multigpu.is_multi_gpu(self.actor.net):
            sync = self.actor.net.no_sync()  # DDP: average the gradients once, at the step
        with sync:
            with self._autocast():
                loss, stats = self.actor(data)
            if loader.training:
                loss = loss * scale if scale != 1.0 else loss
                if self.scaler is None:
                    loss.backward()
                else:
                    self.scaler.scale(loss).backward()
        if loader.training and step:
            clip = float(getattr(self.settings, "grad_clip_norm", 0) or 0)
            if self.scaler is None:
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.actor.net.parameters(), clip)
                self.optimizer.step()
            else:
                if clip > 0:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.actor.net.parameters(), clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
        return stats

    @staticmethod
    def accumulation_group(i: int, n: int, accum: int):
        """For iteration ``i`` (1-based) of ``n`` with ``accum`` iterations per optimizer step:
        ``(first, last, size)``: whether it starts and ends its group, and the group's size (the last group of
        an epoch may be shorter)."""
        first_of_group = (i - 1) // accum * accum + 1
        size = min(accum, n - first_of_group + 1)
        return i == first_of_group, i == first_of_group + size - 1, size

    def cycle_dataset(self, loader) -> None:
        """One pass over ``loader`` (a resumed run starts the training loader after its checkpoint's iteration)."""
        self.actor.train(loader.training)
        torch.set_grad_enabled(loader.training)
        self._init_timing()
        n = len(loader)
        start = 0
        if loader.training and self.resume_iteration:
            start, self.resume_iteration = min(self.resume_iteration, n), 0
        self._start_iteration = start
        if start and hasattr(loader, "iter_from"):
            iterator = loader.iter_from(start)
        else:  # a plain DataLoader: read and drop the batches already done
            iterator = itertools.islice(iter(loader), start, None)
        if self._pending_rng is not None:  # mid-epoch resume: the generators as they were after iteration start
            from .base_trainer import restore_rng_state

            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        accum = max(1, int(getattr(self.settings, "accum_iter", 1) or 1)) if loader.training else 1
        every_iters = int(getattr(self.settings, "save_every_iters", 0) or 0) if loader.training else 0
        bar = tqdm(total=n, initial=start, desc=f"[{loader.name}: {self.epoch}]", disable=not self.is_main or
                   not getattr(self.settings, "progress_bar", True), leave=False, dynamic_ncols=True)
        batch_size = 0
        try:
            for i, data in enumerate(iterator, start + 1):
                self.data_read_done_time = time.time()
                data = data.to(self.device)
                self.data_to_gpu_time = time.time()
                data["epoch"] = self.epoch
                first, last, size = self.accumulation_group(i, n, accum)
                stats = self.training_step(data, loader, scale=1.0 / size, step=last, start=first)
                batch_size = self._batch_size(data, loader)
                self._update_stats(stats, batch_size, loader)
                self._print_stats(i, loader, batch_size)
                bar.update(1)
                if loader.training and self.wandb_writer is not None and i % self.settings.print_interval == 0:
                    self.wandb_writer.write_log(self.stats, self.epoch, step=(self.epoch - 1) * n + i)
                if every_iters and last and i < n:
                    done = (self.epoch - 1) * n + i
                    if done // every_iters > (done - size) // every_iters and self._checkpoint_dir:
                        self.save_checkpoint(iteration=i)
                if self.on_iteration is not None:
                    self.on_iteration(self, loader, i)
        finally:
            bar.close()
            torch.set_grad_enabled(True)
        if not loader.training:
            self._reduce_stats(loader)
        if self.num_frames and batch_size:
            epoch_time = self.prev_time - self.start_time
            self._log(f"Epoch Time: {datetime.timedelta(seconds=epoch_time)}  Avg Data Time: "
                      f"{self.avg_data_time / self.num_frames * batch_size:.5f}  Avg Forward Time: "
                      f"{self.avg_forward_time / self.num_frames * batch_size:.5f}")

    def _reduce_stats(self, loader) -> None:
        """Average ``loader``'s running statistics over all processes (DDP): each meter's sum and count are
        summed over the ranks, so every rank holds the average over the whole validation set."""
        if not multigpu.is_dist() or self.stats.get(loader.name) is None:
            return
        meters = [(k, m) for k, m in self.stats[loader.name].items() if isinstance(m, AverageMeter)]
        if not meters:
            return
        values = torch.tensor([[float(m.sum), float(m.count)] for _, m in meters], dtype=torch.float64,
                              device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(values)
        for (_, m), (total, count) in zip(meters, values.tolist()):
            m.sum, m.count = total, int(round(count))
            m.avg = total / count if count else 0
        parts = [f"{k}: {m.avg:.5f}" for k, m in meters]
        self._log(f"[{loader.name}: {self.epoch}] averaged over {multigpu.get_world_size()} processes: "
                  + "  ,  ".join(parts))

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

    def _eta_seconds(self, loader, i: int) -> float:
        """Seconds left in the whole run: the rest of this loader, the other loaders of this epoch and every
        later epoch, each iteration at its loader's measured time (the training loader's if not measured)."""
        t_train = self._iter_time.get(self.loaders[0].name, 0.0)
        left = (len(loader) - i) * self._iter_time.get(loader.name, t_train)
        after = False
        for l in self.loaders:
            if l is loader:
                after = True
                continue
            if after and self.epoch % l.epoch_interval == 0:
                left += len(l) * self._iter_time.get(l.name, t_train)
        for epoch in range(self.epoch + 1, max(self.max_epochs, self.epoch) + 1):
            for l in self.loaders:
                if epoch % l.epoch_interval == 0:
                    left += len(l) * self._iter_time.get(l.name, t_train)
        return left

    def _print_stats(self, i: int, loader, batch_size: int) -> None:
        self.num_frames += batch_size
        now = time.time()
        batch_fps = batch_size / max(now - self.prev_time, 1e-9)
        average_fps = self.num_frames / max(now - self.start_time, 1e-9)
        prev = self.prev_time
        self.prev_time = now
        self.avg_data_time += self.data_read_done_time - prev
        self.avg_forward_time += now - self.data_to_gpu_time
        done = i - getattr(self, "_start_iteration", 0)
        self._iter_time[loader.name] = (now - self.start_time) / max(done, 1)
        if i % self.settings.print_interval == 0 or i == len(loader):
            world = multigpu.get_world_size()
            eta = datetime.timedelta(seconds=int(self._eta_seconds(loader, i)))
            parts = [f"[{loader.name}: {self.epoch}, {i} / {len(loader)}] FPS: {average_fps:.1f} ({batch_fps:.1f})",
                     f"samples/s: {average_fps * world:.1f}",
                     f"DataTime: {self.avg_data_time / self.num_frames * batch_size:.3f}",
                     f"ForwardTime: {self.avg_forward_time / self.num_frames * batch_size:.3f}"]
            if loader.training:
                parts.append("lr: " + "/".join(f"{g['lr']:.3g}" for g in self.optimizer.param_groups))
            for name, val in self.stats[loader.name].items():
                if (self.settings.print_stats is None or name in self.settings.print_stats) and hasattr(val, "avg"):
                    parts.append(f"{name}: {val.avg:.5f}")
            parts.append(f"epoch {self.epoch} of {max(self.max_epochs, self.epoch)}, ETA {eta}")
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
