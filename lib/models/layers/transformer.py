"""DETR-style encoder-decoder transformer (post-norm by default), as used by STARK and AiATrack.

Sequences are token-first: ``(L, B, C)``, as ``nn.MultiheadAttention`` expects without
``batch_first``. Position encodings are added to queries and keys inside every attention, never to
values. Compared with ``torch.nn.Transformer`` (and like DETR) the encoder has no final norm in the
post-norm setting and the decoder output gets a final LayerNorm.

The layers take their attention modules as optional arguments, so a tracker can swap in another
attention with the same call convention (``attn(query=, key=, value=, attn_mask=,
key_padding_mask=, need_weights=, **extra) -> (output, weights)``), e.g. AiATrack's AiA module, while keeping the
state_dict names (``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm1..3``).
Extra keyword arguments given to a layer's ``forward`` go to its attention modules.

Fast path (issue 10): the layers call their attention with ``need_weights=False`` (no layer uses the
weights), so ``nn.MultiheadAttention`` computes ``F.scaled_dot_product_attention`` (its functional form does
when no weights are asked for) instead of forming and head-averaging the weight matrices; the result is
the same softmax attention (parity tests unchanged).

Source: DETR ``models/transformer.py``; STARK ``lib/models/stark/transformer.py`` (class names,
``divide_norm``, ``return_encoder_output``, ``mode='encoder'``).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "build_transformer",
    "get_activation_fn",
    "normalize_qk",
    "FeedForwardMixin",
    "xavier_init_",
    "with_pos_embed",
]


def with_pos_embed(tensor: Tensor, pos: Optional[Tensor]) -> Tensor:
    """``tensor + pos`` (same shape), or ``tensor`` when ``pos`` is None."""
    return tensor if pos is None else tensor + pos


def get_activation_fn(activation: str) -> Callable[[Tensor], Tensor]:
    """``relu``, ``gelu`` or ``glu`` as a function.

    Raises:
        ValueError: any other name.
    """
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if activation == "glu":
        return F.glu
    raise ValueError(f"activation should be relu, gelu or glu, not '{activation}'")


def xavier_init_(module: nn.Module) -> None:
    """DETR's initialisation: ``xavier_uniform_`` on every parameter with more than one dimension."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


def normalize_qk(q: Tensor, k: Tensor, scale_factor: float):
    """STARK's optional cosine attention (``divide_norm``): unit-norm queries scaled by ``sqrt(d_head)``,
    unit-norm keys (norms over the last axis; shapes unchanged)."""
    return q / torch.norm(q, dim=-1, keepdim=True) * scale_factor, k / torch.norm(k, dim=-1, keepdim=True)


