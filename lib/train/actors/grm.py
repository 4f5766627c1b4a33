"""GRM training: the actor (forward with GRM's template box mask; OSTrack's loss) and its train recipe
(three optimizer groups: the division predictors keep the full learning rate).

Source: GRM ``lib/train/actors/grm.py``, ``lib/train/base_functions.py`` (``get_optimizer_scheduler``),
``lib/train/train_script.py`` (objective and weights), Little-Podi/GRM @ 466ceb7. OSTRACK_GRM.md 4.3-4.4.
"""

from __future__ import annotations

from typing import Dict, List

from lib.models.grm import generate_mask_cond

from . import TrainRecipe, last_epochs_or_every, register_recipe
from .ostrack import OSTrackActor, build_ostrack_objective

__all__ = ["GRMActor", "grm_param_groups", "grm_checkpoint_epochs"]


class GRMActor(OSTrackActor):
    """Actor of GRM.

    Forward: template ``template_images[0]`` ``(B, 3, Hz, Wz)``, search ``search_images[0]`` ``(B, 3, Hx, Wx)``
    and the template box mask of :func:`lib.models.grm.generate_mask_cond` (from ``template_anno[0]``);
    threshold 0 (in train mode the division is drawn by Gumbel-softmax anyway).

    Loss: OSTrack's (:meth:`OSTrackActor.compute_losses`: ``GIOU_WEIGHT * GIoU + L1_WEIGHT * L1 + focal``),
    logged as ``Ls/total``, ``Ls/giou``, ``Ls/l1``, ``Ls/loc`` and ``IoU``. The official entropy term on
    the division fractions is off in the shipped code path and not implemented.

    Raises:
        ValueError: more than one template or search frame, or NaN in the predicted boxes.
    """

    stat_names = {"total": "Ls/total", "giou": "Ls/giou", "l1": "Ls/l1", "location": "Ls/loc", "iou": "IoU"}

    def forward_pass(self, data) -> Dict:
        if len(data["template_images"]) != 1 or len(data["search_images"]) != 1:
            raise ValueError("GRM trains with one template and one search frame "
                             f"(got {len(data['template_images'])} and {len(data['search_images'])})")
        template = data["template_images"][0].view(-1, *data["template_images"].shape[2:])
        search = data["search_images"][0].view(-1, *data["search_images"].shape[2:])
        box_mask_z = generate_mask_cond(self.cfg, template.shape[0], template.device, data["template_anno"][0])
        return self.net(template=template, search=search, template_mask=box_mask_z)


def grm_param_groups(net, cfg) -> List[Dict]:
    """GRM's optimizer groups (official ``get_optimizer_scheduler``): parameters whose name lacks
    ``'backbone'`` at ``TRAIN.LR``; backbone parameters except the division predictors at
    ``TRAIN.LR * TRAIN.BACKBONE_MULTIPLIER``; the division predictors (backbone names containing
    ``'divide'``) at the full ``TRAIN.LR``. Frozen parameters are left out."""
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if "backbone" not in n]},
        {"params": [p for n, p in named if "backbone" in n and "divide" not in n],
         "lr": cfg.TRAIN.LR * cfg.TRAIN.BACKBONE_MULTIPLIER},
        {"params": [p for n, p in named if "backbone" in n and "divide" in n]},
    ]


#: GRM keeps the checkpoints of the last 5 epochs and of every 100th.
grm_checkpoint_epochs = last_epochs_or_every(5, 100)

from lib.train.pretrained import vit_pretrained_files  # noqa: E402

register_recipe(TrainRecipe(script="grm", actor_cls=GRMActor, build_objective=build_ostrack_objective,
                            param_groups=grm_param_groups, checkpoint_epochs=grm_checkpoint_epochs,
                            pretrained_files=vit_pretrained_files))
