"""Device-side crops (lib/utils/crop.py): ``sample_target_tensor`` against ``sample_target`` + ``Preprocessor``
and ``warp_subwindow_tensor`` against ``warp_subwindow`` (cv2), on real OTB frames, with boxes inside, partly
outside and wholly outside the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.test.tracker.base import BaseTracker, Preprocessor
from lib.utils.crop import (frame_to_tensor, sample_target, sample_target_tensor, warp_subwindow,
                            warp_subwindow_tensor)
from lib.utils.image import imread_rgb
from tests.conftest import need_shared


@pytest.fixture(autouse=True)
def one_thread():
    """Many small tensor ops: one intra-op thread is faster on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frames():
    otb = need_shared("data", "otb")
    seqs = sorted(p for p in otb.iterdir() if (p / "img").is_dir())[:3]
    return [imread_rgb(str(sorted((s / "img").glob("*.jpg"))[i])) for s in seqs for i in (0, 7)][:4]


def _boxes(h: int, w: int, rng: np.random.Generator):
    """Boxes inside, straddling every border, in corners, tiny, huge, and one wholly outside."""
    boxes = [[w * 0.4, h * 0.4, w * 0.1, h * 0.15], [-20.0, h * 0.3, 60.0, 40.0], [w - 30.0, h * 0.5, 50.0, 70.0],
             [w * 0.5, -15.0, 33.3, 41.7], [w * 0.2, h - 10.0, 25.0, 25.0], [-5.0, -5.0, 30.0, 30.0],
             [w - 12.0, h - 12.0, 12.0, 12.0], [w * 0.3, h * 0.3, 3.0, 4.0], [0.0, 0.0, w * 0.9, h * 0.9],
             [w + 300.0, h + 300.0, 20.0, 20.0]]
    for _ in range(6):
        bw, bh = rng.uniform(8, w * 0.5), rng.uniform(8, h * 0.5)
        boxes.append([rng.uniform(-bw, w), rng.uniform(-bh, h), bw, bh])
    return boxes


def test_sample_target_tensor_matches_cv2_within_one_grey_level(frames):
    rng = np.random.default_rng(0)
    pre = Preprocessor("cpu")
    worst, n_diff, n_pix = 0, 0, 0
    for image in frames:
        frame = frame_to_tensor(image, "cpu")
        for box in _boxes(*image.shape[:2], rng):
            for factor, size in ((2.0, 128), (4.0, 256), (5.0, 320), (4.5, 384), (0.7, 128)):
                patch, rf, mask = sample_target(image, box, factor, output_sz=size)
                crop, rf_t, mask_t = sample_target_tensor(frame, box, factor, size)
                assert rf_t == rf
                assert crop.shape == (1, 3, size, size) and crop.dtype == torch.float32
                torch.testing.assert_close(mask_t[0], torch.from_numpy(mask), rtol=0, atol=0)
                diff = (crop[0].permute(1, 2, 0) - torch.from_numpy(patch).float()).abs()
                worst = max(worst, float(diff.max()))
                n_diff += int((diff > 0).sum())
                n_pix += diff.numel()
                # the normalised crop is the Preprocessor's up to that grey level
                img_ref, mask_ref = pre(patch, mask)
                img, mask2, rf2, _ = pre.crop(frame, box, factor, size)
                assert rf2 == rf and torch.equal(mask2, mask_ref)
                assert float((img - img_ref).abs().max()) <= 1.0 / 255.0 / 0.224 + 1e-6
    assert worst <= 1.0
    assert n_diff / n_pix < 0.01  # fixed-point emulation: nearly every pixel identical


def test_wholly_outside_box_gives_padding_and_full_mask(frames):
    image = frames[0]
    h, w = image.shape[:2]
    crop, _, mask = sample_target_tensor(frame_to_tensor(image, "cpu"), [w + 500.0, 10.0, 20.0, 20.0], 2.0, 64)
    assert float(crop.abs().max()) == 0.0 and bool(mask.all())
    with pytest.raises(ValueError, match="too small"):
        sample_target_tensor(frame_to_tensor(image, "cpu"), [1.0, 1.0, 0.0, 5.0], 2.0, 64)
    with pytest.raises(ValueError, match="uint8"):
        sample_target_tensor(torch.zeros(10, 10, 3), [1.0, 1.0, 5.0, 5.0], 2.0, 64)
    with pytest.raises(ValueError, match="uint8"):
        frame_to_tensor(image.astype(np.float32), "cpu")


def test_warp_subwindow_tensor_matches_cv2(frames):
    rng = np.random.default_rng(1)
    worst, n_diff, n_pix = 0, 0, 0
    for image in frames:
        frame = frame_to_tensor(image, "cpu")
        h, w = image.shape[:2]
        pad = image.mean(axis=(0, 1))
        for k in range(8):
            centre = (float(rng.uniform(-60, w + 60)), float(rng.uniform(-60, h + 60)))
            side = int(rng.integers(20, 700))
            size = (127, 289)[k % 2]
            ref = torch.from_numpy(warp_subwindow(image, centre, size, side, pad)).float()
            out = warp_subwindow_tensor(frame, centre, size, side, pad)[0].permute(1, 2, 0)
            diff = (out - ref).abs()
            worst = max(worst, float(diff.max()))
            n_diff += int((diff > 0).sum())
            n_pix += diff.numel()
    assert worst <= 1.0 and n_diff / n_pix < 1e-3


def test_crop_image_for_debug_views(frames):
    image = frames[0]
    crop, _, _ = sample_target_tensor(frame_to_tensor(image, "cpu"), [50.0, 60.0, 40.0, 30.0], 2.0, 96)
    arr = BaseTracker.crop_image(crop)
    patch, _, _ = sample_target(image, [50.0, 60.0, 40.0, 30.0], 2.0, output_sz=96)
    assert arr.shape == patch.shape and arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - patch.astype(int)).max() <= 1


def test_scale_crop_boxes_rounds_as_torch_on_each_device():
    """CPU: torch's float32 division; CUDA: torch multiplies by the float32 reciprocal of a Python-number
    divisor (div_true_kernel_cuda), emulated here with explicit float32 ops on the CPU."""
    import numpy as np
    import torch

    from lib.utils.crop import scale_crop_boxes

    rng = np.random.default_rng(0)
    boxes = rng.random((4000, 4), dtype=np.float32)
    factors = rng.uniform(0.3, 6.0, size=4000)
    cpu = np.stack([scale_crop_boxes(b, 256, f, "cpu") for b, f in zip(boxes, factors)])
    cuda = np.stack([scale_crop_boxes(b, 256, f, "cuda") for b, f in zip(boxes, factors)])
    t = torch.from_numpy(boxes)
    f32 = torch.tensor(factors, dtype=torch.float32).view(-1, 1)
    want_cpu = torch.stack([t[i] * 256 / float(factors[i]) for i in range(len(factors))]).numpy()
    want_cuda = ((t * 256) * (torch.ones_like(f32) / f32)).numpy()
    assert np.array_equal(cpu, want_cpu)
    assert np.array_equal(cuda, want_cuda)
    assert 0 < np.count_nonzero(cpu != cuda) < cpu.size // 2  # the two roundings differ by 1 ulp now and then
