"""GRM beyond the network's numbers: configs, building without pretrained files, checkpoint loading
(official layout, safety, key errors), the tracker on real sequences with the threshold of the benchmark,
its debug views, the runner, the video demo and the profiler."""

import os
import pickle
import warnings

import cv2
import numpy as np
import pytest
import torch

from lib.config import ConfigError, PROJECT_ROOT, load_config
from lib.config.grm import division_threshold
from lib.models import build_network, get_network_spec, load_network_checkpoint
from lib.models.grm import generate_mask_cond
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import MissingCheckpointError, TrackerParams
from lib.utils.checkpoint import CheckpointError, InertObject, safe_load, save_checkpoint_atomic
from lib.utils.crop import clip_box, hann2d, map_box_back, sample_target, transform_image_to_crop
from lib.utils.image import imread_rgb
from tests.conftest import need_shared
from tests.parity_utils import recipe_state_dict
from tests.test_ostrack import _broadcast_state_dict, _Exploit, _load_script, _ref_shapes
from tests.train_helpers import one_torch_thread  # noqa: F401

CONFIG = "vitb_256_ep300"

# one torch thread: on a shared 2-core machine OpenMP spinning makes two threads several times slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Settings:
    """Stands for the official pickled ``lib.train.admin.settings.Settings`` object."""

    def __init__(self):
        self.script_name = "grm"
        self.config_name = CONFIG


# -- configs -------------------------------------------------------------------------------------
def test_configs_carry_official_values():
    cfg = load_config("grm", CONFIG)
    assert cfg.MODEL.BACKBONE.TYPE == "vit_base" and cfg.MODEL.TGT_TYPE == "allmax"
    assert cfg.DATA.TRAIN.DATASETS_NAME == ["LASOT", "GOT10K_vot_train", "COCO17", "TRACKINGNET"]
    assert (cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.LR, cfg.TRAIN.NUM_WORKER, cfg.TRAIN.EPOCH) == (40, 0.0004, 16, 300)
    assert dict(cfg.TEST.HYPER) == {"DEFAULT": 0, "LASOT": 0.4, "TRACKINGNET": 0, "GOT10K_TEST": 0, "NFS": 0.6,
                                    "UAV": 0.55, "AVIST": 0.4}
    assert "VAL" not in cfg.DATA and "AMP" not in cfg.TRAIN and "CE_LOC" not in cfg.MODEL.BACKBONE
    got = load_config("grm", "vitb_256_got_ep100")
    assert got.DATA.TRAIN.DATASETS_NAME == ["GOT10K_train"] and got.DATA.TRAIN.DATASETS_RATIO == [1]
    assert (got.TRAIN.EPOCH, got.TRAIN.LR_DROP_EPOCH, got.TEST.EPOCH) == (100, 80, 100)
    assert set(got.TEST.HYPER.values()) == {0}
    large = load_config("grm", "vitl_320_ep300")
    assert (large.MODEL.BACKBONE.TYPE, large.MODEL.PRETRAIN_FILE) == ("vit_large", "mae_pretrain_vit_large.pth")
    assert (large.DATA.SEARCH.SIZE, large.DATA.SEARCH.FACTOR, large.DATA.SEARCH.CENTER_JITTER,
            large.DATA.SEARCH.SCALE_JITTER, large.TRAIN.BATCH_SIZE) == (320, 5.0, 4.5, 0.5, 10)
    assert (large.TEST.SEARCH_SIZE, large.TEST.SEARCH_FACTOR) == (320, 5.0) and set(large.TEST.HYPER.values()) == {0}


def test_threshold_is_chosen_by_dataset_name():
    cfg = load_config("grm", CONFIG)
    expected = {"lasot": 0.4, "LaSOT": 0.4, "nfs": 0.6, "uav": 0.55, "avist": 0.4, "trackingnet": 0.0,
                "got10k_test": 0.0, "otb": 0.0, "uav10fps": 0.0, None: 0.0}
    assert {name: division_threshold(cfg, name) for name in expected} == expected
    cfg.TEST.HYPER.DEFAULT = 0.3
    assert division_threshold(cfg, "otb") == 0.3 and division_threshold(cfg, "lasot") == 0.4
    cfg.TEST.HYPER.NFS = 1.5
    with pytest.raises(ValueError, match=r"TEST\.HYPER\.NFS.*\[0, 1\]"):
        division_threshold(cfg, "nfs")


