"""tracking/train.py command lines (single process, torchrun DDP, several machines) and config errors."""

import sys

import pytest

from lib.config import ConfigError
from lib.train.run_training import make_settings
from lib.train.train_script import build_trainer
from tests.conftest import PROJECT_ROOT

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
