"""One training run: config -> loaders -> network -> actor -> optimizer -> trainer.

Everything script-specific comes from the script's :class:`~lib.train.actors.TrainRecipe`; everything
config-specific from ``experiments/<script>/<config>.yaml`` (strictly merged over the defaults, so a key
that does not exist is an error naming the key and the file). Source: OSTrack/STARK ``lib/train/train_script.py``.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Optional

import torch

from lib.config import Config, ConfigError, load_config
from lib.models import build_network
from lib.train.actors import get_recipe
from lib.train.admin import multigpu
from lib.train.base_functions import amp_dtype, build_dataloaders, get_optimizer_scheduler, update_settings
from lib.train.pretrained import check_pretrained
from lib.train.trainers import LTRTrainer

__all__ = ["run", "build_trainer", "setup_logging"]

log = logging.getLogger("lib.train")


def setup_logging(log_file: Optional[str], is_main: bool) -> None:
    """Log ``lib.train`` messages to the console and to ``log_file`` (main process only)."""
    logger = logging.getLogger("lib.train")
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    for h in list(logger.handlers):
        if getattr(h, "_lib_train", False):
            logger.removeHandler(h)
            h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    console = logging.StreamHandler()
    console.setFormatter(fmt)
    console._lib_train = True
    logger.addHandler(console)
    if log_file and is_main:
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        fh._lib_train = True
        logger.addHandler(fh)
    logger.propagate = False


def build_trainer(settings, cfg: Optional[Config] = None, net: Optional[torch.nn.Module] = None, on_iteration=None):
    """Build the trainer of ``settings`` (script, config, save_dir, ranks, device, ...) without running it.

    Args:
        settings: :class:`~lib.train.admin.settings.Settings` with ``script_name``, ``config_name`` (a name or
            a YAML path), ``save_dir``, ``project_path``, ``local_rank``, ``rank``, ``device``.
        cfg: an already loaded config (default: load ``settings.cfg_file``).
        net: an already built network (default ``build_network(script, cfg, training=True)``, which loads
            the pretrained backbone from ``pretrained_models/`` when present).
        on_iteration: passed to :class:`LTRTrainer`.

    Returns:
        ``(trainer, cfg)``.
    """
    if cfg is None:
        cfg = load_config(settings.script_name, settings.cfg_file)
    apply_run_options(settings, cfg)
    recipe = get_recipe(settings.script_name)
    (recipe.update_settings or update_settings)(settings, cfg)
    if recipe.settings_hook is not None:
        recipe.settings_hook(settings, cfg)
    if net is None:  # before the data is loaded: a missing pretrained file stops the run now
        missing = check_pretrained(recipe, cfg, bool(getattr(settings, "random_init", False)))
        if missing:
            log.warning("--random_init: training from random weights (missing %s)", ", ".join(missing))
    log_dir = os.path.join(settings.save_dir, "logs")
    settings.log_file = os.path.join(log_dir, f"{settings.script_name}-{settings.config_name}.log")
    is_main = int(getattr(settings, "rank", 0)) == 0
    if is_main:
        os.makedirs(log_dir, exist_ok=True)

    loader_train, loader_val = (recipe.build_dataloaders or build_dataloaders)(cfg, settings)

    device = torch.device(getattr(settings, "device", None) or "cpu")
    settings.device = device
    amp = amp_dtype(cfg.TRAIN.get("AMP", False))
    if amp == torch.float16 and device.type == "cpu":
        warnings.warn("TRAIN.AMP fp16 on a CPU is about 14x slower than bf16 there (no fp16 matrix kernels): "
                      "set TRAIN.AMP: bf16 for CPU training", stacklevel=2)
    if net is None:
        net = build_network(settings.script_name, cfg, training=True)
    if recipe.prepare_network is not None:
        net = recipe.prepare_network(net, cfg, settings)
    net = net.to(device)
    if getattr(settings, "local_rank", -1) != -1:
        device_ids = [device.index] if device.type == "cuda" else None
        net = multigpu.MultiGPU(net, device_ids=device_ids, find_unused_parameters=True)
    objective, loss_weight = recipe.build_objective(cfg)
    actor = recipe.actor_cls(net=net, objective=objective, loss_weight=loss_weight, settings=settings, cfg=cfg)
    if recipe.build_optimizer is not None:
        optimizer, lr_scheduler = recipe.build_optimizer(multigpu.unwrap(net), cfg)
    else:
        optimizer, lr_scheduler = get_optimizer_scheduler(multigpu.unwrap(net), cfg, recipe.param_groups)
    trainer = LTRTrainer(actor, [loader_train, loader_val], optimizer, settings, lr_scheduler,
                         checkpoint_epochs=recipe.checkpoint_epochs, amp_dtype=amp,
                         wandb_cfg=cfg.to_dict(), on_iteration=on_iteration)
    trainer.config = cfg.to_dict()
    return trainer, cfg


def apply_run_options(settings, cfg: Config) -> None:
    """Fold the run options into ``cfg`` and ``settings``: ``--accum_iter`` overrides ``TRAIN.ACCUM_ITER`` (so the
    checkpoint's config records it); ``--save_every_iters`` draws every sample from its own seed (``seed``,
    epoch, index) without shuffling, so that a run can resume inside an epoch exactly, whatever the number of
    loader workers.

    Raises:
        ConfigError: ``TRAIN.ACCUM_ITER`` (or ``--accum_iter``) below 1.
    """
    accum = getattr(settings, "accum_iter", None)
    if accum is not None:
        cfg.TRAIN.ACCUM_ITER = int(accum)
    accum = cfg.TRAIN.get("ACCUM_ITER", 1)
    if not isinstance(accum, int) or accum < 1:
        raise ConfigError(f"{settings.cfg_file}: TRAIN.ACCUM_ITER (or --accum_iter) must be an integer >= 1, "
                          f"got {accum!r}")
    settings.accum_iter = accum
    for name in ("save_every", "save_every_iters"):
        value = int(getattr(settings, name, 0) or 0)
        if value < 0:
            raise ConfigError(f"--{name} must be >= 0, got {value}")
        setattr(settings, name, value)
    if settings.save_every_iters and getattr(settings, "sample_seed", None) is None:
        settings.sample_seed = int(getattr(settings, "seed", 0))
        settings.shuffle = False


def run(settings) -> LTRTrainer:
    """Train ``settings.script_name`` with ``settings.cfg_file`` until ``TRAIN.EPOCH``, resuming from the newest
    checkpoint (or ``settings.resume``), and loading the previous stage (``settings.project_path_prv``) first
    when the recipe asks for it or ``--script_prv/--config_prv`` were given."""
    settings.description = f"Training script for {settings.script_name}"
    setup_logging(os.path.join(settings.save_dir, "logs", f"{settings.script_name}-{settings.config_name}.log"),
                  int(getattr(settings, "rank", 0)) == 0)
    trainer, cfg = build_trainer(settings)
    recipe = get_recipe(settings.script_name)
    load_prv = recipe.load_previous_stage or bool(getattr(settings, "project_path_prv", None))
    resume = getattr(settings, "resume", None)
    trainer.train(cfg.TRAIN.EPOCH, load_latest=not getattr(settings, "no_resume", False),
                  load_previous_ckpt=load_prv, resume=None if resume in (None, "", "latest") else resume)
    if trainer.tensorboard_writer is not None:
        trainer.tensorboard_writer.close()
    if trainer.wandb_writer is not None:
        trainer.wandb_writer.finish()
    return trainer
