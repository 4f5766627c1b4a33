"""OSTrack trained on real frames with the small CPU config (experiments/ostrack/tiny_cpu.yaml): the loss
falls, a killed run resumes to the same parameters, MAE weights are loaded from the pretrained folder,
and the whole train (2-process DDP through tracking/train.py) -> test -> analyse loop runs on real
sequences."""

import glob
import os
import subprocess
import sys

import pytest
import torch
import yaml

from lib.config import load_config
from lib.models.backbones.vit import vit_tiny_patch16_4blocks_ce
from lib.train.pretrained import PretrainedMissingError
from lib.train.run_training import init_seeds, make_settings
from lib.train.train_script import build_trainer
from tests.conftest import PROJECT_ROOT, need_shared
from tests.train_helpers import build_layout, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(need_shared("data"), tmp_path_factory.mktemp("ostrack_layout"))


def tiny_cfg(epochs=3, samples=12, batch=4):
    """tiny_cpu shortened for the tests: 3 iterations of 4 per epoch, a higher learning rate, and the
    candidate-elimination keep rate at 1, 0.85 and 0.7 in epochs 1, 2 and 3."""
    cfg = load_config("ostrack", "tiny_cpu")
    cfg.TRAIN.EPOCH, cfg.TRAIN.BATCH_SIZE, cfg.DATA.TRAIN.SAMPLE_PER_EPOCH = epochs, batch, samples
    cfg.DATA.VAL.SAMPLE_PER_EPOCH, cfg.TRAIN.VAL_EPOCH_INTERVAL = batch, 2
    cfg.TRAIN.CE_START_EPOCH, cfg.TRAIN.CE_WARM_EPOCH, cfg.TRAIN.LR = 1, 2, 1e-3
    return cfg


def make_trainer(layout, save_dir, cfg, workers=0, process_seed=1, on_iteration=None):
    init_seeds(process_seed)
    env = layout["env"].replace(tensorboard_dir=os.path.join(str(save_dir), "tensorboard"))
    settings = make_settings("ostrack", "tiny_cpu", str(save_dir), env=env, seed=1, num_workers=workers)
    settings.console = False
    settings.progress_bar = False
    return build_trainer(settings, cfg=cfg, on_iteration=on_iteration)[0]


def test_tiny_ostrack_learns_and_a_killed_run_resumes_bitwise(layout, tmp_path):
    cfg = tiny_cfg()
    keep_rates = []

    def record(trainer, loader, i):
        if i == 1 and loader.training:
            from lib.train.actors.ostrack import ce_keep_rate

            keep_rates.append(ce_keep_rate(trainer.epoch, cfg))

    full = make_trainer(layout, tmp_path / "full", cfg, on_iteration=record)
    assert type(full.net).__name__ == "OSTrack"
    full.train(3)
    assert keep_rates == [1, pytest.approx(0.85), pytest.approx(0.7)]
    losses = full.stats["train"]["Loss/total"].history
    assert len(losses) == 3 and losses == sorted(losses, reverse=True) and losses[-1] < 0.95 * losses[0], losses

    def kill(trainer, loader, i):
        if trainer.epoch == 3 and i == 2 and loader.training:
            raise KeyboardInterrupt("simulated kill")

    killed = make_trainer(layout, tmp_path / "killed", cfg, on_iteration=kill)
    with pytest.raises(KeyboardInterrupt):
        killed.train(3)
    folder = tmp_path / "killed/checkpoints/train/ostrack/tiny_cpu"
    names = sorted(os.path.basename(p) for p in glob.glob(str(folder / "*")))
    assert names == ["OSTrack_ep0001.pth.tar", "OSTrack_ep0002.pth.tar"]
    resumed = make_trainer(layout, tmp_path / "killed", cfg, process_seed=99)  # another process state
    resumed.train(3)
    for (name, a), b in zip(full.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.equal(a, b), name
    ckpt = torch.load(tmp_path / "killed/checkpoints/train/ostrack/tiny_cpu/OSTrack_ep0003.pth.tar", weights_only=True)
    assert ckpt["net_type"] == "OSTrack" and ckpt["actor_type"] == "OSTrackActor" and ckpt["epoch"] == 3
    assert set(ckpt["net"]) == set(resumed.net.state_dict())
    assert {k.split(".")[0] for k in ckpt["net"]} == {"backbone", "box_head"}
    lrs = [g["lr"] for g in resumed.optimizer.param_groups]
    assert lrs == [pytest.approx(1e-3), pytest.approx(1e-4)]  # backbone group at LR x BACKBONE_MULTIPLIER


def test_mae_weights_are_loaded_from_the_pretrained_folder(layout, tmp_path, monkeypatch):
    torch.manual_seed(5)
    mae = vit_tiny_patch16_4blocks_ce()  # the 224-pixel layout of an MAE checkpoint (pos_embed 1 x 197 x 192)
    state = {k: v for k, v in mae.state_dict().items() if not k.startswith(("pos_embed_z", "pos_embed_x"))}
    folder = tmp_path / "pretrained"
    folder.mkdir()
    torch.save({"model": state}, folder / "mae_pretrain_vit_tiny4.pth")
    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(folder))
    cfg = tiny_cfg()
    cfg.MODEL.PRETRAIN_FILE = "mae_pretrain_vit_tiny4.pth"
    trainer = make_trainer(layout, tmp_path / "out", cfg, workers=0)
    net_state = trainer.net.backbone.state_dict()
    for key in ("blocks.0.attn.qkv.weight", "blocks.3.mlp.fc2.bias", "patch_embed.proj.weight", "norm.weight"):
        assert torch.equal(net_state[key], state[key]), key
    cfg.MODEL.PRETRAIN_FILE = "mae_missing.pth"  # a missing file stops training (unless --random_init)
    with pytest.raises(PretrainedMissingError, match="mae_missing.pth.*--random_init"):
        make_trainer(layout, tmp_path / "out2", cfg, workers=0)


