"""SparseTT tracker: the SiamFC crop, the official post-processing (penalty, window, size smoothing, clamp,
"+1" box convention) with a stub network whose predictions are set by the test, and a run over real frames
with the real network."""

from __future__ import annotations

import math
from typing import List, Optional

import numpy as np
import pytest
import torch
from torch import nn

import lib.test.tracker.sparsett as sparsett_tracker
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams
from lib.utils.crop import siamfc_crop, warp_subwindow
from lib.utils.image import imread_rgb
from tests.conftest import need_shared

S, STRIDE, X_SIZE, Z_SIZE = 19, 16, 289, 127


# -- crop ------------------------------------------------------------------------------------------
def test_siamfc_crop_geometry_and_padding():
    h, w = 120, 200
    ramp = np.zeros((h, w, 3), np.float32)
    ramp[..., 0] = np.arange(w, dtype=np.float32)[None, :]
    ramp[..., 1] = np.arange(h, dtype=np.float32)[:, None]
    cx, cy, tw, th = 100.0, 60.0, 30.0, 20.0
    crop, scale = siamfc_crop(ramp, (cx, cy), (tw, th), Z_SIZE, x_size=X_SIZE // 4 + 1)
    s_z = math.sqrt((tw + 0.5 * (tw + th)) * (th + 0.5 * (tw + th)))
    assert scale == pytest.approx(Z_SIZE / s_z, rel=1e-6)
    side = round((X_SIZE // 4 + 1) / scale)
    # output pixel u samples x = cx - (side - 1) / 2 + u * (side - 1) / (out - 1)  ("+1" convention)
    u = np.arange(crop.shape[1])
    expected_x = cx - (side - 1) / 2 + u * (side - 1) / (crop.shape[1] - 1)
    inside = (expected_x >= 0) & (expected_x <= w - 1)
    assert np.abs(crop[crop.shape[0] // 2, inside, 0] - expected_x[inside]).max() < 1 / 16
    assert crop.shape == (X_SIZE // 4 + 1, X_SIZE // 4 + 1, 3)

    # template crop: z_size pixels showing s_z image pixels; padding = truncated per-channel frame mean
    img = np.full((50, 60, 3), (10, 200, 31), np.uint8)
    img[:25] = (20, 100, 40)
    tmpl, _ = siamfc_crop(img, (2.0, 2.0), (20.0, 20.0), Z_SIZE)
    assert tmpl.shape == (Z_SIZE, Z_SIZE, 3) and tmpl.dtype == np.uint8
    assert tuple(tmpl[0, 0]) == tuple(int(v) for v in img.mean(axis=(0, 1)))
    with pytest.raises(ValueError):
        siamfc_crop(img, (2.0, 2.0), (0.0, 0.0), Z_SIZE)
    with pytest.raises(ValueError):
        warp_subwindow(img, (float("nan"), 1.0), 10, 5)


# -- post-processing with a stub network ----------------------------------------------------------
class StubNet(nn.Module):
    """Returns the score map and crop boxes (cxywh, crop pixels) the test sets."""

    def __init__(self):
        super().__init__()
        self.score = torch.full((S * S,), 0.05)
        idx = torch.arange(S * S)
        # default candidates: 20x20 crop-pixel boxes on their anchor points
        self.boxes = torch.stack([(idx % S) * STRIDE, (idx // S) * STRIDE, torch.full_like(idx, 20),
                                  torch.full_like(idx, 20)], 1).float()
        self.calls: List[tuple] = []

    def set_candidate(self, index: int, cxywh, score: float):
        self.boxes[index] = torch.tensor(cxywh, dtype=torch.float32)
        self.score[index] = score

    def forward(self, *args, phase: Optional[str] = None):
        self.calls.append((phase, tuple(args[0].shape)))
        if phase == "feature":
            return [torch.zeros(64, 1, 256)]
        cx, cy, w, h = self.boxes.unbind(1)
        xyxy = torch.stack([cx - (w - 1) / 2, cy - (h - 1) / 2, cx + (w - 1) / 2, cy + (h - 1) / 2], 1)
        p = self.score.view(1, -1, 1).clone()
        return p, xyxy.view(1, -1, 4), {"cls_fc": p, "cls_conv": p}


@pytest.fixture
def stub_tracker(monkeypatch):
    stub = StubNet()
    monkeypatch.setattr(sparsett_tracker, "build_network", lambda *a, **k: stub)

    def make(dataset_name=None, **extra):
        params = TrackerParams.create("sparsett", "sparsett_swin_fulldata", require_checkpoint=False, **extra)
        return get_tracker_class("sparsett")(params, dataset_name), stub

    return make


def _anchor(index: int):
    return STRIDE * (index % S), STRIDE * (index // S)


def test_same_box_prediction_keeps_the_state(stub_tracker):
    tracker, stub = stub_tracker("lasot")
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    init = [50.0, 40.0, 30.0, 20.0]
    tracker.initialize(image, {"init_bbox": init})
    assert stub.calls[-1] == ("feature", (1, 3, Z_SIZE, Z_SIZE))
    scale = Z_SIZE / math.sqrt((30 + 25) * (20 + 25))
    centre = 9 * S + 9  # anchor (144, 144) = crop centre x_size // 2
    stub.set_candidate(centre, (144.0, 144.0, 30 * scale, 20 * scale), 0.9)
    for _ in range(3):
        out = tracker.track(image)
        assert stub.calls[-1] == ("track", (1, 3, X_SIZE, X_SIZE))
        assert out["target_bbox"] == pytest.approx(init, abs=1e-3)
        assert out["best_score"] == pytest.approx(0.9)


@pytest.mark.parametrize("dataset", ["lasot", "otb", "uav"])
def test_shift_scale_penalty_window_and_smoothing(stub_tracker, dataset):
    tracker, stub = stub_tracker(dataset)
    hyper = {"lasot": (0.95, 0.21, 0.04), "otb": (0.626, 0.2549, 0.053), "uav": (0.7364, 0.2398, 0.0734)}[dataset]
    test_lr, window_influence, penalty_k = hyper
    image = np.zeros((300, 400, 3), np.uint8)
    x, y, w, h = 100.0, 80.0, 40.0, 30.0
    tracker.initialize(image, {"init_bbox": [x, y, w, h]})
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2  # video_analyst's "+1" centre
    scale = np.float32(Z_SIZE) / np.float32(math.sqrt((w + 35) * (h + 35)))
    # candidate A: 3 cells right of the centre, shifted (+3, -5) px, 1.2x larger (same aspect ratio)
    a = 9 * S + 12
    ax, ay = _anchor(a)
    stub.set_candidate(a, (ax + 3.0, ay - 5.0, 1.2 * w * scale, 1.2 * h * scale), 0.8)
    # candidate B: same score and box size, in the map's corner: the cosine window removes it
    stub.set_candidate(0, (0.0, 0.0, 1.2 * w * scale, 1.2 * h * scale), 0.8)
    out = tracker.track(image)
    penalty = math.exp(-(1.2 - 1) * penalty_k)  # s_c = 1.2, r_c = 1
    lr = penalty * 0.8 * test_lr
    new_cx = cx + (ax + 3.0 - 144) / scale
    new_cy = cy + (ay - 5.0 - 144) / scale
    new_w, new_h = w * (1 - lr) + 1.2 * w * lr, h * (1 - lr) + 1.2 * h * lr
    expected = [new_cx - (new_w - 1) / 2, new_cy - (new_h - 1) / 2, new_w, new_h]
    assert out["target_bbox"] == pytest.approx(expected, rel=1e-5, abs=1e-3)
    window = np.outer(np.hanning(S), np.hanning(S)).reshape(-1)
    assert window[a] > window[0] == 0.0 and window_influence > 0


def test_clamps_centre_into_the_frame_and_size_to_min(stub_tracker):
    tracker, stub = stub_tracker(None)
    image = np.zeros((200, 300, 3), np.uint8)
    tracker.initialize(image, {"init_bbox": [270.0, 170.0, 20.0, 20.0]})
    scale = Z_SIZE / 40.0  # s_z = sqrt((20 + 20) * (20 + 20))
    far = 14 * S + 14  # anchor (224, 224): 80 crop px = 25 image px right of and below the centre
    stub.score.zero_()
    stub.set_candidate(far, (224.0, 224.0, 20 * scale, 20 * scale), 1.0)
    x, y, w, h = tracker.track(image)["target_bbox"]
    assert (x + (w - 1) / 2, y + (h - 1) / 2) == pytest.approx((300.0, 200.0))  # centre clamped to (W, H)
    assert (w, h) == pytest.approx((20.0, 20.0))

    tracker.initialize(image, {"init_bbox": [100.0, 100.0, 12.0, 12.0]})
    scale = Z_SIZE / 24.0
    stub.score.zero_()
    stub.set_candidate(9 * S + 9, (144.0, 144.0, 5 * scale, 5 * scale), 1.0)  # 5x5 px: below min_w/min_h
    x, y, w, h = tracker.track(image)["target_bbox"]
    assert (w, h) == (10.0, 10.0)
    assert (x + (w - 1) / 2, y + (h - 1) / 2) == pytest.approx((105.5, 105.5), abs=1e-4)
    with pytest.raises(ValueError):
        tracker.initialize(image, {"init_bbox": [10, 10, 0, 5]})


class _Sink:
    def __init__(self):
        self.views = []

    def register(self, data, mode, level, title, **kwargs):
        self.views.append((title, mode, level))


def test_debug_views_and_all_boxes(stub_tracker):
    tracker, stub = stub_tracker("otb", debug=2, save_all_boxes=True)
    tracker.debug_sink = _Sink()
    image = np.zeros((240, 320, 3), np.uint8)
    tracker.initialize(image, {"init_bbox": [50.0, 40.0, 30.0, 20.0]})
    tracker.set_debug_ground_truth([51.0, 40.0, 30.0, 20.0])
    out = tracker.track(image)
    titles = {t for t, _, _ in tracker.debug_sink.views}
    assert {"template", "Tracking", "search_region", "score_map", "score_map_hann", "penalty",
            "score_map_fc", "score_map_conv"} <= titles
    assert len(out["all_boxes"]) == 4 * S * S and len(out["all_scores"]) == S * S
    # candidate 0 is a 20x20 crop-pixel box on the anchor (0, 0): 144 crop px up-left of the centre
    scale = Z_SIZE / math.sqrt(55 * 45)
    cx, cy = 50 + 29 / 2 - 144 / scale, 40 + 19 / 2 - 144 / scale
    assert out["all_boxes"][:4] == pytest.approx([cx - (20 / scale - 1) / 2, cy - (20 / scale - 1) / 2,
                                                  20 / scale, 20 / scale], rel=1e-5)


# -- real network on real frames ------------------------------------------------------------------
def test_real_network_runs_on_a_real_sequence():
    seq = need_shared("data", "otb", "Crossing")
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter="\t")
    frames = [imread_rgb(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, 5)]
    torch.manual_seed(0)
    params = TrackerParams.create("sparsett", "sparsett_swin_fulldata", require_checkpoint=False, device="cpu")
    tracker = get_tracker_class("sparsett")(params, "otb")
    assert tracker.hyper == {"TEST_LR": 0.626, "WINDOW_INFLUENCE": 0.2549, "PENALTY_K": 0.053}
    tracker.initialize(frames[0], {"init_bbox": gt[0].tolist()})
    assert tracker.memory[0].shape == (64, 1, 256)
    H, W = frames[0].shape[:2]
    boxes = []
    for frame in frames[1:]:
        out = tracker.track(frame)
        x, y, w, h = out["target_bbox"]
        assert all(math.isfinite(v) for v in (x, y, w, h)) and 0.0 < out["best_score"] <= 1.0
        cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
        assert 0 <= cx <= W and 0 <= cy <= H and 10 <= w <= W and 10 <= h <= H
        boxes.append(out["target_bbox"])
    # initialize() resets all state: a second pass gives the same boxes
    tracker.initialize(frames[0], {"init_bbox": gt[0].tolist()})
    assert [tracker.track(f)["target_bbox"] for f in frames[1:3]] == boxes[:2]
