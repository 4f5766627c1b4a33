"""Conv2d + BatchNorm2d (+ activation) with the submodule names ``conv`` / ``bn``.

This key layout is shared by mmcv's ``ConvModule`` (norm ``BN``: ``conv``, ``bn``, activation ``activate``
without parameters) and video_analyst's ``conv_bn_relu`` (``conv``, ``bn``, ``relu``), so one module loads
both kinds of official checkpoints. torchvision's ``Conv2dNormActivation`` computes the same but names its
layers ``0``/``1``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["ConvBNAct"]


class ConvBNAct(nn.Module):
    """``act(bn(conv(x)))``: ``(B, C_in, H, W) -> (B, C_out, H', W')``.

    Args:
        in_channels / out_channels: channels.
        kernel_size, stride, padding: of the convolution.
        bias: conv bias. mmcv's ``ConvModule`` with a norm layer has none (its ``bias='auto'``);
            video_analyst's ``conv_bn_relu`` has one (``bias=True``).
        bn_eps: BatchNorm eps (1e-5 mmcv; SparseTT's feature adjusters 1e-3).
        act: activation module or None (ConvModule ``act_cfg=None`` / ``has_relu=False``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, padding: int = 0,
                 bias: bool = False, bn_eps: float = 1e-5, act: Optional[nn.Module] = None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps)
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))
