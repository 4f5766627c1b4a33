"""AiATrack training: the actor (box losses and the IoU head's regression), the settings and the loader
of its reference sampling, and the ``aiatrack`` recipe.

A sample holds one search frame and two references (the initial reference and one short-term
reference, both earlier than the search frame; :class:`~lib.train.data.aiatrack.ReferenceSampler`),
all cropped with the search factor and size; the references carry their target/background regions on
the feature grid and the search frame 16 proposals with their IoU
(:class:`~lib.train.data.aiatrack.AiATrackProcessing`). The actor encodes every frame with the backbone,
lets :meth:`AIATRACK.forward_transformer` encode the references and the search frame and decode the
search frame against them, then runs the corner head and the IoU head (Precise RoI Pooling of the
proposals). Loss: ``GIOU_WEIGHT * GIoU + L1_WEIGHT * L1 + IOU_WEIGHT * MSE(pred_iou, proposal_iou)``
(2.0 / 5.0 / 2.0), with the proposal IoU mapped to [-1, 1].

Optimizer: AdamW, backbone parameters at ``LR * BACKBONE_MULTIPLIER``; ``StepLR(LR_DROP_EPOCH)`` with
gamma 0.1; gradients clipped to ``GRAD_CLIP_NORM``; no validation loader; checkpoints in the last 5 epochs
and every 100th (``AIATRACK_ep*.pth.tar``).

Source: Little-Podi/AiATrack @ cdb3a4e ``lib/train/actors/aiatrack.py``, ``lib/train/train_script.py``,
``lib/train/base_functions.py``, ``lib/train/trainers/base_trainer.py``. STARK_AIATRACK.md section 4.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn
from torch.nn.functional import l1_loss

from lib.train.base_functions import build_loader, build_transforms
from lib.train.data.aiatrack import AiATrackProcessing, ReferenceSampler
from lib.train.losses import box_regression_losses
from lib.utils.box_ops import giou_loss
from lib.utils.misc import NestedTensor

from . import BaseActor, TrainRecipe, backbone_param_groups, last_epochs_or_every, register_recipe

__all__ = ["AIATRACKActor", "build_aiatrack_objective", "update_aiatrack_settings", "build_aiatrack_dataloaders",
           "aiatrack_checkpoint_epochs", "NUM_SHORT_REFER"]

#: short-term references per training sample (the official sampler's fixed ``num_short_refer``).
NUM_SHORT_REFER = 1

#: AiATrack keeps the checkpoints of the last 5 epochs and of every 100th.
aiatrack_checkpoint_epochs = last_epochs_or_every(5, 100)


class AIATRACKActor(BaseActor):
    """Actor of AiATrack (official ``AIATRACKActor``).

    Input batch (frames on dim 0, batch on dim 1): ``search_images`` ``(1, B, 3, S, S)`` with
    ``search_att`` ``(1, B, S, S)`` (True on padding), ``search_anno`` ``(1, B, 4)`` xywh normalised,
    ``search_proposals`` ``(1, B, P, 4)`` xywh normalised, ``proposal_iou`` ``(1, B, P)`` in [-1, 1];
    ``reference_images`` ``(N_r, B, 3, S, S)``, ``reference_att``, ``reference_region``
    ``(N_r, B, F*F, 2)`` (reference 0 is the long-term one).

    Loss: ``GIOU_WEIGHT * GIoU + L1_WEIGHT * L1`` of ``pred_boxes`` against the search ground truth
    (:func:`~lib.train.losses.box_regression_losses`) ``+ IOU_WEIGHT * MSE(pred_iou, proposal_iou)``; stats
    ``Ls/total``, ``Ls/giou``, ``Ls/l1``, ``Ls/iou``, ``IoU`` (the official names).

    Raises:
        ValueError: NaN in the predicted boxes.
    """

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        out_dict = self.forward_pass(data)
        return self.compute_losses(out_dict, data["search_anno"][0], data["proposal_iou"])

    def forward_pass(self, data) -> Dict[str, torch.Tensor]:
        """Backbone on the search frame and on each reference, transformer (which encodes every frame and
        decodes the search frame against the references), corner and IoU heads.

        Returns:
            ``{'pred_boxes': (B, 1, 4) cxcywh normalised, 'pred_iou': (1, B, P)}``.
        """
        search_img = data["search_images"].view(-1, *data["search_images"].shape[2:])
        search_att = data["search_att"].view(-1, *data["search_att"].shape[2:])
        search_dict = self.net(img=NestedTensor(search_img, search_att), mode="backbone")
        refer_dict_list, refer_reg_list = [], []
        for i in range(data["reference_images"].shape[0]):
            refer_img = data["reference_images"][i].view(-1, *data["reference_images"].shape[2:])
            refer_att = data["reference_att"][i].view(-1, *data["reference_att"].shape[2:])
            refer_dict_list.append(self.net(img=NestedTensor(refer_img, refer_att), mode="backbone"))
            refer_reg_list.append(data["reference_region"][i])
        out_embed, _, _, _ = self.net(search_dic=search_dict, refer_dic_list=refer_dict_list,
                                      refer_reg_list=refer_reg_list, mode="transformer")
        return self.net(out_embed=out_embed, proposals=data["search_proposals"], mode="heads")

    def compute_losses(self, pred_dict: Dict[str, torch.Tensor], gt_bbox: torch.Tensor, iou_gt: torch.Tensor,
                       return_status: bool = True):
        """Weighted GIoU + L1 + IoU-head MSE.

        Args:
            pred_dict: ``pred_boxes`` ``(B, 1, 4)``, ``pred_iou`` ``(1, B, P)``.
            gt_bbox: ``(B, 4)`` search ground truth, xywh normalised.
            iou_gt: ``(1, B, P)`` proposal IoU in [-1, 1].
        """
        giou, iou, l1 = box_regression_losses(pred_dict["pred_boxes"], gt_bbox, self.objective["giou"],
                                              self.objective["l1"])
        iou_loss = self.objective["iou"](pred_dict["pred_iou"], iou_gt.to(pred_dict["pred_iou"].dtype))
        w = self.loss_weight
        loss = w["giou"] * giou + w["l1"] * l1 + w["iou"] * iou_loss
        if not return_status:
            return loss
        return loss, {"Ls/total": loss.item(), "Ls/giou": giou.item(), "Ls/l1": l1.item(), "Ls/iou": iou_loss.item(),
                      "IoU": iou.item()}


def build_aiatrack_objective(cfg) -> Tuple[Dict, Dict]:
    """``{'giou': giou_loss, 'l1': l1_loss, 'iou': MSELoss()}`` with ``TRAIN.GIOU_WEIGHT``, ``TRAIN.L1_WEIGHT``,
    ``TRAIN.IOU_WEIGHT``."""
    objective = {"giou": giou_loss, "l1": l1_loss, "iou": nn.MSELoss()}
    weights = {"giou": cfg.TRAIN.GIOU_WEIGHT, "l1": cfg.TRAIN.L1_WEIGHT, "iou": cfg.TRAIN.IOU_WEIGHT}
    return objective, weights


def update_aiatrack_settings(settings, cfg) -> None:
    """AiATrack's ``update_settings``: the search and reference crops both use ``DATA.SEARCH``; jitter
    ``'search'`` and ``'reference'`` from ``DATA.SEARCH``, ``'initial'`` (the first reference) from
    ``DATA.TEMPLATE``."""
    search = cfg.DATA.SEARCH
    settings.print_interval = cfg.TRAIN.get("PRINT_INTERVAL", 50)
    settings.search_area_factor = {"search": search.FACTOR, "reference": search.FACTOR}
    settings.output_sz = {"search": search.SIZE, "reference": search.SIZE}
    settings.center_jitter_factor = {"search": search.CENTER_JITTER, "reference": search.CENTER_JITTER,
                                     "initial": cfg.DATA.TEMPLATE.CENTER_JITTER}
    settings.scale_jitter_factor = {"search": search.SCALE_JITTER, "reference": search.SCALE_JITTER,
                                    "initial": cfg.DATA.TEMPLATE.SCALE_JITTER}
    settings.grad_clip_norm = cfg.TRAIN.GRAD_CLIP_NORM
    settings.print_stats = None
    settings.batchsize = cfg.TRAIN.BATCH_SIZE
    settings.scheduler_type = cfg.TRAIN.SCHEDULER.TYPE
    settings.num_search = 1
    settings.num_reference = 1 + NUM_SHORT_REFER


def build_aiatrack_dataloaders(cfg, settings):
    """The train loader of AiATrack (no validation loader, as the official): the shared transforms
    (joint grayscale/flip, brightness jitter, box flip, normalisation), :class:`AiATrackProcessing` and
    :class:`ReferenceSampler` inside the shared :func:`~lib.train.base_functions.build_loader`.

    Returns:
        ``(loader_train, None)``.
    """
    joint, train_tf, _ = build_transforms(cfg)
    stride = 8 if cfg.MODEL.BACKBONE.DILATION else 16
    processing = AiATrackProcessing(search_area_factor=settings.search_area_factor, output_sz=settings.output_sz,
                                    center_jitter_factor=settings.center_jitter_factor,
                                    scale_jitter_factor=settings.scale_jitter_factor, mode="sequence",
                                    transform=train_tf, joint_transform=joint, settings=settings, feat_stride=stride)

    def make_sampler(datasets, data_cfg, proc):
        return ReferenceSampler(datasets, data_cfg.DATASETS_RATIO, data_cfg.SAMPLE_PER_EPOCH,
                                cfg.DATA.MAX_SAMPLE_INTERVAL, processing=proc, num_short_refer=NUM_SHORT_REFER,
                                skip_bad_data=bool(getattr(settings, "skip_bad_data", False)),
                                sample_seed=getattr(settings, "sample_seed", None))

    loader = build_loader("train", cfg, settings, cfg.DATA.TRAIN, processing, training=True, make_sampler=make_sampler)
    return loader, None


from lib.train.pretrained import resnet_pretrained_files  # noqa: E402

register_recipe(TrainRecipe(script="aiatrack", actor_cls=AIATRACKActor, build_objective=build_aiatrack_objective,
                            param_groups=backbone_param_groups, checkpoint_epochs=aiatrack_checkpoint_epochs,
                            build_dataloaders=build_aiatrack_dataloaders, update_settings=update_aiatrack_settings,
                            pretrained_files=resnet_pretrained_files))
