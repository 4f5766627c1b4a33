"""AiATrack tracker on a real OTB sequence: boxes, feature reuse, the IoU-gated reference memory
(with scripted IoU predictions), HYPER selection by dataset and the debug views."""

import numpy as np
import pytest
import torch

from lib.config import load_config
from lib.test.tracker import get_tracker_class
from lib.test.tracker.aiatrack import AiATrackTracker, hyper_parameters
from lib.test.tracker.base import TrackerParams
from lib.utils.image import imread_rgb
from tests.conftest import need_shared
from tests.parity_utils import fill_stark_recipe

SCRIPTED_IOU = [0.9, 0.7, 0.95, 0.9]  # 0.7 is not above the OTB threshold 0.7: no update


class _Sink:
    def __init__(self):
        self.views = []

    def register(self, data, mode, level, title, **kwargs):
        self.views.append((title, mode, data))


@pytest.fixture(scope="module")
def run():
    seq = need_shared("data", "otb", "Crossing")
    gt = np.loadtxt(seq / "groundtruth_rect.txt")
    frames = [imread_rgb(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, 2 + len(SCRIPTED_IOU))]
    params = TrackerParams.create("aiatrack", "baseline", checkpoint=None, require_checkpoint=False, device="cpu",
                                  debug=1)
    tracker = get_tracker_class("aiatrack")(params, "otb")
    assert isinstance(tracker, AiATrackTracker)
    fill_stark_recipe(tracker.network)
    tracker.debug_sink = _Sink()
    tracker.cache_siz = 3  # small cache so that the run also evicts

    net = tracker.network
    calls = {"encoder": 0, "search_mem": [], "coord": [], "iou": list(SCRIPTED_IOU)}
    run_encoder, forward_transformer, forward_box_head = (net.transformer.run_encoder, net.forward_transformer,
                                                          net.forward_box_head)

    def count_encoder(*args, **kwargs):
        calls["encoder"] += 1
        return run_encoder(*args, **kwargs)

    def record_transformer(*args, **kwargs):
        out = forward_transformer(*args, **kwargs)
        calls["search_mem"].append(out[1])
        return out

    def record_box_head(*args, **kwargs):
        out = forward_box_head(*args, **kwargs)
        calls["coord"].append(out[1])
        return out

    def scripted_iou(hs, proposals):
        assert proposals.shape == (1, 1, 1, 4)
        return {"pred_iou": torch.full((1, 1, 1), calls["iou"].pop(0))}

    net.transformer.run_encoder = count_encoder
    net.forward_transformer = record_transformer
    net.forward_box_head = record_box_head
    net.forward_iou_head = scripted_iou

    tracker.initialize(frames[0], {"init_bbox": gt[0].tolist()})
    history = [[r.frame_id for r in tracker.refer_list]]
    cache_history = [[r.frame_id for r in tracker.refer_cache]]
    outputs, encoder_calls = [], []
    for frame in frames[1:]:
        before = calls["encoder"]
        outputs.append(tracker.track(frame))
        encoder_calls.append(calls["encoder"] - before)
        history.append([r.frame_id for r in tracker.refer_list])
        cache_history.append([r.frame_id for r in tracker.refer_cache])
    return dict(tracker=tracker, frames=frames, outputs=outputs, history=history, cache_history=cache_history,
                encoder_calls=encoder_calls, calls=calls)


def test_boxes_stay_inside_the_frame(run):
    H, W = run["frames"][0].shape[:2]
    for out in run["outputs"]:
        x, y, w, h = out["target_bbox"]
        assert all(np.isfinite([x, y, w, h])) and w >= 10 and h >= 10
        assert 0 <= x <= W - 10 and 0 <= y <= H - 10 and x + w <= W + 1e-6 and y + h <= H + 1e-6
    assert [o["pred_iou"] for o in run["outputs"]] == pytest.approx(SCRIPTED_IOU)


def test_feature_reuse_encodes_only_the_search_frame(run):
    assert run["encoder_calls"] == [1] * len(SCRIPTED_IOU)


def test_reference_memory_follows_the_official_update_rule(run):
    tracker = run["tracker"]
    assert (tracker.refer_cap, tracker.threshold) == (4, 0.7)
    assert run["cache_history"] == [[0], [0, 1], [0, 1], [0, 1, 3], [0, 3, 4]]
    assert run["history"] == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 3], [0, 0, 3, 4]]
    # The entry of frame 4 holds that frame's search memory and the embedding of its predicted box.
    entry = tracker.refer_cache[-1]
    assert entry.mem is run["calls"]["search_mem"][3]
    coord = run["calls"]["coord"][3][0]
    assert entry.box == pytest.approx(coord.tolist())
    from lib.models.aiatrack import target_background_region

    expected = tracker.network.refer_embedding(target_background_region(coord, 20)[None])
    torch.testing.assert_close(entry.emb, expected)


def test_debug_views_show_the_memory_and_iou(run):
    titles = {t for t, _, _ in run["tracker"].debug_sink.views}
    assert {"Tracking", "search_region", "reference_memory", "predicted_iou", "memory"} <= titles
    mosaic = [d for t, _, d in run["tracker"].debug_sink.views if t == "reference_memory"][-1]
    assert mosaic.shape == (160, 160 * 4, 3) and mosaic.dtype == np.uint8
    curve = [d for t, _, d in run["tracker"].debug_sink.views if t == "predicted_iou"][-1]
    assert list(curve) == pytest.approx(SCRIPTED_IOU)


@pytest.mark.parametrize("config,dataset,expected", [
    ("baseline", "lasot", (100, 4, 0.8, "LASOT")),
    ("baseline", "lasot_extension_subset", (100, 6, 0.8, "LASOT_EXT")),
    ("baseline", "trackingnet", (100, 6, 0.7, "TRACKINGNET")),
    ("baseline", "nfs", (80, 3, 0.6, "NFS")),
    ("baseline", "vot20", (100, 3, 0.7, "DEFAULT")),
    ("baseline", None, (100, 3, 0.7, "DEFAULT")),
    ("baseline_got", "got10k_test", (80, 4, 0.7, "GOT10K_TEST")),
])
def test_hyper_parameters_by_dataset(config, dataset, expected):
    assert hyper_parameters(load_config("aiatrack", config), dataset) == expected


def test_malformed_hyper_is_rejected():
    cfg = load_config("aiatrack", "baseline")
    cfg.TEST.HYPER.OTB = [1, 3, 0.7]
    with pytest.raises(ValueError, match="TEST.HYPER.OTB"):
        hyper_parameters(cfg, "otb")


def test_track_before_initialize_and_bad_box():
    params = TrackerParams.create("aiatrack", "baseline", checkpoint=None, require_checkpoint=False, device="cpu")
    tracker = AiATrackTracker(params, "otb")
    with pytest.raises(RuntimeError, match="before initialize"):
        tracker.track(np.zeros((240, 320, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="zero or negative size"):
        tracker.initialize(np.zeros((240, 320, 3), dtype=np.uint8), {"init_bbox": [10, 10, 0, 5]})
