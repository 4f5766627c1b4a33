"""SparseTT training: dense-box targets, negative pairs, the pair sampler and filter, the random crop, the
focal and "+1" IoU losses on hand-computed cases, the actor's weighted sum, AdamW groups and the multi-stage
schedule, and the tiny config learning on real frames (checkpoints usable by the tracker)."""

import math
import os
import random

import numpy as np
import pytest
import torch

from lib.config import load_config
from lib.models import build_network
from lib.models.sparsett.head import anchor_point_grid
from lib.train.actors import get_recipe
from lib.train.actors.sparsett import (MultiStageLR, SparseTTActor, basemodel_param_groups, build_sparsett_objective,
                                       build_sparsett_optimizer, check_crop_sizes)
from lib.train.data.densebox_target import make_densebox_target, relabel_negative_pair, score_offset
from lib.train.data.pair_crop import random_crop_track_pair
from lib.train.data.pair_processing import DenseboxPairProcessing
from lib.train.data.pair_sampler import TrackPairFilter, TrackPairSampler, pair_frame_ids
from lib.train.dataset import Got10k
from lib.train.losses import IoULoss, SigmoidFocalLoss, paired_iou_plus1
from lib.train.run_training import init_seeds, make_settings
from lib.train.train_script import build_trainer
from lib.utils.checkpoint import safe_load
from lib.utils.image import imread_rgb
from tests.conftest import need_shared
from tests.train_helpers import MemoryDataset, build_layout, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(need_shared("data"), tmp_path_factory.mktemp("sparsett_layout"))


def _points(cls: torch.Tensor, x_size=289, score_size=19, stride=16):
    """Set of (x, y) crop pixels of the points whose label is 1."""
    grid = anchor_point_grid(score_size, score_offset(x_size, score_size, stride), stride)[0]
    return {(int(x), int(y)) for (x, y), c in zip(grid.tolist(), cls[:, 0].tolist()) if c == 1}


# -- targets ---------------------------------------------------------------------------------------
def test_positive_points_are_exactly_the_grid_points_strictly_inside_the_box():
    assert score_offset(289, 19, 16) == 0 and score_offset(145, 10, 16) == 0 and score_offset(303, 17, 8) == 87
    with pytest.raises(ValueError, match="does not fit"):
        score_offset(127, 19, 16)
    # grid points at 0, 16, 32, ...: x strictly in (40.5, 100) -> 48..96, y strictly in (20, 64) -> 32, 48
    box = [40.5, 20.0, 100.0, 64.0]
    cls, ctr, box_gt = make_densebox_target(box, 289, 19, 16)
    assert cls.shape == (361, 1) and ctr.shape == (361, 1) and box_gt.shape == (361, 4)
    expected = {(x, y) for x in (48, 64, 80, 96) for y in (32, 48)}
    assert _points(cls) == expected
    pos = cls[:, 0] == 1
    assert torch.equal(box_gt[pos], torch.tensor([box] * 8)) and not box_gt[~pos].any() and not ctr[~pos].any()
    # corners on grid points: the border points are not inside
    cls, ctr, _ = make_densebox_target([32, 32, 96, 96], 289, 19, 16)
    assert _points(cls) == {(x, y) for x in (48, 64, 80) for y in (48, 64, 80)}
    index = 3 * 19 + 4  # point (x 64, y 48): l = r = 32, t = 16, b = 48
    assert ctr[index, 0].item() == pytest.approx(math.sqrt(32 * 16 / (32 * 48)), rel=1e-5)
    assert ctr[4 * 19 + 4, 0].item() == pytest.approx(1.0, rel=1e-5)  # the box centre (64, 64)
    # the tiny config's 10x10 map on a 145-pixel crop
    cls, _, _ = make_densebox_target([10, 10, 40.0, 20.0], 145, 10, 16)
    assert _points(cls, 145, 10, 16) == {(16, 16), (32, 16)}


