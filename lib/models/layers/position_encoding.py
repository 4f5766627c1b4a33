"""2-D sine position encoding of DETR, as used by STARK and AiATrack.

Source: DETR ``models/position_encoding.py``; STARK ``lib/models/stark/position_encoding.py``;
AiATrack ``lib/models/aiatrack/position_encoding.py`` (same class, built twice: 128 and 32 features).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from lib.utils.misc import NestedTensor

__all__ = ["PositionEmbeddingSine", "build_position_encoding"]


class PositionEmbeddingSine(nn.Module):
    """Sine/cosine encoding of the (row, column) index of every feature cell.

    For each position the cumulative count of non-padded cells along y and along x is taken
    (so padding does not shift the coordinates of real cells); with ``normalize`` the counts are
    divided by the last value of their row/column (``+ 1e-6``) and scaled to ``[0, scale]``.
    Each coordinate is divided by ``temperature ** (2 * (i // 2) / num_pos_feats)`` for
    ``i = 0..num_pos_feats-1``; even channels take ``sin``, odd channels ``cos`` (interleaved).
    The output concatenates ``[pos_y, pos_x]`` along channels.

    The module has no parameters or buffers (nothing in the state_dict).

    Args:
        num_pos_feats: channels per axis; the output has ``2 * num_pos_feats`` channels.
        temperature: base of the frequency progression.
        normalize: normalise the cumulative counts to ``[0, scale]``.
        scale: the normalised range (default ``2 * pi``); only allowed with ``normalize``.

    Raises:
        ValueError: ``scale`` given without ``normalize``.
    """

    def __init__(self, num_pos_feats: int = 64, temperature: float = 10000, normalize: bool = False,
                 scale: Optional[float] = None):
        super().__init__()
        if scale is not None and not normalize:
            raise ValueError("PositionEmbeddingSine: 'scale' is only used with normalize=True")
        self.num_pos_feats = int(num_pos_feats)
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, tensor_list: NestedTensor) -> torch.Tensor:
        """Encode the cells of ``tensor_list``.

        Args:
            tensor_list: features ``(B, C, H, W)`` with a bool mask ``(B, H, W)`` (True = padding).

        Returns:
            ``(B, 2 * num_pos_feats, H, W)`` float32 encoding.

        Raises:
            ValueError: the mask is missing.
        """
        mask = tensor_list.mask
        if mask is None:
            raise ValueError("PositionEmbeddingSine needs the padding mask of the NestedTensor (got None)")
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale

        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)

        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"num_pos_feats={self.num_pos_feats}, temperature={self.temperature}, normalize={self.normalize}"


def build_position_encoding(hidden_dim: int, kind: str = "sine") -> nn.Module:
    """The position encoding of a ``hidden_dim``-channel transformer (``cfg.MODEL.POSITION_EMBEDDING``).

    Args:
        hidden_dim: transformer width; each axis gets ``hidden_dim // 2`` channels.
        kind: ``'sine'`` (or its alias ``'v2'``), normalised to ``[0, 2 pi]`` as in every shipped config.

    Raises:
        ValueError: another kind (the official code also knows ``learned``, which no shipped config uses).
    """
    if kind in ("sine", "v2"):
        return PositionEmbeddingSine(hidden_dim // 2, normalize=True)
    raise ValueError(f"MODEL.POSITION_EMBEDDING '{kind}' is not supported (expected 'sine')")
