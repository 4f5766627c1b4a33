"""The trainer on real frames with a tiny stand-in network: plain-data checkpoints at the official epochs,
bitwise resume after a crash (with and without loader workers), two-stage loading, AMP, logs,
TensorBoard and wandb."""

import glob
import os

import pytest
import torch

from lib.train.run_training import init_seeds, make_settings
from lib.train.train_script import build_trainer
from lib.utils.checkpoint import CheckpointError, safe_load
from tests.conftest import need_shared
from tests.train_helpers import StandInOSTrack, build_layout, kill_at, small_cfg, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(need_shared("data"), tmp_path_factory.mktemp("loop_layout"))


def make_trainer(layout, save_dir, cfg=None, workers=0, seed=1, on_iteration=None, config="standin", process_seed=None,
                 **kw):
    init_seeds(seed if process_seed is None else process_seed)
    env = layout["env"].replace(tensorboard_dir=os.path.join(str(save_dir), "tensorboard"))
    settings = make_settings("ostrack", config, str(save_dir), env=env, seed=seed, num_workers=workers)
    settings.console = False
    settings.progress_bar = False
    for k, v in kw.items():
        setattr(settings, k, v)
    trainer, _ = build_trainer(settings, cfg=cfg or small_cfg(batch=2, samples=4, epochs=3), net=StandInOSTrack(),
                               on_iteration=on_iteration)
    return trainer


def _same_state(a, b):
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    oa, ob = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    for k in oa:
        for name in oa[k]:
            assert torch.equal(torch.as_tensor(oa[k][name]), torch.as_tensor(ob[k][name])), (k, name)


@pytest.mark.parametrize("workers", [0, 2])
def test_killed_run_resumes_bitwise(layout, tmp_path, workers):
    cfg = small_cfg(batch=2, samples=4, epochs=2)
    full = make_trainer(layout, tmp_path / "full", cfg=cfg, workers=workers)
    full.train(2)
    killed = make_trainer(layout, tmp_path / "killed", cfg=cfg, workers=workers, on_iteration=kill_at(2, 1))
    with pytest.raises(KeyboardInterrupt):
        killed.train(2)
    ckpts = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "killed/checkpoints/train/ostrack/standin/*")))
    assert ckpts == ["StandInOSTrack_ep0001.pth.tar"]
    # a new process: other generator states and network initialisation, the same --seed
    resumed = make_trainer(layout, tmp_path / "killed", cfg=cfg, workers=workers, process_seed=123)
    assert not torch.equal(resumed.net.backbone[0].weight, full.net.backbone[0].weight)
    resumed.train(2)
    assert resumed.epoch == 2
    _same_state(full, resumed)
    assert full.lr_scheduler.state_dict() == resumed.lr_scheduler.state_dict()
    assert [m.history for m in full.stats["train"].values()] == [m.history for m in resumed.stats["train"].values()]
    assert [m.history for m in full.stats["val"].values()] == [m.history for m in resumed.stats["val"].values()]


def test_checkpoint_is_plain_data_in_the_official_layout(layout, tmp_path):
    t = make_trainer(layout, tmp_path)
    t.train(2)
    path = tmp_path / "checkpoints/train/ostrack/standin/StandInOSTrack_ep0002.pth.tar"
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # no pickled objects
    for key in ("epoch", "actor_type", "net_type", "net", "net_info", "constructor", "optimizer", "stats", "settings",
                "lr_scheduler", "scaler", "rng_state"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 2 and ckpt["net_type"] == "StandInOSTrack" and ckpt["actor_type"] == "OSTrackActor"
    assert isinstance(ckpt["settings"], dict) and ckpt["settings"]["project_path"] == "train/ostrack/standin"
    assert ckpt["settings"]["env"]["got10k_dir"] == str(layout["got"])
    assert set(ckpt["net"]) == set(t.net.state_dict()) and not glob.glob(str(path.parent / "*.tmp*"))
    assert ckpt["stats"]["train"]["Loss/total"]["type"] == "AverageMeter"
    assert len(ckpt["stats"]["train"]["Loss/total"]["history"]) == 2
    assert safe_load(path)["epoch"] == 2
    # the log file and TensorBoard scalars
    log = (tmp_path / "logs" / "ostrack-standin.log").read_text()
    assert "[train: 2, 2 / 2]" in log and "Loss/total" in log
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard/train/ostrack/standin/train"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("Loss/total")]
    assert steps == [1, 2] and "LearningRate/group0" in acc.Tags()["scalars"]
    val = EventAccumulator(str(tmp_path / "tensorboard/train/ostrack/standin/val"))
    val.Reload()
    assert [e.step for e in val.Scalars("IoU")] == [2]  # VAL_EPOCH_INTERVAL 2


def test_resume_from_given_checkpoint_and_wrong_network(layout, tmp_path):
    t = make_trainer(layout, tmp_path)
    t.train(1)
    other = make_trainer(layout, tmp_path / "other", config="other")
    ckpt = tmp_path / "checkpoints/train/ostrack/standin/StandInOSTrack_ep0001.pth.tar"
    assert other.load_checkpoint(str(ckpt), required=True) and other.epoch == 1
    _same_state(t, other)
    with pytest.raises(FileNotFoundError):
        other.train(2, resume=str(tmp_path / "missing.pth.tar"))
    bad = torch.load(ckpt, weights_only=True)
    bad["net_type"] = "OSTrack"
    torch.save(bad, tmp_path / "bad.pth.tar")
    with pytest.raises(CheckpointError, match="net_type OSTrack"):
        other.load_checkpoint(str(tmp_path / "bad.pth.tar"))


def test_two_stage_training_loads_the_previous_stage(layout, tmp_path):
    stage1 = make_trainer(layout, tmp_path)
    stage1.train(1)
    stage2 = make_trainer(layout, tmp_path, config="stage2", project_path_prv="train/ostrack/standin")
    assert not torch.equal(stage2.net.backbone[0].weight, stage1.net.backbone[0].weight)
    stage2.train(0, load_previous_ckpt=True)
    assert torch.equal(stage2.net.backbone[0].weight, stage1.net.backbone[0].weight)
    lone = make_trainer(layout, tmp_path / "lone", config="stage2")
    with pytest.raises(ValueError, match="--script_prv"):
        lone.train(1, load_previous_ckpt=True)


@pytest.mark.parametrize("amp", ["bf16", True])
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # fp16: the scaler skips step 1
def test_mixed_precision_steps(layout, tmp_path, amp):
    cfg = small_cfg(batch=2, samples=2, epochs=1)
    cfg.TRAIN.AMP = amp
    t = make_trainer(layout, tmp_path, cfg=cfg)
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    t.train(1)
    assert (t.scaler is not None) == (amp is True)
    changed = [k for k, v in t.net.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed and all(torch.isfinite(v).all() for v in t.net.state_dict().values())
    ckpt = torch.load(tmp_path / "checkpoints/train/ostrack/standin/StandInOSTrack_ep0001.pth.tar", weights_only=True)
    assert (ckpt["scaler"] is not None) == (amp is True)


def test_wandb_offline_run(layout, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = small_cfg(batch=2, samples=2, epochs=1)
    t = make_trainer(layout, tmp_path, cfg=cfg, use_wandb=True)
    t.train(1)
    t.wandb_writer.finish()
    runs = glob.glob(str(tmp_path / "wandb/train/ostrack/standin/wandb/offline-run-*"))
    assert runs and glob.glob(os.path.join(runs[-1], "*.wandb"))
