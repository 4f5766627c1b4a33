"""SparseTT's transformer neck: a dense encoder on the template, a top-k sparse decoder on the search region.

Source: fzh0917/SparseTT ``videoanalyst/model/neck/neck_impl/{transformer_neck,encoder,decoder}.py`` and
``videoanalyst/model/utils/transformer_layers.py`` (paper Sec. 3). All layers are post-norm; the
sequence-first layout ``(HW, B, C)`` of ``nn.MultiheadAttention`` is kept. Submodule names equal the official
ones (``neck.encoder.encoder_layers.{i}.slf_attn`` ..., ``neck.decoder.decoder_layers.{i}.{slf_attn, enc_attn}``).
"""

from __future__ import annotations

import torch
from torch import nn

from lib.models.layers.topk_attention import TopKMultiheadAttention

__all__ = ["SpatialPositionEncodingLearned", "PositionWiseFeedForward", "EncoderLayer", "Encoder", "DecoderLayer",
           "Decoder", "TransformerNeck"]


class SpatialPositionEncodingLearned(nn.Module):
    """Learned 2-D position encoding added to a ``(B, C, S, S)`` map (DETR's learned variant).

    ``pos[c, y, x] = col_embed[x, c]`` for ``c < C/2`` and ``row_embed[y, c - C/2]`` otherwise. The size
    ``S`` is fixed (8 for the template, 19 for the search region). The official module caches the tensor
    at the first call in eval mode; it is recomputed here at every call (same values, and no stale cache
    after loading new weights).

    Raises:
        ValueError: the input map is not ``S x S``.
    """

    def __init__(self, d_model: int, score_size: int):
        super().__init__()
        self.row_embed = nn.Embedding(score_size, d_model // 2)
        self.col_embed = nn.Embedding(score_size, d_model // 2)
        self.spatial_size = score_size
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def position_encoding(self) -> torch.Tensor:
        """``(1, C, S, S)``."""
        s = self.spatial_size
        x_emb = self.col_embed.weight.unsqueeze(0).expand(s, s, -1)  # [y, x] -> col_embed[x]
        y_emb = self.row_embed.weight.unsqueeze(1).expand(s, s, -1)  # [y, x] -> row_embed[y]
        return torch.cat([x_emb, y_emb], dim=-1).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.spatial_size, self.spatial_size):
            raise ValueError(f"position encoding of size {self.spatial_size} got a {tuple(x.shape[-2:])} map "
                             f"(the learned encoding fixes the template/search feature size)")
        return x + self.position_encoding()


class PositionWiseFeedForward(nn.Module):
    """``LayerNorm(x + dropout(w_2(relu(w_1(x)))))`` (LayerNorm eps 1e-6)."""

    def __init__(self, d_in: int, d_hid: int, dropout: float = 0.1):
        super().__init__()
        self.w_1 = nn.Linear(d_in, d_hid)
        self.w_2 = nn.Linear(d_hid, d_in)
        self.layer_norm = nn.LayerNorm(d_in, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        for lin in (self.w_1, self.w_2):  # official init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), zero bias
            bound = 1.0 / lin.in_features ** 0.5
            nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(x + self.dropout(self.w_2(torch.relu(self.w_1(x)))))


class EncoderLayer(nn.Module):
    """Post-norm encoder layer: dense self-attention, add & LayerNorm (eps 1e-6), feed-forward.

    ``(N, B, C) -> (N, B, C)``.
    """

    def __init__(self, d_model: int, d_inner: int, n_head: int, dropout: float = 0.1):
        super().__init__()
        self.slf_attn = nn.MultiheadAttention(embed_dim=d_model, num_heads=n_head, dropout=dropout)
        self.norm = nn.LayerNorm(d_model, eps=1e-6)
        self.pos_ffn = PositionWiseFeedForward(d_model, d_inner, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.slf_attn(x, x, x, need_weights=False)
        return self.pos_ffn(self.norm(x + out))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: top-k sparse self-attention (search to search), add & norm; dense
    cross-attention to the encoder memory (search to template), add & norm; feed-forward.

    ``forward(x (L, B, C), memory (S, B, C)) -> (L, B, C)``.
    """

    def __init__(self, d_model: int, d_inner: int, n_head: int, top_k=None, dropout: float = 0.1):
        super().__init__()
        self.slf_attn = TopKMultiheadAttention(embed_dim=d_model, num_heads=n_head, dropout=dropout, top_k=top_k)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-6)
        self.enc_attn = nn.MultiheadAttention(embed_dim=d_model, num_heads=n_head, dropout=dropout)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-6)
        self.pos_ffn = PositionWiseFeedForward(d_model, d_inner, dropout=dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        out, _ = self.slf_attn(x, x, x, need_weights=False)
        x = self.norm1(x + out)
        out, _ = self.enc_attn(x, memory, memory, need_weights=False)
        return self.pos_ffn(self.norm2(x + out))


class Encoder(nn.Module):
    """Template encoder: ``(B, C, S, S)`` map -> memory ``(S*S, B, C)`` (position encoding added once)."""

    def __init__(self, mid_channels_model: int = 256, mid_channels_ffn: int = 2048, num_heads: int = 8,
                 num_layers: int = 2, prob_dropout: float = 0.0, score_size: int = 8):
        super().__init__()
        if mid_channels_model % num_heads:
            raise ValueError(f"Encoder: {mid_channels_model} channels not divisible by {num_heads} heads")
        self.spatial_position_encoding = SpatialPositionEncodingLearned(mid_channels_model, score_size)
        self.encoder_layers = nn.ModuleList([
            EncoderLayer(mid_channels_model, mid_channels_ffn, num_heads, dropout=prob_dropout)
            for _ in range(num_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.spatial_position_encoding(x)
        out = x.flatten(2).permute(2, 0, 1).contiguous()  # (HW, B, C)
        for layer in self.encoder_layers:
            out = layer(out)
        return out


class Decoder(nn.Module):
    """Search decoder: ``(B, C, S, S)`` map and memory ``(N, B, C)`` -> ``(B, C, S, S)``."""

    def __init__(self, mid_channels_model: int = 256, mid_channels_ffn: int = 2048, num_heads: int = 8,
                 num_layers: int = 2, prob_dropout: float = 0.0, score_size: int = 19, top_k=None):
        super().__init__()
        if mid_channels_model % num_heads:
            raise ValueError(f"Decoder: {mid_channels_model} channels not divisible by {num_heads} heads")
        self.spatial_position_encoding = SpatialPositionEncodingLearned(mid_channels_model, score_size)
        self.decoder_layers = nn.ModuleList([
            DecoderLayer(mid_channels_model, mid_channels_ffn, num_heads, top_k, dropout=prob_dropout)
            for _ in range(num_layers)])

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        x = self.spatial_position_encoding(x)
        out = x.view(B, C, H * W).permute(2, 0, 1).contiguous()  # (HW, B, C)
        for layer in self.decoder_layers:
            out = layer(out, memory)
        return out.permute(1, 2, 0).contiguous().view(B, C, H, W)


class TransformerNeck(nn.Module):
    """SparseTT's neck (``neck.encoder`` / ``neck.decoder``).

    ``encode(f_z (B, C, Sz, Sz)) -> memory (Sz*Sz, B, C)``;
    ``decode(f_x (B, C, Sx, Sx), memory) -> cat([decoder(f_x, memory), f_x], channels)`` ``(B, 2C, Sx, Sx)``.
    """

    def __init__(self, mid_channels_model: int = 256, mid_channels_ffn: int = 2048, num_heads: int = 8,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, prob_dropout: float = 0.0,
                 f_z_size: int = 8, f_x_size: int = 19, top_k=32):
        super().__init__()
        self.encoder = Encoder(mid_channels_model, mid_channels_ffn, num_heads, num_encoder_layers, prob_dropout,
                               f_z_size)
        self.decoder = Decoder(mid_channels_model, mid_channels_ffn, num_heads, num_decoder_layers, prob_dropout,
                               f_x_size, top_k)

    def encode(self, f_z: torch.Tensor) -> torch.Tensor:
        return self.encoder(f_z)

    def decode(self, f_x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.decoder(f_x, memory), f_x], dim=1)

    def forward(self, f_x: torch.Tensor, f_z: torch.Tensor) -> torch.Tensor:
        return self.decode(f_x, self.encode(f_z))
