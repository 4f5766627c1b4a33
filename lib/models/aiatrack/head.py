"""AiATrack's IoU head: predicts the IoU of boxes in the search region from the decoder output,
pooling each box with Precise RoI Pooling (an ATOM-style IoU-Net branch).

Source: ``lib/models/aiatrack/head.py`` of Little-Podi/AiATrack @ cdb3a4e (``IoUNet``,
``LinearBlock``); state_dict names ``iou_head.conv{1,2,3}.{0,1}``, ``iou_head.fc.{linear,bn}``,
``iou_head.iou_predictor``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lib.models.layers.corner_head import conv_bn_relu
from lib.models.layers.prroi_pool import PrRoIPool2D

__all__ = ["LinearBlock", "IoUNet", "build_iou_head"]


class LinearBlock(nn.Module):
    """Flatten -> ``Linear(in_planes * input_sz**2, out_planes)`` -> ``BatchNorm2d`` on ``(N, C, 1, 1)``
    -> ``ReLU``.

    Args:
        in_planes: channels of the pooled input.
        out_planes: output width.
        input_sz: spatial side of the pooled input.
        bias, batch_norm, relu: switch the parts on/off.

    Shape:
        ``(N, in_planes, input_sz, input_sz)`` -> ``(N, out_planes)``.
    """

    def __init__(self, in_planes: int, out_planes: int, input_sz: int, bias: bool = True, batch_norm: bool = True,
                 relu: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_planes * input_sz * input_sz, out_planes, bias=bias)
        self.bn = nn.BatchNorm2d(out_planes) if batch_norm else None
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.linear(x.reshape(x.shape[0], -1))
        if self.bn is not None:
            x = self.bn(x.reshape(x.shape[0], x.shape[1], 1, 1))
        if self.relu is not None:
            x = self.relu(x)
        return x.reshape(x.shape[0], -1)


class IoUNet(nn.Module):
    """IoU prediction for boxes on a ``(B, dim, 20, 20)`` feature map.

    Three conv-BN-ReLU 3x3 blocks, :class:`~lib.models.layers.prroi_pool.PrRoIPool2D` ``(4, 4)`` with
    ``spatial_scale = feat_sz`` (boxes are normalised to the search region, so ``[0, 1]`` covers the
    ``feat_sz`` cells), :class:`LinearBlock` and ``Linear(dim, 1)``.

    Args:
        dim: channels of the input (``MODEL.HIDDEN_DIM``).
        pool_size: bins per side of the RoI pooling (4).
        feat_sz: spatial scale of the pooling (20.0 = 320 / 16).

    Initialisation as the official: kaiming-normal (fan-in) conv/linear weights with zero biases,
    BatchNorm weights uniform in [0, 1) and zero biases.
    """

    def __init__(self, dim: int = 256, pool_size: int = 4, feat_sz: float = 20.0):
        super().__init__()
        self.conv1 = conv_bn_relu(dim, dim, kernel_size=3, stride=1)
        self.conv2 = conv_bn_relu(dim, dim, kernel_size=3, stride=1)
        self.conv3 = conv_bn_relu(dim, dim, kernel_size=3, stride=1)
        self.prroi_pool = PrRoIPool2D(pool_size, pool_size, feat_sz)
        self.fc = LinearBlock(dim, dim, pool_size)
        self.iou_predictor = nn.Linear(dim, 1, bias=True)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, feat: Tensor, proposals: Tensor) -> Tensor:
        """Predict the IoU of every proposal.

        Args:
            feat: ``(B, dim, H, W)`` features (or ``(S, B', dim, H, W)``, flattened to ``B = S * B'``).
            proposals: ``(num_images, num_sequences, num_proposals, 4)`` boxes xywh normalised to the
                search region, with ``num_images * num_sequences == B``.

        Returns:
            ``(num_images, num_sequences, num_proposals)`` predicted IoU.

        Raises:
            ValueError: ``proposals`` is not 4-D with 4 coordinates, or does not match the batch.
        """
        if proposals.dim() != 4 or proposals.shape[-1] != 4:
            raise ValueError(f"IoUNet: proposals must be (num_images, num_sequences, num_proposals, 4) xywh, "
                             f"got shape {tuple(proposals.shape)}")
        num_images, num_sequences = proposals.shape[:2]
        iou_feat = self.get_iou_feat(feat)
        if iou_feat.shape[0] != num_images * num_sequences:
            raise ValueError(f"IoUNet: {iou_feat.shape[0]} feature maps for {num_images} x {num_sequences} "
                             f"proposal groups")
        pred = self.predict_iou(iou_feat, proposals.reshape(num_images * num_sequences, -1, 4))
        return pred.reshape(num_images, num_sequences, -1)

    def get_iou_feat(self, feat: Tensor) -> Tensor:
        """The conv tower: ``(B, dim, H, W)`` (or 5-D, flattened) -> ``(B, dim, H, W)``."""
        feat = feat.reshape(-1, *feat.shape[-3:]) if feat.dim() == 5 else feat
        return self.conv3(self.conv2(self.conv1(feat)))

    def predict_iou(self, feat: Tensor, proposals: Tensor) -> Tensor:
        """IoU of ``proposals`` ``(B, P, 4)`` (normalised xywh) on ``feat`` ``(B, dim, H, W)`` -> ``(B, P)``."""
        batch_size, num_proposals = proposals.shape[:2]
        xyxy = torch.cat((proposals[..., 0:2], proposals[..., 0:2] + proposals[..., 2:4]), dim=2)
        batch_index = torch.arange(batch_size, dtype=xyxy.dtype, device=xyxy.device)
        batch_index = batch_index.reshape(-1, 1, 1).expand(-1, num_proposals, 1)
        rois = torch.cat((batch_index, xyxy), dim=2).reshape(-1, 5)
        roi_feat = self.prroi_pool(feat, rois, check_batch_index=False)  # arange: valid, no host read
        return self.iou_predictor(self.fc(roi_feat)).reshape(batch_size, num_proposals)


def build_iou_head(cfg) -> IoUNet:
    """The IoU head of an AiATrack config (``MODEL.HIDDEN_DIM`` channels, 20x20 search features)."""
    stride = 8 if cfg.MODEL.BACKBONE.DILATION else 16
    return IoUNet(cfg.MODEL.HIDDEN_DIM, pool_size=4, feat_sz=float(cfg.DATA.SEARCH.SIZE // stride))
