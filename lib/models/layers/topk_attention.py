"""Top-k sparse multi-head attention (SparseTT, IJCAI 2022, Sec. 3.2 "sparse multi-head self-attention").

A drop-in variant of :class:`torch.nn.MultiheadAttention` with the same parameters (``in_proj_weight``,
``in_proj_bias``, ``out_proj``; or ``q/k/v_proj_weight`` when ``kdim``/``vdim`` differ) and call signature.
For every query row the attention logits ``(q / sqrt(head_dim)) k^T (+ mask)`` keep only their ``top_k``
largest entries: the softmax is taken over those ``top_k`` logits and every other key gets weight exactly 0.
``top_k=None`` gives dense softmax attention.

Source: ``videoanalyst/model/utils/multi_head_attention_topk.py`` of fzh0917/SparseTT (``MultiHeadAttentionTopK``
and ``_scaled_dot_product_attention_topk``); the computation follows the same order of operations.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TopKMultiheadAttention", "topk_softmax"]


def topk_softmax(logits: torch.Tensor, top_k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the ``top_k`` largest entries of the last dimension, zero elsewhere.

    Args:
        logits: ``(..., S)`` attention logits (masked entries may be ``-inf``).
        top_k: entries kept per row; values above ``S`` keep the whole row.

    Returns:
        ``(weights, indices)``: ``weights`` with the shape of ``logits`` (rows sum to 1 over the kept entries),
        ``indices`` ``(..., min(top_k, S))`` int64 positions of the kept entries, largest logit first.
    """
    values, indices = torch.topk(logits, k=min(int(top_k), logits.shape[-1]), dim=-1)
    # As the official code: subtract the row maximum, softmax over the kept values, scatter into zeros.
    kept = torch.softmax(values - values.max(dim=-1, keepdim=True).values, dim=-1)
    # (under CUDA autocast the softmax is float32 while the logits are half: scatter into the softmax dtype)
    return torch.zeros_like(logits, dtype=kept.dtype).scatter(-1, indices, kept), indices


