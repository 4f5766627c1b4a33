"""STARK: configs, official state_dict layout of every config, mmtracking checkpoints, trackers on a
real sequence."""

import json

import numpy as np
import pytest
import torch

from lib.config import load_config, list_configs
from lib.models import build_network, get_network_spec
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams
from lib.test.tracker.stark_st import update_intervals_for
from lib.utils.checkpoint import CheckpointError
from tests.conftest import need_shared
from tests.parity_utils import fill_stark_recipe

CONFIGS = {
    "stark_s": ["baseline", "baseline_got10k_only"],
    "stark_st1": ["baseline", "baseline_R101", "baseline_R101_got10k_only", "baseline_got10k_only"],
    "stark_st2": ["baseline", "baseline_R101", "baseline_R101_got10k_only", "baseline_got10k_only"],
}
ALL = [(s, c) for s, names in CONFIGS.items() for c in names]


# -- configs ----------------------------------------------------------------------------------------
def test_every_official_config_is_shipped():
    # besides the official configs only the small CPU training config (tests, demo) is shipped
    for script, names in CONFIGS.items():
        assert sorted(set(list_configs(script)) - {"tiny_cpu"}) == sorted(names)


def test_config_values_and_update_interval_fallbacks():
    s50 = load_config("stark_s", "baseline")
    assert s50.DATA.MAX_SAMPLE_INTERVAL == 200 and s50.TEST.EPOCH == 500 and s50.TRAIN.SCHEDULER.DECAY_RATE == 0.1
    assert s50.DATA.TRAIN.DATASETS_NAME == ["LASOT", "GOT10K_vottrain", "COCO17", "TRACKINGNET"]
    assert load_config("stark_s", "baseline_got10k_only").DATA.TRAIN.DATASETS_NAME == ["GOT10K_train_full"]

    st1 = load_config("stark_st1", "baseline_R101")
    assert "TEST" not in st1 and "TRAIN_CLS" not in st1.TRAIN
    assert st1.MODEL.BACKBONE.TYPE == "resnet101" and st1.MODEL.NLAYER_HEAD == 3 and st1.TRAIN.EPOCH == 500

    st50 = load_config("stark_st2", "baseline")
    assert st50.TRAIN.TRAIN_CLS and st50.TRAIN.EPOCH == 50 and st50.TRAIN.LR_DROP_EPOCH == 40
    assert st50.TRAIN.GIOU_WEIGHT == 2.0  # not in the stage-2 yaml: config.py default
    assert st50.TEST.UPDATE_INTERVALS == {"LASOT": [200], "GOT10K_TEST": [200], "TRACKINGNET": [25],
                                          "VOT20": [10], "VOT20LT": [200]}
    st101 = load_config("stark_st2", "baseline_R101")
    assert st101.TEST.UPDATE_INTERVALS.VOT20LT == [100] and st101.MODEL.BACKBONE.TYPE == "resnet101"
    got = load_config("stark_st2", "baseline_R101_got10k_only")
    assert all(v == [200] for v in got.TEST.UPDATE_INTERVALS.values())  # no yaml entry: config.py defaults

    assert update_intervals_for(st50, "trackingnet") == [25]
    assert update_intervals_for(st50, "vot20") == [10]
    assert update_intervals_for(st101, "vot20lt") == [100]
    assert update_intervals_for(st50, "otb") == [200]  # not listed: DATA.MAX_SAMPLE_INTERVAL
    assert update_intervals_for(st50, None) == [200]
    st50.DATA.MAX_SAMPLE_INTERVAL = [0]
    with pytest.raises(ValueError, match="DATA.MAX_SAMPLE_INTERVAL"):
        update_intervals_for(st50, "uav")


# -- networks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("script,config", ALL)
def test_state_dict_keys_and_shapes_match_official(reference, script, config):
    keys = json.loads((reference / "keys" / f"{script}__{config}.json").read_text())
    cfg = load_config(script, config)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        net = get_network_spec(script).builder(cfg)
    assert type(net).__name__ == keys["model_class"] == get_network_spec(script).net_type
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert got == keys["state_dict"]
    assert list(got) == list(keys["state_dict"])  # same order as the official model
    assert sum(p.numel() for p in net.parameters()) == keys["num_parameters"]
    # conv1 and layer1 are frozen at build, as in the official BackboneBase
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == keys["num_trainable_parameters_at_build"]


