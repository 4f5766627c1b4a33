"""GRM trained on real frames with the small CPU config (experiments/grm/tiny_cpu.yaml) through the training
pipeline: the loss falls, the optimizer has GRM's three learning-rate groups (division predictors at the
full LR), the division runs in Gumbel-softmax mode, and the checkpoints have GRM's names and layout."""

import os

import pytest
import torch

from lib.config import load_config
from lib.models import build_network
from lib.train.actors import get_recipe
from lib.train.actors.grm import GRMActor, grm_checkpoint_epochs
from lib.train.run_training import init_seeds, make_settings
from lib.train.train_script import build_trainer
from tests.conftest import need_shared
from tests.train_helpers import build_layout, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(need_shared("data"), tmp_path_factory.mktemp("grm_layout"))


def tiny_cfg(epochs=3, samples=12, batch=4):
    """tiny_cpu shortened for the tests: 3 iterations of 4 per epoch and a higher learning rate."""
    cfg = load_config("grm", "tiny_cpu")
    cfg.TRAIN.EPOCH, cfg.TRAIN.BATCH_SIZE, cfg.DATA.TRAIN.SAMPLE_PER_EPOCH = epochs, batch, samples
    cfg.TRAIN.LR = 1e-3
    return cfg


def test_tiny_grm_learns_with_three_learning_rate_groups(layout, tmp_path):
    cfg = tiny_cfg()
    init_seeds(1)
    env = layout["env"].replace(tensorboard_dir=os.path.join(str(tmp_path), "tensorboard"))
    settings = make_settings("grm", "tiny_cpu", str(tmp_path), env=env, seed=1, num_workers=0)
    settings.console = False
    settings.progress_bar = False
    trainer = build_trainer(settings, cfg=cfg)[0]
    net = trainer.net
    assert type(net).__name__ == "GRM" and isinstance(trainer.actor, GRMActor)
    assert [loader.name for loader in trainer.loaders] == ["train"]  # GRM has no validation loader (no DATA.VAL)

    # the three official parameter groups
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == [pytest.approx(1e-3), pytest.approx(1e-4), pytest.approx(1e-3)]
    names = {id(p): n for n, p in net.named_parameters()}
    group_names = [[names[id(p)] for p in g["params"]] for g in groups]
    assert all(not n.startswith("backbone.") for n in group_names[0]) and len(group_names[0]) > 0
    assert all(n.startswith("backbone.") and "divide" not in n for n in group_names[1])
    assert group_names[2] == [n for n, _ in net.named_parameters() if "divide_predict" in n]
    assert len(group_names[2]) == 3 * 6  # blocks 1..3, three Linear layers each
    assert sum(map(len, group_names)) == len(list(net.parameters()))

    # the division runs in train mode: Gumbel-softmax, per-block attend-to-all fractions
    batch = next(iter(trainer.loaders[0]))
    batch["epoch"] = 1
    net.train()
    with torch.no_grad():
        out = trainer.actor.forward_pass(batch)
    assert out["decisions"].shape == (4, 3) and torch.all((out["decisions"] >= 0) & (out["decisions"] <= 1))
    divide_before = net.backbone.blocks[1].attn.divide_predict[0].weight.detach().clone()

    trainer.train(3)
    losses = trainer.stats["train"]["Ls/total"].history
    assert len(losses) == 3 and losses == sorted(losses, reverse=True) and losses[-1] < 0.95 * losses[0], losses
    assert set(trainer.stats["train"]) >= {"Ls/total", "Ls/giou", "Ls/l1", "Ls/loc", "IoU"}
    assert not torch.equal(net.backbone.blocks[1].attn.divide_predict[0].weight, divide_before)

    folder = tmp_path / "checkpoints" / "train" / "grm" / "tiny_cpu"
    assert sorted(os.listdir(folder)) == ["GRM_ep0001.pth.tar", "GRM_ep0002.pth.tar", "GRM_ep0003.pth.tar"]
    ckpt = torch.load(folder / "GRM_ep0003.pth.tar", weights_only=True)
    assert ckpt["net_type"] == "GRM" and ckpt["actor_type"] == "GRMActor" and ckpt["epoch"] == 3
    assert {k.split(".")[0] for k in ckpt["net"]} == {"backbone", "box_head"}
    # the trained checkpoint loads strictly into the test-time network
    test_net = build_network("grm", "tiny_cpu", checkpoint=folder / "GRM_ep0003.pth.tar")
    assert torch.equal(test_net.backbone.blocks[3].attn.divide_predict[4].weight,
                       net.backbone.blocks[3].attn.divide_predict[4].weight)


def test_grm_keeps_the_last_five_and_every_hundredth_checkpoint():
    assert get_recipe("grm").checkpoint_epochs is grm_checkpoint_epochs
    kept = [e for e in range(1, 301) if grm_checkpoint_epochs(e, 300)]
    assert kept == [100, 200, 296, 297, 298, 299, 300]
