"""STARK trained on real frames with the small CPU configs (experiments/stark_*/tiny_cpu.yaml): STARK-S and
STARK-ST stage 1 learn the box (GIoU + L1), stage 2 starts from stage 1's last checkpoint and changes
nothing but the score head, trained with BCE on the sampler's positive and negative search regions.

The learning tests train on a fixed set of real samples (the same sample seeds every epoch) so that the
loss measures learning rather than how hard the epoch's samples happen to be. The official actor sets
the GIoU term (and the IoU) of a batch to 0 when a predicted box is degenerate (x2 < x1), which happens
with an untrained corner head; the total loss is therefore compared between iterations where the GIoU
term was computed, and the L1 term (always computed) must fall on its own.
"""

import os

import pytest
import torch
import torch.nn.functional as F

from lib.config import load_config
from lib.train.run_training import init_seeds, make_settings
from lib.train.train_script import build_trainer
from tests.conftest import need_shared
from tests.train_helpers import build_layout, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(need_shared("data"), tmp_path_factory.mktemp("stark_layout"))


def tiny_cfg(script, epochs, samples, batch=4, lr=1e-3):
    cfg = load_config(script, "tiny_cpu")
    cfg.TRAIN.EPOCH, cfg.TRAIN.BATCH_SIZE, cfg.DATA.TRAIN.SAMPLE_PER_EPOCH, cfg.TRAIN.LR = epochs, batch, samples, lr
    del cfg.DATA["VAL"]
    return cfg


def make_trainer(layout, save_dir, script, cfg, fixed_samples=False, prv=None, record=None):
    """A trainer of ``script``/tiny_cpu writing to ``save_dir``; ``record`` collects every training
    iteration's stats; ``fixed_samples`` draws the same samples in every epoch."""
    init_seeds(1)
    env = layout["env"].replace(tensorboard_dir=os.path.join(str(save_dir), "tensorboard"))
    kw = {"script_prv": prv[0], "config_prv": prv[1]} if prv else {}
    settings = make_settings(script, "tiny_cpu", str(save_dir), env=env, seed=1, num_workers=0, **kw)
    settings.console = False
    settings.progress_bar = False
    settings.sample_seed, settings.shuffle = 7, False

    def on_iteration(trainer, loader, i):
        if record is not None and loader.training:
            record.append({k: m.val for k, m in trainer.stats[loader.name].items() if hasattr(m, "avg")})

    trainer = build_trainer(settings, cfg=cfg, on_iteration=on_iteration)[0]
    if fixed_samples:
        trainer.loaders[0].dataset.set_epoch = lambda epoch: None
    return trainer


def assert_box_losses_fall(record):
    """L1 falls by a quarter, IoU rises, and the total falls between iterations with a computed GIoU."""
    l1 = [r["Loss/l1"] for r in record]
    assert all(torch.isfinite(torch.tensor([r["Loss/total"], r["Loss/l1"], r["Loss/giou"]])).all() for r in record)
    assert l1[-1] < 0.75 * l1[0], l1
    with_giou = [r["Loss/total"] for r in record if r["Loss/giou"] > 0]
    assert len(with_giou) >= 3 and with_giou[-1] < 0.9 * with_giou[0], with_giou
    assert record[-1]["IoU"] > max(record[0]["IoU"], 0.05), [r["IoU"] for r in record]


def test_stark_s_learns_boxes_on_real_frames(layout, tmp_path):
    record, shapes = [], []
    trainer = make_trainer(layout, tmp_path, "stark_s", tiny_cfg("stark_s", epochs=10, samples=4), fixed_samples=True,
                           record=record)
    assert type(trainer.net).__name__ == "STARKS" and trainer.loaders[0].dataset.frame_sample_mode == "causal"
    forward = trainer.actor.forward_pass
    trainer.actor.forward_pass = lambda data, **kw: (shapes.append(tuple(data["template_images"].shape)),
                                                     forward(data, **kw))[1]
    frozen = {k: v.clone() for k, v in trainer.net.named_parameters() if k.startswith(("backbone.0.body.conv1",
                                                                                       "backbone.0.body.layer1"))}
    trainer.train(10)
    assert shapes[0] == (1, 4, 3, 64, 64) and len(record) == 10
    assert_box_losses_fall(record)
    # official optimizer groups: the rest at LR, the backbone (layer2, layer3) at LR x 0.1; conv1/layer1 frozen
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [pytest.approx(1e-3), pytest.approx(1e-4)]
    backbone = {id(p) for p in trainer.optimizer.param_groups[1]["params"]}
    assert backbone == {id(p) for n, p in trainer.net.named_parameters() if n.startswith("backbone.0.body.layer")
                        and not n.startswith("backbone.0.body.layer1")}
    for name, p in trainer.net.named_parameters():
        if name in frozen:
            assert not p.requires_grad and torch.equal(p, frozen[name]), name
    ckpt = torch.load(tmp_path / "checkpoints/train/stark_s/tiny_cpu/STARKS_ep0010.pth.tar", weights_only=True)
    assert ckpt["net_type"] == "STARKS" and ckpt["actor_type"] == "STARKSActor" and ckpt["epoch"] == 10


