"""STARK-S: ResNet backbone, encoder-decoder transformer over [template, search] tokens, corner head.

Source: Yan et al., "Learning Spatio-Temporal Transformer for Visual Tracking", ICCV 2021, section 3.1;
STARK ``lib/models/stark/stark_s.py`` (class name, method names and arguments, ``adjust``, the
box-head glue).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from lib.models.backbones.resnet import build_backbone
from lib.models.layers.corner_head import build_box_head
from lib.models.layers.transformer import build_transformer
from lib.utils.box_ops import box_xyxy_to_cxcywh
from lib.utils.misc import NestedTensor

__all__ = ["STARKS", "build_starks"]


class STARKS(nn.Module):
    """The spatial-only STARK network.

    Args:
        backbone: :class:`~lib.models.backbones.resnet.Joiner` (ResNet + sine encoding), key ``backbone``.
        transformer: :class:`~lib.models.layers.transformer.Transformer`.
        box_head: :class:`~lib.models.layers.corner_head.Corner_Predictor`.
        num_queries: decoder queries (1); ``query_embed`` is ``nn.Embedding(num_queries, C)``.
        aux_loss: deep supervision (not supported by the forward, as in the official code).
        head_type: ``CORNER``.

    State_dict: ``backbone.0.body.*``, ``bottleneck.*`` (1x1 conv 1024 -> C), ``query_embed.weight``,
    ``transformer.*``, ``box_head.*``.
    """

    def __init__(self, backbone: nn.Module, transformer: nn.Module, box_head: nn.Module, num_queries: int,
                 aux_loss: bool = False, head_type: str = "CORNER"):
        super().__init__()
        self.backbone = backbone
        self.transformer = transformer
        self.box_head = box_head
        self.num_queries = num_queries
        hidden_dim = transformer.d_model
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.bottleneck = nn.Conv2d(backbone.num_channels, hidden_dim, kernel_size=1)
        self.aux_loss = aux_loss
        self.head_type = head_type
        if head_type != "CORNER":
            raise ValueError(f"STARK head type '{head_type}' is not supported (expected 'CORNER')")
        self.feat_sz_s = int(box_head.feat_sz)
        self.feat_len_s = int(box_head.feat_sz ** 2)

    def forward(self, img: Optional[NestedTensor] = None, seq_dict: Optional[Dict[str, torch.Tensor]] = None,
                mode: str = "backbone", run_box_head: bool = True, run_cls_head: bool = False):
        """``mode='backbone'``: :meth:`forward_backbone` of ``img``; ``mode='transformer'``:
        :meth:`forward_transformer` of ``seq_dict``.

        Raises:
            ValueError: another ``mode``.
        """
        if mode == "backbone":
            return self.forward_backbone(img)
        if mode == "transformer":
            return self.forward_transformer(seq_dict, run_box_head=run_box_head, run_cls_head=run_cls_head)
        raise ValueError(f"mode must be 'backbone' or 'transformer', got '{mode}'")

    def forward_backbone(self, input: NestedTensor) -> Dict[str, torch.Tensor]:
        """Backbone, bottleneck and position encoding of one image batch.

        Args:
            input: images ``(B, 3, H, W)`` (ImageNet-normalised) with mask ``(B, H, W)`` (True = padding).

        Returns:
            ``{'feat': (HW, B, C), 'mask': (B, HW), 'pos': (HW, B, C)}`` with ``HW = (H/16) * (W/16)``
            (64 tokens for a 128 template, 400 for a 320 search region).

        Raises:
            TypeError: ``input`` is not a :class:`NestedTensor`.
        """
        if not isinstance(input, NestedTensor):
            raise TypeError(f"forward_backbone expects a NestedTensor (images + padding mask), got "
                            f"{type(input).__name__}")
        output_back, pos = self.backbone(input)
        return self.adjust(output_back, pos)

    def forward_transformer(self, seq_dict: Dict[str, torch.Tensor], run_box_head: bool = True,
                            run_cls_head: bool = False):
        """Encoder, decoder and corner head over merged tokens (the box head always runs in STARK-S).

        Args:
            seq_dict: :func:`~lib.utils.merge.merge_template_search` output, search tokens last.
            run_box_head, run_cls_head: accepted for a common signature with STARK-ST.

        Returns:
            ``(out, outputs_coord, output_embed)``: ``out = {'pred_boxes': (B, N, 4)}`` normalised cxcywh
            in the search crop, ``outputs_coord`` the same tensor, ``output_embed`` ``(1, B, N, C)``.

        Raises:
            ValueError: deep supervision (``TRAIN.DEEP_SUPERVISION``) is on.
        """
        if self.aux_loss:
            raise ValueError("Deep supervision is not supported.")
        output_embed, enc_mem = self.transformer(seq_dict["feat"], seq_dict["mask"], self.query_embed.weight,
                                                 seq_dict["pos"], return_encoder_output=True)
        out, outputs_coord = self.forward_box_head(output_embed, enc_mem)
        return out, outputs_coord, output_embed

    def forward_box_head(self, hs: torch.Tensor, memory: torch.Tensor) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """Corner head on the search tokens of the memory weighted by their similarity to the decoder output.

        ``att = enc_opt @ hs^T`` (one weight per search token and query); the head sees
        ``enc_opt * att`` reshaped to ``(B*N, C, feat_sz, feat_sz)``.

        Args:
            hs: ``(1, B, N, C)`` decoder output.
            memory: ``(L, B, C)`` encoder memory; the last ``feat_sz**2`` tokens are the search region.

        Returns:
            ``({'pred_boxes': (B, N, 4)}, (B, N, 4))``, boxes cxcywh normalised to the search crop.
        """
        enc_opt = memory[-self.feat_len_s:].transpose(0, 1)  # (B, HW, C)
        dec_opt = hs.squeeze(0).transpose(1, 2)  # (B, C, N)
        att = torch.matmul(enc_opt, dec_opt)  # (B, HW, N)
        opt = (enc_opt.unsqueeze(-1) * att.unsqueeze(-2)).permute((0, 3, 2, 1)).contiguous()  # (B, N, C, HW)
        bs, nq, c, _ = opt.size()
        opt_feat = opt.view(-1, c, self.feat_sz_s, self.feat_sz_s)
        outputs_coord = box_xyxy_to_cxcywh(self.box_head(opt_feat)).view(bs, nq, 4)
        return {"pred_boxes": outputs_coord}, outputs_coord

    def adjust(self, output_back: List[NestedTensor], pos_embed: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Bottleneck the last backbone output and flatten to token-first sequences.

        Returns:
            ``{'feat': (HW, B, C), 'mask': (B, HW), 'pos': (HW, B, C)}``.
        """
        src_feat, mask = output_back[-1].decompose()
        feat = self.bottleneck(src_feat)
        return {"feat": feat.flatten(2).permute(2, 0, 1),
                "mask": mask.flatten(1),
                "pos": pos_embed[-1].flatten(2).permute(2, 0, 1)}


def build_starks(cfg, training: bool = False) -> STARKS:
    """STARK-S of a ``stark_s`` config (``training`` loads the ImageNet backbone, see
    :func:`~lib.models.backbones.resnet.build_backbone`)."""
    return STARKS(build_backbone(cfg, training=training), build_transformer(cfg), build_box_head(cfg),
                  num_queries=cfg.MODEL.NUM_OBJECT_QUERIES, aux_loss=cfg.TRAIN.DEEP_SUPERVISION,
                  head_type=cfg.MODEL.HEAD_TYPE)
