"""Precise RoI Pooling (PrRoIPool) in pure PyTorch: exact, differentiable, CPU and CUDA.

Precise RoI Pooling (Jiang et al., "Acquisition of Localization Confidence for Accurate Object
Detection", ECCV 2018, section 4) averages the *continuous* bilinear interpolation of a feature map
over each pooling bin::

    out[k, c, i, j] = 1 / |bin_ij| * integral over bin_ij of f_c(x, y) dx dy,
    f_c(x, y) = sum_{h, w} F[b_k, c, h, w] * hat(y - h) * hat(x - w),   hat(t) = max(0, 1 - |t|)

with the feature samples at integer coordinates and zero outside the map, so the interpolated map
decays linearly to zero over the one cell beyond the border. Nothing is sampled: because the
bilinear kernel is separable the integral factorises into

    out[k, c, i, j] = sum_{h, w} F[b_k, c, h, w] * Ky[k, i, h] * Kx[k, j, w] / |bin_ij|,
    Kx[k, j, w] = H(x2_kj - w) - H(x1_kj - w),

where ``H`` is the antiderivative of the hat function (``0`` below -1, ``(t+1)^2/2`` on [-1, 0],
``1 - (1-t)^2/2`` on [0, 1], ``1`` above 1). The operator is two batched matrix products, runs on
any device and dtype torch supports, and autograd gives the gradients with respect to both the
features and the box coordinates (``H`` is C^1, its derivative is the hat function itself).

Semantics follow the official CUDA extension (``vacancy/PreciseRoIPooling``, vendored by
AiATrack in ``external/PreciseRoIPooling``): box coordinates are multiplied by ``spatial_scale``
with no half-pixel offset; the RoI width and height are clamped at zero; bins of zero area give 0
(and zero gradient); the gradient with respect to the batch-index column is 0. Unlike the official
extension (CUDA only, float32 only, compiled at first use), this one needs no build step.

``torchvision.ops.roi_align`` is *not* equivalent: it samples a few points per bin and treats the
region beyond the border differently (clamps samples in [-1, 0) to the edge value).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["prroi_pool2d", "PrRoIPool2D", "hat_antiderivative"]


def hat_antiderivative(t: Tensor) -> Tensor:
    """``H(t)``: integral of the hat kernel ``max(0, 1 - |s|)`` from -inf to ``t``.

    ``H(t) = 0.5 + u - 0.5 * u * |u|`` with ``u = clamp(t, -1, 1)``; element-wise, any shape.
    """
    u = t.clamp(-1.0, 1.0)
    return 0.5 + u - 0.5 * u * u.abs()


def _axis_weights(start: Tensor, bin_size: Tensor, pooled: int, length: int) -> Tensor:
    """Integral of the hat kernel of every grid sample over every bin along one axis.

    Args:
        start: ``(K,)`` RoI start in feature cells.
        bin_size: ``(K,)`` bin size in feature cells (>= 0).
        pooled: number of bins along the axis.
        length: number of feature samples along the axis (H or W).

    Returns:
        ``(K, pooled, length)`` weights ``H(end - n) - H(begin - n)``.
    """
    steps = torch.arange(pooled, device=start.device, dtype=start.dtype)
    # Same order of operations as the official kernel: begin = start + size * index, end = begin + size.
    begin = start[:, None] + bin_size[:, None] * steps[None, :]
    end = begin + bin_size[:, None]
    grid = torch.arange(length, device=start.device, dtype=start.dtype)
    return hat_antiderivative(end[:, :, None] - grid) - hat_antiderivative(begin[:, :, None] - grid)


def prroi_pool2d(features: Tensor, rois: Tensor, pooled_height: int, pooled_width: int,
                 spatial_scale: float, check_batch_index: bool = True) -> Tensor:
    """Precise RoI Pooling of ``rois`` over ``features`` (see the module docstring).

    Args:
        features: ``(B, C, H, W)`` feature maps (floating point).
        rois: ``(K, 5)`` boxes ``[batch_index, x1, y1, x2, y2]`` (xyxy) in input coordinates;
            ``x * spatial_scale`` is the position in feature cells, sample ``w`` sitting at ``x = w``.
            Boxes may cross or lie beyond the feature-map border.
        pooled_height: number of bins along y.
        pooled_width: number of bins along x.
        spatial_scale: factor from box coordinates to feature cells (``1 / stride``; AiATrack's IoU
            head pools normalised boxes with ``spatial_scale = 20``).
        check_batch_index: check that the batch indices lie in ``[0, B)`` (reads them on the host: a
            host-device synchronisation on an accelerator; callers whose indices are valid by construction,
            like AiATrack's IoU head, turn it off in the per-frame path).

    Returns:
        ``(K, C, pooled_height, pooled_width)`` in the dtype of ``features``; differentiable with
        respect to ``features`` and the box columns of ``rois``. The box geometry is computed in
        at least float32 (float64 when either input is float64).

    Raises:
        ValueError: wrong ranks or shapes, a non-floating ``features`` tensor, non-positive bin
            counts, or a batch index outside ``[0, B)``.
    """
    if features.dim() != 4:
        raise ValueError(f"prroi_pool2d: features must be (B, C, H, W), got shape {tuple(features.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"prroi_pool2d: rois must be (K, 5) [batch_index, x1, y1, x2, y2], got shape "
                         f"{tuple(rois.shape)}")
    if not features.is_floating_point():
        raise ValueError(f"prroi_pool2d: features must be floating point, got {features.dtype}")
    pooled_height, pooled_width = int(pooled_height), int(pooled_width)
    if pooled_height < 1 or pooled_width < 1:
        raise ValueError(f"prroi_pool2d: pooled size must be positive, got ({pooled_height}, {pooled_width})")
    B, C, H, W = features.shape
    K = rois.shape[0]
    if K == 0:
        return features.new_zeros((0, C, pooled_height, pooled_width))

    # Box geometry in at least float32 (half-precision boxes would round the bin edges).
    geo_dtype = torch.promote_types(torch.promote_types(features.dtype, rois.dtype), torch.float32)
    rois = rois.to(device=features.device, dtype=geo_dtype)
    batch_index = rois[:, 0].detach().long()
    if check_batch_index and batch_index.device.type != "meta" and bool(((batch_index < 0) | (batch_index >= B)).any()):
        raise ValueError(f"prroi_pool2d: batch indices {batch_index.tolist()} must lie in [0, {B})")

    x1 = rois[:, 1] * spatial_scale
    y1 = rois[:, 2] * spatial_scale
    x2 = rois[:, 3] * spatial_scale
    y2 = rois[:, 4] * spatial_scale
    bin_w = (x2 - x1).clamp(min=0.0) / pooled_width
    bin_h = (y2 - y1).clamp(min=0.0) / pooled_height

    kx = _axis_weights(x1, bin_w, pooled_width, W).to(features.dtype)   # (K, PW, W)
    ky = _axis_weights(y1, bin_h, pooled_height, H).to(features.dtype)  # (K, PH, H)

    feats = features.index_select(0, batch_index)    # (K, C, H, W)
    # Contract x, then y: (K, C*H, W) @ (K, W, PW) -> (K, C, H, PW); (K, PH, H) @ (K, H, C*PW).
    tmp = torch.bmm(feats.reshape(K, C * H, W), kx.transpose(1, 2)).reshape(K, C, H, pooled_width)
    tmp = tmp.permute(0, 2, 1, 3).reshape(K, H, C * pooled_width)
    out = torch.bmm(ky, tmp).reshape(K, pooled_height, C, pooled_width).permute(0, 2, 1, 3)

    area = bin_w * bin_h
    valid = area > 0
    area = torch.where(valid, area, torch.ones_like(area))
    out = out.to(geo_dtype) / area[:, None, None, None]
    out = torch.where(valid[:, None, None, None], out, torch.zeros_like(out))
    return out.to(features.dtype).contiguous()


class PrRoIPool2D(nn.Module):
    """Precise RoI Pooling module with the official call signature.

    Args:
        pooled_height: bins along y.
        pooled_width: bins along x.
        spatial_scale: box coordinates -> feature cells.

    Shape:
        ``forward(features (B, C, H, W), rois (K, 5) [batch_index, x1, y1, x2, y2])`` ->
        ``(K, C, pooled_height, pooled_width)``.
    """

    def __init__(self, pooled_height: int, pooled_width: int, spatial_scale: float):
        super().__init__()
        self.pooled_height = int(pooled_height)
        self.pooled_width = int(pooled_width)
        self.spatial_scale = float(spatial_scale)

    def forward(self, features: Tensor, rois: Tensor, check_batch_index: bool = True) -> Tensor:
        return prroi_pool2d(features, rois, self.pooled_height, self.pooled_width, self.spatial_scale,
                            check_batch_index=check_batch_index)

    def extra_repr(self) -> str:
        return (f"kernel_size=({self.pooled_height}, {self.pooled_width}), "
                f"spatial_scale={self.spatial_scale}")