def test_config_rejects_unknown_key_by_name(tmp_path):
    text = (PROJECT_ROOT / "experiments" / "grm" / f"{CONFIG}.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("    UAV: 0.55", "    UAV: 0.55\n    OTB: 0.5"))
    with pytest.raises(ConfigError, match=r"TEST\.HYPER\.OTB"):
        load_config("grm", str(bad))
    bad.write_text(text.replace("  TGT_TYPE: allmax", "  TGT_TYPE: allmax\n  EXTRA_MERGER: False"))
    with pytest.raises(ConfigError, match=r"MODEL\.EXTRA_MERGER"):
        load_config("grm", str(bad))


# -- building ------------------------------------------------------------------------------------
def test_test_time_build_reads_no_file(monkeypatch, tmp_path):
    import lib.utils.checkpoint as ckpt

    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(tmp_path / "absent"))
    monkeypatch.setattr(ckpt, "safe_load", lambda *a, **k: pytest.fail("a file was read at test time"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.device("meta"):
            net = get_network_spec("grm").builder(load_config("grm", "vitl_320_ep300"), training=False)
    assert type(net).__name__ == "GRM" and net.backbone.pos_embed_x.shape == (1, 400, 1024)
    assert net.backbone.blocks[23].attn.divide_predict[0].weight.shape == (384, 2048)
    with pytest.warns(UserWarning, match="mae_pretrain_vit_base.pth"), torch.device("meta"):
        get_network_spec("grm").builder(load_config("grm", CONFIG), training=True)


def test_training_build_loads_mae_weights(monkeypatch, tmp_path):
    """The MAE file has no division predictors: they keep their initialisation, everything it has is loaded."""
    torch.manual_seed(3)
    mae_net = build_network("grm", "tiny_cpu", training=False)
    state = {k: torch.randn_like(v) for k, v in mae_net.backbone.state_dict().items()
             if "divide" not in k and not k.startswith(("pos_embed_x", "pos_embed_z"))}
    torch.save({"model": state, "args": Settings()}, tmp_path / "mae_tiny.pth")
    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(tmp_path))
    cfg = load_config("grm", "tiny_cpu")
    cfg.MODEL.PRETRAIN_FILE = "mae_tiny.pth"
    net = build_network("grm", cfg, training=True)
    loaded = net.backbone.state_dict()
    for key in ("blocks.2.attn.qkv.weight", "patch_embed.proj.weight", "norm.bias", "pos_embed"):
        assert torch.equal(loaded[key], state[key]), key
    assert not torch.equal(loaded["blocks.1.attn.divide_predict.0.weight"], mae_net.state_dict()[
        "backbone.blocks.1.attn.divide_predict.0.weight"])


def test_unsupported_options_are_named():
    cfg = load_config("grm", CONFIG)
    cfg.MODEL.PRETRAIN_FILE = "deit_base_distilled_patch16_224-df68dfff.pth"
    with pytest.raises(NotImplementedError, match="distilled"):
        build_network("grm", cfg)
    cfg = load_config("grm", CONFIG)
    cfg.MODEL.BACKBONE.TYPE = "vit_huge"
    with pytest.raises(ValueError, match="vit_huge.*vit_base, vit_large"):
        build_network("grm", cfg)


# -- checkpoints ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory):
    """An official-layout GRM checkpoint (``net`` plus pickled ``settings`` and the other entries); its
    tensors share one storage element per key, so the file is small."""
    path = tmp_path_factory.mktemp("ckpt") / "GRM_ep0300.pth.tar"
    state = _broadcast_state_dict(_ref_shapes(CONFIG, "grm"), 0.125)
    save_checkpoint_atomic({"epoch": 300, "actor_type": "GRMActor", "net_type": "GRM", "net": state,
                            "net_info": None, "constructor": None, "optimizer": {"state": {}, "param_groups": []},
                            "stats": None, "settings": Settings()}, path)
    return path


def test_official_checkpoint_with_pickled_settings_loads(official_checkpoint):
    obj = safe_load(official_checkpoint)
    assert isinstance(obj["settings"], InertObject) and obj["settings"].pickled_global.endswith("Settings")
    net = build_network("grm", CONFIG, checkpoint=official_checkpoint)
    assert not net.training and len(net.state_dict()) == 308
    assert torch.all(net.backbone.blocks[11].attn.divide_predict[4].bias == 0.125)
    assert torch.all(net.box_head.conv5_size.weight == 0.125)


def test_loading_never_runs_code_from_the_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_Exploit(marker)))  # sanity: the payload runs when unpickled unrestricted
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "evil.pth.tar"
    torch.save({"net": _broadcast_state_dict(_ref_shapes(CONFIG, "grm"), 0.5), "settings": _Exploit(marker)}, path)
    with torch.device("meta"):
        net = get_network_spec("grm").builder(load_config("grm", CONFIG), training=False)
    net = net.to_empty(device="cpu")
    obj = load_network_checkpoint(net, path, "grm")
    assert not marker.exists()
    assert isinstance(obj["settings"], InertObject) and obj["settings"].pickled_global.endswith("system")
    assert torch.all(net.backbone.norm.bias == 0.5)


