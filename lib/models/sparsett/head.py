"""SparseTT's double head (``DoubleConvFCBBoxHead``): an fc branch and a conv branch, each with a class
logit and a box per score-map point (Double-Head R-CNN style, no centerness).

Source: fzh0917/SparseTT ``videoanalyst/model/task_head/taskhead_impl/double_conv_fc_bbox_head.py`` (mmcv
``ConvModule``, mmdet ``Bottleneck``). The Bottleneck is torchvision's (same keys ``conv1..3``/``bn1..3``
and the same computation as mmdet's pytorch-style block without downsample); ``ConvModule`` is
:class:`~lib.models.layers.conv_bn.ConvBNAct`.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from lib.models.layers.conv_bn import ConvBNAct

__all__ = ["anchor_point_grid", "BasicResBlock", "DoubleConvFCBBoxHead"]


def anchor_point_grid(score_size: int, score_offset: int, total_stride: int,
                      device: torch.device = None) -> torch.Tensor:
    """``(1, S*S, 2)`` float32 search-crop pixel positions ``score_offset + total_stride * (x, y)`` of the
    score-map points, row-major (index ``y * S + x``), x first (official ``get_fm_center_torch``)."""
    y = torch.arange(score_size, dtype=torch.float32, device=device)
    x = torch.arange(score_size, dtype=torch.float32, device=device)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return (score_offset + torch.stack([xx, yy], dim=-1) * total_stride).reshape(1, -1, 2)


class BasicResBlock(nn.Module):
    """mmdet's Double-Head ``BasicResBlock``: ``relu(conv2(conv1(x)) + conv_identity(x))`` with
    ``conv1`` 3x3 C_in->C_in +BN+ReLU, ``conv2`` 1x1 C_in->C_out +BN, ``conv_identity`` 1x1 C_in->C_out +BN."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, in_channels, 3, padding=1, act=nn.ReLU(inplace=True))
        self.conv2 = ConvBNAct(in_channels, out_channels, 1)
        self.conv_identity = ConvBNAct(in_channels, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.conv_identity(x))


class DoubleConvFCBBoxHead(nn.Module):
    """Double head on the neck output ``(B, in_channels, S, S)``.

    Args:
        in_channels: neck channels (512 = decoder 256 + adjusted search feature 256).
        num_convs: Bottlenecks after the BasicResBlock in the conv branch (7).
        x_size: search-crop side in pixels (289); with ``score_size`` and ``total_stride`` it fixes
            ``score_offset = (x_size - 1 - (score_size - 1) * total_stride) // 2`` (0 for SparseTT).
        score_size: score-map side (19).
        total_stride: backbone stride in pixels (16).
        input_size_adapt: recompute the anchor grid from the map size when ``x_size`` is given to forward.

    Box decoding (both branches): distances ``(l, t, r, b) = exp(s * raw + b_) * total_stride`` with learned
    scalars ``si_*``/``bi_*`` (init 1 and 0); box ``(cx - l, cy - t, cx + r, cy + b)`` around the anchor
    point ``fm_ctr`` (a buffer in the state_dict, as the official checkpoints).

    ``forward(x, x_size=0) -> (cls_fc (B, S*S, 1), bbox_fc (B, S*S, 4), cls_conv (B, S*S, 1),
    bbox_conv (B, S*S, 4))``: class logits and xyxy boxes in search-crop pixels, row-major.
    """

    mid_channels = 1024

    def __init__(self, in_channels: int = 512, num_convs: int = 7, x_size: int = 289, score_size: int = 19,
                 total_stride: int = 16, input_size_adapt: bool = False):
        super().__init__()
        self.bi_fc = nn.Parameter(torch.tensor(0.0))
        self.si_fc = nn.Parameter(torch.tensor(1.0))
        self.bi_conv = nn.Parameter(torch.tensor(0.0))
        self.si_conv = nn.Parameter(torch.tensor(1.0))
        self.in_channels = in_channels
        self.total_stride = total_stride
        self.score_size = score_size
        self.input_size_adapt = input_size_adapt
        self.score_offset = (x_size - 1 - (score_size - 1) * total_stride) // 2
        self.register_buffer("fm_ctr", anchor_point_grid(score_size, self.score_offset, total_stride))
        mid = self.mid_channels
        # fc branch: "fc" layers implemented as 1x1 convolutions (xavier-uniform init)
        self.fc_branch = nn.Sequential(nn.Conv2d(in_channels, mid, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(mid, mid, 1), nn.ReLU(inplace=True))
        self.fc_branch_cls = ConvBNAct(mid, 1, 1)
        self.fc_branch_reg = ConvBNAct(mid, 4, 1)
        self.conv_branch = nn.Sequential(BasicResBlock(in_channels, mid),
                                         *[Bottleneck(mid, mid // 4) for _ in range(num_convs)])
        self.conv_branch_cls = ConvBNAct(mid, 1, 1)
        self.conv_branch_reg = ConvBNAct(mid, 4, 1)
        for m in self.conv_branch.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
        for m in self.fc_branch:
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def _anchor_points(self, feat_size: int, x_size: int) -> torch.Tensor:
        if self.input_size_adapt and x_size > 0:
            offset = (x_size - 1 - (feat_size - 1) * self.total_stride) // 2
            return anchor_point_grid(feat_size, offset, self.total_stride, self.fm_ctr.device)
        return self.fm_ctr

    @staticmethod
    def _decode(anchor: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        dist = dist.permute(0, 2, 3, 1).reshape(dist.shape[0], -1, 4)
        return torch.cat([anchor - dist[:, :, :2], anchor + dist[:, :, 2:]], dim=2)

    def forward(self, x: torch.Tensor, x_size: int = 0) -> Tuple[torch.Tensor, ...]:
        anchor = self._anchor_points(x.shape[-1], x_size)
        fc = self.fc_branch(x)
        cls_fc = self.fc_branch_cls(fc)
        reg_fc = self.fc_branch_reg(fc)
        cls_fc = cls_fc.permute(0, 2, 3, 1).reshape(cls_fc.shape[0], -1, 1)
        conv = self.conv_branch(x)
        cls_conv = self.conv_branch_cls(conv)
        reg_conv = self.conv_branch_reg(conv)
        cls_conv = cls_conv.permute(0, 2, 3, 1).reshape(cls_conv.shape[0], -1, 1)
        bbox_fc = self._decode(anchor, torch.exp(self.si_fc * reg_fc + self.bi_fc) * self.total_stride)
        bbox_conv = self._decode(anchor, torch.exp(self.si_conv * reg_conv + self.bi_conv) * self.total_stride)
        return cls_fc, bbox_fc, cls_conv, bbox_conv
