"""SparseTT training: the actor (both branches of the double head, focal + IoU losses), the optimizer (AdamW,
backbone at 0.1x, multi-stage learning rates), the track-pair loader and the train recipe of script
``sparsett``.

Source: fzh0917/SparseTT (video_analyst): ``videoanalyst/model/loss/loss_impl/{focal_loss,iou_loss}.py``,
``videoanalyst/engine/trainer/trainer_impl/regular_trainer.py`` (sum of the losses, no gradient clipping),
``videoanalyst/optim/optimizer/optimizer_impl/{adamw.py, utils/lr_policy.py (MultiStageLR),
utils/lr_multiply.py}``, ``experiments/sparsett/train/{got10k,fulldata}/*.yaml``. SPARSETT.md section 6.
"""

from __future__ import annotations

import math
import re
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from lib.train.data.pair_processing import DenseboxPairProcessing
from lib.train.data.pair_sampler import TrackPairFilter, TrackPairSampler
from lib.train.losses import IoULoss, SigmoidFocalLoss

from . import BaseActor, TrainRecipe, register_recipe

__all__ = ["SparseTTActor", "build_sparsett_objective", "basemodel_param_groups", "MultiStageLR",
           "build_sparsett_optimizer", "sparsett_update_settings", "check_crop_sizes", "build_sparsett_dataloaders",
           "sync_batch_norm", "LOSS_NAMES"]

#: the four losses, in the official order (names are the keys of the official loss dict)
LOSS_NAMES = ("cls_fc", "reg_fc", "cls_conv", "reg_conv")


class SparseTTActor(BaseActor):
    """Actor of SparseTT.

    Forward: ``net({'im_z': template_images, 'im_x': search_images}, phase='train')`` with the batch's
    ``(B, 3, z, z)`` / ``(B, 3, x, x)`` normalised crops (loader stacked on dim 0), giving ``cls_fc`` /
    ``cls_conv`` ``(B, N, 1)`` logits and ``bbox_fc`` / ``bbox_conv`` ``(B, N, 4)`` xyxy crop pixels.

    Loss (official ``RegularTrainer``: the sum of the weighted losses): ``w_cls_fc * focal(cls_fc, cls_gt) +
    w_reg_fc * IoU(bbox_fc, box_gt) + w_cls_conv * focal(cls_conv, cls_gt) + w_reg_conv * IoU(bbox_conv,
    box_gt)`` (weights 1.4 / 0.6 / 0.5 / 2.0). The stats hold the total, each *weighted* loss (the values the
    official monitor prints, its weights being inside the losses) and the mean IoU of each branch over the
    positive points.

    Raises:
        ValueError: a non-finite loss (training diverged).
    """

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        pred = self.forward_pass(data)
        return self.compute_losses(pred, data)

    def forward_pass(self, data) -> Dict[str, torch.Tensor]:
        return self.net({"im_z": data["template_images"], "im_x": data["search_images"]}, phase="train")

    def compute_losses(self, pred: Dict[str, torch.Tensor], data, return_status: bool = True):
        cls_gt, box_gt = data["cls_gt"], data["box_gt"]
        obj, w = self.objective, self.loss_weight
        losses = {"cls_fc": obj["cls_fc"](pred["cls_fc"], cls_gt), "cls_conv": obj["cls_conv"](pred["cls_conv"], cls_gt)}
        losses["reg_fc"], iou_fc = obj["reg_fc"](pred["bbox_fc"], box_gt, cls_gt)
        losses["reg_conv"], iou_conv = obj["reg_conv"](pred["bbox_conv"], box_gt, cls_gt)
        weighted = {name: w[name] * losses[name] for name in LOSS_NAMES}
        loss = sum(weighted[name] for name in LOSS_NAMES)
        if not torch.isfinite(loss):
            raise ValueError(f"SparseTT loss is not finite ({ {k: float(v) for k, v in weighted.items()} }): "
                             f"training diverged")
        if not return_status:
            return loss
        status = {"Loss/total": loss.item()}
        status.update({f"Loss/{name}": weighted[name].item() for name in LOSS_NAMES})
        status.update({"IoU/fc": iou_fc.item(), "IoU/conv": iou_conv.item()})
        return loss, status


