"""tracking/train.py command lines (single process, torchrun DDP, several machines) and config errors."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from lib.config import ConfigError
from lib.train.run_training import make_settings
from lib.train.train_script import build_trainer
from tests.conftest import PROJECT_ROOT, free_port, process_alive as _alive

sys.path.insert(0, str(PROJECT_ROOT / "tracking"))
import train as train_cli  # noqa: E402


def test_single_process_command():
    args = train_cli.parse_args(["--script", "ostrack", "--config", "cfg", "--save_dir", "out", "--mode", "single",
                                 "--use_wandb", "1", "--resume", "latest", "--script_prv", "a", "--config_prv", "b",
                                 "--skip_bad_data", "1"])
    cmd = train_cli.build_command(args)
    assert cmd[0] == sys.executable and cmd[1].endswith("lib/train/run_training.py")
    assert cmd[2:] == ["--script", "ostrack", "--config", "cfg", "--save_dir", "out", "--use_lmdb", "0",
                       "--use_wandb", "1", "--seed", "42", "--script_prv", "a", "--config_prv", "b",
                       "--resume", "latest", "--skip_bad_data", "1"]


def test_torchrun_commands():
    args = train_cli.parse_args(["--script", "ostrack", "--config", "cfg", "--save_dir", "out", "--mode", "multiple",
                                 "--nproc_per_node", "4", "--master_port", "29511"])
    cmd = train_cli.build_command(args)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[3:13] == ["--nproc_per_node", "4", "--nnodes", "1", "--node_rank", "0", "--master_addr", "127.0.0.1",
                         "--master_port", "29511"]
    assert "--local_rank" not in cmd  # ranks come from the environment torchrun sets
    args = train_cli.parse_args(["--script", "ostrack", "--config", "cfg", "--mode", "multi_node", "--nproc_per_node",
                                 "8", "--nnodes", "2", "--node_rank", "1", "--master_addr", "10.0.0.1"])
    cmd = train_cli.build_command(args)
    assert cmd[cmd.index("--nnodes") + 1] == "2" and cmd[cmd.index("--node_rank") + 1] == "1"
    assert cmd[cmd.index("--master_addr") + 1] == "10.0.0.1"
    assert cmd[cmd.index("--master_port") + 1] == "20000"  # every machine must use the same port
    with pytest.raises(SystemExit, match="nproc_per_node"):
        train_cli.build_command(train_cli.parse_args(["--script", "ostrack", "--mode", "multiple"]))


def test_unknown_config_key_names_key_and_file(tmp_path):
    yaml = tmp_path / "bad.yaml"
    yaml.write_text("TRAIN:\n  LR: 0.001\n  NOT_A_KEY: 3\n")
    settings = make_settings("stark_s", str(yaml), str(tmp_path / "out"), env=object())
    with pytest.raises(ConfigError, match=r"bad\.yaml.*TRAIN\.NOT_A_KEY"):
        build_trainer(settings)
    settings = make_settings("stark_s", "no_such_config", str(tmp_path / "out"), env=object())
    with pytest.raises(FileNotFoundError, match="no_such_config"):
        build_trainer(settings)


# -- stopping and locking ---------------------------------------------------------------------------------------
def _wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def _pids(folder, count):
    return _wait_for(lambda: [int(p) for p in os.listdir(folder)] if len(os.listdir(folder)) >= count else None, 60,
                     f"{count} stand-in ranks did not start")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_train_py_stops_the_trainer(tmp_path, sig):
    """train.py's launch (lib.train.launch.run_in_group): the trainer dies with it (SIGKILL) or gets the signal."""
    code = ("import sys; from lib.train.launch import run_in_group; "
            f"sys.exit(run_in_group([sys.executable, 'tests/rank_sleeper.py', {str(tmp_path)!r}], "
            "dict(__import__('os').environ, TRACKING_PARENT_PID=str(__import__('os').getpid()))))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        (child,) = _pids(tmp_path, 1)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=20)
        _wait_for(lambda: not _alive(child), 5, "the trainer outlived train.py")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM and "train.py: stopped by SIGTERM" in err


def test_killed_torchrun_stops_its_ranks(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "tests/rank_sleeper.py", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        ranks = _pids(tmp_path, 2)
        os.kill(proc.pid, signal.SIGKILL)  # torchrun cannot stop its ranks itself
        proc.wait(timeout=20)
        _wait_for(lambda: not any(_alive(p) for p in ranks), 5, "the ranks outlived torchrun")
    finally:
        for p in [int(p) for p in os.listdir(tmp_path)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_second_training_into_the_same_folder_is_refused(tmp_path, capsys, monkeypatch):
    from lib.train.admin.lock import TRAINING_LOCK_ENV
    from lib.utils.errors import run_cli

    save = str(tmp_path / "out")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from lib.train.admin.lock import training_lock\n"
                               f"with training_lock({save!r}, 'ostrack', 'tiny_cpu'):\n"
                               "    print('locked', flush=True); time.sleep(60)"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    launched = []
    monkeypatch.setattr(train_cli.launch, "run_launcher", lambda cmd, *args, env=None, **kw: launched.append(env) or 0)
    argv = ["--script", "ostrack", "--config", "tiny_cpu", "--save_dir", save, "--mode", "single"]
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run_cli(train_cli.main, prog="train.py", argv=argv) == 2
        err = capsys.readouterr().err
        folder = tmp_path / "out" / "checkpoints" / "train" / "ostrack" / "tiny_cpu"
        assert f"train.py: error: another training is running in '{folder}'" in err
        assert f"held by PID {holder.pid} on host" in err and not launched
        assert len(err.strip().splitlines()) == 1
        # another machine of a multi-node run (node rank 1) does not take the lock
        other_node = argv[:-2] + ["--mode", "multi_node", "--nproc_per_node", "1", "--nnodes", "2", "--node_rank", "1"]
        assert run_cli(train_cli.main, prog="train.py", argv=other_node) == 0
    finally:
        holder.kill()
        holder.wait()
    # the holder died (SIGKILL): its lock is stale and the next training takes it over with a notice
    assert run_cli(train_cli.main, prog="train.py", argv=argv) == 0
    err = capsys.readouterr().err
    lock = tmp_path / "out" / "checkpoints" / "train" / "ostrack" / "tiny_cpu" / ".training.lock"
    assert f"note: took over the stale training lock '{lock}' left by PID {holder.pid}" in err
    assert "which is no longer running" in err
    assert launched[-1][TRAINING_LOCK_ENV] == str(lock) and not lock.exists()  # released when the training ended
    # a config that does not exist stops before the lock: no launch, no checkpoint folder
    count = len(launched)
    assert run_cli(train_cli.main, prog="train.py", argv=["--script", "ostrack", "--config", "nope", "--save_dir",
                                                          save, "--mode", "single"]) == 2
    assert len(launched) == count and not (tmp_path / "out" / "checkpoints" / "train" / "ostrack" / "nope").exists()


def test_lock_is_taken_once_and_released(tmp_path):
    from lib.utils.locking import FolderLockedError, folder_lock, read_lock_holder

    with folder_lock(str(tmp_path), name="x.lock") as path:
        assert read_lock_holder(path)["pid"] == os.getpid()
        with pytest.raises(FolderLockedError, match=f"held by PID {os.getpid()}"):
            with folder_lock(str(tmp_path), name="x.lock"):
                pass
        assert os.path.exists(path)
    assert not os.path.exists(path)