def test_negative_pairs_are_relabelled_inside_zero_outside_ignored():
    cls, _, _ = make_densebox_target([40.5, 20.0, 100.0, 64.0], 289, 19, 16)
    neg = relabel_negative_pair(cls)
    assert set(neg[:, 0].tolist()) == {-1.0, 0.0}
    assert torch.equal(neg == 0, cls == 1) and int((neg == -1).sum()) == 361 - 8
    # through the processing: a negative pair has no positive point and its 0s are the points in the box
    rng = np.random.RandomState(0)
    frame = np.full((240, 320, 3), 90, np.uint8)
    proc = DenseboxPairProcessing(rng=rng)
    data = {"template_image": frame, "template_box": torch.tensor([100.0, 60, 50, 40]), "search_image": frame,
            "search_box": torch.tensor([120.0, 80, 60, 30]), "is_negative_pair": True}
    out = proc(data)
    assert int(out["is_negative_pair"]) == 1 and not (out["cls_gt"] == 1).any()
    labels, _, _ = make_densebox_target(out["search_anno"], 289, 19, 16)
    assert torch.equal(out["cls_gt"] == 0, labels == 1) and (out["cls_gt"] == 0).any()
    loss, iou = IoULoss()(torch.rand(1, 361, 4) * 100, out["box_gt"][None], out["cls_gt"][None])
    assert loss.item() == 0.0 and iou.item() == 0.0


# -- sampler and filter -----------------------------------------------------------------------------
def test_pair_frame_ids_follow_the_official_window():
    rng = random.Random(0)
    diffs = [b - a for a, b in (pair_frame_ids(400, 100, rng) for _ in range(4000))]
    # at most max_diff frames before the template; as the official code is written, any frame after it
    assert min(diffs) >= -100 and min(diffs) <= -95 and max(diffs) > 200 and 0 in diffs
    assert pair_frame_ids(1, 100, rng) == (0, 0)
    with pytest.raises(ValueError, match="at least one frame"):
        pair_frame_ids(0, 100, rng)


def test_pair_filter_rejects_extreme_aspect_ratios_and_keeps_the_official_area_quirk():
    f = TrackPairFilter(min_area_rate=0.001, max_area_rate=0.6, max_ratio=10)
    hw = (100, 200)
    assert not f(hw, [0, 0, 10, 99])       # h / w = 9.9
    assert not f(hw, [0, 0, 10, 100])      # h / (w + 1e-6) just below 10
    assert f(hw, [0, 0, 10, 101])          # h / w = 10.1
    assert f(hw, [0, 0, 100, 10])          # w / h = 10
    assert f(hw, [0, 0, 0, 20]) and f(hw, [0, 0, 20, 0]) and f(hw, [0, 0, 0, 0])
    # the official area rule has no effect (a tuple inside all()); CHECK_AREA applies it
    assert not f(hw, [0, 0, 180, 90]) and not f(hw, [0, 0, 2, 2])
    strict = TrackPairFilter(0.001, 0.6, 10, check_area=True)
    assert strict(hw, [0, 0, 180, 90]) and strict(hw, [0, 0, 2, 2]) and not strict(hw, [0, 0, 50, 50])


def test_sampler_draws_negative_pairs_from_two_draws_and_positive_pairs_from_one_sequence():
    ds = MemoryDataset([[1] * 30, [1] * 250, [1] * 5], name="a")
    other = MemoryDataset([[1] * 40], name="b")
    sampler = TrackPairSampler([ds, other], [1, 1], samples_per_epoch=10, max_diff=100, negative_pair_ratio=0.33,
                               pair_filter=TrackPairFilter(), sample_seed=3)
    negatives = 0
    for i in range(600):
        ds.requests.clear()
        other.requests.clear()
        data = sampler[i]
        requests = ds.requests + other.requests
        if data["is_negative_pair"]:
            negatives += 1
            assert len(requests) == 2 and all(len(ids) == 1 for _, ids in requests)
        else:
            assert len(requests) == 1
            (seq, (a, b)), = requests
            assert b >= a - 100 and data["template_image"][0, 0, 0] == (seq * 10 + a) % 255
        assert data["template_box"].dtype == torch.float32 and data["search_box"].shape == (4,)
    assert 0.28 < negatives / 600 < 0.38
    # every pair rejected by the filter: a clear error after the bounded retries
    from lib.train.data.sampler import SamplingError

    reject_all = TrackPairSampler([ds], None, 4, pair_filter=TrackPairFilter(max_ratio=0.5), max_retries=5)
    with pytest.raises(SamplingError, match="5 attempts"):
        reject_all[0]