def build_sparsett_objective(cfg) -> Tuple[Dict, Dict]:
    """The four official losses and their weights from ``TRAIN.LOSS``: sigmoid focal losses (``ALPHA``,
    ``GAMMA``) on both class branches, "+1" IoU losses on both box branches."""
    c = cfg.TRAIN.LOSS
    objective = {"cls_fc": SigmoidFocalLoss(c.CLS_FC.ALPHA, c.CLS_FC.GAMMA), "reg_fc": IoULoss(),
                 "cls_conv": SigmoidFocalLoss(c.CLS_CONV.ALPHA, c.CLS_CONV.GAMMA), "reg_conv": IoULoss()}
    weights = {name: float(c[name.upper()].WEIGHT) for name in LOSS_NAMES}
    return objective, weights


def basemodel_param_groups(net: nn.Module, cfg) -> List[Dict]:
    """The official ``lr_multiplier`` groups, in the official order: parameters whose name matches
    ``TRAIN.BACKBONE_REGEX`` (``basemodel``, the Swin backbone) at ``LR * BACKBONE_MULTIPLIER`` (0.1x), then
    every other parameter at ``LR``. Each group carries a ``name`` (``backbone`` / ``other``)."""
    regex = re.compile(cfg.TRAIN.BACKBONE_REGEX)
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    lr = float(cfg.TRAIN.LR)
    return [
        {"params": [p for n, p in named if regex.search(n)], "lr": lr * float(cfg.TRAIN.BACKBONE_MULTIPLIER),
         "name": "backbone"},
        {"params": [p for n, p in named if not regex.search(n)], "lr": lr, "name": "other"},
    ]


