"""CenterNet-style box head of OSTrack and GRM: a centre score map, a size map and an offset map.

Source: OSTrack ``lib/models/layers/head.py`` (``conv``, ``CenterPredictor``, ``build_box_head``);
GRM ships the same file. Paper: Ye et al., ECCV 2022, Sec. 3.4 ("Head and Loss").
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from lib.models.layers.corner_head import conv_bn_relu  # the conv-BN-ReLU unit of every pytracking-style head

__all__ = ["CenterPredictor", "build_box_head"]


class CenterPredictor(nn.Module):
    """Three parallel conv branches (``ctr``, ``offset``, ``size``) over the search feature map.

    Each branch is four :func:`~lib.models.layers.corner_head.conv_bn_relu` 3x3 layers (``in -> C -> C/2 -> C/4 -> C/8``) and a 1x1 conv
    (``conv5_*``) to 1 (ctr), 2 (offset) or 2 (size) channels. Parameters with more than one dimension
    are initialised with ``xavier_uniform_``.

    Args:
        inplanes: backbone width (768 for ViT-B).
        channel: ``MODEL.HEAD.NUM_CHANNELS`` (256).
        feat_sz: side of the search feature map ``H_f = DATA.SEARCH.SIZE // stride`` (16 or 24).
        stride: backbone stride (16).
        freeze_bn: use frozen BatchNorm (unused by the shipped configs).
    """

    def __init__(self, inplanes: int = 64, channel: int = 256, feat_sz: int = 20, stride: int = 16,
                 freeze_bn: bool = False):
        super().__init__()
        self.feat_sz = feat_sz
        self.stride = stride
        self.img_sz = feat_sz * stride
        widths = [inplanes, channel, channel // 2, channel // 4, channel // 8]
        for branch, out_ch in (("ctr", 1), ("offset", 2), ("size", 2)):
            for i in range(4):
                setattr(self, f"conv{i + 1}_{branch}", conv_bn_relu(widths[i], widths[i + 1], freeze_bn=freeze_bn))
            setattr(self, f"conv5_{branch}", nn.Conv2d(widths[4], out_ch, kernel_size=1))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _branch(self, x: torch.Tensor, name: str) -> torch.Tensor:
        for i in range(1, 6):
            x = getattr(self, f"conv{i}_{name}")(x)
        return x

    def get_score_map(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feature map ``(B, inplanes, H_f, W_f)`` -> ``(score_map_ctr (B,1,H_f,W_f), size_map (B,2,H_f,W_f),
        offset_map (B,2,H_f,W_f))``.

        Score and size are ``clamp(sigmoid(.), 1e-4, 1 - 1e-4)``; size is (w, h) as fractions of the
        search crop; offset is the raw sub-cell (x, y) offset in feature cells.
        """
        def _sigmoid(t: torch.Tensor) -> torch.Tensor:
            return torch.clamp(t.sigmoid(), min=1e-4, max=1 - 1e-4)

        score_map_ctr = self._branch(x, "ctr")
        offset_map = self._branch(x, "offset")
        size_map = self._branch(x, "size")
        return _sigmoid(score_map_ctr), _sigmoid(size_map), offset_map

    def cal_bbox(self, score_map_ctr: torch.Tensor, size_map: torch.Tensor, offset_map: torch.Tensor,
                 return_score: bool = False):
        """Decode one box per sample at the argmax of the score map.

        ``idx`` = argmax of the flattened ``(B, H_f*W_f)`` score map (first maximum on ties), row
        ``idx // feat_sz``, column ``idx % feat_sz``; ``(w, h)`` and ``(dx, dy)`` are read at ``idx``.

        Returns:
            ``(B, 4)`` box ``((col + dx) / feat_sz, (row + dy) / feat_sz, w, h)``: cxcywh normalised to
            the search crop; with ``return_score`` also the ``(B, 1)`` maximum score.
        """
        max_score, idx = torch.max(score_map_ctr.flatten(1), dim=1, keepdim=True)
        idx_y = torch.div(idx, self.feat_sz, rounding_mode="floor")
        idx_x = idx % self.feat_sz
        idx = idx.unsqueeze(1).expand(idx.shape[0], 2, 1)
        size = size_map.flatten(2).gather(dim=2, index=idx)
        offset = offset_map.flatten(2).gather(dim=2, index=idx).squeeze(-1)
        bbox = torch.cat([(idx_x.to(torch.float) + offset[:, :1]) / self.feat_sz,
                          (idx_y.to(torch.float) + offset[:, 1:]) / self.feat_sz,
                          size.squeeze(-1)], dim=1)
        if return_score:
            return bbox, max_score
        return bbox

    def forward(self, x: torch.Tensor, gt_score_map: Optional[torch.Tensor] = None):
        """``x`` ``(B, inplanes, H_f, W_f)`` -> ``(score_map_ctr, bbox (B, 4) cxcywh normalised, size_map, offset_map)``.

        The box is decoded from the predicted score map, or from ``gt_score_map`` ``(B, H_f, W_f)`` when given.
        """
        score_map_ctr, size_map, offset_map = self.get_score_map(x)
        decode_from = score_map_ctr if gt_score_map is None else gt_score_map.unsqueeze(1)
        bbox = self.cal_bbox(decode_from, size_map, offset_map)
        return score_map_ctr, bbox, size_map, offset_map


def build_box_head(cfg, hidden_dim: int) -> CenterPredictor:
    """The box head of ``cfg.MODEL.HEAD`` for a backbone of width ``hidden_dim``.

    Raises:
        ValueError: a head type other than ``CENTER`` (the only one any OSTrack/GRM config uses).
    """
    stride = cfg.MODEL.BACKBONE.STRIDE
    head_type = cfg.MODEL.HEAD.TYPE
    if head_type != "CENTER":
        raise ValueError(f"MODEL.HEAD.TYPE '{head_type}' is not supported (only CENTER)")
    feat_sz = int(cfg.DATA.SEARCH.SIZE / stride)
    return CenterPredictor(inplanes=hidden_dim, channel=cfg.MODEL.HEAD.NUM_CHANNELS, feat_sz=feat_sz, stride=stride)