# -- crop ------------------------------------------------------------------------------------------
def test_random_crop_puts_the_box_on_the_object_and_pads_with_the_template_mean():
    frame = imread_rgb(str(need_shared("data", "otb", "Crossing", "img", "0001.jpg")))
    box = [4.0, 4.0, 30.0, 50.0]  # xywh at the top-left corner: every crop reaches past the frame there
    painted = frame.copy()
    painted[4:54, 4:34] = (255, 0, 255)
    mean = np.mean(painted, axis=(0, 1)).astype(int)
    magenta = np.array([255, 0, 255])
    rng = np.random.RandomState(5)
    s_z = math.sqrt((30 + 40) * (50 + 40))
    side = 289 / ((289 / 127) * s_z) * 30  # unaugmented width of the box in the search crop
    sides = []
    for _ in range(6):
        crop_z, bbox_z, crop_x, bbox_x = random_crop_track_pair(painted, box, painted, box, rng=rng)
        assert crop_z.shape == (127, 127, 3) and crop_x.shape == (289, 289, 3)
        # template: centred, at scale 127 / s_z, no augmentation
        w, h = 30 * 127 / s_z, 50 * 127 / s_z
        assert bbox_z.tolist() == pytest.approx([63 - (w - 1) / 2, 63 - (h - 1) / 2, 63 + (w - 1) / 2,
                                                 63 + (h - 1) / 2], abs=1e-3)
        for crop, (x0, y0, x1, y1) in ((crop_z, bbox_z), (crop_x, bbox_x)):
            inner = crop[math.ceil(y0 + 1):int(y1 - 1), math.ceil(x0 + 1):int(x1 - 1)]
            assert inner.size and (inner == magenta).all()
            for row in (int(y0) - 3, int(y1) + 4):  # 3 crop pixels (about 2 frame pixels) above / below
                if 0 <= row < crop.shape[0]:
                    assert not (crop[row, int(x0):int(x1)] == magenta).all(axis=1).any()
        # the search box stays in the crop, scaled within [1/1.3, 1.3]
        assert 0 <= bbox_x.min() and bbox_x.max() <= 288
        sides.append(float(bbox_x[2] - bbox_x[0] + 1) / side)
        # padding = the template frame's per-channel mean, truncated to int
        assert (crop_z[0, 0] == mean).all() and (crop_x[0, 0] == mean).all()
    assert all(1 / 1.3 - 1e-4 <= r <= 1.3 + 1e-4 for r in sides) and max(sides) - min(sides) > 0.05


