"""Training at scale on real frames with the tiny stand-in network: gradient accumulation equals one larger
batch, mid-epoch checkpoints resume bit for bit, temporary checkpoints give way to the official ones, a changed
config stops a resume, checkpoints record their provenance, missing pretrained weights stop a full config before
the data is loaded, wandb continues its run, and the log shows learning rates, samples/s and an ETA."""

import glob
import os
import sys
import types

import pytest
import torch

from lib.train.pretrained import PretrainedMissingError
from lib.train.run_training import init_seeds, make_settings
from lib.train.train_script import build_trainer
from lib.train.trainers.base_trainer import ConfigChangedError
from tests.conftest import need_shared
from tests.train_helpers import StandInOSTrack, build_layout, kill_at, one_torch_thread, small_cfg  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(need_shared("data"), tmp_path_factory.mktemp("scale_layout"))


def make_trainer(layout, save_dir, cfg, workers=0, process_seed=1, on_iteration=None, net=None, **options):
    init_seeds(process_seed)
    settings = make_settings("ostrack", "standin", str(save_dir), env=layout["env"], seed=1, num_workers=workers,
                             **options)
    settings.console = False
    settings.progress_bar = False
    trainer, _ = build_trainer(settings, cfg=cfg, net=net or StandInOSTrack(), on_iteration=on_iteration)
    return trainer


def _files(save_dir):
    return sorted(os.path.basename(p) for p in glob.glob(str(save_dir / "checkpoints/train/ostrack/standin/*")))


def _assert_same(a, b):
    for (name, x), y in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(x, y), name
    oa, ob = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    for k in oa:
        for name in oa[k]:
            assert torch.equal(torch.as_tensor(oa[k][name]), torch.as_tensor(ob[k][name])), (k, name)


# gradient accumulation ---------------------------------------------------------------------------------------
def _record_step_grads(trainer):
    """Wrap the optimizer step: record the gradients it applies (after clipping)."""
    seen = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append({n: p.grad.detach().clone() for n, p in trainer.net.named_parameters() if p.grad is not None})
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    return seen


@pytest.mark.parametrize("clip", [0.0, 0.1])
@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_accumulating_two_batches_equals_one_double_batch(layout, tmp_path, clip):
    results = []
    for batch, accum in ((4, 1), (2, 2)):
        cfg = small_cfg(batch=batch, samples=4, epochs=1)
        cfg.TRAIN.GRAD_CLIP_NORM = clip
        del cfg.DATA["VAL"]
        torch.manual_seed(0)
        net = StandInOSTrack(dropout=0.0, bn=False)  # no per-batch statistics or random masks
        trainer = make_trainer(layout, tmp_path / f"b{batch}", cfg, net=net, accum_iter=accum)
        trainer.settings.sample_seed = 11  # the same samples whatever the batch layout
        trainer.loaders[0].dataset.sample_seed = 11
        seen = _record_step_grads(trainer)
        trainer.train(1)
        assert len(seen) == 1 and len(trainer.loaders[0]) == accum  # one optimizer step over the epoch
        results.append((seen[0], trainer.net.state_dict()))
    (grads_big, params_big), (grads_acc, params_acc) = results
    assert grads_big.keys() == grads_acc.keys()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads_big.values()]))
    if clip:
        assert norm == pytest.approx(clip, rel=1e-4)  # clipping acted (after accumulation, not per batch)
    for name, g in grads_big.items():
        assert torch.allclose(grads_acc[name], g, rtol=1e-5, atol=1e-8), name
    for name, p in params_big.items():
        assert torch.allclose(params_acc[name], p, rtol=1e-5, atol=1e-7), name
    ckpt = torch.load(tmp_path / "b2/checkpoints/train/ostrack/standin/StandInOSTrack_ep0001.pth.tar",
                      weights_only=True)
    assert ckpt["config"]["TRAIN"]["ACCUM_ITER"] == 2  # --accum_iter lands in the stored config


