"""OSTrack beyond the network's numbers: configs, building without pretrained files, checkpoint
loading (official layout, safety, key errors), the tracker on a real sequence, the video demo and the
profiler."""

import importlib.util
import json
import os
import pickle
import sys
import warnings

import cv2
import numpy as np
import pytest
import torch

from lib.config import ConfigError, PROJECT_ROOT, load_config
from lib.models import build_network, get_network_spec, load_network_checkpoint
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import MissingCheckpointError, TrackerParams
from lib.utils.checkpoint import CheckpointError, InertObject, safe_load
from lib.utils.crop import clip_box, hann2d, map_box_back, sample_target
from lib.utils.image import FrameReadError, imread_rgb
from lib.test.utils.video import open_frame_source, run_video_demo
from tests.conftest import free_port, need_shared
from tests.parity_utils import recipe_value

CE_CONFIG = "vitb_256_mae_ce_32x4_ep300"


def _load_script(name):
    """Import ``tracking/<name>.py`` as a module (its ``import _init_paths`` needs ``tracking/`` on the path)."""
    tracking_dir = str(PROJECT_ROOT / "tracking")
    if tracking_dir not in sys.path:
        sys.path.insert(0, tracking_dir)
    spec = importlib.util.spec_from_file_location(f"_script_{name}", PROJECT_ROOT / "tracking" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Settings:
    """Stands for the official pickled ``lib.train.admin.settings.Settings`` object."""

    def __init__(self):
        self.script_name = "ostrack"
        self.config_name = CE_CONFIG


class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _broadcast_state_dict(shapes, value=0.0):
    """``{key: tensor of shape}`` whose tensors share one element (tiny files for key-layout tests)."""
    return {k: torch.full((1,), value).expand(*s) if s else torch.tensor(value) for k, s in shapes.items()}


def _ref_shapes(config, tracker="ostrack"):
    data = json.loads(need_shared("reference", "keys", f"{tracker}__{config}.json").read_text())
    return data["state_dict"]


# -- configs -------------------------------------------------------------------------------------
def test_configs_carry_official_values():
    cfg = load_config("ostrack", "vitb_384_mae_ce_32x4_ep300")
    assert cfg.MODEL.BACKBONE.TYPE == "vit_base_patch16_224_ce" and cfg.MODEL.BACKBONE.CE_LOC == [3, 6, 9]
    assert (cfg.DATA.SEARCH.SIZE, cfg.DATA.SEARCH.FACTOR, cfg.DATA.TEMPLATE.SIZE) == (384, 5.0, 192)
    assert (cfg.TRAIN.CE_START_EPOCH, cfg.TRAIN.CE_WARM_EPOCH) == (20, 80)  # not in this YAML: defaults
    got = load_config("ostrack", "vitb_256_mae_ce_32x4_got10k_ep100")
    assert got.DATA.TRAIN.DATASETS_NAME == ["GOT10K_train_full"] and got.TRAIN.CE_WARM_EPOCH == 50
    assert (got.TEST.EPOCH, got.TRAIN.LR_DROP_EPOCH, got.TEST.SEARCH_FACTOR) == (100, 80, 4.0)
    plain = load_config("ostrack", "vitb_256_mae_32x4_ep300")
    assert plain.MODEL.BACKBONE.CE_LOC == [] and plain.DATA.SAMPLER_MODE == "causal"
    assert plain.TRAIN.BATCH_SIZE == 32 and plain.TRAIN.LR == 0.0004


def test_config_rejects_unknown_key_by_name(tmp_path):
    text = (PROJECT_ROOT / "experiments" / "ostrack" / f"{CE_CONFIG}.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("    CE_LOC:", "    CE_LOCS: [1]\n    CE_LOC:"))
    with pytest.raises(ConfigError, match=r"MODEL\.BACKBONE\.CE_LOCS.*bad\.yaml|bad\.yaml.*MODEL\.BACKBONE\.CE_LOCS"):
        load_config("ostrack", str(bad))


# -- building ------------------------------------------------------------------------------------
def test_test_time_build_reads_no_file(monkeypatch, tmp_path):
    import lib.utils.checkpoint as ckpt

    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(tmp_path / "absent"))
    monkeypatch.setattr(ckpt, "safe_load", lambda *a, **k: pytest.fail("a file was read at test time"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.device("meta"):
            net = get_network_spec("ostrack").builder(load_config("ostrack", CE_CONFIG), training=False)
    assert net.backbone.pos_embed_x.shape == (1, 256, 768)
    with pytest.warns(UserWarning, match="mae_pretrain_vit_base.pth"), torch.device("meta"):
        get_network_spec("ostrack").builder(load_config("ostrack", CE_CONFIG), training=True)


def test_training_build_loads_mae_weights_and_splits_pos_embed(monkeypatch, tmp_path, caplog):
    grid = torch.arange(14.0).view(14, 1, 1).expand(14, 14, 768).reshape(1, 196, 768)  # value = row index
    pos_embed = torch.cat([torch.full((1, 1, 768), -1.0), grid], dim=1)
    mae = {"model": {"pos_embed": pos_embed, "cls_token": torch.full((1, 1, 768), 0.5),
                     "blocks.0.norm1.weight": torch.full((768,), 3.0), "decoder_pred.weight": torch.zeros(2, 2)},
           "args": Settings()}
    torch.save(mae, tmp_path / "mae_pretrain_vit_base.pth")
    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(tmp_path))
    with caplog.at_level("WARNING"):
        net = build_network("ostrack", CE_CONFIG, training=True)
    assert net.training
    bb = net.backbone
    assert torch.equal(bb.blocks[0].norm1.weight, torch.full((768,), 3.0)) and bb.cls_token.flatten()[0] == 0.5
    assert "blocks.0.attn.qkv.weight" in caplog.text and "decoder_pred.weight" in caplog.text
    # Bicubic resampling of a row ramp: constant along rows, increasing down the 16x16 / 8x8 grids.
    x = bb.pos_embed_x.detach().view(16, 16, 768)[..., 0]
    z = bb.pos_embed_z.detach().view(8, 8, 768)[..., 0]
    for g in (x, z):
        torch.testing.assert_close(g, g[:, :1].expand_as(g))
        assert torch.all(g[1:, 0] > g[:-1, 0]) and g[0, 0] < 0.5 and g[-1, 0] > 12.0


# -- checkpoints ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recipe_checkpoint(ostrack_recipe_checkpoint):
    """The session's recipe-filled official-layout checkpoint (tests/conftest.py) and its ``net`` entry."""
    return ostrack_recipe_checkpoint, safe_load(ostrack_recipe_checkpoint)["net"]


@pytest.fixture(scope="module")
def ce_net():
    return build_network("ostrack", CE_CONFIG)


def test_official_checkpoint_with_pickled_settings_loads(recipe_checkpoint):
    path, state = recipe_checkpoint
    obj = safe_load(path)
    assert isinstance(obj["settings"], InertObject) and obj["settings"].pickled_global.endswith("Settings")
    net = build_network("ostrack", CE_CONFIG, checkpoint=path)
    assert not net.training
    loaded = net.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())
    for key in ("backbone.blocks.3.attn.qkv.weight", "box_head.conv1_ctr.1.running_var"):
        assert torch.equal(state[key], recipe_value(key, state[key].shape))  # the file holds the recipe


def test_bare_state_dict_loads(ce_net, tmp_path):
    shapes = {k: tuple(v.shape) for k, v in ce_net.state_dict().items()}
    path = tmp_path / "bare.pth"
    torch.save(_broadcast_state_dict(shapes, 0.25), path)
    load_network_checkpoint(ce_net, path, "ostrack")
    assert torch.all(ce_net.backbone.blocks[5].mlp.fc1.weight == 0.25)


def test_loading_never_runs_code_from_the_checkpoint(ce_net, tmp_path):
    marker = tmp_path / "pwned"
    # Sanity: the payload really runs a command when unpickled without restriction.
    pickle.loads(pickle.dumps(_Exploit(marker)))
    assert marker.exists()
    marker.unlink()
    shapes = {k: tuple(v.shape) for k, v in ce_net.state_dict().items()}
    path = tmp_path / "evil.pth.tar"
    torch.save({"net": _broadcast_state_dict(shapes, 0.5), "settings": _Exploit(marker), "epoch": 1}, path)
    obj = load_network_checkpoint(ce_net, path, "ostrack")
    assert not marker.exists()
    assert isinstance(obj["settings"], InertObject) and obj["settings"].pickled_global.endswith("system")
    assert torch.all(ce_net.backbone.norm.bias == 0.5)


def test_grm_checkpoint_is_refused_with_the_key_listing(tmp_path):
    path = tmp_path / "GRM_ep0300.pth.tar"
    torch.save({"net": _broadcast_state_dict(_ref_shapes("vitb_256_ep300", "grm")), "net_type": "GRM"}, path)
    with pytest.raises(CheckpointError) as err:
        build_network("ostrack", CE_CONFIG, checkpoint=path)
    msg = str(err.value)
    assert str(path) in msg and "unexpected keys (66)" in msg and "attn.divide_predict" in msg
    assert "missing keys" not in msg


def test_checkpoint_of_other_size_lists_shape_mismatches(ce_net, tmp_path):
    shapes = dict(_ref_shapes("vitb_384_mae_ce_32x4_ep300"))
    del shapes["box_head.conv5_size.bias"]
    path = tmp_path / "ostrack384.pth.tar"
    torch.save({"net": _broadcast_state_dict(shapes)}, path)
    with pytest.raises(CheckpointError) as err:
        load_network_checkpoint(ce_net, path, "ostrack")
    msg = str(err.value)
    assert "missing keys (1): box_head.conv5_size.bias" in msg and "shape mismatches (2)" in msg
    assert "backbone.pos_embed_x: checkpoint (1, 576, 768) vs OSTrack (1, 256, 768)" in msg


def test_default_checkpoint_is_looked_up_where_the_trainer_saves(monkeypatch, tmp_path, recipe_checkpoint):
    for field, value in (("SAVE_DIR", tmp_path), ("RESULTS_PATH", tmp_path / "res"),
                         ("RESULT_PLOT_PATH", tmp_path / "plots")):
        monkeypatch.setenv(f"TRACKING_{field}", str(value))
    expected = tmp_path / "checkpoints" / "train" / "ostrack" / CE_CONFIG / "OSTrack_ep0300.pth.tar"
    with pytest.raises(MissingCheckpointError) as err:
        TrackerParams.create("ostrack", CE_CONFIG)
    assert str(expected) in str(err.value) and "--checkpoint" in str(err.value)
    expected.parent.mkdir(parents=True)
    expected.symlink_to(recipe_checkpoint[0])
    assert TrackerParams.create("ostrack", CE_CONFIG).checkpoint == str(expected)


# -- tracker -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tracker(recipe_checkpoint):
    params = TrackerParams.create("ostrack", CE_CONFIG, checkpoint=str(recipe_checkpoint[0]), device="cpu")
    return get_tracker_class("ostrack")(params, "otb")


def _otb_crossing(n):
    seq = need_shared("data", "otb", "Crossing")
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter="\t")
    frames = sorted((seq / "img").glob("*.jpg"))[:n]
    return frames, gt