def test_training_build_loads_imagenet_backbone_or_warns(tmp_path, monkeypatch):
    import torchvision

    from lib.models.backbones.resnet import build_backbone

    cfg = load_config("stark_s", "baseline")
    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(tmp_path))
    with pytest.warns(UserWarning, match="resnet50-19c8e357.pth"):
        build_backbone(cfg, training=True)
    # a torchvision ImageNet file: full ResNet-50 (layer4, fc) with BatchNorm statistics
    imagenet = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(imagenet, tmp_path / "resnet50-19c8e357.pth")
    joiner = build_backbone(cfg, training=True)
    body = joiner[0].body.state_dict()
    assert set(body) == {k for k in imagenet if not k.startswith(("layer4.", "fc.")) and "num_batches" not in k}
    for key, value in body.items():
        assert torch.equal(value, imagenet[key]), key
    frozen = {n for n, p in joiner.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in joiner.named_parameters() if ".layer2." not in n and ".layer3." not in n}
    assert "0.body.conv1.weight" in frozen and "0.body.layer3.0.conv1.weight" not in frozen


def test_stark_s_forward_shapes():
    net = build_network("stark_s", "baseline")
    fill_stark_recipe(net)
    from lib.utils.merge import merge_template_search
    from lib.utils.misc import NestedTensor

    gen = torch.Generator().manual_seed(1)
    z = NestedTensor(torch.randn(2, 3, 128, 128, generator=gen), torch.zeros(2, 128, 128, dtype=torch.bool))
    mask = torch.zeros(2, 320, 320, dtype=torch.bool)
    mask[:, :, 300:] = True  # padded right border of the search region
    x = NestedTensor(torch.randn(2, 3, 320, 320, generator=gen), mask)
    with torch.no_grad():
        z_dict, x_dict = net.forward_backbone(z), net.forward_backbone(x)
        assert x_dict["feat"].shape == (400, 2, 256) and z_dict["pos"].shape == (64, 2, 256)
        assert x_dict["mask"].view(2, 20, 20)[:, :, 19].all() and not x_dict["mask"].view(2, 20, 20)[:, :, :18].any()
        out, coord, embed = net.forward_transformer(merge_template_search([z_dict, x_dict]))
    assert out["pred_boxes"].shape == (2, 1, 4) and embed.shape == (1, 2, 1, 256)
    assert torch.isfinite(out["pred_boxes"]).all()
    # batch entries are independent: the second sample alone gives the same box
    with torch.no_grad():
        z1 = net.forward_backbone(NestedTensor(z.tensors[1:], z.mask[1:]))
        x1 = net.forward_backbone(NestedTensor(x.tensors[1:], x.mask[1:]))
        out1, _, _ = net.forward_transformer(merge_template_search([z1, x1]))
    assert torch.allclose(out1["pred_boxes"][0], out["pred_boxes"][1], rtol=1e-4, atol=1e-5)