# mid-epoch checkpoints -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 2])
def test_mid_epoch_checkpoint_resumes_bitwise(layout, tmp_path, workers):
    cfg = small_cfg(batch=2, samples=8, epochs=2)  # 4 iterations per epoch, val in epoch 2
    full = make_trainer(layout, tmp_path / "full", cfg, workers=workers, save_every_iters=3)
    full.train(2)
    killed = make_trainer(layout, tmp_path / "killed", cfg, workers=workers, save_every_iters=3,
                          on_iteration=kill_at(2, 4))
    with pytest.raises(KeyboardInterrupt):
        killed.train(2)
    # iterations 3 and 6 (= epoch 2, iteration 2) were saved; the first gave way to the epoch-1 checkpoint
    assert _files(tmp_path / "killed") == ["StandInOSTrack_ep0001.pth.tar", "StandInOSTrack_ep0002_it000002.pth.tar"]
    mid = torch.load(tmp_path / "killed/checkpoints/train/ostrack/standin/StandInOSTrack_ep0002_it000002.pth.tar",
                     weights_only=True)
    assert mid["epoch"] == 1 and mid["iteration"] == 2
    resumed_at = []
    resumed = make_trainer(layout, tmp_path / "killed", cfg, workers=workers, save_every_iters=3, process_seed=77,
                           on_iteration=lambda t, loader, i: resumed_at.append((t.epoch, loader.name, i)))
    resumed.train(2)
    assert resumed_at[0] == (2, "train", 3)  # iterations 1-2 of epoch 2 were not repeated
    _assert_same(full, resumed)
    assert [m.history for m in full.stats["train"].values()] == [m.history for m in resumed.stats["train"].values()]
    assert [m.history for m in full.stats["val"].values()] == [m.history for m in resumed.stats["val"].values()]
    assert _files(tmp_path / "killed") == ["StandInOSTrack_ep0001.pth.tar", "StandInOSTrack_ep0002.pth.tar"]


def test_save_every_keeps_only_the_newest_extra_checkpoint(layout, tmp_path):
    cfg = small_cfg(batch=2, samples=2, epochs=3)
    t = make_trainer(layout, tmp_path, cfg, save_every=1, on_iteration=kill_at(3, 1))
    t.checkpoint_epochs = lambda epoch, max_epochs: epoch == max_epochs  # official rule: the last epoch only
    with pytest.raises(KeyboardInterrupt):
        t.train(3)
    assert _files(tmp_path) == ["StandInOSTrack_ep0002.pth.tar"]  # ep0001 gave way to ep0002
    r = make_trainer(layout, tmp_path, cfg, save_every=1)
    r.checkpoint_epochs = lambda epoch, max_epochs: epoch == max_epochs
    r.train(3)
    assert r.epoch == 3 and _files(tmp_path) == ["StandInOSTrack_ep0003.pth.tar"]


