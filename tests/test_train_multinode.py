"""Multi-node training through tracking/train.py: two "machines" on localhost (one gloo process each) meet at
the default port and train a tiny config for one epoch; a machine whose partner never comes stops with a
message naming the address and the port."""

import argparse
import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from lib.train import launch
from lib.train.run_training import make_settings
from tests.conftest import PROJECT_ROOT, need_shared
from tests.train_helpers import build_layout

sys.path.insert(0, str(PROJECT_ROOT / "tracking"))
import train as train_cli  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_env(layout, tmp_path):
    env = layout["env"]
    return dict(os.environ, OMP_NUM_THREADS="1", TRACKING_WORKSPACE_DIR=str(tmp_path),
                TRACKING_GOT10K_DIR=env.got10k_dir, TRACKING_LASOT_DIR=env.lasot_dir,
                TRACKING_DATASPEC_PATH=env.dataspec_path)


def test_multi_node_default_port_is_fixed():
    args = train_cli.parse_args(["--script", "ostrack", "--mode", "multi_node", "--nproc_per_node", "8",
                                 "--nnodes", "2", "--node_rank", "1", "--master_addr", "10.0.0.1"])
    cmd = train_cli.build_command(args)
    assert cmd[cmd.index("--master_port") + 1] == str(launch.DEFAULT_MASTER_PORT) == "20000"
    assert cmd[cmd.index("--rdzv_conf") + 1] == f"timeout={launch.DEFAULT_RDZV_TIMEOUT}"
    with pytest.raises(launch.UserError, match="--node_rank 2"):
        train_cli.build_command(train_cli.parse_args(["--script", "ostrack", "--mode", "multi_node",
                                                      "--nproc_per_node", "1", "--nnodes", "2", "--node_rank", "2"]))


@pytest.mark.slow
def test_two_nodes_on_localhost_train_one_epoch(tmp_path):
    layout = build_layout(need_shared("data"), tmp_path / "data")
    cfg = yaml.safe_load((PROJECT_ROOT / "experiments/ostrack/tiny_cpu.yaml").read_text())
    cfg["TRAIN"].update(EPOCH=1, NUM_WORKER=0, BATCH_SIZE=2, VAL_EPOCH_INTERVAL=2, PRINT_INTERVAL=1)
    cfg["DATA"]["TRAIN"]["SAMPLE_PER_EPOCH"] = 8
    config = tmp_path / "two_nodes.yaml"
    config.write_text(yaml.safe_dump(cfg))
    port = _free_port()
    out = tmp_path / "out"
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "tracking/train.py", "--script", "ostrack", "--config", str(config), "--save_dir",
               str(out), "--mode", "multi_node", "--nproc_per_node", "1", "--nnodes", "2", "--node_rank", str(node),
               "--master_addr", "127.0.0.1", "--master_port", str(port), "--rdzv_timeout", "120", "--no_progress"]
        procs.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=_run_env(layout, tmp_path), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=300)[0])
        finally:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    ckpt = torch.load(out / "checkpoints/train/ostrack/two_nodes/OSTrack_ep0001.pth.tar", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["settings"]["world_size"] == 2 and len(ckpt["rng_state"]) == 2
    assert "--node_rank 0" in ckpt["launch_command"]  # node 0 (global rank 0) wrote it
    log = (out / "logs/ostrack-two_nodes.log").read_text()
    assert "[train: 1, 2 / 2]" in log  # 8 samples / (2 nodes x batch 2) = 2 iterations


def test_a_lone_node_times_out_naming_address_and_port(tmp_path):
    port = _free_port()
    cmd = [sys.executable, "tracking/train.py", "--script", "ostrack", "--config", "tiny_cpu", "--save_dir",
           str(tmp_path), "--mode", "multi_node", "--nproc_per_node", "1", "--nnodes", "2", "--node_rank", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(port), "--rdzv_timeout", "2"]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: ") and f"127.0.0.1:{port}" in last and "within 2 s" in last


def test_run_options_travel_to_every_process():
    args = train_cli.parse_args(["--script", "ostrack", "--mode", "multiple", "--nproc_per_node", "2",
                                 "--save_every", "5", "--save_every_iters", "500", "--accum_iter", "2", "--no_resume",
                                 "--random_init", "--no_progress"])
    cmd = train_cli.build_command(args)
    run = cmd.index(next(c for c in cmd if c.endswith("run_training.py")))
    tail = cmd[run + 1:]
    assert tail[tail.index("--save_every") + 1] == "5" and tail[tail.index("--save_every_iters") + 1] == "500"
    assert tail[tail.index("--accum_iter") + 1] == "2"
    assert {"--no_resume", "--random_init", "--no_progress"} <= set(tail) and "--resume_changed_config" not in tail
    parser = argparse.ArgumentParser()
    launch.add_run_options(parser)
    options = vars(parser.parse_args(tail[tail.index("--save_every"):]))
    settings = make_settings("ostrack", "tiny_cpu", "out", env=object(), **options)
    assert settings.save_every_iters == 500 and settings.no_resume and settings.progress_bar is False