def test_tracker_on_real_sequence_writes_boxes_inside_the_frame(tracker, tmp_path):
    frames, gt = _otb_crossing(10)
    first = imread_rgb(str(frames[0]))
    H, W = first.shape[:2]
    tracker.initialize(first, {"init_bbox": gt[0].tolist()})
    assert tracker.box_mask_z.tolist() == [[27]]  # CTR_POINT of the 8x8 template grid, as indices
    assert torch.equal(tracker.output_window, hann2d((16, 16)))

    # The first tracked frame, recomputed step by step from OSTRACK_GRM.md section 6.
    image = imread_rgb(str(frames[1]))
    patch, rf, _ = sample_target(image, gt[0].tolist(), 4.0, output_sz=256)
    search = tracker.preprocessor(patch)
    with torch.no_grad():
        out = tracker.network(tracker.template, search, ce_template_mask=tracker.box_mask_z)
    box = tracker.network.box_head.cal_bbox(hann2d((16, 16)) * out["score_map"], out["size_map"], out["offset_map"])
    expected = clip_box(map_box_back((box[0] * 256 / rf).tolist(), gt[0].tolist(), 256, rf), H, W, margin=10)

    boxes = [gt[0].tolist()]
    for i, f in enumerate(frames[1:]):
        boxes.append(tracker.track(imread_rgb(str(f)))["target_bbox"])
        if i == 0:
            assert boxes[-1] == pytest.approx(expected, abs=1e-4)
    result = tmp_path / "Crossing.txt"
    from lib.test.utils.video import write_boxes

    write_boxes(str(result), boxes)  # the runner's format: ints, tab-separated
    arr = np.loadtxt(result, delimiter="\t")
    assert arr.shape == (len(frames), 4) and arr.dtype == np.float64
    assert np.array_equal(arr, np.asarray(boxes).astype(int))
    assert (arr[:, :2] >= 0).all() and (arr[:, 2:] > 0).all()
    assert (arr[:, 0] + arr[:, 2] <= W).all() and (arr[:, 1] + arr[:, 3] <= H).all()