# -- mmtracking checkpoints -------------------------------------------------------------------------
def _cli():
    """tracking/convert_checkpoint.py as a module (the scripts folder is not a package)."""
    import importlib.util
    import sys

    from lib.config import PROJECT_ROOT

    tracking_dir = str(PROJECT_ROOT / "tracking")
    if tracking_dir not in sys.path:
        sys.path.insert(0, tracking_dir)
    spec = importlib.util.spec_from_file_location("convert_checkpoint", PROJECT_ROOT / "tracking" / "convert_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _to_mmtracking_layout(official: dict) -> dict:
    """Write an official STARK state_dict in mmtracking's key layout (mmdet ResNet with plain BN,
    ChannelMapper neck, StarkHead with mmcv transformer layers, ConvModule corner towers, ScoreHead)."""
    mm = {}
    for key, value in official.items():
        parts = key.split(".")
        if key.startswith("backbone.0.body."):
            name = "backbone." + key[len("backbone.0.body."):]
            mm[name] = value
            if name.endswith("running_var"):  # mmdet's BatchNorm2d also counts batches
                mm[name[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(7)
        elif parts[0] == "bottleneck":
            mm[f"neck.convs.0.conv.{parts[1]}"] = value
        elif key == "query_embed.weight":
            mm["head.query_embedding.weight"] = value
        elif parts[0] == "transformer" and parts[2] == "layers":
            where, i, module, rest = parts[1], parts[3], parts[4], ".".join(parts[5:])
            base = f"head.transformer.{where}.layers.{i}."
            sub = {"self_attn": "attentions.0.attn.", "multihead_attn": "attentions.1.attn.",
                   "linear1": "ffns.0.layers.0.0.", "linear2": "ffns.0.layers.1.",
                   "norm1": "norms.0.", "norm2": "norms.1.", "norm3": "norms.2."}[module]
            mm[base + sub + rest] = value
        elif key.startswith("transformer.decoder.norm."):
            mm["head.transformer.decoder.post_norm." + parts[-1]] = value
        elif parts[0] == "box_head":
            level, corner = parts[1][4], parts[1][6:]  # conv3_tl -> '3', 'tl'
            if level == "5":
                mm[f"head.bbox_head.{corner}_corner_pred.4.{parts[2]}"] = value
            else:
                part = "conv" if parts[2] == "0" else "bn"
                mm[f"head.bbox_head.{corner}_corner_pred.{int(level) - 1}.{part}.{parts[3]}"] = value
        elif parts[0] == "cls_head":
            mm["head." + key] = value
        else:
            raise AssertionError(f"unexpected official key {key}")
    return mm


@pytest.fixture(scope="module")
def st50_weights():
    net = build_network("stark_st2", "baseline")
    return {k: v.clone() for k, v in fill_stark_recipe(net).items()}


def test_mmtracking_checkpoint_converts_and_loads_directly(tmp_path, st50_weights):
    cli = _cli()

    mm_state = _to_mmtracking_layout(st50_weights)
    assert len(mm_state) > len(st50_weights)  # the backbone BNs carry num_batches_tracked in mmtracking
    mm_file = tmp_path / "stark_st2_r50_50e_lasot.pth"
    torch.save({"meta": {"epoch": 50, "mmtrack_version": "0.14.0", "CLASSES": None}, "state_dict": mm_state}, mm_file)

    out_file = tmp_path / "STARKST_ep0050.pth.tar"
    assert cli.main(["--from", "mmtracking", "--tracker", "stark_st2", str(mm_file), str(out_file)]) == 0
    converted = torch.load(out_file, weights_only=True)  # plain data only
    assert converted["net_type"] == "STARKST" and converted["converted_from"] == "mmtracking"
    assert converted["epoch"] == 50
    assert set(converted["net"]) == set(st50_weights)
    for key, value in st50_weights.items():
        assert torch.equal(converted["net"][key], value), key

    # --checkpoint accepts the mmtracking file itself (renamed on load) and the converted file
    direct = build_network("stark_st2", "baseline", checkpoint=mm_file).state_dict()
    via_file = build_network("stark_st2", "baseline", checkpoint=out_file).state_dict()
    for key, value in st50_weights.items():
        assert torch.equal(direct[key], value) and torch.equal(via_file[key], value), key


def test_mmtracking_conversion_errors(tmp_path, st50_weights, capsys):
    cli = _cli()

    stage1 = {k: v for k, v in _to_mmtracking_layout(st50_weights).items() if not k.startswith("head.cls_head")}
    stage1_file = tmp_path / "stark_st1.pth"
    torch.save({"state_dict": stage1}, stage1_file)
    out = tmp_path / "out.pth.tar"
    with pytest.raises(CheckpointError, match="stage-1"):  # a user error: run_cli prints it, exit status 2
        cli.main(["--from", "mmtracking", "--tracker", "stark_st", str(stage1_file), str(out)])
    assert not out.exists()
    # a stage-1 file has exactly STARK-S's modules
    assert cli.main(["--from", "mmtracking", "--tracker", "stark_s", str(stage1_file), str(out)]) == 0
    assert torch.load(out, weights_only=True)["net_type"] == "STARKS"
    out.unlink()
    with pytest.raises(CheckpointError, match="cls_head"):
        build_network("stark_st2", "baseline", checkpoint=stage1_file)

    official_file = tmp_path / "official.pth.tar"
    torch.save({"net": st50_weights, "net_type": "STARKST"}, official_file)
    with pytest.raises(CheckpointError):
        cli.main(["--from", "mmtracking", "--tracker", "stark_st2", str(official_file), str(out)])

    odd = dict(_to_mmtracking_layout(st50_weights), **{"head.extra_branch.weight": torch.zeros(1)})
    odd_file = tmp_path / "odd.pth"
    torch.save({"state_dict": odd}, odd_file)
    with pytest.raises(CheckpointError, match="head.extra_branch.weight"):
        build_network("stark_st2", "baseline", checkpoint=odd_file)
    with pytest.raises(SystemExit):
        cli.main(["--from", "mmtracking", "--tracker", "ostrack", str(odd_file), str(out)])


# -- trackers on a real sequence ----------------------------------------------------------------------
class _Sink:
    def __init__(self):
        self.views = []

    def register(self, data, mode, level, title, **kwargs):
        self.views.append((mode, title, data))


def _couple(n):
    from lib.utils.image import imread_rgb

    folder = need_shared("data", "otb", "Couple")
    gt = np.loadtxt(folder / "groundtruth_rect.txt")
    return [imread_rgb(str(folder / "img" / f"{i:04d}.jpg")) for i in range(1, n + 1)], gt


def _set_confidence(tracker, logit):
    last = tracker.network.cls_head.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(logit)


def test_stark_st_updates_dynamic_template_at_interval(tmp_path, st50_weights):
    from lib.config import PROJECT_ROOT

    frames, gt = _couple(7)
    ckpt = tmp_path / "STARKST_ep0050.pth.tar"
    torch.save({"net": st50_weights, "net_type": "STARKST"}, ckpt)
    # baseline.yaml with a VOT20 interval of 3 frames, so that a short sequence sees two updates
    text = (PROJECT_ROOT / "experiments" / "stark_st2" / "baseline.yaml").read_text()
    assert "VOT20: [10]" in text
    config = tmp_path / "baseline_interval3.yaml"
    config.write_text(text.replace("VOT20: [10]", "VOT20: [3]"))
    params = TrackerParams.create("stark_st", str(config), checkpoint=str(ckpt), device="cpu", debug=1)
    tracker = get_tracker_class("stark_st")(params, "vot20")
    assert tracker.update_intervals == [3]
    tracker.debug_sink = _Sink()
    H, W = frames[0].shape[:2]

    _set_confidence(tracker, 8.0)  # confidence sigmoid(8) > 0.5 on every frame
    tracker.initialize(frames[0], {"init_bbox": gt[0].tolist()})
    assert len(tracker.z_dict_list) == 2
    assert torch.equal(tracker.z_dict_list[1]["feat"], tracker.z_dict_list[0]["feat"])
    assert tracker.z_dict_list[1]["feat"] is not tracker.z_dict_list[0]["feat"]
    updates = []
    for frame_id, image in enumerate(frames[1:], start=1):
        before = tracker.z_dict_list[1]
        out = tracker.track(image)
        x, y, w, h = out["target_bbox"]
        assert 0 <= x and 0 <= y and x + w <= W + 1e-6 and y + h <= H + 1e-6 and w >= 10 and h >= 10
        assert out["conf_score"] == pytest.approx(torch.sigmoid(torch.tensor(8.0)).item(), rel=1e-6)
        if tracker.z_dict_list[1] is not before:
            updates.append(frame_id)
            # the new template is cropped around the NEW box
            expected, _ = tracker._template_features(image, out["target_bbox"])
            assert torch.allclose(tracker.z_dict_list[1]["feat"], expected["feat"])
    assert updates == [3, 6]
    assert tracker.z_dict_list[0] is tracker.z_dict1  # the first template never changes
    modes = {(m, t) for m, t, _ in tracker.debug_sink.views}
    assert {("Tracking", "Tracking"), ("info_dict", "template_update"), ("lineplot", "confidence"),
            ("image", "dynamic_templates"), ("image", "template"), ("image", "search_region")} <= modes
    info = [d for m, _, d in tracker.debug_sink.views if m == "info_dict"]
    assert [d["updated"] for d in info] == ["-", "-", "1", "-", "-", "1"]
    assert info[-1]["last updates"] == "template 1: frame 6"

    _set_confidence(tracker, -8.0)  # never confident: the dynamic template stays the first one
    tracker.initialize(frames[0], {"init_bbox": gt[0].tolist()})
    for image in frames[1:4]:
        assert tracker.track(image)["conf_score"] < 0.5
    assert torch.equal(tracker.z_dict_list[1]["feat"], tracker.z_dict1["feat"])


def test_stark_s_tracks_real_frames_and_checks_input(tmp_path):
    from lib.utils.crop import sample_target

    frames, gt = _couple(3)
    net = build_network("stark_s", "baseline")
    ckpt = tmp_path / "STARKS_ep0500.pth.tar"
    torch.save({"net": fill_stark_recipe(net), "net_type": "STARKS"}, ckpt)
    params = TrackerParams.create("stark_s", "baseline", checkpoint=str(ckpt), save_all_boxes=True)
    tracker = get_tracker_class("stark_s")(params, "otb")
    with pytest.raises(RuntimeError):
        tracker.track(frames[0])
    with pytest.raises(ValueError):
        tracker.initialize(frames[0], {"init_bbox": [10, 10, 0, 5]})
    init = tracker.initialize(frames[0], {"init_bbox": gt[0].tolist()})
    assert init == {"all_boxes": gt[0].tolist()}
    assert tracker.z_dict1["feat"].shape == (64, 1, 256)
    H, W = frames[0].shape[:2]
    for image in frames[1:]:
        prev = list(tracker.state)
        out = tracker.track(image)
        x, y, w, h = out["target_bbox"]
        assert 0 <= x <= W - 10 and 0 <= y <= H - 10 and 10 <= w and 10 <= h and x + w <= W and y + h <= H
        assert len(out["all_boxes"]) == 4
        # the box is the network's prediction in the search crop around the previous box, mapped back
        _, resize_factor, _ = sample_target(image, prev, 5.0, 320)
        cx, cy = prev[0] + prev[2] / 2, prev[1] + prev[3] / 2
        half = 0.5 * 320 / resize_factor
        assert cx - half - 1e-6 <= x + w / 2 <= cx + half + 1e-6 and cy - half - 1e-6 <= y + h / 2 <= cy + half + 1e-6
