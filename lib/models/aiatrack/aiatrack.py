"""The AiATrack network (Gao et al., "AiATrack: Attention in Attention for Transformer Visual
Tracking", ECCV 2022).

Every frame (references and search region alike) is a 320x320 crop (search factor 5) encoded into
400 tokens: ResNet-50 up to layer3 -> 1x1 bottleneck to 256 channels -> 3 encoder layers with AiA
self-attention. The decoder lets the search tokens attend to the initial reference (long-term) and
to a few recent references (short-term), whose values carry a target/background embedding. The
decoded search tokens feed a corner head (box) and an IoU head (box quality, used to decide which
frames enter the reference memory). At test time the encoder output of each reference is cached
and reused ("feature reuse"): only the search frame is encoded per frame.

Source: ``lib/models/aiatrack/aiatrack.py`` of Little-Podi/AiATrack @ cdb3a4e; method names and
signatures (``forward_backbone``, ``forward_transformer``, ``forward_box_head``,
``forward_iou_head``, ``forward_heads``) and state_dict keys are the official ones.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from lib.models.aiatrack.head import IoUNet, build_iou_head
from lib.models.aiatrack.transformer import AiATrackTransformer, build_transformer
from lib.models.backbones.resnet import build_backbone
from lib.models.layers.corner_head import build_box_head
from lib.models.layers.position_encoding import PositionEmbeddingSine, build_position_encoding
from lib.utils.box_ops import box_xyxy_to_cxcywh, box_xyxy_to_xywh
from lib.utils.misc import NestedTensor

__all__ = ["AIATRACK", "build_aiatrack", "profiling_step", "target_background_region"]


def target_background_region(boxes_xywh: Tensor, feat_sz: int) -> Tensor:
    """One-hot target/background assignment of the ``feat_sz x feat_sz`` cells of a crop.

    A cell is target when it lies in the box rounded to the cell grid: ``x, y, w, h =
    round(box * feat_sz)``, rows ``[y, y + h)``, columns ``[x, x + w)`` clipped to the grid (the
    official ``target_region``; its Python slicing would wrap around for a box wholly above/left of
    the crop, which no tracker box can be — here such a box selects no cell).

    Args:
        boxes_xywh: ``(4,)`` or ``(B, 4)`` boxes xywh normalised to the crop.
        feat_sz: cells per side (20).

    Returns:
        ``(feat_sz**2, 2)`` or ``(B, feat_sz**2, 2)`` float, ``[..., 0]`` = target, ``[..., 1]`` =
        background, cells row-major (as the flattened tokens).
    """
    single = boxes_xywh.dim() == 1
    boxes = boxes_xywh.reshape(-1, 4).detach().float()
    x, y, w, h = (boxes * feat_sz).round().int().unbind(-1)
    idx = torch.arange(feat_sz, device=boxes.device)
    rows = (idx[None, :] >= y[:, None]) & (idx[None, :] < (y + h)[:, None])
    cols = (idx[None, :] >= x[:, None]) & (idx[None, :] < (x + w)[:, None])
    fg = (rows[:, :, None] & cols[:, None, :]).reshape(boxes.shape[0], feat_sz * feat_sz, 1).float()
    region = torch.cat([fg, 1 - fg], dim=2)
    return region[0] if single else region


class AIATRACK(nn.Module):
    """AiATrack (official class name ``AIATRACK``, checkpoint prefix ``AIATRACK_ep*.pth.tar``).

    Args:
        backbone: :class:`~lib.models.backbones.resnet.Joiner` of the ResNet and two sine encodings
            (``pos``: ``HIDDEN_DIM`` channels, ``inr``: ``MATCH_DIM`` channels).
        transformer: :class:`~lib.models.aiatrack.transformer.AiATrackTransformer`.
        box_head: :class:`~lib.models.layers.corner_head.Corner_Predictor`.
        num_queries: rows of the target/background embeddings (``MODEL.NUM_OBJECT_QUERIES``, 1).
        aux_loss: deep supervision (not supported, as in the official code).
        head_type: ``CORNER``.
        iou_head: :class:`~lib.models.aiatrack.head.IoUNet`.
    """

    def __init__(self, backbone: nn.Module, transformer: AiATrackTransformer, box_head: nn.Module,
                 num_queries: int, aux_loss: bool = False, head_type: str = "CORNER",
                 iou_head: Optional[IoUNet] = None):
        super().__init__()
        self.backbone = backbone
        self.transformer = transformer
        self.box_head = box_head
        self.num_queries = num_queries
        self.hidden_dim = transformer.d_model
        self.foreground_embed = nn.Embedding(num_queries, self.hidden_dim)
        self.background_embed = nn.Embedding(num_queries, self.hidden_dim)
        self.bottleneck = nn.Conv2d(backbone.num_channels, self.hidden_dim, kernel_size=1)
        self.aux_loss = aux_loss
        self.head_type = head_type
        self.feat_sz_s = int(box_head.feat_sz)
        self.feat_len_s = self.feat_sz_s ** 2
        self.pool_sz = 4
        self.pool_len = self.pool_sz ** 2
        self.iou_head = iou_head

    def forward(self, img: Optional[NestedTensor] = None, search_dic=None, refer_dic_list=None, refer_reg_list=None,
                out_embed: Optional[Tensor] = None, proposals: Optional[Tensor] = None, mode: str = "backbone"):
        """Dispatch on ``mode``: ``backbone`` (:meth:`forward_backbone`), ``transformer``
        (:meth:`forward_transformer` on reference dicts), ``heads`` (:meth:`forward_heads`).

        Raises:
            ValueError: another mode.
        """
        if mode == "backbone":
            return self.forward_backbone(img)
        if mode == "transformer":
            return self.forward_transformer(search_dic, refer_dic_list, refer_reg_list)
        if mode == "heads":
            return self.forward_heads(out_embed, proposals)
        raise ValueError(f"AIATRACK.forward: mode must be 'backbone', 'transformer' or 'heads', got '{mode}'")

    def forward_backbone(self, input: NestedTensor) -> Dict[str, Tensor]:
        """Backbone, bottleneck and position encodings of a batch of 320x320 crops.

        Args:
            input: images ``(B, 3, 320, 320)`` (ImageNet-normalised) with mask ``(B, 320, 320)``
                (True on padding).

        Returns:
            ``{'feat': (HW, B, C), 'mask': (B, HW), 'pos': (HW, B, C), 'inr': (HW, B, match_dim)}``.

        Raises:
            TypeError: ``input`` is not a :class:`NestedTensor`.
        """
        if not isinstance(input, NestedTensor):
            raise TypeError(f"forward_backbone expects a NestedTensor (images and padding mask), got "
                            f"{type(input).__name__}")
        output_back, pos, inr = self.backbone(input)
        return self.adjust(output_back, pos, inr)

    def adjust(self, output_back: List[NestedTensor], pos_embed: List[Tensor], inr_embed: List[Tensor]
               ) -> Dict[str, Tensor]:
        """Bottleneck the last backbone output and flatten everything to token-first sequences."""
        src_feat, mask = output_back[-1].decompose()
        feat = self.bottleneck(src_feat)
        return {"feat": feat.flatten(2).permute(2, 0, 1),
                "mask": mask.flatten(1),
                "pos": pos_embed[-1].flatten(2).permute(2, 0, 1),
                "inr": inr_embed[-1].flatten(2).permute(2, 0, 1)}

    def embed_bank(self, batch_size: int) -> Tensor:
        """``(B, 2, C)``: the foreground and background embeddings stacked, repeated over the batch."""
        bank = torch.cat([self.foreground_embed.weight, self.background_embed.weight], dim=0)
        return bank.unsqueeze(0).repeat(batch_size, 1, 1)

    def refer_embedding(self, region: Tensor) -> Tensor:
        """Target/background embedding of a reference: ``(B, HW, 2)`` region -> ``(HW, B, C)``."""
        return torch.bmm(region, self.embed_bank(region.shape[0]).to(region.dtype)).transpose(0, 1)

    def forward_transformer(self, search_dic: Dict[str, Tensor], refer_dic_list: Optional[Sequence[dict]] = None,
                            refer_reg_list: Optional[Sequence[Tensor]] = None,
                            refer_mem_list: Optional[Sequence[Tensor]] = None,
                            refer_emb_list: Optional[Sequence[Tensor]] = None,
                            refer_pos_list: Optional[Sequence[Tensor]] = None,
                            refer_msk_list: Optional[Sequence[Tensor]] = None):
        """Encode the search region and decode it against the references.

        References come either as backbone dicts with their regions (training: ``refer_dic_list``,
        ``refer_reg_list`` of ``(B, HW, 2)``; each is encoded here) or as cached encoder outputs
        (tracking, feature reuse: ``refer_mem_list``, ``refer_emb_list``, ``refer_pos_list``,
        ``refer_msk_list``). Entry 0 is the long-term reference, the rest are short-term.

        Returns:
            ``(output_embed (1, HW, B, C), search_mem (HW, B, C), search inr (HW, B, match_dim),
            search mask (B, HW))``.

        Raises:
            ValueError: deep supervision is enabled, or neither form of references is given.
        """
        if self.aux_loss:
            raise ValueError("AiATrack does not support deep supervision (TRAIN.DEEP_SUPERVISION must be False)")
        bs = search_dic["feat"].shape[1]
        search_mem = self.transformer.run_encoder(search_dic["feat"], search_dic["mask"], search_dic["pos"],
                                                  search_dic["inr"])
        if refer_mem_list is None:
            if refer_dic_list is None or refer_reg_list is None:
                raise ValueError("forward_transformer needs refer_dic_list and refer_reg_list, or the cached "
                                 "refer_mem_list, refer_emb_list, refer_pos_list and refer_msk_list")
            if len(refer_reg_list) != len(refer_dic_list):
                raise ValueError(f"forward_transformer: {len(refer_dic_list)} reference dicts but "
                                 f"{len(refer_reg_list)} regions")
            bank = self.embed_bank(bs)
            refer_mem_list, refer_emb_list, refer_pos_list, refer_msk_list = [], [], [], []
            for refer_dic, region in zip(refer_dic_list, refer_reg_list):
                refer_mem_list.append(self.transformer.run_encoder(refer_dic["feat"], refer_dic["mask"],
                                                                   refer_dic["pos"], refer_dic["inr"]))
                refer_emb_list.append(torch.bmm(region.to(bank.dtype), bank).transpose(0, 1))
                refer_pos_list.append(refer_dic["inr"])
                refer_msk_list.append(refer_dic["mask"])
        output_embed = self.transformer.run_decoder(search_mem, list(refer_mem_list), list(refer_emb_list),
                                                    list(refer_pos_list), list(refer_msk_list))
        return output_embed, search_mem, search_dic["inr"], search_dic["mask"]

    def _embed_to_map(self, hs: Tensor) -> Tuple[Tensor, int, int]:
        """``(1, HW, B, C)`` -> ``(B, C, feat_sz, feat_sz)`` and ``(B, Nq)``."""
        opt = hs.permute(2, 0, 3, 1).contiguous()  # (B, 1, C, HW)
        bs, nq, c, _ = opt.shape
        return opt.view(-1, c, self.feat_sz_s, self.feat_sz_s), bs, nq

    def forward_box_head(self, hs: Tensor) -> Tuple[Dict[str, Tensor], Tensor]:
        """Corner head on the decoder output.

        Args:
            hs: ``(1, HW, B, C)`` decoder output.

        Returns:
            ``({'pred_boxes': (B, 1, 4) cxcywh}, coord_in_crop (B, 4) xywh)``, both normalised to the
            320 search crop.
        """
        opt_feat, bs, nq = self._embed_to_map(hs)
        bbox_coor = self.box_head(opt_feat)  # (B, 4) xyxy
        coord_in_crop = box_xyxy_to_xywh(bbox_coor)
        outputs_coord = box_xyxy_to_cxcywh(bbox_coor)
        return {"pred_boxes": outputs_coord.view(bs, nq, 4)}, coord_in_crop

    def forward_iou_head(self, hs: Tensor, proposals: Tensor) -> Dict[str, Tensor]:
        """IoU head on the decoder output.

        Args:
            hs: ``(1, HW, B, C)`` decoder output.
            proposals: ``(num_images, num_sequences, P, 4)`` boxes xywh normalised to the search crop.

        Returns:
            ``{'pred_iou': (num_images, num_sequences, P)}``.
        """
        opt_feat, _, _ = self._embed_to_map(hs)
        return {"pred_iou": self.iou_head(opt_feat, proposals)}

    def forward_heads(self, hs: Tensor, proposals: Tensor) -> Dict[str, Tensor]:
        """Both heads (training): ``{'pred_iou': ..., 'pred_boxes': (B, 1, 4) cxcywh}``."""
        opt_feat, bs, nq = self._embed_to_map(hs)
        pred_iou = self.iou_head(opt_feat, proposals)
        outputs_coord = box_xyxy_to_cxcywh(self.box_head(opt_feat))
        return {"pred_iou": pred_iou, "pred_boxes": outputs_coord.view(bs, nq, 4)}


def build_aiatrack(cfg, training: bool = False) -> AIATRACK:
    """Build AiATrack from a config (official ``build_aiatrack``).

    Args:
        cfg: an ``aiatrack`` config.
        training: load the ImageNet ResNet weights from ``pretrained_models/`` when present.
    """
    position_embeddings = [build_position_encoding(cfg.MODEL.HIDDEN_DIM, cfg.MODEL.POSITION_EMBEDDING),
                           PositionEmbeddingSine(cfg.MODEL.AIA.MATCH_DIM // 2, normalize=True)]
    backbone = build_backbone(cfg, position_embeddings=position_embeddings, training=training)
    return AIATRACK(backbone, build_transformer(cfg), build_box_head(cfg), num_queries=cfg.MODEL.NUM_OBJECT_QUERIES,
                    aux_loss=cfg.TRAIN.DEEP_SUPERVISION, head_type=cfg.MODEL.HEAD_TYPE, iou_head=build_iou_head(cfg))


def profiling_step(net: AIATRACK, cfg, device="cpu", dataset_name: Optional[str] = None):
    """The per-frame step of the AiATrack tracker (feature reuse), for ``tracking/profile_model.py``.

    Once per memory update: a reference crop's backbone, encoder and target/background embedding (cached).
    Per frame: backbone and encoder of the search region, decoder against the ``1 + num_short_term_refs``
    cached references (``TEST.HYPER`` of ``dataset_name``), corner head and IoU head.

    Returns:
        :class:`~lib.models.profiling.ProfileStep` whose inputs are the search crop ``(1, 3, S, S)`` and its
        padding mask ``(1, S, S)``.
    """
    from lib.config.aiatrack import hyper_parameters
    from lib.models.profiling import ProfileStep, StepModule

    device = torch.device(device)
    _, num_short, _, key = hyper_parameters(cfg, dataset_name)
    n_refs = 1 + num_short
    size = int(cfg.TEST.SEARCH_SIZE)
    img = torch.randn(1, 3, size, size, device=device)
    mask = torch.zeros(1, size, size, dtype=torch.bool, device=device)
    box = torch.tensor([0.4, 0.4, 0.2, 0.2])

    def encode_reference():
        ref = net.forward_backbone(NestedTensor(img, mask))
        mem = net.transformer.run_encoder(ref["feat"], ref["mask"], ref["pos"], ref["inr"])
        emb = net.refer_embedding(target_background_region(box, size // 16)[None].to(device))
        return ref, mem, emb

    with torch.no_grad():
        ref, mem, emb = encode_reference()
    cached = {"refer_mem_list": [mem] * n_refs, "refer_emb_list": [emb] * n_refs,
              "refer_pos_list": [ref["inr"]] * n_refs, "refer_msk_list": [ref["mask"]] * n_refs}

    def step(model, search_img, search_mask):
        search = model.forward_backbone(NestedTensor(search_img, search_mask))
        out_embed = model.forward_transformer(search_dic=search, **cached)[0]
        _, coord = model.forward_box_head(out_embed)
        return model.forward_iou_head(out_embed, coord[None, None])

    return ProfileStep(f"search backbone + encoder ({size}x{size}), decoder against {n_refs} cached references "
                       f"(HYPER {key}), corner head, IoU head", StepModule(net, step), (img.clone(), mask.clone()),
                       once={"reference encoding (per memory update)": encode_reference})
