"""STARK-ST: STARK-S with a second (dynamic) template and a score head that decides when to update it.

Source: Yan et al., ICCV 2021, section 3.2 (score head, template update); STARK
``lib/models/stark/stark_st.py``. Both training stages (``stark_st1``, ``stark_st2``) build this class.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from lib.models.backbones.resnet import build_backbone
from lib.models.layers.corner_head import build_box_head
from lib.models.layers.mlp import MLP
from lib.models.layers.transformer import build_transformer
from lib.utils.misc import NestedTensor

from .stark_s import STARKS

__all__ = ["STARKST", "build_starkst"]


class STARKST(STARKS):
    """STARK-S plus ``cls_head``: an MLP on the decoder output giving the target-present logit.

    Args:
        backbone, transformer, box_head, num_queries, aux_loss, head_type: see :class:`STARKS`.
        cls_head: ``MLP(C, C, 1, MODEL.NLAYER_HEAD)`` (keys ``cls_head.layers.{0,1,2}.*``).
    """

    def __init__(self, backbone: nn.Module, transformer: nn.Module, box_head: nn.Module, num_queries: int,
                 aux_loss: bool = False, head_type: str = "CORNER", cls_head: Optional[nn.Module] = None):
        super().__init__(backbone, transformer, box_head, num_queries, aux_loss=aux_loss, head_type=head_type)
        self.cls_head = cls_head

    def forward(self, img: Optional[NestedTensor] = None, seq_dict: Optional[Dict[str, torch.Tensor]] = None,
                mode: str = "backbone", run_box_head: bool = False, run_cls_head: bool = False):
        """As :meth:`STARKS.forward`, with both heads off by default."""
        return super().forward(img=img, seq_dict=seq_dict, mode=mode, run_box_head=run_box_head,
                               run_cls_head=run_cls_head)

    def forward_transformer(self, seq_dict: Dict[str, torch.Tensor], run_box_head: bool = False,
                            run_cls_head: bool = False):
        """Encoder and decoder over the merged tokens, then the requested heads.

        Args:
            seq_dict: merged tokens ``[template_1, template_2, search]`` (528 tokens for 128/320 crops).
            run_box_head: run the corner head (``pred_boxes``).
            run_cls_head: run the score head (``pred_logits``).

        Returns:
            ``(out_dict, outputs_coord, output_embed)``: ``out_dict`` holds ``pred_logits`` ``(B, N, 1)``
            (score-head logit; confidence = sigmoid) and/or ``pred_boxes`` ``(B, N, 4)`` normalised cxcywh;
            ``outputs_coord`` is ``pred_boxes`` or None; ``output_embed`` ``(1, B, N, C)``.

        Raises:
            ValueError: deep supervision is on.
        """
        if self.aux_loss:
            raise ValueError("Deep supervision is not supported.")
        output_embed, enc_mem = self.transformer(seq_dict["feat"], seq_dict["mask"], self.query_embed.weight,
                                                 seq_dict["pos"], return_encoder_output=True)
        out, outputs_coord = self.forward_head(output_embed, enc_mem, run_box_head=run_box_head,
                                               run_cls_head=run_cls_head)
        return out, outputs_coord, output_embed

    def forward_head(self, hs: torch.Tensor, memory: torch.Tensor, run_box_head: bool = False,
                     run_cls_head: bool = False) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
        """Score head on ``hs`` ``(1, B, N, C)`` and/or the corner head (:meth:`forward_box_head`)."""
        out_dict: Dict[str, torch.Tensor] = {}
        if run_cls_head:
            out_dict["pred_logits"] = self.cls_head(hs)[-1]
        if run_box_head:
            out_dict_box, outputs_coord = self.forward_box_head(hs, memory)
            out_dict.update(out_dict_box)
            return out_dict, outputs_coord
        return out_dict, None


def build_starkst(cfg, training: bool = False) -> STARKST:
    """STARK-ST of a ``stark_st1``/``stark_st2`` config (``MODEL.NLAYER_HEAD`` layers in the score head)."""
    hidden = cfg.MODEL.HIDDEN_DIM
    return STARKST(build_backbone(cfg, training=training), build_transformer(cfg), build_box_head(cfg),
                   num_queries=cfg.MODEL.NUM_OBJECT_QUERIES, aux_loss=cfg.TRAIN.DEEP_SUPERVISION,
                   head_type=cfg.MODEL.HEAD_TYPE, cls_head=MLP(hidden, hidden, 1, cfg.MODEL.NLAYER_HEAD))