def test_stark_st_stage1_then_stage2_trains_only_the_score_head(layout, tmp_path):
    # stage 1: two templates from the trident_pro sampler, box losses
    record, shapes = [], []
    stage1 = make_trainer(layout, tmp_path, "stark_st1", tiny_cfg("stark_st1", epochs=10, samples=4),
                          fixed_samples=True, record=record)
    sampler = stage1.loaders[0].dataset
    assert type(stage1.net).__name__ == "STARKST"
    assert sampler.frame_sample_mode == "trident_pro" and sampler.num_template_frames == 2 and not sampler.train_cls
    forward = stage1.actor.forward_pass
    stage1.actor.forward_pass = lambda data, **kw: (shapes.append((tuple(data["template_images"].shape), kw)),
                                                    forward(data, **kw))[1]
    stage1.train(10)
    assert shapes[0] == ((2, 4, 3, 64, 64), {"run_box_head": True, "run_cls_head": False})
    assert_box_losses_fall(record)
    folder = tmp_path / "checkpoints/train/stark_st1/tiny_cpu"
    assert sorted(os.listdir(folder))[-1] == "STARKST_ep0010.pth.tar"
    stage1_state = torch.load(folder / "STARKST_ep0010.pth.tar", weights_only=True)["net"]

    # stage 2 refuses to start without the previous stage
    alone = make_trainer(layout, tmp_path / "alone", "stark_st2", tiny_cfg("stark_st2", epochs=1, samples=4))
    with pytest.raises(ValueError, match="--script_prv"):
        alone.train(1, load_previous_ckpt=True)

    # stage 2: loads stage 1's last checkpoint, BCE on positives and negatives, only 'cls' parameters train
    cfg2 = tiny_cfg("stark_st2", epochs=2, samples=12)
    stage2 = make_trainer(layout, tmp_path, "stark_st2", cfg2, prv=("stark_st1", "tiny_cpu"))
    sampler = stage2.loaders[0].dataset
    assert sampler.train_cls and sampler.frame_sample_mode == "trident_pro" and sampler.num_template_frames == 2
    seen = []
    compute = stage2.actor.compute_losses

    def checked(pred_dict, labels, return_status=True):
        loss, status = compute(pred_dict, labels, return_status)
        logits = pred_dict["pred_logits"].detach().view(-1)
        assert "pred_boxes" not in pred_dict  # the box head does not run in stage 2
        assert torch.allclose(loss.detach(), F.binary_cross_entropy_with_logits(logits, labels))
        seen.append(labels.clone())
        return loss, status

    stage2.actor.compute_losses = checked
    stage2.train(2, load_previous_ckpt=True)
    labels = torch.cat(seen)
    assert len(seen) == 6 and set(labels.tolist()) == {0.0, 1.0}, labels  # positives and negatives
    trainable = {n for n, p in stage2.net.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in stage2.net.named_parameters() if n.startswith("cls_head.")}
    assert len(stage2.optimizer.param_groups) == 1 and stage2.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert {id(p) for p in stage2.optimizer.param_groups[0]["params"]} == {
        id(p) for n, p in stage2.net.named_parameters() if "cls" in n}
    final = stage2.net.state_dict()
    assert set(final) == set(stage1_state)
    for key, value in final.items():
        if key.startswith("cls_head."):
            assert not torch.equal(value, stage1_state[key]), f"{key} did not train"
        else:  # every other parameter and buffer (BN statistics included) bit-identical to stage 1
            assert torch.equal(value, stage1_state[key]), key
    ckpt = torch.load(tmp_path / "checkpoints/train/stark_st2/tiny_cpu/STARKST_ep0002.pth.tar", weights_only=True)
    assert ckpt["net_type"] == "STARKST" and ckpt["actor_type"] == "STARKSTActor"
    assert all(torch.isfinite(torch.tensor(h)).all() for h in stage2.stats["train"]["cls_loss"].history)
