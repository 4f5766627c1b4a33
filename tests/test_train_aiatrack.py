"""AiATrack trained on real frames with the small CPU config (experiments/aiatrack/tiny_cpu.yaml): the
official reference sampling (initial + short-term reference, later search frame), per-frame jitter,
target/background regions, 16 proposals per search box with their IoU, the loss
2 GIoU + 5 L1 + 2 MSE(IoU head) falling, and gradients reaching the IoU head through Precise RoI Pooling.

As in tests/test_train_stark.py the learning test trains on a fixed set of real samples, and the total
loss is compared between iterations whose GIoU term was computed (the official actor sets it to 0 for a
batch with a degenerate predicted box).
"""

import os
import random

import pytest
import torch

from lib.config import load_config
from lib.train.data.aiatrack import ReferenceSampler
from lib.train.run_training import init_seeds, make_settings
from lib.train.train_script import build_trainer
from lib.utils.box_ops import box_xywh_to_xyxy, paired_box_iou
from tests.conftest import need_shared
from tests.train_helpers import MemoryDataset, build_layout, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(need_shared("data"), tmp_path_factory.mktemp("aiatrack_layout"))


def make_trainer(layout, save_dir, epochs, samples, batch=4, record=None, fixed_samples=False):
    cfg = load_config("aiatrack", "tiny_cpu")
    cfg.TRAIN.EPOCH, cfg.TRAIN.BATCH_SIZE, cfg.DATA.TRAIN.SAMPLE_PER_EPOCH, cfg.TRAIN.LR = epochs, batch, samples, 1e-3
    init_seeds(1)
    env = layout["env"].replace(tensorboard_dir=os.path.join(str(save_dir), "tensorboard"))
    settings = make_settings("aiatrack", "tiny_cpu", str(save_dir), env=env, seed=1, num_workers=0)
    settings.console = False
    settings.progress_bar = False
    settings.sample_seed, settings.shuffle = 7, False

    def on_iteration(trainer, loader, i):
        if record is not None:
            record.append({k: m.val for k, m in trainer.stats[loader.name].items() if hasattr(m, "avg")})

    trainer = build_trainer(settings, cfg=cfg, on_iteration=on_iteration)[0]
    if fixed_samples:
        trainer.loaders[0].dataset.set_epoch = lambda epoch: None
    return trainer


def test_reference_frames_are_drawn_as_the_official_sampler():
    visible = [1] * 60
    for i in (20, 21, 22, 40):
        visible[i] = 0
    sampler = ReferenceSampler([MemoryDataset([visible])], None, 10, max_gap=10)
    random.seed(3)
    for _ in range(300):
        refs, search = sampler.get_reference_ids(torch.tensor(visible, dtype=torch.uint8))
        base, prev = refs[-1], refs[0]
        assert len(refs) == 2 and len(search) == 1 and all(visible[i] for i in refs + search)
        assert 1 <= base <= 58 and base - 10 <= prev < base  # short-term reference within max_gap before the base
        assert base < search[0] < base + 10  # the search frame after the last reference
    with pytest.raises(ValueError, match="one integer"):
        ReferenceSampler([MemoryDataset([visible])], None, 10, max_gap=[200])


