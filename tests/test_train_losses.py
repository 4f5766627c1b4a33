"""OSTrack training objective: heat-map targets (official Gaussian radius), focal loss, candidate-elimination
keep-rate schedule and template mask, the actor's weighted loss, optimizer groups and scheduler."""

import math

import pytest
import torch
import torch.nn.functional as F

from lib.train.actors import backbone_param_groups, get_actor_class, get_recipe, ostrack_checkpoint_epochs
from lib.models.layers.candidate_elimination import adjust_keep_rate, generate_mask_cond
from lib.train.actors.ostrack import OSTrackActor, build_ostrack_objective, ce_keep_rate
from lib.train.base_functions import amp_dtype, get_optimizer_scheduler
from lib.train.data import TensorDict
from lib.train.losses import FocalLoss, gaussian_radius, generate_heatmap
from lib.utils.box_ops import box_cxcywh_to_xyxy, box_xywh_to_xyxy, giou_loss
from tests.train_helpers import StandInOSTrack, small_cfg


def _official_radius(w, h, o=0.7):
    r1 = ((h + w) + math.sqrt((h + w) ** 2 - 4 * w * h * (1 - o) / (1 + o))) / 2
    r2 = (2 * (h + w) + math.sqrt((2 * (h + w)) ** 2 - 16 * (1 - o) * w * h)) / 2
    b3, a3, c3 = -2 * o * (h + w), 4 * o, (o - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def test_gaussian_radius_is_the_official_unnormalised_root():
    for w, h in [(4.0, 2.0), (1.2, 0.7), (10.0, 10.0), (0.3, 5.0)]:
        r = gaussian_radius(torch.tensor([[w, h]]))[0].item()
        assert r == pytest.approx(_official_radius(w, h), rel=1e-5)
    # the unnormalised third root: (b + sqrt(b^2 - 4ac)) / 2, not divided by a = 4 * 0.7
    w = h = 8.0
    b3, a3, c3 = -2 * 0.7 * 16, 2.8, -0.3 * 64
    expected = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    assert gaussian_radius(torch.tensor([[w, h]]))[0].item() == pytest.approx(expected)


def test_heatmap_peak_radius_and_sigma():
    box = torch.tensor([[[0.25, 0.25, 0.5, 0.5]]])  # (N_s=1, B=1, 4): 8x8 cells centred at (8, 8) on 16x16
    hm = generate_heatmap(box, patch_size=256, stride=16)[0][0]
    assert hm.shape == (16, 16) and hm[8, 8] == 1 and int((hm == 1).sum()) == 1
    r = int(_official_radius(8.0, 8.0))
    sigma = (2 * r + 1) / 6
    assert hm[8, 9].item() == pytest.approx(math.exp(-1 / (2 * sigma ** 2)), rel=1e-6)
    assert hm[8, 8 + r].item() > 0 and hm[8, 8 + r + 1].item() == 0 and torch.equal(hm, hm.t())
    # centre 2.5 cells rounds half to even (torch.round) -> 2; a box at the border is clipped
    hm2 = generate_heatmap(torch.tensor([[[0.0, 0.0, 5 / 16, 5 / 16]]]), 256, 16)[0][0]
    assert hm2[2, 2] == 1 and int((hm2 == 1).sum()) == 1
    corner = generate_heatmap(torch.tensor([[[-2 / 16, -2 / 16, 4 / 16, 4 / 16]]]), 256, 16)[0][0]
    assert int(_official_radius(4.0, 4.0)) == 1
    assert corner[0, 0] == 1 and corner[0, 1].item() == pytest.approx(math.exp(-2)) and corner[2:, :].sum() == 0
    tiny = generate_heatmap(torch.tensor([[[0.5, 0.5, 0.01, 0.01]]]), 256, 16)[0][0]
    assert int((tiny > 0).sum()) == 1  # radius 0: a single 1


def test_focal_loss_matches_the_formula():
    torch.manual_seed(0)
    pred = torch.rand(2, 1, 8, 8).clamp(0.01, 0.99)
    gt = generate_heatmap(torch.tensor([[[0.2, 0.3, 0.4, 0.3], [0.5, 0.1, 0.2, 0.6]]]), 128, 16)[0].unsqueeze(1)
    pos, neg = gt.eq(1).float(), gt.lt(1).float()
    expected = -((torch.log(pred) * (1 - pred) ** 2 * pos).sum()
                 + (torch.log(1 - pred) * pred ** 2 * (1 - gt) ** 4 * neg).sum()) / pos.sum()
    assert FocalLoss()(pred, gt).item() == pytest.approx(expected.item(), rel=1e-6)
    no_pos = torch.zeros_like(gt)
    assert FocalLoss()(pred, no_pos).item() == pytest.approx(-(torch.log(1 - pred) * pred ** 2).sum().item(), rel=1e-6)


def test_candidate_elimination_keep_rate_schedule():
    cfg = small_cfg()
    cfg.MODEL.BACKBONE.CE_KEEP_RATIO = [0.7, 0.7, 0.7]
    cfg.TRAIN.CE_START_EPOCH, cfg.TRAIN.CE_WARM_EPOCH = 20, 80
    assert [ce_keep_rate(e, cfg) for e in (1, 19)] == [1, 1]
    assert ce_keep_rate(20, cfg) == pytest.approx(1.0)
    assert ce_keep_rate(60, cfg) == pytest.approx(0.85)
    assert ce_keep_rate(40, cfg) == pytest.approx(0.7 + 0.3 * (math.cos(math.pi / 4) + 1) / 2)
    assert ce_keep_rate(100, cfg) == 0.7 and ce_keep_rate(300, cfg) == 0.7
    assert adjust_keep_rate(5, 20, 50, 1, 0.7) == 1  # the GOT-10k configs: 20 / 50


def test_template_mask_of_candidate_elimination():
    cfg = small_cfg(template=128)
    cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE = "CTR_POINT"
    m = generate_mask_cond(cfg, 2, "cpu", torch.zeros(2, 4))
    assert m.shape == (2, 64) and m.dtype == torch.bool and m[0].nonzero().flatten().tolist() == [3 * 8 + 3]
    cfg.DATA.TEMPLATE.SIZE = 192  # 12x12 -> index 5
    assert generate_mask_cond(cfg, 1, "cpu", torch.zeros(1, 4))[0].nonzero().flatten().tolist() == [5 * 12 + 5]
    cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE = "ALL"
    assert generate_mask_cond(cfg, 1, "cpu", None) is None
    cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE = "CTR_POINT"
    cfg.DATA.TEMPLATE.SIZE = 64
    with pytest.raises(ValueError, match="template grid"):
        generate_mask_cond(cfg, 1, "cpu", None)


def _batch(B=3, search=64, template=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    anno = torch.tensor([[0.3, 0.35, 0.3, 0.25], [0.1, 0.2, 0.5, 0.4], [0.45, 0.4, 0.1, 0.2]])[:B]
    return TensorDict({"template_images": torch.randn(1, B, 3, template, template, generator=g),
                       "search_images": torch.randn(1, B, 3, search, search, generator=g),
                       "template_anno": anno[None].clone(), "search_anno": anno[None].clone(), "epoch": 1})


def test_ostrack_actor_loss_is_the_weighted_official_sum():
    cfg = small_cfg()
    torch.manual_seed(0)
    net = StandInOSTrack().eval()
    objective, weights = build_ostrack_objective(cfg)
    assert weights == {"giou": 2.0, "l1": 5.0, "focal": 1.0, "cls": 1.0}
    actor = OSTrackActor(net, objective, weights, None, cfg)
    data = _batch()
    loss, stats = actor(data)
    out = net(data["template_images"][0], data["search_images"][0])
    pred = box_cxcywh_to_xyxy(out["pred_boxes"]).view(-1, 4)
    gt = box_xywh_to_xyxy(data["search_anno"][0]).clamp(0, 1)
    g, iou = giou_loss(pred, gt)
    l1 = F.l1_loss(pred, gt)
    focal = FocalLoss()(out["score_map"], generate_heatmap(data["search_anno"], 64, 16)[0].unsqueeze(1))
    assert loss.item() == pytest.approx((2 * g + 5 * l1 + focal).item(), rel=1e-6)
    assert set(stats) == {"Loss/total", "Loss/giou", "Loss/l1", "Loss/location", "IoU"}
    assert stats["IoU"] == pytest.approx(iou.item(), rel=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        actor.compute_losses({"pred_boxes": torch.full((3, 1, 4), float("nan"))}, data)
    two = _batch()
    two["search_images"] = two["search_images"].repeat(2, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="one template and one search"):
        actor(two)


def test_actor_gives_zero_giou_on_degenerate_boxes():
    cfg = small_cfg()
    actor = OSTrackActor(StandInOSTrack(), *build_ostrack_objective(cfg), None, cfg)
    data = _batch()
    pred = {"pred_boxes": torch.tensor([[[0.5, 0.5, -0.2, 0.1]]] * 3), "score_map": torch.full((3, 1, 4, 4), 0.5)}
    loss, stats = actor.compute_losses(pred, data)
    assert stats["Loss/giou"] == 0 and stats["IoU"] == 0 and loss.item() > 0


def test_recipe_registry_and_optimizer_groups():
    assert get_actor_class("ostrack") is OSTrackActor
    recipe = get_recipe("ostrack")
    assert recipe.checkpoint_epochs is ostrack_checkpoint_epochs
    with pytest.raises(KeyError, match="known"):
        get_recipe("nope")
    saved = [e for e in range(1, 301) if ostrack_checkpoint_epochs(e, 300)]
    assert saved == [40, 79, 80, 120, 159, 160, 200, 239, 240, 280, 296, 297, 298, 299, 300]

    cfg = small_cfg()
    cfg.TRAIN.LR, cfg.TRAIN.BACKBONE_MULTIPLIER, cfg.TRAIN.LR_DROP_EPOCH = 4e-4, 0.1, 2
    cfg.TRAIN.SCHEDULER.DECAY_RATE = 0.5  # not used by the official StepLR: gamma stays 0.1
    net = StandInOSTrack()
    opt, sched = get_optimizer_scheduler(net, cfg, backbone_param_groups)
    assert isinstance(opt, torch.optim.AdamW) and [g["lr"] for g in opt.param_groups] == [4e-4, pytest.approx(4e-5)]
    backbone = {id(p) for p in net.backbone.parameters()}
    assert {id(p) for p in opt.param_groups[1]["params"]} == backbone
    assert all(g["weight_decay"] == cfg.TRAIN.WEIGHT_DECAY for g in opt.param_groups)
    for _ in range(2):
        opt.step()
        sched.step()
    assert sched.get_last_lr() == [pytest.approx(4e-5), pytest.approx(4e-6)]
    cfg.TRAIN.SCHEDULER.TYPE = "cosine"
    with pytest.raises(ValueError, match="SCHEDULER.TYPE"):
        get_optimizer_scheduler(net, cfg, backbone_param_groups)


def test_train_cls_groups_only_classification_parameters():
    cfg = small_cfg()
    cfg.TRAIN.TRAIN_CLS = True
    net = StandInOSTrack()
    net.cls_head = torch.nn.Linear(4, 1)
    groups = backbone_param_groups(net, cfg)
    assert len(groups) == 1 and {id(p) for p in groups[0]["params"]} == {id(p) for p in net.cls_head.parameters()}
    assert not any(p.requires_grad for p in net.backbone.parameters())


def test_amp_setting():
    assert amp_dtype(False) is None and amp_dtype(True) == torch.float16 and amp_dtype("bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="TRAIN.AMP"):
        amp_dtype("int8")
