"""STARK training: the actors of STARK-S / STARK-ST stage 1 (box losses) and STARK-ST stage 2 (score head)
and the recipes of the scripts ``stark_s``, ``stark_st1`` and ``stark_st2``.

Stage 1 (``stark_s``, ``stark_st1``): every template and the search region go through the backbone
separately, the token sequences are merged (templates first, search last) and the corner head's box is
trained with ``GIOU_WEIGHT * GIoU + L1_WEIGHT * L1`` (2.0 / 5.0).

Stage 2 (``stark_st2``, ``TRAIN.TRAIN_CLS``): the previous stage's newest checkpoint
(``--script_prv stark_st1 --config_prv <config>``) is loaded before the first epoch, only the parameters
whose name contains ``'cls'`` (the score head) are optimised, all others get ``requires_grad = False``;
the box head is not run, and the score head's logit is trained with ``BCEWithLogits`` (weight 1) against
the sampler's label (1: the target is in the search region, 0: a negative search region).

Optimizer: AdamW, backbone parameters at ``LR * BACKBONE_MULTIPLIER`` (stage 2: the score head only, at
``LR``); ``StepLR(LR_DROP_EPOCH)`` with gamma 0.1; gradients clipped to ``GRAD_CLIP_NORM``; checkpoints
in the last 10 epochs and every 100th (``STARKS_ep*.pth.tar`` / ``STARKST_ep*.pth.tar``).

Source: STARK ``lib/train/actors/stark_s.py``, ``stark_st.py``, ``lib/train/train_script.py``,
``lib/train/base_functions.py`` (``get_optimizer_scheduler``), ``lib/train/trainers/base_trainer.py``.
STARK_AIATRACK.md section 2.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch.nn import BCEWithLogitsLoss
from torch.nn.functional import l1_loss

from lib.train.losses import box_regression_losses
from lib.utils.box_ops import giou_loss
from lib.utils.merge import merge_template_search
from lib.utils.misc import NestedTensor

from . import BaseActor, TrainRecipe, backbone_param_groups, last_epochs_or_every, register_recipe

__all__ = ["STARKSActor", "STARKSTActor", "build_stark_box_objective", "build_stark_cls_objective",
           "stark_checkpoint_epochs"]

#: STARK keeps the checkpoints of the last 10 epochs and of every 100th.
stark_checkpoint_epochs = last_epochs_or_every(10, 100)


class STARKSActor(BaseActor):
    """Actor of STARK-S and STARK-ST stage 1 (official ``STARKSActor``).

    Input batch (frames on dim 0, batch on dim 1): ``template_images`` ``(N_t, B, 3, Hz, Wz)`` with
    ``template_att`` ``(N_t, B, Hz, Wz)`` (True on padding), ``search_images`` ``(1, B, 3, Hx, Wx)`` with
    ``search_att``, ``search_anno`` ``(1, B, 4)`` xywh normalised to the search crop.

    Loss: ``GIOU_WEIGHT * GIoU + L1_WEIGHT * L1`` of ``pred_boxes`` (cxcywh normalised, as xyxy) against
    the search ground truth (xyxy clamped to [0, 1]); stats ``Loss/total``, ``Loss/giou``, ``Loss/l1``,
    ``IoU``.

    Raises:
        ValueError: NaN in the predicted boxes.
    """

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        out_dict = self.forward_pass(data, run_box_head=True, run_cls_head=False)
        return self.compute_losses(out_dict, data["search_anno"][0])

    def forward_pass(self, data, run_box_head: bool, run_cls_head: bool) -> Dict[str, torch.Tensor]:
        """Backbone on every template and on the search region, merged tokens, transformer and heads.

        Returns:
            the network's ``out_dict`` (``pred_boxes`` ``(B, 1, 4)`` and/or ``pred_logits`` ``(B, 1, 1)``).
        """
        feat_dict_list = []
        for i in range(data["template_images"].shape[0]):
            template_img = data["template_images"][i].view(-1, *data["template_images"].shape[2:])
            template_att = data["template_att"][i].view(-1, *data["template_att"].shape[2:])
            feat_dict_list.append(self.net(img=NestedTensor(template_img, template_att), mode="backbone"))
        search_img = data["search_images"].view(-1, *data["search_images"].shape[2:])
        search_att = data["search_att"].view(-1, *data["search_att"].shape[2:])
        feat_dict_list.append(self.net(img=NestedTensor(search_img, search_att), mode="backbone"))
        seq_dict = merge_template_search(feat_dict_list)
        out_dict, _, _ = self.net(seq_dict=seq_dict, mode="transformer", run_box_head=run_box_head,
                                  run_cls_head=run_cls_head)
        return out_dict

    def compute_losses(self, pred_dict: Dict[str, torch.Tensor], gt_bbox: torch.Tensor, return_status: bool = True):
        """Box losses of ``pred_dict['pred_boxes']`` against ``gt_bbox`` ``(B, 4)`` xywh normalised."""
        giou, iou, l1 = box_regression_losses(pred_dict["pred_boxes"], gt_bbox, self.objective["giou"],
                                              self.objective["l1"])
        loss = self.loss_weight["giou"] * giou + self.loss_weight["l1"] * l1
        if not return_status:
            return loss
        return loss, {"Loss/total": loss.item(), "Loss/giou": giou.item(), "Loss/l1": l1.item(), "IoU": iou.item()}


class STARKSTActor(STARKSActor):
    """Actor of STARK-ST stage 2 (official ``STARKSTActor``): the score head's logit against ``label``.

    Input batch: as :class:`STARKSActor` plus ``label`` ``(1, B)`` (1 positive, 0 negative). The box head is
    not run. Loss: ``loss_weight['cls'] * BCEWithLogits(pred_logits.view(-1), label.view(-1))``; stats
    ``cls_loss`` (the official name) and ``accuracy`` (logit sign against the label).
    """

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        out_dict = self.forward_pass(data, run_box_head=False, run_cls_head=True)
        return self.compute_losses(out_dict, data["label"].view(-1))

    def compute_losses(self, pred_dict: Dict[str, torch.Tensor], labels: torch.Tensor, return_status: bool = True):
        """BCE of ``pred_dict['pred_logits']`` ``(B, 1, 1)`` against ``labels`` ``(B,)`` in {0, 1}."""
        logits = pred_dict["pred_logits"].view(-1)
        loss = self.loss_weight["cls"] * self.objective["cls"](logits, labels.to(logits.dtype))
        if not return_status:
            return loss
        accuracy = ((logits.detach() > 0).to(labels.dtype) == labels).float().mean()
        return loss, {"cls_loss": loss.item(), "accuracy": accuracy.item()}


def build_stark_box_objective(cfg) -> Tuple[Dict, Dict]:
    """Stage-1 objective: ``{'giou': giou_loss, 'l1': l1_loss}`` with ``TRAIN.GIOU_WEIGHT`` / ``TRAIN.L1_WEIGHT``."""
    return {"giou": giou_loss, "l1": l1_loss}, {"giou": cfg.TRAIN.GIOU_WEIGHT, "l1": cfg.TRAIN.L1_WEIGHT}


def build_stark_cls_objective(cfg) -> Tuple[Dict, Dict]:
    """Stage-2 objective: ``{'cls': BCEWithLogitsLoss()}`` with weight 1.0."""
    return {"cls": BCEWithLogitsLoss()}, {"cls": 1.0}


from lib.train.pretrained import resnet_pretrained_files  # noqa: E402

register_recipe(TrainRecipe(script="stark_s", actor_cls=STARKSActor, build_objective=build_stark_box_objective,
                            param_groups=backbone_param_groups, checkpoint_epochs=stark_checkpoint_epochs,
                            pretrained_files=resnet_pretrained_files))
register_recipe(TrainRecipe(script="stark_st1", actor_cls=STARKSActor, build_objective=build_stark_box_objective,
                            param_groups=backbone_param_groups, checkpoint_epochs=stark_checkpoint_epochs,
                            pretrained_files=resnet_pretrained_files))
register_recipe(TrainRecipe(script="stark_st2", actor_cls=STARKSTActor, build_objective=build_stark_cls_objective,
                            param_groups=backbone_param_groups, checkpoint_epochs=stark_checkpoint_epochs,
                            load_previous_stage=True))