def test_ostrack_checkpoint_is_refused_with_the_key_listing(tmp_path):
    path = tmp_path / "OSTrack_ep0300.pth.tar"
    torch.save({"net": _broadcast_state_dict(_ref_shapes("vitb_256_mae_ce_32x4_ep300")), "net_type": "OSTrack"},
               path)
    with pytest.raises(CheckpointError) as err:
        build_network("grm", CONFIG, checkpoint=path)
    msg = str(err.value)
    assert str(path) in msg and "missing keys (66)" in msg and "backbone.blocks.1.attn.divide_predict.0.weight" in msg
    assert "unexpected keys" not in msg and "shape mismatches" not in msg


def test_default_checkpoint_is_looked_up_where_the_trainer_saves(monkeypatch, tmp_path, official_checkpoint):
    for field, value in (("SAVE_DIR", tmp_path), ("RESULTS_PATH", tmp_path / "res"),
                         ("RESULT_PLOT_PATH", tmp_path / "plots")):
        monkeypatch.setenv(f"TRACKING_{field}", str(value))
    expected = tmp_path / "checkpoints" / "train" / "grm" / "vitb_256_got_ep100" / "GRM_ep0100.pth.tar"
    with pytest.raises(MissingCheckpointError) as err:
        TrackerParams.create("grm", "vitb_256_got_ep100")
    assert str(expected) in str(err.value)
    expected.parent.mkdir(parents=True)
    expected.symlink_to(official_checkpoint)
    assert TrackerParams.create("grm", "vitb_256_got_ep100").checkpoint == str(expected)


# -- tracker -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lasot_tracker():
    """The ViT-B/256 tracker for the LaSOT benchmark (threshold 0.4), recipe weights."""
    params = TrackerParams.create("grm", CONFIG, device="cpu", require_checkpoint=False)
    tracker = get_tracker_class("grm")(params, "lasot")
    tracker.network.load_state_dict(recipe_state_dict(tracker.network), strict=True)
    return tracker


def _otb_crossing(n):
    seq = need_shared("data", "otb", "Crossing")
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter="\t")
    return sorted((seq / "img").glob("*.jpg"))[:n], gt


def test_tracker_on_real_sequence_with_the_benchmark_threshold(lasot_tracker):
    tracker = lasot_tracker
    assert type(tracker).__name__ == "GRMTracker" and tracker.threshold == 0.4
    frames, gt = _otb_crossing(3)
    first = imread_rgb(str(frames[0]))
    H, W = first.shape[:2]
    tracker.initialize(first, {"init_bbox": gt[0].tolist()})
    assert torch.equal(tracker.output_window, hann2d((16, 16)))

    # The first tracked frame, recomputed step by step from OSTRACK_GRM.md sections 3.3 and 6.
    cfg = tracker.cfg
    z_patch, z_rf, _ = sample_target(first, gt[0].tolist(), 2.0, output_sz=128)
    box_t = torch.tensor(gt[0], dtype=torch.float32)
    z_box = transform_image_to_crop(box_t, box_t, z_rf, torch.tensor([128.0, 128.0]), normalize=True).view(1, 4)
    mask = generate_mask_cond(cfg, 1, "cpu", z_box)
    assert torch.equal(tracker.box_mask_z, mask) and mask.dtype == torch.float32 and mask.sum() > 0
    image = imread_rgb(str(frames[1]))
    patch, rf, _ = sample_target(image, gt[0].tolist(), 4.0, output_sz=256)
    with torch.no_grad():
        out = tracker.network(tracker.preprocessor(z_patch), tracker.preprocessor(patch), template_mask=mask,
                              threshold=0.4)
    box = tracker.network.box_head.cal_bbox(hann2d((16, 16)) * out["score_map"], out["size_map"], out["offset_map"])
    expected = clip_box(map_box_back((box[0] * 256 / rf).tolist(), gt[0].tolist(), 256, rf), H, W, margin=10)

    thresholds = []
    forward = tracker.network.forward
    tracker.network.forward = lambda *a, **k: (thresholds.append(k["threshold"]), forward(*a, **k))[1]
    try:
        boxes = [tracker.track(imread_rgb(str(f)))["target_bbox"] for f in frames[1:]]
    finally:
        del tracker.network.forward
    assert thresholds == [0.4] * 2
    assert boxes[0] == pytest.approx(expected, abs=1e-4)
    arr = np.asarray(boxes)
    assert (arr[:, :2] >= 0).all() and (arr[:, 2:] >= 10).all()
    assert (arr[:, 0] + arr[:, 2] <= W + 1e-6).all() and (arr[:, 1] + arr[:, 3] <= H + 1e-6).all()


