"""Corner head of STARK and AiATrack: two convolution towers give top-left and bottom-right score
maps; a soft-argmax over each map gives the expected corner.

Source: STARK ``lib/models/stark/head.py`` (``conv``, ``Corner_Predictor``, ``build_box_head``);
AiATrack ``lib/models/aiatrack/head.py`` (same predictor). The coordinate of cell ``i`` is
``i * stride`` (no half-cell offset; only STARK-Lightning's heads use ``(i + 0.5) * stride``).
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

__all__ = ["conv_bn_relu", "Corner_Predictor", "build_box_head"]


def conv_bn_relu(in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, padding: int = 1,
                 dilation: int = 1, freeze_bn: bool = False) -> nn.Sequential:
    """``Conv2d`` (with bias) -> ``BatchNorm2d`` (or ``FrozenBatchNorm2d``) -> ReLU.

    State_dict keys: ``0.weight``, ``0.bias`` (conv), ``1.*`` (norm).
    """
    norm = FrozenBatchNorm2d(out_planes) if freeze_bn else nn.BatchNorm2d(out_planes)
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding,
                  dilation=dilation, bias=True),
        norm,
        nn.ReLU(inplace=True))


class Corner_Predictor(nn.Module):
    """Top-left / bottom-right corner predictor with soft-argmax.

    Each tower: conv-BN-ReLU 3x3 ``inplanes -> channel -> channel/2 -> channel/4 -> channel/8``, then a
    1x1 conv to one score map. Soft-argmax: softmax over the ``feat_sz ** 2`` cells, expected
    coordinate with cell ``(i, j)`` at ``(j * stride, i * stride)`` pixels.

    Args:
        inplanes: input channels.
        channel: width of the first conv (``MODEL.HEAD_DIM``, 256).
        feat_sz: side of the (square) input feature map (search size / stride, 20).
        stride: pixels per feature cell (16).
        freeze_bn: use ``FrozenBatchNorm2d`` (no shipped config does).
    """

    def __init__(self, inplanes: int = 64, channel: int = 256, feat_sz: int = 20, stride: int = 16,
                 freeze_bn: bool = False):
        super().__init__()
        self.feat_sz = int(feat_sz)
        self.stride = stride
        self.img_sz = self.feat_sz * self.stride
        self.conv1_tl = conv_bn_relu(inplanes, channel, freeze_bn=freeze_bn)
        self.conv2_tl = conv_bn_relu(channel, channel // 2, freeze_bn=freeze_bn)
        self.conv3_tl = conv_bn_relu(channel // 2, channel // 4, freeze_bn=freeze_bn)
        self.conv4_tl = conv_bn_relu(channel // 4, channel // 8, freeze_bn=freeze_bn)
        self.conv5_tl = nn.Conv2d(channel // 8, 1, kernel_size=1)
        self.conv1_br = conv_bn_relu(inplanes, channel, freeze_bn=freeze_bn)
        self.conv2_br = conv_bn_relu(channel, channel // 2, freeze_bn=freeze_bn)
        self.conv3_br = conv_bn_relu(channel // 2, channel // 4, freeze_bn=freeze_bn)
        self.conv4_br = conv_bn_relu(channel // 4, channel // 8, freeze_bn=freeze_bn)
        self.conv5_br = nn.Conv2d(channel // 8, 1, kernel_size=1)
        # Cell coordinates in pixels, row-major like the flattened score map. Non-persistent buffers:
        # they follow .to(device) but are not part of the state_dict (as in the official code).
        index = torch.arange(self.feat_sz, dtype=torch.float32) * self.stride
        self.register_buffer("coord_x", index.repeat(self.feat_sz), persistent=False)
        self.register_buffer("coord_y", index.repeat_interleave(self.feat_sz), persistent=False)

    def get_score_map(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, inplanes, feat_sz, feat_sz)`` -> two ``(B, 1, feat_sz, feat_sz)`` score maps (tl, br)."""
        tl = self.conv5_tl(self.conv4_tl(self.conv3_tl(self.conv2_tl(self.conv1_tl(x)))))
        br = self.conv5_br(self.conv4_br(self.conv3_br(self.conv2_br(self.conv1_br(x)))))
        return tl, br

    def soft_argmax(self, score_map: torch.Tensor, return_dist: bool = False, softmax: bool = True):
        """Expected ``(x, y)`` pixel coordinate of a score map.

        Args:
            score_map: ``(B, 1, feat_sz, feat_sz)`` logits.
            return_dist: also return the distribution (``softmax=True``) or the raw logits.

        Returns:
            ``(exp_x, exp_y)``, each ``(B,)`` in pixels of the ``img_sz`` crop; plus ``(B, feat_sz**2)``
            with ``return_dist``.
        """
        score_vec = score_map.view(-1, self.feat_sz * self.feat_sz)
        prob_vec = nn.functional.softmax(score_vec, dim=1)
        exp_x = torch.sum(self.coord_x * prob_vec, dim=1)
        exp_y = torch.sum(self.coord_y * prob_vec, dim=1)
        if return_dist:
            return exp_x, exp_y, (prob_vec if softmax else score_vec)
        return exp_x, exp_y

    def forward(self, x: torch.Tensor, return_dist: bool = False, softmax: bool = True
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Predict a box.

        Args:
            x: ``(B, inplanes, feat_sz, feat_sz)`` features.
            return_dist: also return both corner distributions ``(B, feat_sz**2)``.

        Returns:
            ``(B, 4)`` box xyxy normalised by ``img_sz`` (``[0, 1]`` of the search crop up to the last
            cell's coordinate), plus the tl and br distributions with ``return_dist``.
        """
        score_map_tl, score_map_br = self.get_score_map(x)
        if return_dist:
            x_tl, y_tl, dist_tl = self.soft_argmax(score_map_tl, return_dist=True, softmax=softmax)
            x_br, y_br, dist_br = self.soft_argmax(score_map_br, return_dist=True, softmax=softmax)
            return torch.stack((x_tl, y_tl, x_br, y_br), dim=1) / self.img_sz, dist_tl, dist_br
        x_tl, y_tl = self.soft_argmax(score_map_tl)
        x_br, y_br = self.soft_argmax(score_map_br)
        return torch.stack((x_tl, y_tl, x_br, y_br), dim=1) / self.img_sz


def build_box_head(cfg) -> Corner_Predictor:
    """The corner head of a STARK/AiATrack config.

    Reads ``MODEL.HEAD_TYPE`` (``CORNER``), ``MODEL.HIDDEN_DIM`` (input channels), ``MODEL.HEAD_DIM``
    (tower width, default 256), ``MODEL.BACKBONE.DILATION`` (stride 8 if dilated, else 16) and
    ``DATA.SEARCH.SIZE`` (feature side = size / stride).

    Raises:
        ValueError: another head type (the official ``MLP`` and Lightning heads are not shipped here).
    """
    head_type = cfg.MODEL.HEAD_TYPE
    if head_type != "CORNER":
        raise ValueError(f"MODEL.HEAD_TYPE '{head_type}' is not supported (expected 'CORNER')")
    stride = 8 if cfg.MODEL.BACKBONE.DILATION else 16
    feat_sz = int(cfg.DATA.SEARCH.SIZE / stride)
    channel = cfg.MODEL.get("HEAD_DIM", 256)
    return Corner_Predictor(inplanes=cfg.MODEL.HIDDEN_DIM, channel=channel, feat_sz=feat_sz, stride=stride)
