"""The standard pieces every pytracking-style training script builds from its config: settings copied from
the YAML, the train/val loaders (datasets, sampler, processing, transforms), the optimizer and scheduler.

Source: OSTrack/STARK ``lib/train/base_functions.py``.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Tuple

import torch
from torch.utils.data.distributed import DistributedSampler

import lib.train.data.transforms as tfm
from lib.train.data import LTRLoader, STARKProcessing, TrackingSampler
from lib.train.dataset import names2datasets

__all__ = ["update_settings", "build_transforms", "build_dataloaders", "build_loader", "make_loader",
           "get_optimizer_scheduler", "amp_dtype"]

log = logging.getLogger(__name__)


def update_settings(settings, cfg) -> None:
    """Copy the crop, jitter and loop parameters of ``cfg`` into ``settings`` (official ``update_settings``)."""
    settings.print_interval = cfg.TRAIN.get("PRINT_INTERVAL", 50)
    settings.search_area_factor = {"template": cfg.DATA.TEMPLATE.FACTOR, "search": cfg.DATA.SEARCH.FACTOR}
    settings.output_sz = {"template": cfg.DATA.TEMPLATE.SIZE, "search": cfg.DATA.SEARCH.SIZE}
    settings.center_jitter_factor = {"template": cfg.DATA.TEMPLATE.CENTER_JITTER,
                                     "search": cfg.DATA.SEARCH.CENTER_JITTER}
    settings.scale_jitter_factor = {"template": cfg.DATA.TEMPLATE.SCALE_JITTER, "search": cfg.DATA.SEARCH.SCALE_JITTER}
    settings.grad_clip_norm = cfg.TRAIN.GRAD_CLIP_NORM
    settings.print_stats = None
    settings.batchsize = cfg.TRAIN.BATCH_SIZE
    settings.scheduler_type = cfg.TRAIN.SCHEDULER.TYPE
    settings.num_template = cfg.DATA.TEMPLATE.get("NUMBER", 1)
    settings.num_search = cfg.DATA.SEARCH.get("NUMBER", 1)


def build_transforms(cfg):
    """``(joint, train, val)`` transforms of the official training: joint grayscale (p 0.05) and flip
    (p 0.5); train brightness jitter 0.2, normalised-box flip (p 0.5), normalisation; val tensor +
    normalisation."""
    joint = tfm.Transform(tfm.ToGrayscale(probability=0.05), tfm.RandomHorizontalFlip(probability=0.5))
    train = tfm.Transform(tfm.ToTensorAndJitter(0.2), tfm.RandomHorizontalFlip_Norm(probability=0.5),
                          tfm.Normalize(mean=cfg.DATA.MEAN, std=cfg.DATA.STD))
    val = tfm.Transform(tfm.ToTensor(), tfm.Normalize(mean=cfg.DATA.MEAN, std=cfg.DATA.STD))
    return joint, train, val


def _processing(cfg, settings, transform, joint):
    return STARKProcessing(search_area_factor=settings.search_area_factor, output_sz=settings.output_sz,
                           center_jitter_factor=settings.center_jitter_factor,
                           scale_jitter_factor=settings.scale_jitter_factor, mode="sequence", transform=transform,
                           joint_transform=joint, settings=settings,
                           feat_stride=cfg.MODEL.get("BACKBONE", {}).get("STRIDE", 16))


def build_loader(name: str, cfg, settings, data_cfg, processing, training: bool, epoch_interval: int = 1,
                 make_sampler: Optional[Callable] = None) -> LTRLoader:
    """One loader: datasets of ``data_cfg.DATASETS_NAME``, a :class:`TrackingSampler`, a
    ``DistributedSampler`` under DDP (shuffled by epoch), batches stacked on dim 1, last batch dropped.

    ``make_sampler(datasets, data_cfg, processing) -> Dataset`` replaces the :class:`TrackingSampler`
    (AiATrack's reference sampler); the rest of the loader is the same."""
    datasets = names2datasets(data_cfg.DATASETS_NAME, settings.env, use_lmdb=bool(getattr(settings, "use_lmdb", False)))
    if make_sampler is not None:
        dataset = make_sampler(datasets, data_cfg, processing)
    else:
        dataset = TrackingSampler(datasets=datasets, p_datasets=data_cfg.DATASETS_RATIO,
                                  samples_per_epoch=data_cfg.SAMPLE_PER_EPOCH, max_gap=cfg.DATA.MAX_SAMPLE_INTERVAL,
                                  num_search_frames=settings.num_search, num_template_frames=settings.num_template,
                                  processing=processing, frame_sample_mode=cfg.DATA.get("SAMPLER_MODE", "causal"),
                                  train_cls=cfg.TRAIN.get("TRAIN_CLS", False),
                                  skip_bad_data=bool(getattr(settings, "skip_bad_data", False)),
                                  sample_seed=getattr(settings, "sample_seed", None))
    return make_loader(name, dataset, cfg, settings, training, epoch_interval, stack_dim=1)


def make_loader(name: str, dataset, cfg, settings, training: bool, epoch_interval: int = 1,
                stack_dim: int = 1) -> LTRLoader:
    """The :class:`LTRLoader` of a sampler ``dataset``: ``TRAIN.BATCH_SIZE`` per process, last batch dropped,
    ``TRAIN.NUM_WORKER`` workers (``settings.num_workers`` overrides), a ``DistributedSampler`` under DDP
    (shuffled by epoch), batches stacked on ``stack_dim``."""
    distributed = getattr(settings, "local_rank", -1) != -1
    sampler = DistributedSampler(dataset, shuffle=getattr(settings, "shuffle", True),
                                 seed=int(getattr(settings, "seed", 0))) if distributed else None
    num_workers = getattr(settings, "num_workers", None)
    num_workers = cfg.TRAIN.NUM_WORKER if num_workers is None else num_workers
    # official: the train loader shuffles (its indices are ignored, but shuffling draws from the torch
    # generator), the val loader does not; under DDP both use a DistributedSampler
    shuffle = training and not distributed and getattr(settings, "shuffle", True)
    return LTRLoader(name, dataset, training=training, batch_size=cfg.TRAIN.BATCH_SIZE, shuffle=shuffle,
                     sampler=sampler,
                     num_workers=num_workers, drop_last=True, stack_dim=stack_dim, epoch_interval=epoch_interval,
                     seed=int(getattr(settings, "seed", 0)), rank=int(getattr(settings, "rank", 0)))


def build_dataloaders(cfg, settings) -> Tuple[LTRLoader, Optional[LTRLoader]]:
    """The train loader and, when the config has a ``DATA.VAL`` section, the val loader (run every
    ``TRAIN.VAL_EPOCH_INTERVAL`` epochs)."""
    joint, train_tf, val_tf = build_transforms(cfg)
    loader_train = build_loader("train", cfg, settings, cfg.DATA.TRAIN, _processing(cfg, settings, train_tf, joint),
                                training=True)
    loader_val = None
    if "VAL" in cfg.DATA:
        loader_val = build_loader("val", cfg, settings, cfg.DATA.VAL, _processing(cfg, settings, val_tf, joint),
                                  training=False, epoch_interval=cfg.TRAIN.get("VAL_EPOCH_INTERVAL", 1))
    return loader_train, loader_val


def get_optimizer_scheduler(net, cfg, param_groups: Callable):
    """AdamW over ``param_groups(net, cfg)`` and the epoch scheduler of ``TRAIN.SCHEDULER.TYPE``.

    ``'step'``: ``StepLR(step_size=TRAIN.LR_DROP_EPOCH)`` with torch's default ``gamma = 0.1``: the official
    code does not pass ``TRAIN.SCHEDULER.DECAY_RATE`` (so that key has no effect, here as there).
    ``'Mstep'``: ``MultiStepLR(TRAIN.SCHEDULER.MILESTONES, TRAIN.SCHEDULER.GAMMA)``.

    Raises:
        ValueError: an optimizer other than ADAMW or an unknown scheduler type (names the config key).
    """
    groups = [g for g in param_groups(net, cfg) if len(g["params"]) > 0]
    if cfg.TRAIN.OPTIMIZER != "ADAMW":
        raise ValueError(f"TRAIN.OPTIMIZER '{cfg.TRAIN.OPTIMIZER}' is not supported (official: ADAMW)")
    optimizer = torch.optim.AdamW(groups, lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY)
    kind = cfg.TRAIN.SCHEDULER.TYPE
    if kind == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.TRAIN.LR_DROP_EPOCH)
    elif kind == "Mstep":
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.TRAIN.SCHEDULER.MILESTONES,
                                                         gamma=cfg.TRAIN.SCHEDULER.GAMMA)
    else:
        raise ValueError(f"TRAIN.SCHEDULER.TYPE '{kind}' is not supported (known: step, Mstep)")
    return optimizer, scheduler


def amp_dtype(value) -> Optional[torch.dtype]:
    """``TRAIN.AMP`` -> autocast dtype: False/None/'' -> None (off), True/'fp16'/'float16' -> float16 (with a
    gradient scaler, as the official code), 'bf16'/'bfloat16' -> bfloat16 (no scaler needed).

    Raises:
        ValueError: any other value (names the config key).
    """
    if value in (False, None, "", 0, "false", "False", "none"):
        return None
    if value in (True, 1, "fp16", "float16", "true", "True"):
        return torch.float16
    if value in ("bf16", "bfloat16"):
        return torch.bfloat16
    raise ValueError(f"TRAIN.AMP must be false, true/fp16 or bf16, got {value!r}")