def test_tracker_debug_views(tracker, tmp_path):
    from lib.test.utils.debug import make_debug_sink

    frames, gt = _otb_crossing(2)
    tracker.debug_sink = make_debug_sink(1, "ostrack", CE_CONFIG, "Crossing", out_dir=tmp_path, use_visdom=False)
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
    for view in ("Tracking", "search_region", "template", "score_map", "score_map_hann", "masked_search"):
        assert any(view in name for name in written), f"no '{view}' view among {sorted(written)}"
    masked = next(p for p in tmp_path.rglob("*masked_search*.png"))
    assert cv2.imread(str(masked)).shape == (256, (256 + 8) * 4, 3)  # search + one copy per CE stage


def test_template_box_is_normalised_by_the_crop_side():
    from lib.utils.crop import transform_image_to_crop

    box = torch.tensor([100.0, 60.0, 50.0, 50.0])  # template crop side 2 * 50 = 100 px, resized to 128
    out = transform_image_to_crop(box, box, 128 / 100, torch.tensor([128.0, 128.0]), normalize=True)
    torch.testing.assert_close(out, torch.tensor([31.5 / 128, 31.5 / 128, 0.5, 0.5]))


def test_tracker_rejects_bad_init_boxes(tracker):
    image = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(ValueError, match="zero or negative size"):
        tracker.initialize(image, {"init_bbox": [10, 10, 0, 20]})
    with pytest.raises(ValueError, match="zero or negative size"):
        tracker.initialize(image, {"init_bbox": [10, 10, 20, -5]})
    with pytest.raises(ValueError, match="outside the 320x240 image"):
        tracker.initialize(image, {"init_bbox": [400, 10, 20, 20]})