# resuming with another config, provenance ---------------------------------------------------------------------
def test_changed_config_stops_a_resume_and_checkpoints_record_provenance(layout, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKING_LAUNCH_COMMAND", "python tracking/train.py --script ostrack --config standin")
    cfg = small_cfg(batch=2, samples=2, epochs=2)
    make_trainer(layout, tmp_path, cfg).train(1)
    ckpt = torch.load(tmp_path / "checkpoints/train/ostrack/standin/StandInOSTrack_ep0001.pth.tar", weights_only=True)
    assert ckpt["config"] == cfg.to_dict()
    assert ckpt["launch_command"] == "python tracking/train.py --script ostrack --config standin"
    assert sys.argv[0].split(os.sep)[-1] in ckpt["command_line"]
    commit = ckpt["git_commit"]
    assert commit is None or len(commit.split("+")[0]) == 40

    changed = small_cfg(batch=2, samples=2, epochs=2)
    changed.TRAIN.LR = 5e-3
    changed.TRAIN.NUM_WORKER = 1  # free to change
    with pytest.raises(ConfigChangedError, match=r"TRAIN\.LR: 0\.001 in the checkpoint, 0\.005 now") as err:
        make_trainer(layout, tmp_path, changed).train(2)
    assert "NUM_WORKER" not in str(err.value) and "--resume_changed_config" in str(err.value)
    t = make_trainer(layout, tmp_path, changed, resume_changed_config=True)
    t.load_checkpoint()
    assert t.epoch == 1
    assert [g["lr"] for g in t.optimizer.param_groups] == [pytest.approx(5e-3), pytest.approx(5e-4)]
    fresh = make_trainer(layout, tmp_path, changed)
    fresh.train(1, load_latest=False)  # --no_resume
    assert fresh.epoch == 1 and fresh.stats["train"]["Loss/total"].history.__len__() == 1


# pretrained backbone files -------------------------------------------------------------------------------------
@pytest.mark.parametrize("script,config,filename", [
    ("ostrack", "vitb_256_mae_ce_32x4_ep300", "mae_pretrain_vit_base.pth"),
    ("stark_s", "baseline", "resnet50-19c8e357.pth"),
    ("sparsett", "sparsett_swin_got10k", "swin_tiny_patch4_window7_224.pth"),
])
def test_missing_pretrained_file_stops_before_the_data_is_loaded(tmp_path, monkeypatch, script, config, filename):
    monkeypatch.setenv("TRACKING_PRETRAINED_NETWORKS", str(tmp_path))
    import lib.train.train_script as ts

    def no_data(*args, **kwargs):
        raise AssertionError("data loading started")

    monkeypatch.setattr(ts, "build_dataloaders", no_data)
    from lib.train.actors import get_recipe

    monkeypatch.setattr(get_recipe(script), "build_dataloaders", None)
    settings = make_settings(script, config, str(tmp_path / "out"), env=object())
    with pytest.raises(PretrainedMissingError, match=filename) as err:
        build_trainer(settings)
    assert "https://" in str(err.value) and "--random_init" in str(err.value)
    settings = make_settings(script, config, str(tmp_path / "out"), env=object(), random_init=True)
    with pytest.raises(AssertionError, match="data loading started"):  # --random_init goes on to the data
        build_trainer(settings)


# wandb, log lines, AMP warning ---------------------------------------------------------------------------------
class _StubWandb(types.ModuleType):
    def __init__(self):
        super().__init__("wandb")
        self.inits, self.steps = [], []

    def init(self, **kwargs):
        self.inits.append(kwargs)
        return types.SimpleNamespace(id=kwargs.get("id") or "run-0001", finish=lambda: None)

    def log(self, data, step):
        self.steps.append(step)


def test_wandb_continues_its_run_at_the_iteration_and_the_log_shows_lr_speed_eta(layout, tmp_path, monkeypatch):
    stub = _StubWandb()
    monkeypatch.setitem(sys.modules, "wandb", stub)
    cfg = small_cfg(batch=2, samples=4, epochs=2)  # 2 iterations per epoch, PRINT_INTERVAL 1
    make_trainer(layout, tmp_path, cfg, use_wandb=True).train(1)  # then "killed"
    assert stub.inits[0]["id"] is None and stub.inits[0]["dir"] == str(tmp_path / "wandb/train/ostrack/standin")
    assert stub.steps == [1, 2]
    ckpt = torch.load(tmp_path / "checkpoints/train/ostrack/standin/StandInOSTrack_ep0001.pth.tar", weights_only=True)
    assert ckpt["wandb_run_id"] == "run-0001"
    make_trainer(layout, tmp_path, cfg, use_wandb=True).train(2)
    assert stub.inits[1]["id"] == "run-0001" and stub.inits[1]["resume"] == "allow"
    assert stub.steps == [1, 2, 3, 4]
    assert glob.glob(str(tmp_path / "tensorboard/train/ostrack/standin/train/events.*"))
    log = (tmp_path / "logs/ostrack-standin.log").read_text()
    line = next(l for l in log.splitlines() if l.startswith("[train: 2, 1 / 2]"))
    assert "lr: 0.001/0.0001" in line and "samples/s: " in line and "epoch 2 of 2, ETA 0:00:" in line


def test_fp16_on_cpu_warns(layout, tmp_path):
    cfg = small_cfg(batch=2, samples=2, epochs=1)
    cfg.TRAIN.AMP = "fp16"
    with pytest.warns(UserWarning, match="14x slower than bf16"):
        make_trainer(layout, tmp_path, cfg)