class FeedForwardMixin:
    """The feed-forward block of the DETR-style layers, ``linear2(dropout(act(linear1(x))))`` without
    residual or norm, with the official attribute (state_dict) names ``linear1``, ``dropout``, ``linear2``."""

    def _init_ffn(self, d_model: int, dim_feedforward: int, dropout: float, activation: str) -> None:
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.activation = get_activation_fn(activation)

    def ffn(self, x: Tensor) -> Tensor:
        """``(L, B, C)`` -> ``(L, B, C)``."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class TransformerEncoderLayer(FeedForwardMixin, nn.Module):
    """Self-attention + feed-forward block.

    Post-norm (default): ``x = LN1(x + drop(attn(x + pos, x + pos, x)))``,
    ``x = LN2(x + drop(W2 drop(act(W1 x))))``. Pre-norm applies the norms to the block inputs instead.

    Args:
        d_model: token width C.
        nhead: attention heads.
        dim_feedforward: hidden width of the FFN.
        dropout: dropout of attention weights, residual branches and FFN.
        activation: FFN activation (``relu``).
        normalize_before: pre-norm instead of post-norm.
        divide_norm: STARK's cosine-similarity attention (queries and keys normalised to unit length).
        self_attn: attention module to use; default ``nn.MultiheadAttention(d_model, nhead, dropout)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", normalize_before: bool = False, divide_norm: bool = False,
                 self_attn: Optional[nn.Module] = None):
        super().__init__()
        self.self_attn = self_attn if self_attn is not None else nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self._init_ffn(d_model, dim_feedforward, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        self.divide_norm = divide_norm
        self.scale_factor = float(d_model // nhead) ** 0.5

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None, pos: Optional[Tensor] = None,
                **attn_kwargs: Any) -> Tensor:
        """Encode ``src``.

        Args:
            src: ``(L, B, C)`` tokens.
            src_mask: optional ``(L, L)`` attention mask.
            src_key_padding_mask: ``(B, L)`` bool, True on padded tokens (ignored as keys).
            pos: ``(L, B, C)`` position encoding added to queries and keys.
            **attn_kwargs: extra arguments for ``self_attn`` (e.g. AiATrack's ``pos_emb``).

        Returns:
            ``(L, B, C)``.
        """
        if self.normalize_before:
            src2 = self.norm1(src)
            q = k = with_pos_embed(src2, pos)
            if self.divide_norm:
                q, k = normalize_qk(q, k, self.scale_factor)
            src2 = self.self_attn(query=q, key=k, value=src2, attn_mask=src_mask,
                                  key_padding_mask=src_key_padding_mask, need_weights=False, **attn_kwargs)[0]
            src = src + self.dropout1(src2)
            return src + self.dropout2(self.ffn(self.norm2(src)))
        q = k = with_pos_embed(src, pos)
        if self.divide_norm:
            q, k = normalize_qk(q, k, self.scale_factor)
        src2 = self.self_attn(query=q, key=k, value=src, attn_mask=src_mask,
                              key_padding_mask=src_key_padding_mask, need_weights=False, **attn_kwargs)[0]
        src = self.norm1(src + self.dropout1(src2))
        return self.norm2(src + self.dropout2(self.ffn(src)))


class TransformerDecoderLayer(FeedForwardMixin, nn.Module):
    """Self-attention among the queries, cross-attention to the memory, feed-forward; each followed by
    add & LayerNorm (post-norm) or preceded by LayerNorm (pre-norm).

    Args:
        d_model, nhead, dim_feedforward, dropout, activation, normalize_before, divide_norm: as
            :class:`TransformerEncoderLayer`.
        self_attn: attention among the queries; default ``nn.MultiheadAttention``.
        multihead_attn: cross-attention to the memory; default ``nn.MultiheadAttention``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", normalize_before: bool = False, divide_norm: bool = False,
                 self_attn: Optional[nn.Module] = None, multihead_attn: Optional[nn.Module] = None):
        super().__init__()
        self.self_attn = self_attn if self_attn is not None else nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = (multihead_attn if multihead_attn is not None
                               else nn.MultiheadAttention(d_model, nhead, dropout=dropout))
        self._init_ffn(d_model, dim_feedforward, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        self.divide_norm = divide_norm
        self.scale_factor = float(d_model // nhead) ** 0.5

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None, **attn_kwargs: Any) -> Tensor:
        """Decode the queries ``tgt`` against ``memory``.

        Args:
            tgt: ``(N, B, C)`` query tokens.
            memory: ``(L, B, C)`` encoder output.
            tgt_mask, memory_mask: optional attention masks.
            tgt_key_padding_mask: ``(B, N)``; memory_key_padding_mask: ``(B, L)`` (True = padding).
            pos: ``(L, B, C)`` position encoding of the memory (added to the keys).
            query_pos: ``(N, B, C)`` query embedding (added to queries and keys of the self-attention
                and to the queries of the cross-attention).
            **attn_kwargs: extra arguments for both attention modules.

        Returns:
            ``(N, B, C)``.
        """
        if self.normalize_before:
            tgt2 = self.norm1(tgt)
            q = k = with_pos_embed(tgt2, query_pos)
            if self.divide_norm:
                q, k = normalize_qk(q, k, self.scale_factor)
            tgt2 = self.self_attn(query=q, key=k, value=tgt2, attn_mask=tgt_mask,
                                  key_padding_mask=tgt_key_padding_mask, need_weights=False, **attn_kwargs)[0]
            tgt = tgt + self.dropout1(tgt2)
            tgt2 = self.norm2(tgt)
            q, k = with_pos_embed(tgt2, query_pos), with_pos_embed(memory, pos)
            if self.divide_norm:
                q, k = normalize_qk(q, k, self.scale_factor)
            tgt2 = self.multihead_attn(query=q, key=k, value=memory, attn_mask=memory_mask,
                                       key_padding_mask=memory_key_padding_mask, need_weights=False,
                                       **attn_kwargs)[0]
            tgt = tgt + self.dropout2(tgt2)
            return tgt + self.dropout3(self.ffn(self.norm3(tgt)))
        q = k = with_pos_embed(tgt, query_pos)
        if self.divide_norm:
            q, k = normalize_qk(q, k, self.scale_factor)
        tgt2 = self.self_attn(query=q, key=k, value=tgt, attn_mask=tgt_mask,
                              key_padding_mask=tgt_key_padding_mask, need_weights=False, **attn_kwargs)[0]
        tgt = self.norm1(tgt + self.dropout1(tgt2))
        q, k = with_pos_embed(tgt, query_pos), with_pos_embed(memory, pos)
        if self.divide_norm:
            q, k = normalize_qk(q, k, self.scale_factor)
        tgt2 = self.multihead_attn(query=q, key=k, value=memory, attn_mask=memory_mask,
                                   key_padding_mask=memory_key_padding_mask, need_weights=False,
                                       **attn_kwargs)[0]
        tgt = self.norm2(tgt + self.dropout2(tgt2))
        return self.norm3(tgt + self.dropout3(self.ffn(tgt)))


class TransformerEncoder(nn.Module):
    """``num_layers`` deep copies of ``encoder_layer`` and an optional final norm (pre-norm only).

    Args:
        encoder_layer: the layer to clone (:class:`TransformerEncoderLayer` or compatible).
        num_layers: depth.
        norm: final LayerNorm or None.
    """

    def __init__(self, encoder_layer: nn.Module, num_layers: int, norm: Optional[nn.Module] = None):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                pos: Optional[Tensor] = None, **attn_kwargs: Any) -> Tensor:
        """``(L, B, C)`` -> ``(L, B, C)``; arguments as :meth:`TransformerEncoderLayer.forward`."""
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask, pos=pos, **attn_kwargs)
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(nn.Module):
    """``num_layers`` deep copies of ``decoder_layer`` and a final norm.

    Args:
        decoder_layer: the layer to clone.
        num_layers: depth.
        norm: final LayerNorm (``transformer.decoder.norm``) or None.
        return_intermediate: return the normalised output of every layer (stacked) instead of the last.
    """

    def __init__(self, decoder_layer: nn.Module, num_layers: int, norm: Optional[nn.Module] = None,
                 return_intermediate: bool = False):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.return_intermediate = return_intermediate

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None, **attn_kwargs: Any) -> Tensor:
        """Decode; arguments as :meth:`TransformerDecoderLayer.forward`.

        Returns:
            ``(1, N, B, C)`` (last layer), or ``(num_layers, N, B, C)`` with ``return_intermediate``.
        """
        output = tgt
        intermediate = []
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask, pos=pos, query_pos=query_pos,
                           **attn_kwargs)
            if self.return_intermediate:
                intermediate.append(self.norm(output) if self.norm is not None else output)
        if self.norm is not None:
            output = self.norm(output)
        if self.return_intermediate:
            intermediate[-1] = output
            return torch.stack(intermediate)
        return output.unsqueeze(0)


class Transformer(nn.Module):
    """Encoder-decoder of STARK (DETR without the encoder's final norm in post-norm).

    Args:
        d_model: token width C (``MODEL.HIDDEN_DIM``).
        nhead: heads (``MODEL.TRANSFORMER.NHEADS``).
        num_encoder_layers, num_decoder_layers: depths; 0 drops the encoder (memory = input) or the
            decoder (output = query embedding).
        dim_feedforward, dropout, activation, normalize_before, divide_norm: as the layers.
        return_intermediate_dec: stack every decoder layer's output.

    Parameters are initialised with :func:`xavier_init_`.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation: str = "relu",
                 normalize_before: bool = False, return_intermediate_dec: bool = False, divide_norm: bool = False):
        super().__init__()
        encoder_layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                                normalize_before, divide_norm)
        encoder_norm = nn.LayerNorm(d_model) if normalize_before else None
        self.encoder = (TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
                        if num_encoder_layers > 0 else None)
        decoder_layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                                normalize_before, divide_norm)
        self.decoder = (TransformerDecoder(decoder_layer, num_decoder_layers, nn.LayerNorm(d_model),
                                           return_intermediate=return_intermediate_dec)
                        if num_decoder_layers > 0 else None)
        xavier_init_(self)
        self.d_model = d_model
        self.nhead = nhead
        self.d_feed = dim_feedforward
        self.divide_norm = divide_norm
        self.scale_factor = float(d_model // nhead) ** 0.5

    def forward(self, feat: Tensor, mask: Optional[Tensor], query_embed: Optional[Tensor], pos_embed: Optional[Tensor],
                mode: str = "all", return_encoder_output: bool = False):
        """Run the encoder, and the decoder unless ``mode == 'encoder'``.

        Args:
            feat: ``(L, B, C)`` concatenated template and search tokens.
            mask: ``(B, L)`` bool, True on padded tokens.
            query_embed: ``(N, C)`` or ``(N, B, C)`` decoder query embedding.
            pos_embed: ``(L, B, C)`` position encoding.
            mode: ``'all'`` or ``'encoder'``.
            return_encoder_output: also return the encoder memory.

        Returns:
            ``mode='encoder'``: memory ``(L, B, C)``. ``mode='all'``: decoder output ``hs`` of shape
            ``(1, B, N, C)`` (``(num_layers, B, N, C)`` with intermediate outputs), and ``(hs, memory)``
            with ``return_encoder_output``.

        Raises:
            ValueError: unknown ``mode`` or a ``query_embed`` that is not 2-D or 3-D.
        """
        if mode not in ("all", "encoder"):
            raise ValueError(f"Transformer mode must be 'all' or 'encoder', got '{mode}'")
        memory = feat if self.encoder is None else self.encoder(feat, src_key_padding_mask=mask, pos=pos_embed)
        if mode == "encoder":
            return memory
        if query_embed is None or query_embed.dim() not in (2, 3):
            raise ValueError("query_embed must have shape (N, C) or (N, B, C)")
        if query_embed.dim() == 2:
            query_embed = query_embed.unsqueeze(1).repeat(1, feat.size(1), 1)
        if self.decoder is not None:
            tgt = torch.zeros_like(query_embed)
            hs = self.decoder(tgt, memory, memory_key_padding_mask=mask, pos=pos_embed, query_pos=query_embed)
        else:
            hs = query_embed.unsqueeze(0)
        hs = hs.transpose(1, 2)
        return (hs, memory) if return_encoder_output else hs


def build_transformer(cfg) -> Transformer:
    """The transformer of a STARK config (``cfg.MODEL.HIDDEN_DIM`` and ``cfg.MODEL.TRANSFORMER.*``)."""
    t = cfg.MODEL.TRANSFORMER
    return Transformer(
        d_model=cfg.MODEL.HIDDEN_DIM,
        nhead=t.NHEADS,
        num_encoder_layers=t.ENC_LAYERS,
        num_decoder_layers=t.DEC_LAYERS,
        dim_feedforward=t.DIM_FEEDFORWARD,
        dropout=t.DROPOUT,
        normalize_before=t.PRE_NORM,
        return_intermediate_dec=False,
        divide_norm=t.DIVIDE_NORM,
    )