def test_unreadable_frame_is_named(tracker, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "00000.png"), np.full((240, 320, 3), 90, np.uint8))
    (folder / "00001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FrameReadError, match="00001.jpg"):
        run_video_demo(tracker, open_frame_source(str(folder)), [100, 80, 60, 50], progress=False)


# -- video demo ----------------------------------------------------------------------------------
def test_video_demo_on_video_file(recipe_checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = need_shared("data", "videos", "bag.avi")
    out_video, out_boxes = tmp_path / "bag_out.mp4", tmp_path / "bag.txt"
    boxes = _load_script("video_demo").main(
        ["ostrack", CE_CONFIG, str(video), "--init_box", "292", "128", "146", "133", "--checkpoint",
         str(recipe_checkpoint[0]), "--save_video", str(out_video), "--save_boxes", str(out_boxes),
         "--max_frames", "4"])
    arr = np.loadtxt(out_boxes, delimiter="\t")
    assert arr.shape == (4, 4) and arr[0].tolist() == [292, 128, 146, 133] and len(boxes) == 4
    cap = cv2.VideoCapture(str(out_video))
    n, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, size = n + 1, frame.shape
    assert n == 4 and size == (360, 480, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag.txt", "bag_out.mp4"]


def test_video_demo_on_image_folder(recipe_checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    folder = need_shared("data", "videos", "tennis_frames")
    out_video = tmp_path / "tennis.avi"
    boxes = _load_script("video_demo").main(
        ["ostrack", CE_CONFIG, str(folder), "--init_box", "300", "110", "180", "250", "--checkpoint",
         str(recipe_checkpoint[0]), "--save_video", str(out_video), "--max_frames", "3"])
    assert len(boxes) == 3 and all(0 <= b[0] and b[0] + b[2] <= 854 and b[1] + b[3] <= 480 for b in boxes)
    cap = cv2.VideoCapture(str(out_video))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3


def test_video_demo_debug_views_headless(recipe_checkpoint, tmp_path, monkeypatch):
    """--debug 1 without a display and without a visdom server: the run goes on and the views are PNG
    files under <save_dir>/debug/<tracker>/<config>/<source name>/, said once."""
    from lib.test.utils.debug import _WARNED, DebugViewWarning

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for field, value in (("SAVE_DIR", tmp_path / "out"), ("RESULTS_PATH", tmp_path / "res"),
                         ("RESULT_PLOT_PATH", tmp_path / "plots")):
        monkeypatch.setenv(f"TRACKING_{field}", str(value))
    port = free_port()  # nothing listens there
    video = need_shared("data", "videos", "bag.avi")
    _WARNED.clear()
    with pytest.warns(DebugViewWarning, match=f"127.0.0.1:{port}.*PNG files") as caught:
        boxes = _load_script("video_demo").main(
            ["ostrack", CE_CONFIG, str(video), "--init_box", "292", "128", "146", "133", "--checkpoint",
             str(recipe_checkpoint[0]), "--max_frames", "3", "--debug", "1", "--visdom_port", str(port)])
    assert len(boxes) == 3 and sum(issubclass(w.category, DebugViewWarning) for w in caught) == 1
    seq_dir = tmp_path / "out" / "debug" / "ostrack" / CE_CONFIG / "bag"
    written = {p.name for p in seq_dir.iterdir()}
    for frame in (1, 2):
        for view in ("Tracking", "template", "search_region", "score_map", "score_map_hann", "masked_search"):
            assert f"{frame:05d}_{view}.png" in written, sorted(written)
    assert cv2.imread(str(seq_dir / "00002_Tracking.png")).shape == (360, 480, 3)


def test_video_demo_headless_without_box_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = need_shared("data", "videos", "bag.avi")
    with pytest.raises(SystemExit) as exc:
        _load_script("video_demo").main(["ostrack", CE_CONFIG, str(video)])
    assert exc.value.code == 2 and "--init_box" in capsys.readouterr().err


# -- profiler ------------------------------------------------------------------------------------
def test_profiler_prints_the_figures(capsys):
    seq = need_shared("data", "otb", "Crossing")
    stats = _load_script("profile_model").main(
        ["--script", "ostrack", "--config", CE_CONFIG, "--warmup", "0", "--iters", "1", "--frames", "3",
         "--sequence", str(seq)])
    text = capsys.readouterr().out
    assert "parameters: 92,518,533" in text  # the official parameter count (reference keys file)
    assert "MACs thop: 21.5" in text
    assert "model forward latency: median" in text and "tracker end-to-end" in text
    assert "torch: " + torch.__version__ in text and "precision: fp32" in text and "threads: " in text
    assert len(stats.times_ms) == 1 and stats.times_ms[0] > 0
