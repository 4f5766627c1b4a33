"""OSTrack network: one-stream ViT backbone (plain or with candidate elimination) and a centre head.

Source: OSTrack ``lib/models/ostrack/ostrack.py`` (``OSTrack``, ``build_ostrack``), botaoye/OSTrack @ 33b5e12.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import torch
from torch import nn

from lib.config import Config
from lib.models import register_network
from lib.models.backbones.pretrained import find_pretrained, load_full_model_weights
from lib.models.backbones.vit import (VisionTransformer, vit_base_patch16_224, vit_base_patch16_224_ce,
                                     vit_large_patch16_224_ce, vit_tiny_patch16_4blocks_ce)
from lib.models.layers.candidate_elimination import ce_template_index, generate_mask_cond
from lib.models.layers.center_head import CenterPredictor, build_box_head

__all__ = ["OSTrack", "build_ostrack", "example_inputs", "BACKBONES"]

_logger = logging.getLogger(__name__)

#: MODEL.BACKBONE.TYPE -> constructor; the ``_ce`` types take ``ce_loc`` / ``ce_keep_ratio``.
BACKBONES = {
    "vit_base_patch16_224": vit_base_patch16_224,
    "vit_base_patch16_224_ce": vit_base_patch16_224_ce,
    "vit_large_patch16_224_ce": vit_large_patch16_224_ce,
    "vit_tiny_patch16_4blocks_ce": vit_tiny_patch16_4blocks_ce,  # CPU training config tiny_cpu (not official)
}


class OSTrack(nn.Module):
    """Backbone ``backbone`` (template + search -> tokens) and box head ``box_head``.

    Args:
        transformer: a :class:`~lib.models.backbones.vit.VisionTransformer` (or CE variant).
        box_head: a :class:`~lib.models.layers.center_head.CenterPredictor`.
        head_type: ``'CENTER'``.
    """

    def __init__(self, transformer: VisionTransformer, box_head: CenterPredictor, head_type: str = "CENTER"):
        super().__init__()
        if head_type != "CENTER":
            raise ValueError(f"OSTrack: head type '{head_type}' is not supported (only CENTER)")
        self.backbone = transformer
        self.box_head = box_head
        self.head_type = head_type
        self.feat_sz_s = int(box_head.feat_sz)
        self.feat_len_s = int(box_head.feat_sz ** 2)

    def forward(self, template: torch.Tensor, search: torch.Tensor, ce_template_mask: Optional[torch.Tensor] = None,
                ce_keep_rate: Optional[float] = None, return_last_attn: bool = False) -> Dict[str, Any]:
        """Run the tracker network.

        Args:
            template: ``(B, 3, H_z, W_z)`` ImageNet-normalised template crop (128 or 192 pixels).
            search: ``(B, 3, H_x, W_x)`` normalised search-region crop (256 or 384 pixels).
            ce_template_mask: the template tokens used to score search tokens (CE backbones): ``(B, N_z)`` bool,
                or their ``(B, K)`` int64 indices (``ce_template_index``; static shapes, same result).
            ce_keep_rate: keep ratio overriding the per-block CE ratios (training); None at test time.
            return_last_attn: passed on (the backbones ignore it, as the official ones do).

        Returns:
            dict with ``pred_boxes`` ``(B, 1, 4)`` cxcywh normalised to the search crop, ``score_map``
            ``(B, 1, H_f, W_f)``, ``size_map`` ``(B, 2, H_f, W_f)``, ``offset_map`` ``(B, 2, H_f, W_f)``,
            ``attn`` (None, or the last block's attention for CE), ``removed_indexes_s`` (CE only: list of
            ``(B, removed_k)`` float original search indices per eliminating block) and ``backbone_feat``
            ``(B, N_z + N_x, C)``.
        """
        x, aux_dict = self.backbone(z=template, x=search, ce_template_mask=ce_template_mask,
                                    ce_keep_rate=ce_keep_rate, return_last_attn=return_last_attn)
        out = self.forward_head(x, None)
        out.update(aux_dict)
        out["backbone_feat"] = x
        return out

    def forward_head(self, cat_feature: torch.Tensor, gt_score_map: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Head on the last ``N_x`` tokens of ``cat_feature`` ``(B, N_z + N_x, C)``, laid out as a
        ``(B, C, H_f, W_f)`` map with token index ``row * W_f + col``."""
        enc_opt = cat_feature[:, -self.feat_len_s:]
        B, _, C = enc_opt.shape
        opt_feat = enc_opt.transpose(1, 2).reshape(B, C, self.feat_sz_s, self.feat_sz_s)
        score_map_ctr, bbox, size_map, offset_map = self.box_head(opt_feat, gt_score_map)
        return {"pred_boxes": bbox.view(B, 1, 4), "score_map": score_map_ctr, "size_map": size_map,
                "offset_map": offset_map}


