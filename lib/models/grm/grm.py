"""GRM network: OSTrack's one-stream ViT whose blocks 1..depth-1 divide the search tokens adaptively,
and OSTrack's centre head.

The backbone is :class:`~lib.models.backbones.vit.VisionTransformer` (the one ViT stack: patch embedding,
position embeddings split by ``finetune_track``, pre-norm blocks, final LayerNorm) with
:class:`~lib.models.grm.division.DivisionAttention` plugged into every block but the first; the head is
:class:`~lib.models.layers.center_head.CenterPredictor` read by OSTrack's ``forward_head``. No token is ever
removed: the output always holds ``N_z + N_x`` tokens.

Source: GRM ``lib/models/grm/{grm.py, vit.py, base_backbone.py}``, ``lib/utils/mask_utils.py``
(Little-Podi/GRM @ 466ceb7). Paper: Gao et al., "Generalized Relation Modeling for Transformer
Tracking", CVPR 2023.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from lib.config import Config
from lib.models import register_network
from lib.models.backbones.vit import Attention, VisionTransformer
from lib.models.grm.division import TGT_TYPES, DivisionAttention
from lib.models.layers.center_head import CenterPredictor
from lib.models.ostrack.ostrack import OSTrack, assemble_one_stream

__all__ = ["GRM", "GRMVisionTransformer", "build_grm", "template_box_mask", "generate_mask_cond", "example_inputs",
           "BACKBONES", "grm_vit_base", "grm_vit_large", "grm_vit_tiny_4blocks"]

_logger = logging.getLogger(__name__)


class GRMVisionTransformer(VisionTransformer):
    """The ViT backbone of GRM: block 0 plain, blocks ``1..depth-1`` with :class:`DivisionAttention`.

    Same arguments as :class:`~lib.models.backbones.vit.VisionTransformer` (``attn_layer`` is fixed).
    ``pos_embed_x`` is registered before ``pos_embed_z``, as in the official state_dict.
    """

    pos_embed_order = ("x", "z")

    def __init__(self, *args, depth: int = 12, **kwargs):
        if "attn_layer" in kwargs:
            raise TypeError("GRMVisionTransformer sets its own attention layers")
        super().__init__(*args, depth=depth, attn_layer=[Attention] + [DivisionAttention] * (depth - 1), **kwargs)

    def forward(self, z: torch.Tensor, x: torch.Tensor, template_mask: Optional[torch.Tensor] = None,
                search_feat_len: Optional[int] = None, threshold: float = 0.0, tgt_type: str = "allmax",
                **kwargs) -> Tuple[torch.Tensor, Union[torch.Tensor, List]]:
        """Joint feature extraction and generalized relation modelling.

        Args:
            z: template ``(B, 3, H_z, W_z)``; x: search region ``(B, 3, H_x, W_x)`` (normalised images).
            template_mask: ``(B, N_z)`` float template box mask (:func:`generate_mask_cond`; used by the
                ``roi*`` target types only).
            search_feat_len: number of search tokens ``N_x`` (default: that of ``pos_embed_x``).
            threshold: test-time division threshold (0: argmax); ignored in train mode (Gumbel-softmax).
            tgt_type: target representation (``MODEL.TGT_TYPE``).

        Returns:
            ``(tokens, decisions)``: tokens ``(B, N_z + N_x, C)`` after the final LayerNorm; in train mode
            ``decisions`` ``(B, depth - 1)`` = the fraction of search tokens sent to the attend-to-all class
            by each dividing block, in eval mode an empty list (official).
        """
        tokens = self.embed_tokens(z, x)
        if search_feat_len is None:
            search_feat_len = self.pos_embed_x.shape[1]
        division = {"template_mask": template_mask, "search_feat_len": search_feat_len, "threshold": threshold,
                    "tgt_type": tgt_type}
        decisions = []
        for blk in self.blocks:
            if isinstance(blk.attn, DivisionAttention):
                tokens, decision = blk(tokens, **division)
                if self.training:
                    decisions.append(decision[:, :, -1].sum(dim=-1, keepdim=True) / decision.shape[1])
            else:
                tokens, _ = blk(tokens)
        tokens = self.norm(tokens)
        if self.training:
            return tokens, torch.cat(decisions, dim=-1)
        return tokens, []


def grm_vit_base(**kwargs) -> GRMVisionTransformer:
    """ViT-B/16 (768 wide, 12 blocks, 12 heads) with token division in blocks 1..11."""
    return GRMVisionTransformer(patch_size=16, embed_dim=768, depth=12, num_heads=12, **kwargs)


def grm_vit_large(**kwargs) -> GRMVisionTransformer:
    """ViT-L/16 (1024 wide, 24 blocks, 16 heads) with token division in blocks 1..23."""
    return GRMVisionTransformer(patch_size=16, embed_dim=1024, depth=24, num_heads=16, **kwargs)


def grm_vit_tiny_4blocks(**kwargs) -> GRMVisionTransformer:
    """ViT-Tiny width (192 wide, 3 heads), 4 blocks, token division in blocks 1..3: the backbone of the CPU
    training configuration ``experiments/grm/tiny_cpu.yaml`` (not an official model)."""
    return GRMVisionTransformer(patch_size=16, embed_dim=192, depth=4, num_heads=3, **kwargs)


#: MODEL.BACKBONE.TYPE -> constructor.
BACKBONES = {
    "vit_base": grm_vit_base,
    "vit_large": grm_vit_large,
    "vit_tiny_4blocks": grm_vit_tiny_4blocks,  # CPU training config tiny_cpu (not official)
}


class GRM(OSTrack):
    """Backbone ``backbone`` (:class:`GRMVisionTransformer`) and box head ``box_head``; OSTrack's
    ``forward_head``.

    Args:
        transformer: the GRM backbone.
        box_head: a :class:`~lib.models.layers.center_head.CenterPredictor`.
        head_type: ``'CENTER'``.
        tgt_type: target representation of the division predictors (``MODEL.TGT_TYPE``).
    """

    def __init__(self, transformer: GRMVisionTransformer, box_head: CenterPredictor, head_type: str = "CENTER",
                 tgt_type: str = "allmax"):
        super().__init__(transformer, box_head, head_type=head_type)
        if tgt_type not in TGT_TYPES:
            raise ValueError(f"MODEL.TGT_TYPE '{tgt_type}' is not supported (known: {', '.join(TGT_TYPES)})")
        self.tgt_type = tgt_type

    def forward(self, template: torch.Tensor, search: torch.Tensor, template_mask: Optional[torch.Tensor] = None,
                threshold: float = 0.0) -> Dict[str, Any]:
        """Run the tracker network.

        Args:
            template: ``(B, 3, H_z, W_z)`` ImageNet-normalised template crop (128 pixels).
            search: ``(B, 3, H_x, W_x)`` normalised search-region crop (256 or 320 pixels).
            template_mask: ``(B, N_z)`` float template box mask of :func:`generate_mask_cond`.
            threshold: test-time division threshold (``TEST.HYPER`` of the benchmark; 0 = argmax).

        Returns:
            dict with ``pred_boxes`` ``(B, 1, 4)`` cxcywh normalised to the search crop, ``score_map``
            ``(B, 1, H_f, W_f)``, ``size_map`` ``(B, 2, H_f, W_f)``, ``offset_map`` ``(B, 2, H_f, W_f)`` and
            ``decisions`` (``(B, depth - 1)`` attend-to-all fractions in train mode, ``[]`` in eval mode).
        """
        x, decisions = self.backbone(z=template, x=search, template_mask=template_mask,
                                     search_feat_len=self.feat_len_s, threshold=threshold, tgt_type=self.tgt_type)
        out = self.forward_head(x, None)
        out["decisions"] = decisions
        return out


def template_box_mask(box_norm: torch.Tensor, feat_size: int) -> torch.Tensor:
    """GRM's template box mask: the template cells covered by the box (official ``generate_bbox_mask``).

    Args:
        box_norm: ``(B, 4)`` template box, xywh normalised to the template crop.
        feat_size: side of the template token grid (``TEMPLATE.SIZE // STRIDE``, 8).

    Returns:
        ``(B, feat_size ** 2)`` float mask (row-major): with ``(x, y, w, h) = box_norm * feat_size``, rows
        ``max(int(y), 0)`` to ``min(int(y + h + 1), feat_size) - 1`` and the same columns for ``x, w`` are 1.
    """
    mask = torch.zeros(box_norm.shape[0], feat_size, feat_size, device=box_norm.device)
    for i, (x, y, w, h) in enumerate((box_norm * feat_size).tolist()):
        mask[i, max(int(y), 0):min(int(y + h + 1), feat_size), max(int(x), 0):min(int(x + w + 1), feat_size)] = 1
    return mask.flatten(1)


def generate_mask_cond(cfg: Config, bs: int, device, gt_bbox: torch.Tensor) -> torch.Tensor:
    """:func:`template_box_mask` on the ``DATA.TEMPLATE.SIZE // MODEL.BACKBONE.STRIDE`` grid of a GRM
    config (official ``lib/utils/mask_utils.generate_mask_cond``); ``gt_bbox`` ``(bs, 4)`` normalised xywh.
    Returns ``(bs, N_z)`` float on ``device``."""
    feat_size = int(cfg.DATA.TEMPLATE.SIZE) // int(cfg.MODEL.BACKBONE.STRIDE)
    if gt_bbox.shape[0] != bs:
        raise ValueError(f"generate_mask_cond: {gt_bbox.shape[0]} template boxes for a batch of {bs}")
    return template_box_mask(gt_bbox.to(device), feat_size)


def _check_supported(cfg: Config) -> None:
    bb = cfg.MODEL.BACKBONE
    if bb.TYPE not in BACKBONES:
        raise ValueError(f"MODEL.BACKBONE.TYPE '{bb.TYPE}' is not supported (known: {', '.join(BACKBONES)})")
    if bb.CAT_MODE != "direct":
        raise NotImplementedError(f"MODEL.BACKBONE.CAT_MODE={bb.CAT_MODE!r} is not implemented (only 'direct', "
                                  "as every official config)")
    if "distilled" in (cfg.MODEL.PRETRAIN_FILE or ""):
        raise NotImplementedError(f"MODEL.PRETRAIN_FILE '{cfg.MODEL.PRETRAIN_FILE}': the distilled DeiT backbone "
                                  "(distillation token) is not implemented; no official config uses it")
    if cfg.MODEL.TGT_TYPE not in TGT_TYPES:
        raise ValueError(f"MODEL.TGT_TYPE '{cfg.MODEL.TGT_TYPE}' is not supported (known: {', '.join(TGT_TYPES)})")


@register_network("grm", "GRM")
def build_grm(cfg: Config, training: bool = False) -> GRM:
    """Build GRM from a merged config (official ``build_grm``).

    ``MODEL.BACKBONE.TYPE`` picks the architecture (``vit_base``, ``vit_large``); the official code
    additionally requires the matching ``MODEL.PRETRAIN_FILE`` name even at test time, which is not
    enforced here. With ``training=True`` the MAE weights ``MODEL.PRETRAIN_FILE`` are loaded into the
    backbone from the pretrained folder (``pretrained_networks`` of the train local.py) before the
    position embeddings are split (a missing file is a warning); a ``PRETRAIN_FILE`` naming a GRM
    checkpoint is loaded non-strictly into the whole model instead. With ``training=False`` nothing is read.

    Raises:
        ValueError / NotImplementedError: unknown backbone, head or target type, or options no official
            config uses.
    """
    _check_supported(cfg)
    bb = cfg.MODEL.BACKBONE
    backbone = BACKBONES[bb.TYPE](drop_path_rate=cfg.TRAIN.DROP_PATH_RATE, weight_init=training)
    return assemble_one_stream(
        cfg, backbone, lambda bb_, head: GRM(bb_, head, head_type=cfg.MODEL.HEAD.TYPE, tgt_type=cfg.MODEL.TGT_TYPE),
        "GRM", training)


def example_inputs(cfg: Config, batch_size: int = 1, device="cpu", generator: Optional[torch.Generator] = None):
    """Positional inputs of one test-time forward pass, for profiling: ``(template, search, template_mask,
    threshold)``: random normalised crops of ``TEST.TEMPLATE_SIZE`` / ``TEST.SEARCH_SIZE``, the template
    mask of a centred box of half the crop and ``TEST.HYPER.DEFAULT``."""
    zs, xs = int(cfg.TEST.TEMPLATE_SIZE), int(cfg.TEST.SEARCH_SIZE)
    template = torch.randn(batch_size, 3, zs, zs, generator=generator).to(device)
    search = torch.randn(batch_size, 3, xs, xs, generator=generator).to(device)
    box = torch.tensor([[0.25, 0.25, 0.5, 0.5]]).repeat(batch_size, 1)
    mask = generate_mask_cond(cfg, batch_size, device, box)
    return template, search, mask, float(cfg.TEST.HYPER.DEFAULT)
