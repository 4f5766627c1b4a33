"""Attention in Attention (AiA): multi-head attention whose correlation map is refined by an inner
attention before the softmax.

AiATrack (Gao et al., ECCV 2022, section 3.1) observes that the query-key correlations of ordinary
attention are computed independently for every query-key pair. AiA treats, for every key, the column
of its correlations with all queries as a token ("correlation vector"), lets these tokens attend to
each other (the *inner* attention) and adds the result to the raw correlation map.

Source: ``lib/models/aiatrack/attention.py`` of Little-Podi/AiATrack @ cdb3a4e (classes
``InnerAttention``, ``CorrAttention``, ``AiAModule``); parameter names and shapes are the official
ones, so official checkpoints load strictly. As in the official code the ``key_padding_mask`` and
``attn_mask`` arguments are accepted but NOT applied (the official masking lines are commented
out; the released weights were trained that way).

Shapes follow ``nn.MultiheadAttention`` without ``batch_first``: sequences are ``(L, B, C)``.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["InnerAttention", "CorrAttention", "AiAModule"]


class InnerAttention(nn.Module):
    """Attention among correlation tokens: projected queries/keys, *unprojected* values, and a
    residual output projection (``out = r + out_proj(r)``).

    Args:
        embed_dim: width of queries and keys (``MATCH_DIM``, 64).
        num_heads: heads (1 in AiATrack).
        dropout: dropout on the attention weights (training only).
        bias: biases on the query/key projections and ``out_proj``.
        vdim: width of the values and of the output (``FEAT_SIZE``, 400).

    Parameters (official names): ``q_proj_weight``, ``k_proj_weight`` ``(E, E)``, ``q_proj_bias``,
    ``k_proj_bias`` ``(E,)``, ``out_proj`` = ``Linear(vdim, vdim)``.
    """

    def __init__(self, embed_dim: int, num_heads: int = 1, dropout: float = 0.0, bias: bool = True,
                 vdim: Optional[int] = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"InnerAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        if self.vdim % num_heads:
            raise ValueError(f"InnerAttention: vdim {self.vdim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim))
        self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim))
        if bias:
            self.q_proj_bias = nn.Parameter(torch.empty(embed_dim))
            self.k_proj_bias = nn.Parameter(torch.empty(embed_dim))
        else:
            self.register_parameter("q_proj_bias", None)
            self.register_parameter("k_proj_bias", None)
        self.out_proj = nn.Linear(self.vdim, self.vdim, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.q_proj_weight)
        nn.init.xavier_uniform_(self.k_proj_weight)
        if self.q_proj_bias is not None:
            nn.init.zeros_(self.q_proj_bias)
            nn.init.zeros_(self.k_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """Attend.

        Args:
            query: ``(Lq, N, E)``.
            key: ``(Lk, N, E)``.
            value: ``(Lk, N, vdim)``.

        Returns:
            ``(Lq, N, vdim)``: ``r + out_proj(r)`` with ``r = softmax(q k^T / sqrt(d)) v``.
        """
        lq, n, _ = query.shape
        h = self.num_heads
        q = F.linear(query, self.q_proj_weight, self.q_proj_bias)
        k = F.linear(key, self.k_proj_weight, self.k_proj_bias)
        q = q.reshape(lq, n * h, -1).transpose(0, 1)
        k = k.reshape(k.shape[0], n * h, -1).transpose(0, 1)
        v = value.reshape(value.shape[0], n * h, -1).transpose(0, 1)
        if self.training and self.dropout > 0.0:
            attn = torch.bmm(q / math.sqrt(q.shape[-1]), k.transpose(1, 2)).softmax(dim=-1)
            out = torch.bmm(F.dropout(attn, p=self.dropout), v)
        else:  # plain softmax attention: the fused kernel (no (N, Lq, Lk) weights in memory)
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(0, 1).reshape(lq, n, self.vdim)
        return out + self.out_proj(out)


class CorrAttention(nn.Module):
    """The inner attention of AiA over a correlation map (official ``CorrAttention``).

    The keys of the outer attention are grouped in frames of ``feat_size`` tokens. Within each frame
    every key becomes a token whose feature is its correlation vector over the ``feat_size`` queries.
    Tokens attend to the tokens of the same frame: queries/keys are
    ``feat_norm1(corr_proj(vector)) + inner_pos(key)``, values ``feat_norm2(vector)``.

    Args:
        num_heads: heads of the outer attention (the correlation map holds ``B * num_heads`` maps).
        dropout: dropout of the inner attention weights and of its output.
        match_dim: inner width (``MODEL.AIA.MATCH_DIM``).
        feat_size: tokens per frame = number of queries (``MODEL.AIA.FEAT_SIZE``, 400 = 20 x 20).
    """

    def __init__(self, num_heads: int, dropout: float, match_dim: int, feat_size: int):
        super().__init__()
        self.match_dim = match_dim
        self.feat_size = feat_size
        self.num_heads = num_heads
        self.corr_proj = nn.Linear(feat_size, match_dim)
        self.corr_attn = InnerAttention(match_dim, 1, dropout=dropout, vdim=feat_size)
        self.feat_norm1 = nn.LayerNorm(match_dim)
        self.feat_norm2 = nn.LayerNorm(feat_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, corr_map: Tensor, pos_emb: Tensor) -> Tensor:
        """Refinement of ``corr_map`` (to be added to it).

        Args:
            corr_map: ``(B * num_heads, Nq, Nk)`` scaled query-key logits, head-major within each batch
                element (``index = b * num_heads + head``), with ``Nq == feat_size`` and
                ``Nk = n_frames * feat_size``.
            pos_emb: ``(Nk, B, match_dim)`` inner position encoding of the keys.

        Returns:
            ``(B * num_heads, Nq, Nk)``.

        Raises:
            ValueError: ``Nq != feat_size``, ``Nk`` not a multiple of ``feat_size``, or a ``pos_emb``
                that does not fit.
        """
        bh, nq, nk = corr_map.shape
        fs = self.feat_size
        if nq != fs or nk % fs:
            raise ValueError(f"AiA inner attention needs {fs} queries and a multiple of {fs} keys "
                             f"(MODEL.AIA.FEAT_SIZE), got a correlation map of shape {tuple(corr_map.shape)}")
        frames = nk // fs
        if pos_emb is None or pos_emb.shape[0] != nk or pos_emb.shape[1] * self.num_heads != bh \
                or pos_emb.shape[2] != self.match_dim:
            raise ValueError(f"AiA inner position encoding must be ({nk}, {bh // self.num_heads}, {self.match_dim}), "
                             f"got {None if pos_emb is None else tuple(pos_emb.shape)}")
        # Keys as tokens: (fs keys, B*h*frames, Nq), batch index = (b*h + head) * frames + frame.
        tokens = corr_map.reshape(bh, nq, frames, fs).permute(3, 0, 2, 1).reshape(fs, bh * frames, nq)
        pos = pos_emb.repeat_interleave(self.num_heads, dim=1)  # (Nk, B*h, D)
        pos = pos.reshape(frames, fs, bh, self.match_dim).permute(1, 2, 0, 3).reshape(fs, bh * frames, -1)
        qk = self.feat_norm1(self.corr_proj(tokens)) + pos
        refined = self.dropout(self.corr_attn(qk, qk, self.feat_norm2(tokens)))
        return refined.reshape(fs, bh, frames, nq).permute(1, 3, 2, 0).reshape(bh, nq, nk)


class AiAModule(nn.Module):
    """Multi-head attention with AiA (official ``AiAModule``), a drop-in for ``nn.MultiheadAttention``.

    ``logits = (q / sqrt(d_head)) k^T`` per head; with AiA ``logits += CorrAttention(logits, pos_emb)``;
    then softmax, dropout, ``@ v`` and ``out_proj``. Masks are accepted and ignored (see the module
    docstring). Without AiA, weights or training dropout the product runs through
    ``F.scaled_dot_product_attention`` (the same function). With AiA the logits themselves feed the inner
    attention, so they are formed explicitly (a fused kernel would compute them a second time); the inner
    attention is plain softmax attention and uses the fused kernel.

    Args:
        embed_dim: token width C.
        num_heads: heads.
        dropout: dropout of the attention weights (and inside the inner attention).
        bias: biases of the packed in-projection and ``out_proj``.
        use_AiA: add the inner attention (``MODEL.AIA.USE_AIA``); plain attention otherwise.
        match_dim: inner width (``MODEL.AIA.MATCH_DIM``).
        feat_size: tokens per frame (``MODEL.AIA.FEAT_SIZE``).

    Parameters (official names): ``in_proj_weight`` ``(3C, C)``, ``in_proj_bias`` ``(3C,)``,
    ``out_proj`` = ``Linear(C, C)``, ``inner_attn`` (:class:`CorrAttention`).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 use_AiA: bool = True, match_dim: int = 64, feat_size: int = 400):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"AiAModule: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.use_AiA = use_AiA
        if use_AiA:
            self.inner_attn = CorrAttention(num_heads, dropout, match_dim, feat_size)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None,
                pos_emb: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(Nq, B, C)``.
            key: ``(Nk, B, C)``.
            value: ``(Nk, B, C)``.
            key_padding_mask: ``(B, Nk)``; accepted for the ``nn.MultiheadAttention`` interface and
                NOT applied, as in the official code.
            need_weights: also return the attention weights averaged over heads.
            attn_mask: accepted and not applied (as ``key_padding_mask``).
            pos_emb: ``(Nk, B, match_dim)`` inner position encoding of the keys (required with AiA).

        Returns:
            ``(output (Nq, B, C), weights (B, Nq, Nk) or None)``.
        """
        nq, bsz, c = query.shape
        nk = key.shape[0]
        h = self.num_heads
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        q = F.linear(query, w_q, b_q).reshape(nq, bsz * h, self.head_dim).transpose(0, 1)
        k = F.linear(key, w_k, b_k).reshape(nk, bsz * h, self.head_dim).transpose(0, 1)
        v = F.linear(value, w_v, b_v).reshape(nk, bsz * h, self.head_dim).transpose(0, 1)
        if not self.use_AiA and not need_weights and not (self.training and self.dropout > 0.0):
            # plain softmax attention, no weights asked for: the fused kernel
            out = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(nq, bsz, c)
            return self.out_proj(out), None
        q = q / math.sqrt(self.head_dim)
        attn = torch.bmm(q, k.transpose(1, 2))  # (B*h, Nq, Nk)
        if self.use_AiA:
            attn = attn + self.inner_attn(attn, pos_emb)
        attn = attn.softmax(dim=-1)
        if self.training and self.dropout > 0.0:
            attn = F.dropout(attn, p=self.dropout)
        out = torch.bmm(attn, v).transpose(0, 1).reshape(nq, bsz, c)
        out = self.out_proj(out)
        if need_weights:
            return out, attn.reshape(bsz, h, nq, nk).mean(dim=1)
        return out, None