def _check_supported(cfg: Config) -> None:
    bb = cfg.MODEL.BACKBONE
    if bb.TYPE not in BACKBONES:
        raise ValueError(f"MODEL.BACKBONE.TYPE '{bb.TYPE}' is not supported (known: {', '.join(BACKBONES)})")
    unsupported = []
    if bb.CAT_MODE != "direct":
        unsupported.append(f"MODEL.BACKBONE.CAT_MODE={bb.CAT_MODE!r} (only 'direct')")
    if bb.SEP_SEG:
        unsupported.append("MODEL.BACKBONE.SEP_SEG=True")
    if bb.ADD_CLS_TOKEN:
        unsupported.append("MODEL.BACKBONE.ADD_CLS_TOKEN=True")
    if cfg.MODEL.RETURN_INTER:
        unsupported.append("MODEL.RETURN_INTER=True")
    if unsupported:
        raise NotImplementedError("OSTrack options not used by any official config are not implemented: "
                                  + "; ".join(unsupported))


@register_network("ostrack", "OSTrack")
def build_ostrack(cfg: Config, training: bool = False) -> OSTrack:
    """Build OSTrack from a merged config (official ``build_ostrack``).

    With ``training=True`` the MAE weights ``MODEL.PRETRAIN_FILE`` are loaded into the backbone from the
    pretrained folder (``pretrained_networks`` of the train local.py, default ``pretrained_models/``)
    before the position embeddings are split; a missing file is a warning. If ``PRETRAIN_FILE`` names
    an OSTrack checkpoint, its ``net`` is loaded non-strictly into the whole model instead. With
    ``training=False`` nothing is read.

    Raises:
        ValueError / NotImplementedError: unknown backbone or head type, or options no official config uses.
    """
    _check_supported(cfg)
    bb = cfg.MODEL.BACKBONE
    kwargs: Dict[str, Any] = {"drop_path_rate": cfg.TRAIN.DROP_PATH_RATE, "weight_init": training}
    if bb.TYPE.endswith("_ce"):
        kwargs.update(ce_loc=bb.CE_LOC, ce_keep_ratio=bb.CE_KEEP_RATIO)
    backbone = BACKBONES[bb.TYPE](**kwargs)

    return assemble_one_stream(cfg, backbone, lambda bb_, head: OSTrack(bb_, head, head_type=cfg.MODEL.HEAD.TYPE),
                               "OSTrack", training)


def assemble_one_stream(cfg: Config, backbone, make_model, tracker_tag: str, training: bool):
    """The steps shared by the one-stream ViT trackers' builders (OSTrack, GRM; official ``build_ostrack`` /
    ``build_grm``): in training, ``MODEL.PRETRAIN_FILE`` goes into the backbone (MAE weights; a missing file is a
    warning) unless its name contains ``tracker_tag``; then the position embeddings are split for the template
    and search sizes (``finetune_track``), the box head is built, ``make_model(backbone, box_head)`` assembles the
    network and, in training, a ``PRETRAIN_FILE`` naming a ``tracker_tag`` checkpoint is loaded non-strictly into
    the whole model. With ``training=False`` nothing is read."""
    pretrain_file = cfg.MODEL.PRETRAIN_FILE or ""
    if training and pretrain_file and tracker_tag not in pretrain_file:
        path = find_pretrained(pretrain_file, "ViT backbone")
        if path is not None:
            backbone.load_pretrained(path)
    backbone.finetune_track(search_size=cfg.DATA.SEARCH.SIZE, template_size=cfg.DATA.TEMPLATE.SIZE,
                            stride=cfg.MODEL.BACKBONE.STRIDE, patch_start_index=1)
    model = make_model(backbone, build_box_head(cfg, backbone.embed_dim))
    if training and tracker_tag in pretrain_file:
        load_full_model_weights(model, pretrain_file)
    return model


def example_inputs(cfg: Config, batch_size: int = 1, device="cpu", generator: Optional[torch.Generator] = None):
    """Positional inputs of one test-time forward pass, for profiling: ``(template, search, ce_template_mask)``.

    Random normalised crops of ``TEST.TEMPLATE_SIZE`` / ``TEST.SEARCH_SIZE`` and the CE template mask
    the tracker uses (None for ``CE_TEMPLATE_RANGE`` ALL and for the plain backbone; ``(B, K)`` indices for
    CTR_POINT / CTR_REC, a ``(B, N_z)`` bool mask for GT_BOX).
    """
    zs, xs = int(cfg.TEST.TEMPLATE_SIZE), int(cfg.TEST.SEARCH_SIZE)
    template = torch.randn(batch_size, 3, zs, zs, generator=generator).to(device)
    search = torch.randn(batch_size, 3, xs, xs, generator=generator).to(device)
    mask = None
    if cfg.MODEL.BACKBONE.CE_LOC:
        box = torch.tensor([[0.25, 0.25, 0.5, 0.5]]).repeat(batch_size, 1)
        mask = generate_mask_cond(cfg, batch_size, device, box.to(device))
        if cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE in ("CTR_POINT", "CTR_REC"):  # as the tracker passes it
            mask = ce_template_index(mask)
    return template, search, mask
