"""Train a tracker: one process, or several with DDP through torchrun.

    python tracking/train.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --save_dir ./output --mode single
    python tracking/train.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --save_dir ./output \\
        --mode multiple --nproc_per_node 4
    # several machines: run on each with its --node_rank
    python tracking/train.py ... --mode multiple --nproc_per_node 8 --nnodes 2 --node_rank 0 \\
        --master_addr 10.0.0.1 --master_port 29500
    # two-stage training (STARK-ST stage 2 starts from stage 1's last checkpoint)
    python tracking/train.py --script stark_st2 --config baseline --script_prv stark_st1 --config_prv baseline ...

Checkpoints go to <save_dir>/checkpoints/train/<script>/<config>/, logs to <save_dir>/logs/. A run resumes
from its newest checkpoint automatically; --resume PATH starts from a given one.
"""
import argparse
import glob
import os
import random
import re
import subprocess
import sys

import _init_paths  # noqa: F401

_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "train", "run_training.py")


def build_command(args) -> list:
    """The command line that runs the training processes."""
    train_args = ["--script", args.script, "--config", args.config, "--save_dir", args.save_dir,
                  "--use_lmdb", str(args.use_lmdb), "--use_wandb", str(args.use_wandb), "--seed", str(args.seed)]
    if args.script_prv:
        train_args += ["--script_prv", args.script_prv, "--config_prv", args.config_prv]
    if args.resume:
        train_args += ["--resume", args.resume]
    if args.num_workers is not None:
        train_args += ["--num_workers", str(args.num_workers)]
    if args.skip_bad_data:
        train_args += ["--skip_bad_data", "1"]
    run = os.path.normpath(_RUN)
    if args.mode == "single":
        return [sys.executable, run] + train_args
    if not args.nproc_per_node:
        raise SystemExit("train.py: --mode multiple needs --nproc_per_node")
    port = args.master_port or random.randint(10000, 50000)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.nproc_per_node),
                "--nnodes", str(args.nnodes), "--node_rank", str(args.node_rank),
                "--master_addr", args.master_addr, "--master_port", str(port)]
    return launcher + [run] + train_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, help="training script: ostrack, grm, stark_s, stark_st1, ...")
    parser.add_argument("--config", default="baseline", help="experiments/<script>/<config>.yaml (name or path)")
    parser.add_argument("--save_dir", default="./output", help="root of checkpoints, logs and TensorBoard files")
    parser.add_argument("--mode", choices=["single", "multiple", "multi_node"], default="multiple",
                        help="one process, or DDP with torchrun (multi_node = multiple with --nnodes > 1)")
    parser.add_argument("--nproc_per_node", type=int, help="processes (GPUs) per machine with --mode multiple")
    parser.add_argument("--nnodes", type=int, default=1, help="number of machines")
    parser.add_argument("--node_rank", type=int, default=0, help="rank of this machine")
    parser.add_argument("--master_addr", default="127.0.0.1", help="address of the rank-0 machine")
    parser.add_argument("--master_port", type=int, default=None, help="port of rank 0 (default random 10000-50000)")
    parser.add_argument("--use_lmdb", type=int, choices=[0, 1], default=0, help="read the datasets' lmdb copies")
    parser.add_argument("--use_wandb", type=int, choices=[0, 1], default=0, help="log to Weights & Biases")
    parser.add_argument("--script_prv", default=None, help="previous stage's script (two-stage training)")
    parser.add_argument("--config_prv", default="baseline", help="previous stage's config")
    parser.add_argument("--resume", default=None, help="'latest' (default behaviour) or a checkpoint file")
    parser.add_argument("--seed", type=int, default=42, help="base seed (rank r uses seed + r)")
    parser.add_argument("--num_workers", type=int, default=None, help="override TRAIN.NUM_WORKER")
    parser.add_argument("--skip_bad_data", type=int, choices=[0, 1], default=0,
                        help="log and skip corrupt frames / broken annotations (the official behaviour) instead of "
                             "stopping with an error naming the file")
    return parser.parse_args(argv)


def check_resume_checkpoint(args) -> None:
    """Pre-flight: the checkpoint the run would resume from (``--resume`` file or folder, else the newest in
    ``<save_dir>/checkpoints/train/<script>/<config>/``) loads safely and holds network weights, before any
    process starts.

    Raises:
        lib.utils.checkpoint.CheckpointError: naming the file (exit status 2).
    """
    from lib.utils.checkpoint import CheckpointError, verify_checkpoint

    if args.resume and args.resume != "latest":
        path = os.path.expanduser(args.resume)
        folder = path if os.path.isdir(path) else None
    else:
        config_name = os.path.splitext(os.path.basename(args.config))[0]
        path, folder = None, os.path.join(args.save_dir, "checkpoints", "train", args.script, config_name)
    if folder is not None:
        found = glob.glob(os.path.join(folder, "*_ep*.pth.tar"))
        if not found:
            if path is not None:
                raise CheckpointError(f"--resume folder '{path}' holds no checkpoint (*_ep*.pth.tar)")
            return
        path = max(found, key=lambda p: int((re.search(r"_ep(\d+)", os.path.basename(p)) or [0, -1])[1]))
    verify_checkpoint(path)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_resume_checkpoint(args)
    cmd = build_command(args)
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    from lib.utils.errors import run_cli

    sys.exit(run_cli(main, prog="train.py"))