def test_samples_references_regions_proposals_and_gradients_through_prroi(layout, tmp_path):
    trainer = make_trainer(layout, tmp_path, epochs=1, samples=8)
    loader = trainer.loaders[0]
    assert len(trainer.loaders) == 1 and type(trainer.net).__name__ == "AIATRACK"
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [pytest.approx(1e-3), pytest.approx(1e-4)]
    loader.set_epoch(1)
    batch = next(iter(loader))
    B, S, F = 4, 128, 8
    assert batch["search_images"].shape == (1, B, 3, S, S) and batch["reference_images"].shape == (2, B, 3, S, S)
    assert batch["search_att"].shape == (1, B, S, S) and batch["reference_att"].dtype == torch.bool

    # every frame is cropped with the search factor (5): the box side is a fifth of the crop unless jittered;
    # the initial reference is not jittered (TEMPLATE jitter 0), so its box sits at the crop centre
    ref = batch["reference_anno"]
    initial_centre = ref[0, :, :2] + ref[0, :, 2:] / 2
    assert torch.allclose(initial_centre, torch.full_like(initial_centre, 0.5), atol=1.5 / S)
    assert torch.allclose((ref[0, :, 2] * ref[0, :, 3]).sqrt(), torch.full((B,), 0.2), atol=0.01)
    other_centre = torch.cat([ref[1], batch["search_anno"][0]])
    other_centre = other_centre[:, :2] + other_centre[:, 2:] / 2
    assert (other_centre - 0.5).abs().max() > 0.05  # search and short-term reference are jittered (4.5 / 0.5)

    # target/background regions: one-hot, foreground = the reference box rounded to the 8x8 grid
    region = batch["reference_region"]
    assert region.shape == (2, B, F * F, 2) and torch.equal(region.sum(-1), torch.ones(2, B, F * F))
    for k in range(2):
        for b in range(B):
            x, y, w, h = (ref[k, b] * F).round().int().tolist()
            fg = torch.zeros(F, F)
            fg[max(y, 0):min(y + h, F), max(x, 0):min(x + w, F)] = 1
            assert torch.equal(region[k, b, :, 0], fg.flatten())
            assert 0 < fg.sum() < F * F

    # 16 proposals per search box, their IoU with the box mapped to [-1, 1]
    proposals, target = batch["search_proposals"], batch["proposal_iou"]
    assert proposals.shape == (1, B, 16, 4) and target.shape == (1, B, 16)
    assert bool(((target >= -1) & (target <= 1)).all()) and float(target.max()) > 0.5
    gt = batch["search_anno"][0][:, None].expand(B, 16, 4)
    iou, _ = paired_box_iou(box_xywh_to_xyxy(proposals[0].reshape(-1, 4)), box_xywh_to_xyxy(gt.reshape(-1, 4)))
    assert torch.allclose(2 * iou - 1, target[0].reshape(-1), atol=1e-5)
    assert (iou > 0.1).float().mean() > 0.9  # min_iou 0.1 (a proposal may miss it after 10 tries, rarely)

    # the IoU loss alone reaches the IoU head's convolutions (before the Precise RoI Pooling) and the
    # transformer through them; the box head is not in its graph
    actor = trainer.actor
    actor.train(True)
    batch["epoch"] = 1
    out = actor.forward_pass(batch)
    assert out["pred_iou"].shape == (1, B, 16) and out["pred_boxes"].shape == (B, 1, 4)
    trainer.optimizer.zero_grad(set_to_none=True)
    actor.objective["iou"](out["pred_iou"], batch["proposal_iou"]).backward()
    net = trainer.net
    for name in ("iou_head.conv1.0.weight", "iou_head.conv3.0.weight", "iou_head.fc.linear.weight",
                 "transformer.decoder.layers.0.long_term_attn.in_proj_weight", "foreground_embed.weight",
                 "backbone.0.body.layer3.0.conv1.weight"):
        grad = net.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert all(p.grad is None for p in net.box_head.parameters())

    loss, stats = actor(batch)
    assert set(stats) == {"Ls/total", "Ls/giou", "Ls/l1", "Ls/iou", "IoU"}
    w = actor.loss_weight
    assert (w["giou"], w["l1"], w["iou"]) == (2.0, 5.0, 2.0)
    assert stats["Ls/total"] == pytest.approx(2 * stats["Ls/giou"] + 5 * stats["Ls/l1"] + 2 * stats["Ls/iou"], rel=1e-5)


def test_tiny_aiatrack_loss_falls_on_real_frames(layout, tmp_path):
    record = []
    trainer = make_trainer(layout, tmp_path, epochs=8, samples=4, record=record, fixed_samples=True)
    trainer.train(8)
    assert len(record) == 8
    for r in record:
        assert all(torch.isfinite(torch.tensor(r[k])) for k in ("Ls/total", "Ls/giou", "Ls/l1", "Ls/iou")), r
    l1 = [r["Ls/l1"] for r in record]
    mse = [r["Ls/iou"] for r in record]
    with_giou = [r["Ls/total"] for r in record if r["Ls/giou"] > 0]
    assert l1[-1] < 0.75 * l1[0], l1
    assert mse[-1] < 0.75 * mse[0], mse
    assert len(with_giou) >= 3 and with_giou[-1] < 0.9 * with_giou[0], with_giou
    folder = tmp_path / "checkpoints/train/aiatrack/tiny_cpu"
    assert sorted(os.listdir(folder)) == [f"AIATRACK_ep{e:04d}.pth.tar" for e in range(4, 9)]  # the last 5
    ckpt = torch.load(folder / "AIATRACK_ep0008.pth.tar", weights_only=True)
    assert ckpt["net_type"] == "AIATRACK" and ckpt["actor_type"] == "AIATRACKActor" and ckpt["epoch"] == 8
    assert set(ckpt["net"]) == set(trainer.net.state_dict())
