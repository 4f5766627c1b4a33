"""OSTrack training: the actor (forward with candidate elimination, weighted focal + GIoU + L1 loss) and
its train recipe. The candidate-elimination template mask and keep-rate schedule are the network's own
(:mod:`lib.models.layers.candidate_elimination`).

Source: OSTrack ``lib/train/actors/ostrack.py``, ``lib/train/train_script.py`` (objective and weights).
OSTRACK_GRM.md section 4.3.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch.nn import BCEWithLogitsLoss

from lib.models.layers.candidate_elimination import adjust_keep_rate, generate_mask_cond
from lib.train.losses import FocalLoss, box_regression_losses, generate_heatmap
from lib.utils.box_ops import giou_loss

from . import BaseActor, TrainRecipe, backbone_param_groups, ostrack_checkpoint_epochs, register_recipe

__all__ = ["OSTrackActor", "ce_keep_rate", "build_ostrack_objective"]


def ce_keep_rate(epoch: int, cfg) -> float:
    """The keep rate OSTrack trains with at ``epoch``: warm-up ``TRAIN.CE_START_EPOCH``, decay over
    ``TRAIN.CE_WARM_EPOCH`` epochs to ``MODEL.BACKBONE.CE_KEEP_RATIO[0]``."""
    start, warm = cfg.TRAIN.CE_START_EPOCH, cfg.TRAIN.CE_WARM_EPOCH
    return adjust_keep_rate(epoch, warmup_epochs=start, total_epochs=start + warm, iters_per_epoch=1,
                            base_keep_rate=cfg.MODEL.BACKBONE.CE_KEEP_RATIO[0])


class OSTrackActor(BaseActor):
    """Actor of OSTrack.

    Forward: template ``template_images[0]`` ``(B, 3, Hz, Wz)`` and search ``search_images[0]``
    ``(B, 3, Hx, Wx)``; with candidate elimination (``MODEL.BACKBONE.CE_LOC`` non-empty) the template mask
    of ``generate_mask_cond`` and the keep rate of :func:`ce_keep_rate` for ``data['epoch']``.
    The network returns the official dict (``pred_boxes`` ``(B, N, 4)`` cxcywh normalised, ``score_map``
    ``(B, 1, Hf, Wf)``, ...).

    Loss: ``GIOU_WEIGHT * GIoU + L1_WEIGHT * L1 + 1.0 * focal`` with the predicted boxes (xyxy) against the
    last search frame's ground truth (xyxy clamped to [0, 1]), and the focal loss of ``score_map`` against
    the Gaussian heat map of :func:`~lib.train.losses.generate_heatmap`. If the GIoU cannot be computed
    (degenerate boxes) GIoU and IoU are 0, as in the official code.

    Raises:
        ValueError: more than one template or search frame, or NaN in the predicted boxes.
    """

    #: names under which the loss terms are logged (GRM's actor uses its own).
    stat_names = {"total": "Loss/total", "giou": "Loss/giou", "l1": "Loss/l1", "location": "Loss/location",
                  "iou": "IoU"}

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        out_dict = self.forward_pass(data)
        return self.compute_losses(out_dict, data)

    def forward_pass(self, data) -> Dict:
        if len(data["template_images"]) != 1 or len(data["search_images"]) != 1:
            raise ValueError("OSTrack trains with one template and one search frame "
                             f"(got {len(data['template_images'])} and {len(data['search_images'])})")
        template = data["template_images"][0].view(-1, *data["template_images"].shape[2:])
        search = data["search_images"][0].view(-1, *data["search_images"].shape[2:])
        box_mask_z, keep_rate = None, None
        if self.cfg.MODEL.BACKBONE.CE_LOC:
            box_mask_z = generate_mask_cond(self.cfg, template.shape[0], template.device, data["template_anno"][0])
            keep_rate = ce_keep_rate(int(data["epoch"]), self.cfg)
        return self.net(template=template, search=search, ce_template_mask=box_mask_z, ce_keep_rate=keep_rate,
                        return_last_attn=False)

    def compute_losses(self, pred_dict: Dict, gt_dict, return_status: bool = True):
        gt_bbox = gt_dict["search_anno"][-1]  # (B, 4) xywh normalised
        heatmaps = generate_heatmap(gt_dict["search_anno"], self.cfg.DATA.SEARCH.SIZE, self.cfg.MODEL.BACKBONE.STRIDE)
        gt_map = heatmaps[-1].unsqueeze(1)
        giou, iou, l1 = box_regression_losses(pred_dict["pred_boxes"], gt_bbox, self.objective["giou"],
                                              self.objective["l1"])
        if "score_map" in pred_dict:
            location = self.objective["focal"](pred_dict["score_map"], gt_map)
        else:
            location = torch.tensor(0.0, device=l1.device)
        w = self.loss_weight
        loss = w["giou"] * giou + w["l1"] * l1 + w["focal"] * location
        if not return_status:
            return loss
        names = self.stat_names
        status = {names["total"]: loss.item(), names["giou"]: giou.item(), names["l1"]: l1.item(),
                  names["location"]: location.item(), names["iou"]: iou.item()}
        return loss, status


def build_ostrack_objective(cfg) -> Tuple[Dict, Dict]:
    """Official OSTrack objective and weights: GIoU (``TRAIN.GIOU_WEIGHT``), L1 (``TRAIN.L1_WEIGHT``),
    focal 1.0 (and an unused BCE ``cls`` entry, weight 1.0)."""
    objective = {"giou": giou_loss, "l1": F.l1_loss, "focal": FocalLoss(), "cls": BCEWithLogitsLoss()}
    weights = {"giou": cfg.TRAIN.GIOU_WEIGHT, "l1": cfg.TRAIN.L1_WEIGHT, "focal": 1.0, "cls": 1.0}
    return objective, weights


from lib.train.pretrained import vit_pretrained_files  # noqa: E402

register_recipe(TrainRecipe(script="ostrack", actor_cls=OSTrackActor, build_objective=build_ostrack_objective,
                            param_groups=backbone_param_groups, checkpoint_epochs=ostrack_checkpoint_epochs,
                            pretrained_files=vit_pretrained_files))