def test_train_ddp_then_test_then_analyse_on_real_sequences(layout, tmp_path):
    shared = need_shared("data")
    cfg = yaml.safe_load((PROJECT_ROOT / "experiments/ostrack/tiny_cpu.yaml").read_text())
    cfg["TRAIN"].update(EPOCH=2, NUM_WORKER=0, BATCH_SIZE=4, VAL_EPOCH_INTERVAL=2)
    cfg["DATA"]["TRAIN"]["SAMPLE_PER_EPOCH"] = 16
    cfg["DATA"]["VAL"]["SAMPLE_PER_EPOCH"] = 8
    cfg["TEST"]["EPOCH"] = 2
    config = tmp_path / "tiny_loop.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = layout["env"]
    run_env = dict(os.environ, OMP_NUM_THREADS="1", TRACKING_WORKSPACE_DIR=str(tmp_path),
                   TRACKING_GOT10K_DIR=env.got10k_dir, TRACKING_LASOT_DIR=env.lasot_dir,
                   TRACKING_DATASPEC_PATH=env.dataspec_path, TRACKING_TENSORBOARD_DIR=str(tmp_path / "tb"),
                   TRACKING_SAVE_DIR=str(tmp_path / "out"), TRACKING_RESULTS_PATH=str(tmp_path / "results"),
                   TRACKING_RESULT_PLOT_PATH=str(tmp_path / "plots"), TRACKING_OTB_PATH=str(shared / "otb"))

    def run(*args):
        proc = subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=run_env, capture_output=True, text=True,
                              timeout=400)
        assert proc.returncode == 0, " ".join(args) + "\n" + proc.stdout[-4000:] + proc.stderr[-4000:]
        return proc.stdout + proc.stderr

    out = run("tracking/train.py", "--script", "ostrack", "--config", str(config), "--save_dir", str(tmp_path / "out"),
              "--mode", "multiple", "--nproc_per_node", "2")
    assert "torch.distributed.run" in out
    ckpt_dir = tmp_path / "out/checkpoints/train/ostrack/tiny_loop"
    assert sorted(os.listdir(ckpt_dir)) == ["OSTrack_ep0001.pth.tar", "OSTrack_ep0002.pth.tar"]
    ckpt = torch.load(ckpt_dir / "OSTrack_ep0002.pth.tar", weights_only=True)
    assert len(ckpt["rng_state"]) == 2 and ckpt["settings"]["world_size"] == 2
    log = (tmp_path / "out/logs/ostrack-tiny_loop.log").read_text()
    assert "[train: 2, 2 / 2]" in log  # 16 samples / (2 processes x 4) = 2 iterations per epoch

    run("tracking/test.py", "ostrack", str(config), "--dataset", "otb", "--sequence", "Crossing", "--no_progress")
    result = tmp_path / "results/ostrack/tiny_loop/Crossing.txt"
    rows = [line.split() for line in result.read_text().splitlines()]
    assert len(rows) == 120 and all(len(r) == 4 for r in rows)

    out = run("tracking/analysis_results.py", "--tracker_name", "ostrack", "--tracker_param", "tiny_loop",
              "--dataset", "otb", "--dataset_path", str(shared / "otb100_anno"), "--skip_missing")
    assert "Reporting results over 1 / 100 sequences" in out
    row = next(line for line in out.splitlines() if line.startswith("ostrack_tiny_loop"))
    auc, op50, op75, prec, norm_prec = (float(v) for v in row.split()[1:6])
    assert 0 <= op75 <= op50 <= 100 and 0 <= auc <= 100 and 0 <= prec <= 100