class TopKMultiheadAttention(nn.MultiheadAttention):
    """:class:`torch.nn.MultiheadAttention` whose softmax keeps the ``top_k`` largest logits of each query.

    Args:
        embed_dim, num_heads, dropout, bias, kdim, vdim, batch_first, device, dtype: as
            :class:`torch.nn.MultiheadAttention` (same parameter names, so checkpoints load unchanged).
        top_k: keys kept per query row (SparseTT: 32 of the 361 search tokens); ``None`` = dense attention.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True)``: sequence-first ``(L, B, E)`` / ``(S, B, E)`` tensors (batch first when
    ``batch_first``); ``key_padding_mask`` ``(B, S)`` bool (True = ignore) or float (added);
    ``attn_mask`` ``(L, S)`` or ``(B*num_heads, L, S)``, bool (True = blocked) or float (added).
    Returns ``(output (L, B, E), weights)`` with ``weights`` ``(B, L, S)`` averaged over heads,
    ``(B, num_heads, L, S)`` when ``average_attn_weights`` is False, or None when ``need_weights`` is False.

    Raises:
        ValueError: ``top_k`` not a positive int, or ``add_bias_kv``/``add_zero_attn`` requested (the
            official layer never uses them and they are not implemented here); shape errors of the inputs.
    """

    def __init__(self, embed_dim: int, num_heads: int, top_k: Optional[int] = None, dropout: float = 0.0,
                 bias: bool = True, add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: Optional[int] = None, vdim: Optional[int] = None, batch_first: bool = False,
                 device=None, dtype=None) -> None:
        if add_bias_kv or add_zero_attn:
            raise ValueError("TopKMultiheadAttention does not implement add_bias_kv / add_zero_attn")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, kdim=kdim, vdim=vdim,
                         batch_first=batch_first, device=device, dtype=dtype)
        self.top_k = top_k

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, top_k={self.top_k}"

    def _project(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor):
        w, b, E = self.in_proj_weight, self.in_proj_bias, self.embed_dim
        if not self._qkv_same_embed_dim:
            b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3)
            return (F.linear(query, self.q_proj_weight, b_q), F.linear(key, self.k_proj_weight, b_k),
                    F.linear(value, self.v_proj_weight, b_v))
        if key is value:
            if query is key:  # self-attention: one packed projection, as torch / the official code
                return F.linear(query, w, b).chunk(3, dim=-1)
            w_q, w_kv = w.split([E, 2 * E])
            b_q, b_kv = (None, None) if b is None else b.split([E, 2 * E])
            return (F.linear(query, w_q, b_q),) + tuple(F.linear(key, w_kv, b_kv).chunk(2, dim=-1))
        w_q, w_k, w_v = w.chunk(3)
        b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3)
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _merged_mask(self, attn_mask: Optional[torch.Tensor], key_padding_mask: Optional[torch.Tensor],
                     bsz: int, tgt_len: int, src_len: int, dtype: torch.dtype) -> Optional[torch.Tensor]:
        """Additive float mask ``(1 or B*heads, L, S)`` from ``attn_mask`` and ``key_padding_mask``."""
        mask = None
        if attn_mask is not None:
            if attn_mask.dim() == 2:
                if tuple(attn_mask.shape) != (tgt_len, src_len):
                    raise ValueError(f"2-D attn_mask has shape {tuple(attn_mask.shape)}, expected {(tgt_len, src_len)}")
                attn_mask = attn_mask.unsqueeze(0)
            elif attn_mask.dim() == 3:
                if tuple(attn_mask.shape) != (bsz * self.num_heads, tgt_len, src_len):
                    raise ValueError(f"3-D attn_mask has shape {tuple(attn_mask.shape)}, "
                                     f"expected {(bsz * self.num_heads, tgt_len, src_len)}")
            else:
                raise ValueError(f"attn_mask must be 2-D or 3-D, got {attn_mask.dim()}-D")
            mask = self._to_additive(attn_mask, dtype)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (bsz, src_len):
                raise ValueError(f"key_padding_mask has shape {tuple(key_padding_mask.shape)}, expected {(bsz, src_len)}")
            kpm = self._to_additive(key_padding_mask, dtype).view(bsz, 1, 1, src_len)
            kpm = kpm.expand(-1, self.num_heads, -1, -1).reshape(bsz * self.num_heads, 1, src_len)
            mask = kpm if mask is None else mask + kpm
        return mask

    @staticmethod
    def _to_additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if mask.dtype == torch.bool or mask.dtype == torch.uint8:
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(mask.bool(), float("-inf"))
        if not mask.is_floating_point():
            raise ValueError(f"attention masks must be bool or float, got {mask.dtype}")
        return mask.to(dtype)

    def select(self, logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Attention weights from logits ``(B*heads, L, S)``: top-k softmax (or dense softmax when
        ``top_k`` is None, with ``indices`` None). Returns ``(weights, indices)``."""
        if self.top_k is None:
            return torch.softmax(logits, dim=-1), None
        return topk_softmax(logits, self.top_k)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None, need_weights: bool = True,
                attn_mask: Optional[torch.Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if is_causal:
            raise ValueError("TopKMultiheadAttention: is_causal is not supported; pass attn_mask")
        if self.batch_first:  # keep the identities that select the packed projection
            if key is value:
                same = query is key
                key = value = key.transpose(0, 1)
                query = key if same else query.transpose(0, 1)
            else:
                query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        tgt_len, bsz, embed_dim = query.shape
        src_len = key.shape[0]
        if embed_dim != self.embed_dim:
            raise ValueError(f"query has {embed_dim} channels, expected embed_dim {self.embed_dim}")
        if key.shape[:2] != value.shape[:2] or key.shape[1] != bsz:
            raise ValueError(f"key {tuple(key.shape)} / value {tuple(value.shape)} do not fit query {tuple(query.shape)}")
        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        q = q.contiguous().view(tgt_len, bsz * heads, head_dim).transpose(0, 1)
        k = k.contiguous().view(src_len, bsz * heads, head_dim).transpose(0, 1)
        v = v.contiguous().view(src_len, bsz * heads, head_dim).transpose(0, 1)
        logits = torch.bmm(q / math.sqrt(head_dim), k.transpose(-2, -1))  # (B*heads, L, S)
        mask = self._merged_mask(attn_mask, key_padding_mask, bsz, tgt_len, src_len, logits.dtype)
        if mask is not None:
            logits = logits + mask
        weights, _ = self.select(logits)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, p=self.dropout)
        out = torch.bmm(weights, v).transpose(0, 1).contiguous().view(tgt_len, bsz, embed_dim)
        out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
        if self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = weights.view(bsz, heads, tgt_len, src_len)
        return out, (weights.sum(dim=1) / heads if average_attn_weights else weights)
