"""AiATrack's transformer: DETR encoder layers with AiA self-attention, and a decoder whose queries
are the search-region memory itself, attending to a long-term reference (the first frame) and to the
short-term references with two AiA cross-attentions.

The encoder reuses the shared :class:`~lib.models.layers.transformer.TransformerEncoderLayer` with
its attention swapped for :class:`~lib.models.aiatrack.attention.AiAModule`; the decoder layer is
AiATrack's own.

Source: ``lib/models/aiatrack/transformer.py`` of Little-Podi/AiATrack @ cdb3a4e. As in the
official code the layers are always post-norm (``PRE_NORM`` only adds a final encoder LayerNorm;
the official layers store the flag without using it).
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from lib.models.aiatrack.attention import AiAModule
from lib.models.layers.transformer import (FeedForwardMixin, TransformerEncoder, TransformerEncoderLayer,
                                           normalize_qk, xavier_init_)

__all__ = ["AiATrackDecoderLayer", "AiATrackDecoder", "AiATrackTransformer", "build_transformer"]


class AiATrackDecoderLayer(FeedForwardMixin, nn.Module):
    """One decoder layer: long-term and short-term AiA cross-attention, add & norm, FFN, add & norm.

    ``tgt = LN1(tgt + drop(long(tgt, M0, M0 + E0)) + drop(short(tgt, M1..n, M1..n + E1..n)))``,
    ``tgt = LN2(tgt + drop(FFN(tgt)))``, where ``M_i`` is the encoder memory of reference ``i`` and
    ``E_i`` its target/background embedding; queries and keys carry no position encoding (the AiA
    inner attention gets the references' ``inr`` encoding).

    Args:
        d_model: token width C.
        nhead: heads.
        dim_feedforward: FFN hidden width.
        dropout: dropout.
        activation: FFN activation.
        divide_norm: cosine attention (unit-norm queries scaled by ``sqrt(d_head)``, unit-norm keys).
        use_AiA, match_dim, feat_size: see :class:`~lib.models.aiatrack.attention.AiAModule`.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", divide_norm: bool = False, use_AiA: bool = True, match_dim: int = 64,
                 feat_size: int = 400):
        super().__init__()
        self.long_term_attn = AiAModule(d_model, nhead, dropout=dropout, use_AiA=use_AiA, match_dim=match_dim,
                                        feat_size=feat_size)
        self.short_term_attn = AiAModule(d_model, nhead, dropout=dropout, use_AiA=use_AiA, match_dim=match_dim,
                                         feat_size=feat_size)
        self._init_ffn(d_model, dim_feedforward, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1_1 = nn.Dropout(dropout)
        self.dropout1_2 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.divide_norm = divide_norm
        self.scale_factor = float(d_model // nhead) ** 0.5

    def _attend(self, attn: AiAModule, tgt: Tensor, mems: Sequence[Tensor], embs: Sequence[Tensor],
                poss: Sequence[Tensor], msks: Sequence[Tensor]) -> Tensor:
        mem = torch.cat(list(mems), dim=0)
        key_mask = torch.cat(list(msks), dim=1)
        query, key, value = tgt, mem, mem + torch.cat(list(embs), dim=0)
        if self.divide_norm:
            query, key = normalize_qk(query, key, self.scale_factor)
        return attn(query=query, key=key, value=value, pos_emb=torch.cat(list(poss), dim=0),
                    key_padding_mask=key_mask)[0]

    def forward(self, tgt: Tensor, refer_mem_list: Sequence[Tensor], refer_emb_list: Sequence[Tensor],
                refer_pos_list: Sequence[Tensor], refer_msk_list: Sequence[Tensor]) -> Tensor:
        """Decode.

        Args:
            tgt: ``(HW, B, C)`` search-region memory (the queries).
            refer_mem_list: ``n >= 2`` reference memories ``(HW, B, C)``; entry 0 is the long-term
                (initial) reference, entries ``1..n-1`` the short-term ones.
            refer_emb_list: their target/background embeddings ``(HW, B, C)``.
            refer_pos_list: their inner position encodings ``(HW, B, match_dim)``.
            refer_msk_list: their padding masks ``(B, HW)`` (passed on, not applied; see AiAModule).

        Returns:
            ``(HW, B, C)``.

        Raises:
            ValueError: fewer than two references or lists of different lengths.
        """
        n = len(refer_mem_list)
        if n < 2 or not (len(refer_emb_list) == len(refer_pos_list) == len(refer_msk_list) == n):
            raise ValueError(f"AiATrack decoder needs one long-term and at least one short-term reference with "
                             f"memory, embedding, position and mask each; got {n}, {len(refer_emb_list)}, "
                             f"{len(refer_pos_list)}, {len(refer_msk_list)}")
        long_out = self._attend(self.long_term_attn, tgt, refer_mem_list[:1], refer_emb_list[:1],
                                refer_pos_list[:1], refer_msk_list[:1])
        short_out = self._attend(self.short_term_attn, tgt, refer_mem_list[1:], refer_emb_list[1:],
                                 refer_pos_list[1:], refer_msk_list[1:])
        tgt = self.norm1(tgt + self.dropout1_1(long_out) + self.dropout1_2(short_out))
        return self.norm2(tgt + self.dropout2(self.ffn(tgt)))


class AiATrackDecoder(nn.Module):
    """``num_layers`` copies of :class:`AiATrackDecoderLayer` and a final LayerNorm.

    Returns ``(1, HW, B, C)`` (the official output has a leading layer axis of one).
    """

    def __init__(self, decoder_layer: nn.Module, num_layers: int, norm: Optional[nn.Module] = None):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, refer_mem_list, refer_emb_list, refer_pos_list, refer_msk_list) -> Tensor:
        output = tgt
        for layer in self.layers:
            output = layer(output, refer_mem_list, refer_emb_list, refer_pos_list, refer_msk_list)
        if self.norm is not None:
            output = self.norm(output)
        return output.unsqueeze(0)


class AiATrackTransformer(nn.Module):
    """Encoder (AiA self-attention) and decoder (long/short-term AiA cross-attention) of AiATrack.

    Args:
        d_model: width (``MODEL.HIDDEN_DIM``).
        nhead: heads (``MODEL.TRANSFORMER.NHEADS``).
        num_encoder_layers, num_decoder_layers: depths (3 and 1 in the shipped configs).
        dim_feedforward, dropout, activation: FFN and dropout.
        normalize_before: adds a final encoder LayerNorm (the layers stay post-norm, as official).
        divide_norm: cosine attention.
        use_AiA, match_dim, feat_size: ``MODEL.AIA.*``.

    Every parameter with more than one dimension is xavier-uniform initialised.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation: str = "relu",
                 normalize_before: bool = False, divide_norm: bool = False, use_AiA: bool = True,
                 match_dim: int = 64, feat_size: int = 400):
        super().__init__()
        self_attn = AiAModule(d_model, nhead, dropout=dropout, use_AiA=use_AiA, match_dim=match_dim,
                              feat_size=feat_size)
        encoder_layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                                normalize_before=False, divide_norm=divide_norm, self_attn=self_attn)
        encoder_norm = nn.LayerNorm(d_model) if normalize_before else None
        self.encoder = (TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
                        if num_encoder_layers > 0 else None)
        decoder_layer = AiATrackDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, divide_norm,
                                             use_AiA, match_dim, feat_size)
        self.decoder = (AiATrackDecoder(decoder_layer, num_decoder_layers, nn.LayerNorm(d_model))
                        if num_decoder_layers > 0 else None)
        xavier_init_(self)
        self.d_model = d_model
        self.nhead = nhead
        self.d_feed = dim_feedforward
        self.divide_norm = divide_norm
        self.scale_factor = float(d_model // nhead) ** 0.5

    def run_encoder(self, feat: Tensor, mask: Tensor, pos_emb: Tensor, inr_emb: Tensor) -> Tensor:
        """Encode one frame.

        Args:
            feat: ``(HW, B, C)`` tokens; mask: ``(B, HW)`` padding mask (not applied by AiA);
            pos_emb: ``(HW, B, C)`` sine encoding; inr_emb: ``(HW, B, match_dim)`` inner encoding.

        Returns:
            ``(HW, B, C)`` memory (``feat`` itself without encoder layers).
        """
        if self.encoder is None:
            return feat
        return self.encoder(feat, src_key_padding_mask=mask, pos=pos_emb, pos_emb=inr_emb)

    def run_decoder(self, search_mem: Tensor, refer_mem_list: List[Tensor], refer_emb_list: List[Tensor],
                    refer_pos_list: List[Tensor], refer_msk_list: List[Tensor]) -> Tensor:
        """Decode the search memory against the references -> ``(1, HW, B, C)``.

        Raises:
            ValueError: the transformer has no decoder layers.
        """
        if self.decoder is None:
            raise ValueError("AiATrack needs at least one decoder layer (MODEL.TRANSFORMER.DEC_LAYERS = 0)")
        return self.decoder(search_mem, refer_mem_list, refer_emb_list, refer_pos_list, refer_msk_list)


def build_transformer(cfg) -> AiATrackTransformer:
    """The transformer of an AiATrack config (``MODEL.HIDDEN_DIM``, ``MODEL.TRANSFORMER.*``, ``MODEL.AIA.*``)."""
    t, aia = cfg.MODEL.TRANSFORMER, cfg.MODEL.AIA
    return AiATrackTransformer(d_model=cfg.MODEL.HIDDEN_DIM, nhead=t.NHEADS, num_encoder_layers=t.ENC_LAYERS,
                               num_decoder_layers=t.DEC_LAYERS, dim_feedforward=t.DIM_FEEDFORWARD, dropout=t.DROPOUT,
                               normalize_before=t.PRE_NORM, divide_norm=t.DIVIDE_NORM, use_AiA=aia.USE_AIA,
                               match_dim=aia.MATCH_DIM, feat_size=aia.FEAT_SIZE)