def test_tracker_debug_views(lasot_tracker, tmp_path):
    from lib.test.utils.debug import make_debug_sink

    tracker = lasot_tracker
    frames, gt = _otb_crossing(2)
    tracker.debug_sink = make_debug_sink(1, "grm", CONFIG, "Crossing", out_dir=tmp_path, use_visdom=False)
    try:
        tracker.set_debug_ground_truth(gt[0])
        tracker.initialize(imread_rgb(str(frames[0])), {"init_bbox": gt[0].tolist()})
        tracker.debug_frame_done()
        tracker.set_debug_ground_truth(gt[1])
        tracker.track(imread_rgb(str(frames[1])))
        tracker.debug_frame_done()
    finally:
        tracker.debug_sink = None
        tracker.set_debug_ground_truth(None)
    written = {p.name for p in tmp_path.rglob("*.png")}
    for view in ("Tracking", "search_region", "template", "score_map", "score_map_hann", "token_division"):
        assert any(view in name for name in written), f"no '{view}' view among {sorted(written)}"
    assert not any("masked_search" in name for name in written)  # GRM removes no token
    division = cv2.imread(str(next(tmp_path.rglob("*token_division*.png"))))
    assert division.shape == (3 * 264, 4 * 264, 3)  # 11 dividing blocks in rows of 4 tiles
    assert all(len(h) == 0 for blk in tracker.network.backbone.blocks for h in (blk.attn._forward_hooks,))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A recipe-filled checkpoint of the small GRM (experiments/grm/tiny_cpu.yaml)."""
    net = build_network("grm", "tiny_cpu")
    path = tmp_path_factory.mktemp("tiny") / "GRM_ep0020.pth.tar"
    save_checkpoint_atomic({"net": recipe_state_dict(net), "net_type": "GRM", "epoch": 20}, path)
    return path


def test_runner_tracks_a_real_sequence(tiny_checkpoint, tmp_path, monkeypatch):
    from lib.test.evaluation.running import run_tracker

    for field, value in (("SAVE_DIR", tmp_path), ("RESULTS_PATH", tmp_path / "results"),
                         ("RESULT_PLOT_PATH", tmp_path / "plots")):
        monkeypatch.setenv(f"TRACKING_{field}", str(value))
    res = run_tracker("grm", "tiny_cpu", dataset_name="otb", dataset_path=str(need_shared("data", "otb")),
                      sequence="Crossing", checkpoint=str(tiny_checkpoint), progress=False)
    assert [(r.sequence, r.status, r.frames) for r in res] == [("Crossing", "done", 120)]
    rows = np.loadtxt(tmp_path / "results" / "grm" / "tiny_cpu" / "Crossing.txt", delimiter="\t")
    assert rows.shape == (120, 4) and (rows[:, :2] >= 0).all() and (rows[:, 2:] > 0).all()
    assert (rows[:, 0] + rows[:, 2] <= 360).all() and (rows[:, 1] + rows[:, 3] <= 240).all()


# -- video demo and profiler -------------------------------------------------------------------------
def test_video_demo_on_video_file(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = need_shared("data", "videos", "bag.avi")
    out_video, out_boxes = tmp_path / "bag_out.mp4", tmp_path / "bag.txt"
    boxes = _load_script("video_demo").main(
        ["grm", "tiny_cpu", str(video), "--init_box", "292", "128", "146", "133", "--checkpoint",
         str(tiny_checkpoint), "--save_video", str(out_video), "--save_boxes", str(out_boxes), "--max_frames", "5",
         "--device", "cpu"])
    arr = np.loadtxt(out_boxes, delimiter="\t")
    assert arr.shape == (5, 4) and arr[0].tolist() == [292, 128, 146, 133] and len(boxes) == 5
    assert (arr[:, 0] + arr[:, 2] <= 480).all() and (arr[:, 1] + arr[:, 3] <= 360).all()
    cap = cv2.VideoCapture(str(out_video))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_profiler_prints_the_figures(capsys):
    seq = need_shared("data", "otb", "Crossing")
    stats = _load_script("profile_model").main(
        ["--script", "grm", "--config", CONFIG, "--warmup", "0", "--iters", "1", "--frames", "3",
         "--sequence", str(seq)])
    text = capsys.readouterr().out
    assert "== grm / vitb_256_ep300" in text
    assert "parameters: 99,828,187" in text  # the official parameter count (reference keys file)
    assert "(1, 3, 128, 128), (1, 3, 256, 256), (1, 64)" in text
    assert "MACs thop: " in text and "model forward latency: median" in text and "tracker end-to-end" in text
    assert len(stats.times_ms) == 1 and stats.times_ms[0] > 0