# -- losses ----------------------------------------------------------------------------------------
def test_sigmoid_focal_loss_on_a_hand_computed_case():
    logits = torch.tensor([[[0.0], [2.0], [-1.0], [0.5]]])
    labels = torch.tensor([[[1.0], [0.0], [-1.0], [0.0]]])
    # label 1, p = 0.5: 0.75 * 0.5^2 * log 2; label 0, logit 2: p = s(2), 0.25 * p^2 * -log(1 - p); ignored; ...
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    pos = 0.75 * 0.25 * math.log(2)
    neg = sum(0.25 * s(v) ** 2 * -math.log(1 - s(v)) for v in (2.0, 0.5))
    loss = SigmoidFocalLoss(alpha=0.75, gamma=2.0)(logits, labels)
    assert loss.item() == pytest.approx(pos + neg, rel=1e-6)
    # two positives -> divided by 2
    labels2 = torch.tensor([[[1.0], [1.0], [-1.0], [0.0]]])
    pos2 = 0.75 * (1 - s(2.0)) ** 2 * -math.log(s(2.0))
    neg2 = 0.25 * s(0.5) ** 2 * -math.log(1 - s(0.5))
    assert SigmoidFocalLoss(0.75, 2.0)(logits, labels2).item() == pytest.approx((pos + pos2 + neg2) / 2, rel=1e-6)
    # no positive -> divided by 1
    labels3 = torch.tensor([[[0.0], [0.0], [-1.0], [-1.0]]])
    expected3 = 0.25 * 0.25 * math.log(2) + 0.25 * s(2.0) ** 2 * -math.log(1 - s(2.0))
    assert SigmoidFocalLoss(0.75, 2.0)(logits, labels3).item() == pytest.approx(expected3, rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        SigmoidFocalLoss()(logits, labels[:, :3])


def test_iou_loss_uses_the_plus_one_convention_and_averages_over_positives():
    pred = torch.tensor([[[0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 9.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 1.0, 1.0]]])
    gt = torch.tensor([[[0.0, 0.0, 4.0, 9.0], [0.0, 0.0, 9.0, 9.0], [50.0, 50.0, 60.0, 60.0], [0.0, 0.0, 1.0, 1.0]]])
    labels = torch.tensor([[[1.0], [1.0], [0.0], [-1.0]]])
    # 10x10 vs 5x10 pixels: IoU 0.5; identical: IoU 1; the background and the ignored point do not count
    assert paired_iou_plus1(pred, gt)[0, :2].tolist() == pytest.approx([0.5, 1.0])
    loss, iou = IoULoss()(pred, gt, labels)
    assert loss.item() == pytest.approx(math.log(2) / 2, rel=1e-6) and iou.item() == pytest.approx(0.75)
    # disjoint boxes: IoU 0 -> -log(tiny) (official SafeLog), finite
    far = torch.tensor([[[100.0, 100.0, 110.0, 110.0]]])
    loss, _ = IoULoss()(far, gt[:, :1], torch.ones(1, 1, 1))
    assert loss.item() == pytest.approx(-math.log(torch.finfo(torch.float32).tiny), rel=1e-6)


def test_actor_sums_the_official_weighted_losses():
    cfg = load_config("sparsett", "sparsett_swin_got10k")
    objective, weights = build_sparsett_objective(cfg)
    assert weights == {"cls_fc": 1.4, "reg_fc": 0.6, "cls_conv": 0.5, "reg_conv": 2.0}
    assert objective["cls_fc"].alpha == 0.75 and objective["cls_conv"].gamma == 2.0
    g = torch.Generator().manual_seed(0)
    cls_gt, _, box_gt = make_densebox_target([40.5, 20.0, 100.0, 64.0], 289, 19, 16)
    data = {"cls_gt": cls_gt[None].repeat(2, 1, 1), "box_gt": box_gt[None].repeat(2, 1, 1)}
    anchor = anchor_point_grid(19, 0, 16)
    pred = {"cls_fc": torch.randn(2, 361, 1, generator=g), "cls_conv": torch.randn(2, 361, 1, generator=g),
            "bbox_fc": torch.cat([anchor - 20, anchor + 20], 2).repeat(2, 1, 1),
            "bbox_conv": torch.cat([anchor - 30, anchor + 10], 2).repeat(2, 1, 1)}
    actor = SparseTTActor(net=None, objective=objective, loss_weight=weights, cfg=cfg)
    loss, stats = actor.compute_losses(pred, data)
    focal = SigmoidFocalLoss(0.75, 2.0)
    expected = (1.4 * focal(pred["cls_fc"], data["cls_gt"]) + 0.5 * focal(pred["cls_conv"], data["cls_gt"])
                + 0.6 * IoULoss()(pred["bbox_fc"], data["box_gt"], data["cls_gt"])[0]
                + 2.0 * IoULoss()(pred["bbox_conv"], data["box_gt"], data["cls_gt"])[0])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    parts = sum(stats[f"Loss/{k}"] for k in ("cls_fc", "reg_fc", "cls_conv", "reg_conv"))
    assert stats["Loss/total"] == pytest.approx(parts, rel=1e-6) and 0 < stats["IoU/conv"] < 1
    pred["cls_fc"][0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="diverged"):
        actor.compute_losses(pred, data)


# -- optimizer and schedule -------------------------------------------------------------------------
def test_adamw_groups_backbone_at_a_tenth_and_the_multistage_epoch_boundaries(tmp_path):
    official = load_config("sparsett", "sparsett_swin_got10k")
    cfg = load_config("sparsett", "tiny_cpu")
    for key in ("LR", "WEIGHT_DECAY", "LR_STAGES", "EPOCH", "OPTIMIZER", "BACKBONE_MULTIPLIER", "BACKBONE_REGEX"):
        cfg.TRAIN[key] = official.TRAIN[key]
    net = build_network("sparsett", cfg)
    optimizer, scheduler = build_sparsett_optimizer(net, cfg)
    assert isinstance(optimizer, torch.optim.AdamW) and isinstance(scheduler, MultiStageLR)
    backbone, other = optimizer.param_groups
    names = {id(p): n for n, p in net.named_parameters()}
    assert {names[id(p)].split(".")[0] for p in backbone["params"]} == {"basemodel"}
    assert "basemodel" not in {names[id(p)].split(".")[0] for p in other["params"]}
    assert len(backbone["params"]) + len(other["params"]) == len(names)
    assert backbone["lr"] == pytest.approx(1e-5) and other["lr"] == pytest.approx(1e-4)
    assert backbone["weight_decay"] == other["weight_decay"] == 1e-4 and other["betas"] == (0.9, 0.999)
    # trainer epoch k (1-based) runs at official epoch k - 1: 1e-4 for 0-9, 1e-5 for 10-14, 1e-6 for 15-19
    lrs = []
    for _ in range(20):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    expected = [1e-4] * 10 + [1e-5] * 5 + [1e-6] * 5
    assert [o for _, o in lrs] == pytest.approx(expected) and [b for b, _ in lrs] == pytest.approx(
        [0.1 * e for e in expected])
    # the scheduler state is plain data and resumes at the same stage
    torch.save(scheduler.state_dict(), tmp_path / "sched.pt")
    opt2, sched2 = build_sparsett_optimizer(net, cfg)
    sched2.load_state_dict(torch.load(tmp_path / "sched.pt", weights_only=True))
    assert sched2.last_epoch == 20 and sched2.stage_lr(12) == 1e-5 and sched2.stage_lr(25) == 1e-6
    cfg.TRAIN.EPOCH = 25
    with pytest.raises(ValueError, match="LR_STAGES"):
        build_sparsett_optimizer(net, cfg)
    cfg.TRAIN.EPOCH, cfg.TRAIN.OPTIMIZER = 20, "SGD"
    with pytest.raises(ValueError, match="AdamW"):
        build_sparsett_optimizer(net, cfg)
    with pytest.raises(ValueError, match="increasing"):
        MultiStageLR(optimizer, [[10, 1e-4], [5, 1e-5]], 1e-4)
    groups = basemodel_param_groups(net, cfg)
    assert [g["name"] for g in groups] == ["backbone", "other"]


def test_crop_sizes_must_fit_the_network():
    for name in ("sparsett_swin_got10k", "sparsett_swin_fulldata", "tiny_cpu"):
        check_crop_sizes(load_config("sparsett", name))
    cfg = load_config("sparsett", "tiny_cpu")
    cfg.DATA.SEARCH.SIZE = 161
    with pytest.raises(ValueError, match="DATA.SEARCH.SIZE 161 != MODEL.HEAD.X_SIZE 145.*F_X_SIZE is 10"):
        check_crop_sizes(cfg)
    recipe = get_recipe("sparsett")
    assert recipe.actor_cls is SparseTTActor and recipe.build_optimizer is build_sparsett_optimizer
    assert recipe.checkpoint_epochs(3, 20)


# -- real frames ------------------------------------------------------------------------------------
def test_real_pairs_from_the_training_layout(layout):
    ds = Got10k(layout["got"], split=None)
    proc = DenseboxPairProcessing(63, 145, 10, 16, rng=np.random.RandomState(2))
    sampler = TrackPairSampler([ds], None, 8, negative_pair_ratio=0.5, processing=proc,
                               pair_filter=TrackPairFilter(), sample_seed=4)
    kinds = set()
    for i in range(8):
        d = sampler[i]
        assert d["template_images"].shape == (3, 63, 63) and d["search_images"].shape == (3, 145, 145)
        # normalised with the ImageNet mean/std on 0..255 pixels, RGB
        assert -2.2 < float(d["search_images"].min()) and float(d["search_images"].max()) < 2.7
        neg = bool(d["is_negative_pair"])
        kinds.add(neg)
        labels, _, box = make_densebox_target(d["search_anno"], 145, 10, 16)
        assert torch.equal(d["cls_gt"], relabel_negative_pair(labels) if neg else labels)
        assert torch.equal(d["box_gt"], box)
    assert kinds == {True, False}


def test_tiny_sparsett_learns_on_real_frames_and_its_checkpoints_serve_the_tracker(layout, tmp_path):
    """Four epochs of the same three batches of four pairs (fixed per-index sample seeds, the epoch left
    out), learning rate 1e-3: the epoch loss falls every epoch."""
    cfg = load_config("sparsett", "tiny_cpu")
    cfg.TRAIN.EPOCH, cfg.TRAIN.BATCH_SIZE, cfg.DATA.SAMPLE_PER_EPOCH, cfg.TRAIN.NUM_WORKER = 4, 4, 12, 0
    cfg.TRAIN.LR, cfg.TRAIN.LR_STAGES = 1e-3, [[3, 1e-3], [20, 1e-4]]
    init_seeds(1)
    env = layout["env"].replace(tensorboard_dir=str(tmp_path / "tb"))
    settings = make_settings("sparsett", "tiny_cpu", str(tmp_path / "out"), env=env, seed=1, num_workers=0)
    settings.sample_seed, settings.shuffle, settings.console, settings.progress_bar = 7, False, False, False
    trainer, _ = build_trainer(settings, cfg=cfg)
    trainer.loaders[0].dataset.set_epoch = lambda epoch: None  # the same pairs every epoch
    trainer.train(4)
    stats = trainer.stats["train"]
    losses = stats["Loss/total"].history
    print("SparseTT tiny_cpu epoch losses:", [round(v, 3) for v in losses],
          "IoU/conv:", [round(v, 3) for v in stats["IoU/conv"].history])
    assert len(losses) == 4 and losses == sorted(losses, reverse=True) and losses[-1] < 0.7 * losses[0], losses
    assert stats["LearningRate/group1"].history[-1] == pytest.approx(1e-4)  # epoch 4 = stage epoch 3
    folder = tmp_path / "out/checkpoints/train/sparsett/tiny_cpu"
    assert sorted(os.listdir(folder)) == [f"SiamTrack_ep{e:04d}.pth.tar" for e in (1, 2, 3, 4)]
    ckpt = safe_load(str(folder / "SiamTrack_ep0004.pth.tar"))
    assert ckpt["net_type"] == "SiamTrack" and ckpt["actor_type"] == "SparseTTActor" and ckpt["epoch"] == 4
    assert {k.split(".")[0] for k in ckpt["net"]} == {"basemodel", "neck", "head", "feat_adjuster_z",
                                                      "feat_adjuster_x"}
    # resume from epoch 2: network, optimizer and scheduler stage restored
    resumed, _ = build_trainer(settings, cfg=cfg)
    assert resumed.load_checkpoint(2)
    assert resumed.epoch == 2 and [g["lr"] for g in resumed.optimizer.param_groups] == pytest.approx([1e-4, 1e-3])
    # the tracker loads the checkpoint (strictly) and tracks real frames with the tiny crops
    from lib.test.tracker import get_tracker_class
    from lib.test.tracker.base import TrackerParams

    seq = need_shared("data", "otb", "Crossing")
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter="\t")
    params = TrackerParams.create("sparsett", "tiny_cpu", checkpoint=str(folder / "SiamTrack_ep0004.pth.tar"),
                                  device="cpu")
    tracker = get_tracker_class("sparsett")(params, "otb")
    for k, v in tracker.network.state_dict().items():
        assert torch.equal(v, ckpt["net"][k]), k
    tracker.initialize(imread_rgb(str(seq / "img/0001.jpg")), {"init_bbox": gt[0].tolist()})
    out = tracker.track(imread_rgb(str(seq / "img/0002.jpg")))
    assert all(math.isfinite(v) for v in out["target_bbox"]) and 0 < out["best_score"] <= 1
