"""Precise RoI Pooling (lib/models/layers/prroi_pool.py) against brute-force numerical integration,
the official extension's documented behaviour, and finite-difference gradients."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from lib.models.layers.prroi_pool import PrRoIPool2D, hat_antiderivative, prroi_pool2d

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def brute_force_prroi(features, rois, ph, pw, scale, n=240):
    """Mean of the zero-padded bilinear interpolation over each bin, sampled at n x n midpoints per bin.

    The interpolation is torch's ``grid_sample`` (``align_corners=True``, ``padding_mode='zeros'``):
    samples at integer positions, zero beyond the map, linear decay over the cell past the border.
    """
    B, C, H, W = features.shape
    out = []
    for roi in rois.tolist():
        b, x1, y1, x2, y2 = int(roi[0]), *(v * scale for v in roi[1:])
        bw, bh = max(x2 - x1, 0.0) / pw, max(y2 - y1, 0.0) / ph
        if bw * bh == 0:
            out.append(features.new_zeros(C, ph, pw))
            continue
        t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        xs = (x1 + bw * (torch.arange(pw, dtype=torch.float64)[:, None] + t[None, :])).reshape(-1)
        ys = (y1 + bh * (torch.arange(ph, dtype=torch.float64)[:, None] + t[None, :])).reshape(-1)
        gx = xs / (W - 1) * 2 - 1
        gy = ys / (H - 1) * 2 - 1
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None].to(features)
        dense = F.grid_sample(features[b:b + 1], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        out.append(dense.reshape(C, ph, n, pw, n).mean(dim=(2, 4)))
    return torch.stack(out)


def _random_rois(gen, k, B, H, W, margin=3.0):
    """Random boxes (feature cells) that often cross or leave the map; never on integer positions."""
    x1 = torch.rand(k, generator=gen, dtype=torch.float64) * (W + 2 * margin) - margin
    y1 = torch.rand(k, generator=gen, dtype=torch.float64) * (H + 2 * margin) - margin
    w = torch.rand(k, generator=gen, dtype=torch.float64) * W * 0.8 + 0.05
    h = torch.rand(k, generator=gen, dtype=torch.float64) * H * 0.8 + 0.05
    b = torch.randint(0, B, (k,), generator=gen).double()
    return torch.stack([b, x1, y1, x1 + w, y1 + h], dim=1)


def test_hat_antiderivative_is_the_integral_of_the_hat():
    t = torch.linspace(-2.5, 2.5, 2001, dtype=torch.float64)
    hat = (1 - t.abs()).clamp(min=0)
    numeric = torch.cumulative_trapezoid(hat, t, dim=0)
    assert torch.allclose(hat_antiderivative(t)[1:], numeric, atol=1e-6)
    assert hat_antiderivative(torch.tensor([-5.0, -1.0, 0.0, 1.0, 7.0])).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_matches_brute_force_integration_including_borders(scale):
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(2, 3, 7, 9, generator=gen, dtype=torch.float64)
    rois = _random_rois(gen, 12, 2, 7, 9) / scale
    rois[:, 0] *= scale
    # Hand-picked border cases (feature cells / scale): left/top border, right/bottom border,
    # within the one decaying cell beyond the map, wholly beyond it, enclosing the whole map.
    extra = torch.tensor([[0, -1.7, -0.6, 2.3, 3.1], [1, 6.2, 4.4, 10.3, 8.9], [0, -0.9, 1.0, -0.1, 2.5],
                          [1, 10.5, 1.0, 12.0, 3.0], [0, -2.5, -2.5, 11.5, 9.5]], dtype=torch.float64)
    extra[:, 1:] /= scale
    rois = torch.cat([rois, extra])
    ours = prroi_pool2d(features, rois, 3, 4, scale)
    ref = brute_force_prroi(features, rois, 3, 4, scale)
    err = (ours - ref).abs().max().item()
    assert err < 2e-5, err
    assert ours[-2].abs().max() == 0  # wholly beyond the decaying border cell
    assert ours[-3].abs().max() > 1e-3  # inside the decaying cell: not zero


def test_normalised_boxes_with_spatial_scale_20_as_in_the_aiatrack_iou_head():
    gen = torch.Generator().manual_seed(2)
    features = torch.randn(1, 4, 20, 20, generator=gen, dtype=torch.float64)
    xywh = torch.tensor([[0.40, 0.40, 0.20, 0.20], [0.38, 0.41, 0.25, 0.18], [0.0, 0.0, 1.0, 1.0],
                         [-0.05, 0.9, 0.2, 0.2]], dtype=torch.float64)
    rois = torch.cat([torch.zeros(4, 1, dtype=torch.float64), xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
    ours = PrRoIPool2D(4, 4, 20.0)(features, rois)
    assert ours.shape == (4, 4, 4, 4)
    assert (ours - brute_force_prroi(features, rois, 4, 4, 20.0)).abs().max() < 2e-5


def test_official_documented_behaviour_unit_bins_equal_2x2_average_pooling():
    # The official test: 7x7 bins of one feature cell starting on integer positions average the 2x2
    # neighbourhood, i.e. avg_pool2d(kernel 2, stride 1).
    features = torch.rand(4, 16, 24, 32, generator=torch.Generator().manual_seed(3))
    rois = torch.tensor([[0, 0, 0, 14, 14], [1, 14, 14, 28, 28]], dtype=torch.float32)
    out = PrRoIPool2D(7, 7, spatial_scale=0.5)(features, rois)
    gold = F.avg_pool2d(features, kernel_size=2, stride=1)
    expected = torch.stack([gold[0, :, :7, :7], gold[1, :, 7:14, 7:14]])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_zero_area_bins_give_zero_with_zero_gradient():
    features = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[1.0, 1.0, 1.0, 3.0],    # zero width
                          [1.0, 2.0, 3.0, 2.0],    # zero height
                          [3.0, 3.0, 1.0, 1.0]],   # inverted: clamped to zero size
                         dtype=torch.float64, requires_grad=True)
    rois = torch.cat([torch.zeros(3, 1, dtype=torch.float64), boxes], dim=1)
    out = prroi_pool2d(features, rois, 2, 2, 1.0)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))
    assert torch.isfinite(boxes.grad).all() and torch.equal(boxes.grad, torch.zeros_like(boxes))


def test_gradcheck_features_and_box_coordinates():
    gen = torch.Generator().manual_seed(4)
    features = torch.randn(2, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    # Inside; across the left/top border; across the right/bottom border; nearly the whole map.
    rois = torch.tensor([[0, 0.3, 0.6, 2.7, 3.1], [1, -1.4, -0.7, 1.6, 2.2], [0, 2.2, 1.3, 5.6, 4.7],
                         [1, -0.55, -1.3, 4.45, 3.35]], dtype=torch.float64)
    batch = rois[:, :1]
    boxes = rois[:, 1:].clone().requires_grad_(True)

    def fn(feat, box):
        return prroi_pool2d(feat, torch.cat([batch, box], dim=1), 2, 3, 1.0)

    assert torch.autograd.gradcheck(fn, (features, boxes), eps=1e-6, atol=1e-6)
    # With spatial_scale and normalised boxes as the IoU head uses them.
    boxes_n = (boxes.detach() / 5.0).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda feat, box: prroi_pool2d(feat, torch.cat([batch, box], dim=1), 4, 4, 5.0),
        (features, boxes_n), eps=1e-7, atol=1e-6, fast_mode=True)


def test_box_gradient_matches_the_boundary_integral_formula():
    # d(mean over bin)/d(x2) = (integral of f along the right edge - out * height) / area: the
    # closed form the official coordinate backward kernel evaluates.
    gen = torch.Generator().manual_seed(5)
    features = torch.randn(1, 1, 6, 6, generator=gen, dtype=torch.float64)
    box = torch.tensor([[-0.7, 1.3, 4.6, 6.4]], dtype=torch.float64, requires_grad=True)
    out = prroi_pool2d(features, torch.cat([torch.zeros(1, 1, dtype=torch.float64), box], 1), 1, 1, 1.0)
    out.sum().backward()
    x1, y1, x2, y2 = box.detach()[0].tolist()
    n = 20000
    ys = y1 + (y2 - y1) * (torch.arange(n, dtype=torch.float64) + 0.5) / n
    grid = torch.stack([torch.full_like(ys, x2) / 5 * 2 - 1, ys / 5 * 2 - 1], -1)[None, None]
    edge = F.grid_sample(features, grid, align_corners=True).mean() * (y2 - y1)
    expected = (edge - out.detach().squeeze() * (y2 - y1)) / ((x2 - x1) * (y2 - y1))
    assert abs(box.grad[0, 2].item() - expected.item()) < 1e-6


def test_roi_align_is_not_a_substitute_at_the_border():
    gen = torch.Generator().manual_seed(6)
    features = torch.randn(1, 8, 20, 20, generator=gen, dtype=torch.float64)
    rois = torch.tensor([[0, -1.5, -1.5, 3.0, 3.0]], dtype=torch.float64)
    ref = brute_force_prroi(features, rois, 4, 4, 1.0)
    ours = prroi_pool2d(features, rois, 4, 4, 1.0)
    ra = roi_align(features, rois, (4, 4), spatial_scale=1.0, sampling_ratio=32, aligned=False)
    assert (ours - ref).abs().max() < 2e-5
    assert (ra - ref).abs().max() > 0.05


@pytest.mark.parametrize("device", DEVICES)
def test_device_and_dtype(device):
    gen = torch.Generator().manual_seed(7)
    features64 = torch.randn(2, 5, 10, 10, generator=gen, dtype=torch.float64)
    rois64 = _random_rois(gen, 9, 2, 10, 10)
    ref = prroi_pool2d(features64, rois64, 4, 4, 1.0)
    out32 = prroi_pool2d(features64.float().to(device), rois64.float().to(device), 4, 4, 1.0)
    assert out32.device.type == device and out32.dtype == torch.float32
    torch.testing.assert_close(out32.cpu().double(), ref, rtol=1e-4, atol=1e-5)
    out_bf16 = prroi_pool2d(features64.to(device, torch.bfloat16), rois64.float().to(device), 4, 4, 1.0)
    assert out_bf16.dtype == torch.bfloat16
    assert (out_bf16.cpu().double() - ref).abs().max() < 0.1
    # Backward on the device: gradients land on the inputs' device.
    feats = features64.float().to(device).requires_grad_(True)
    boxes = rois64[:, 1:].float().to(device).requires_grad_(True)
    prroi_pool2d(feats, torch.cat([rois64[:, :1].float().to(device), boxes], 1), 4, 4, 1.0).square().sum().backward()
    assert feats.grad.device.type == device and boxes.grad.device.type == device


def test_bad_input_raises_clear_errors():
    feats = torch.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        prroi_pool2d(feats, torch.zeros(3, 4), 2, 2, 1.0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        prroi_pool2d(feats[0], torch.zeros(1, 5), 2, 2, 1.0)
    with pytest.raises(ValueError, match="batch indices"):
        prroi_pool2d(feats, torch.tensor([[1.0, 0, 0, 1, 1]]), 2, 2, 1.0)
    with pytest.raises(ValueError, match="floating point"):
        prroi_pool2d(feats.long(), torch.zeros(1, 5), 2, 2, 1.0)
    assert prroi_pool2d(feats, torch.zeros(0, 5), 2, 3, 1.0).shape == (0, 2, 2, 3)
    assert "kernel_size=(4, 4), spatial_scale=20.0" in repr(PrRoIPool2D(4, 4, 20.0))


def test_runs_on_the_meta_device():
    # Any tensor created on the CPU inside the operator would clash with meta inputs in the
    # element-wise ops: a cheap check that nothing in it is CPU-only.
    feats = torch.randn(2, 3, 10, 10, device="meta")
    rois = torch.zeros(4, 5, device="meta")
    out = prroi_pool2d(feats, rois, 4, 4, 1.0)
    assert out.device.type == "meta" and out.shape == (4, 3, 4, 4)