class MultiStageLR(torch.optim.lr_scheduler.LRScheduler):
    """video_analyst's ``MultiStageLR`` as an epoch scheduler: in (0-based) epoch ``e`` the learning rate is
    the ``lr`` of the first stage ``[end_epoch, lr]`` with ``e < end_epoch``, times each group's multiplier
    (its initial lr / ``base_lr``: 0.1 for the backbone). SparseTT: ``[[10, 1e-4], [15, 1e-5], [20, 1e-6]]``
    gives 1e-4 in epochs 0-9, 1e-5 in 10-14, 1e-6 in 15-19. The trainer's epochs count from 1 and the
    scheduler steps after each, so trainer epoch ``k`` runs at stage epoch ``k - 1``. Past the last stage
    (the official policy raises) the last stage's rate is kept.

    Args:
        optimizer: the optimizer (its groups' ``lr`` at construction are ``base_lr`` times their multipliers).
        lr_stages: ``[[end_epoch, lr], ...]`` with increasing end epochs.
        base_lr: ``TRAIN.LR``.

    Raises:
        ValueError: empty stages, end epochs not increasing, or a non-positive ``base_lr``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr_stages: Sequence[Sequence[float]], base_lr: float,
                 last_epoch: int = -1):
        stages = [(int(e), float(lr)) for e, lr in lr_stages]
        if not stages or any(b[0] <= a[0] for a, b in zip(stages, stages[1:])) or stages[0][0] <= 0:
            raise ValueError(f"TRAIN.LR_STAGES must be [[end_epoch, lr], ...] with increasing positive end epochs, "
                             f"got {lr_stages}")
        if not float(base_lr) > 0:
            raise ValueError(f"TRAIN.LR must be positive, got {base_lr}")
        self.lr_stages = stages
        self.base_lr = float(base_lr)
        super().__init__(optimizer, last_epoch)

    def stage_lr(self, epoch: int) -> float:
        """The stage learning rate of 0-based ``epoch``."""
        for end, lr in self.lr_stages:
            if 0 <= epoch < end:
                return lr
        return self.lr_stages[-1][1]

    def get_lr(self) -> List[float]:
        lr = self.stage_lr(self.last_epoch)
        return [lr * base / self.base_lr for base in self.base_lrs]


def build_sparsett_optimizer(net: nn.Module, cfg):
    """AdamW (betas 0.9 / 0.999, ``TRAIN.WEIGHT_DECAY`` on every parameter) over
    :func:`basemodel_param_groups` and the :class:`MultiStageLR` of ``TRAIN.LR_STAGES``.

    Raises:
        ValueError: ``TRAIN.OPTIMIZER`` other than AdamW, or ``LR_STAGES`` that end before ``TRAIN.EPOCH``.
    """
    if str(cfg.TRAIN.OPTIMIZER).lower() != "adamw":
        raise ValueError(f"TRAIN.OPTIMIZER '{cfg.TRAIN.OPTIMIZER}' is not supported for sparsett (official: AdamW)")
    stages = cfg.TRAIN.LR_STAGES
    if not stages or int(stages[-1][0]) < int(cfg.TRAIN.EPOCH):
        raise ValueError(f"TRAIN.LR_STAGES {stages} end before TRAIN.EPOCH {cfg.TRAIN.EPOCH} (the official policy "
                         f"has no learning rate after its last stage)")
    groups = [g for g in basemodel_param_groups(net, cfg) if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=float(cfg.TRAIN.LR), betas=(0.9, 0.999),
                                  weight_decay=float(cfg.TRAIN.WEIGHT_DECAY))
    return optimizer, MultiStageLR(optimizer, stages, cfg.TRAIN.LR)


def sparsett_update_settings(settings, cfg) -> None:
    """Settings of a SparseTT run (its config has no pytracking crop/jitter keys): no gradient clipping (the
    official trainer has none), one template and one search frame, the batch size and print interval."""
    settings.print_interval = int(cfg.TRAIN.PRINT_INTERVAL)
    settings.grad_clip_norm = 0.0
    settings.print_stats = None
    settings.batchsize = int(cfg.TRAIN.BATCH_SIZE)
    settings.scheduler_type = "multistage"
    settings.num_template = settings.num_search = 1
    settings.output_sz = {"template": int(cfg.DATA.TEMPLATE.SIZE), "search": int(cfg.DATA.SEARCH.SIZE)}


def _swin_map_size(image_size: int, patch_size: int, merges: int) -> int:
    n = math.ceil(image_size / patch_size)
    for _ in range(merges):
        n = math.ceil(n / 2)
    return n


def check_crop_sizes(cfg) -> None:
    """Check that the training crops fit the network: ``DATA.SEARCH.SIZE == MODEL.HEAD.X_SIZE``, the Swin
    output of the template / search crop (patch 4, one 2x merge per stage up to ``OUT_INDICES[-1]``, inputs
    padded) is ``MODEL.NECK.F_Z_SIZE`` / ``F_X_SIZE``, ``F_X_SIZE == MODEL.HEAD.SCORE_SIZE`` and the score map
    fits the search crop.

    Raises:
        ValueError: naming the keys that disagree.
    """
    m, d = cfg.MODEL, cfg.DATA
    merges = int(m.BACKBONE.OUT_INDICES[-1])
    z, x = int(d.TEMPLATE.SIZE), int(d.SEARCH.SIZE)
    problems = []
    if x != int(m.HEAD.X_SIZE):
        problems.append(f"DATA.SEARCH.SIZE {x} != MODEL.HEAD.X_SIZE {m.HEAD.X_SIZE}")
    if _swin_map_size(z, 4, merges) != int(m.NECK.F_Z_SIZE):
        problems.append(f"a {z}-pixel template (DATA.TEMPLATE.SIZE) gives a {_swin_map_size(z, 4, merges)}x"
                        f"{_swin_map_size(z, 4, merges)} feature map, MODEL.NECK.F_Z_SIZE is {m.NECK.F_Z_SIZE}")
    if _swin_map_size(x, 4, merges) != int(m.NECK.F_X_SIZE):
        problems.append(f"a {x}-pixel search crop (DATA.SEARCH.SIZE) gives a {_swin_map_size(x, 4, merges)}x"
                        f"{_swin_map_size(x, 4, merges)} feature map, MODEL.NECK.F_X_SIZE is {m.NECK.F_X_SIZE}")
    if int(m.NECK.F_X_SIZE) != int(m.HEAD.SCORE_SIZE):
        problems.append(f"MODEL.NECK.F_X_SIZE {m.NECK.F_X_SIZE} != MODEL.HEAD.SCORE_SIZE {m.HEAD.SCORE_SIZE}")
    if int(x) - 1 - (int(m.HEAD.SCORE_SIZE) - 1) * int(m.HEAD.TOTAL_STRIDE) < 0:
        problems.append(f"a {m.HEAD.SCORE_SIZE}x{m.HEAD.SCORE_SIZE} score map with stride {m.HEAD.TOTAL_STRIDE} "
                        f"does not fit a {x}-pixel search crop")
    if problems:
        raise ValueError("sparsett training crops do not fit the network: " + "; ".join(problems))


def build_sparsett_dataloaders(cfg, settings):
    """The train loader of SparseTT: :class:`~lib.train.data.pair_sampler.TrackPairSampler` over
    ``DATA.TRAIN.DATASETS_NAME`` / ``DATASETS_RATIO`` (``DATA.SAMPLE_PER_EPOCH`` pairs per epoch, pairs within
    ``MAX_SAMPLE_INTERVAL``, ``NEGATIVE_PAIR_RATIO`` negatives, the ``DATA.FILTER`` rules) and
    :class:`~lib.train.data.pair_processing.DenseboxPairProcessing`; batches stacked on dim 0. No val loader:
    the official training validates by tracking GOT-10k val (``tracking/test.py``), not by a loss.

    Raises:
        ValueError: crops that do not fit the network (:func:`check_crop_sizes`).
    """
    from lib.train.base_functions import make_loader
    from lib.train.dataset import names2datasets

    check_crop_sizes(cfg)
    d, h = cfg.DATA, cfg.MODEL.HEAD
    datasets = names2datasets(d.TRAIN.DATASETS_NAME, settings.env, use_lmdb=bool(getattr(settings, "use_lmdb", False)))
    processing = DenseboxPairProcessing(
        z_size=d.TEMPLATE.SIZE, x_size=d.SEARCH.SIZE, score_size=h.SCORE_SIZE, total_stride=h.TOTAL_STRIDE,
        max_scale=d.SEARCH.MAX_SCALE, max_shift=d.SEARCH.MAX_SHIFT, mean=d.MEAN, std=d.STD, to_rgb=d.TO_RGB,
        context_amount=d.CONTEXT_AMOUNT)
    f = d.FILTER
    pair_filter = TrackPairFilter(f.MIN_AREA_RATE, f.MAX_AREA_RATE, f.MAX_RATIO, check_area=f.CHECK_AREA)
    sampler = TrackPairSampler(datasets, d.TRAIN.DATASETS_RATIO, d.SAMPLE_PER_EPOCH, max_diff=d.MAX_SAMPLE_INTERVAL,
                               processing=processing, negative_pair_ratio=d.NEGATIVE_PAIR_RATIO,
                               pair_filter=pair_filter, skip_bad_data=bool(getattr(settings, "skip_bad_data", False)),
                               sample_seed=getattr(settings, "sample_seed", None))
    return make_loader("train", sampler, cfg, settings, training=True, stack_dim=0), None


def sync_batch_norm(net: nn.Module, cfg, settings) -> nn.Module:
    """``MODEL.USE_SYNC_BN`` (official ``use_sync_bn``, batch statistics over every GPU): convert the batch
    norms to ``torch.nn.SyncBatchNorm`` for multi-process CUDA training (same state_dict keys). Single-process
    or CPU runs keep ``BatchNorm2d`` (SyncBatchNorm needs CUDA)."""
    device = getattr(settings, "device", None)
    distributed = getattr(settings, "local_rank", -1) != -1
    if cfg.MODEL.get("USE_SYNC_BN", False) and distributed and device is not None and torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net


from lib.train.pretrained import swin_pretrained_files  # noqa: E402

register_recipe(TrainRecipe(script="sparsett", actor_cls=SparseTTActor, build_objective=build_sparsett_objective,
                            param_groups=basemodel_param_groups, checkpoint_epochs=lambda epoch, max_epochs: True,
                            build_dataloaders=build_sparsett_dataloaders, update_settings=sparsett_update_settings,
                            build_optimizer=build_sparsett_optimizer, prepare_network=sync_batch_norm,
                            pretrained_files=swin_pretrained_files))
