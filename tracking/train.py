"""Train a tracker: one process, or several with DDP through torchrun.

    python tracking/train.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --save_dir ./output --mode single
    python tracking/train.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --save_dir ./output \\
        --mode multiple --nproc_per_node 4
    # several machines: run on each with its --node_rank (same --master_addr; port default 20000; README)
    python tracking/train.py ... --mode multi_node --nproc_per_node 8 --nnodes 2 --node_rank 0 \\
        --master_addr 10.0.0.1
    # two-stage training (STARK-ST stage 2 starts from stage 1's last checkpoint)
    python tracking/train.py --script stark_st2 --config baseline --script_prv stark_st1 --config_prv baseline ...

Checkpoints go to <save_dir>/checkpoints/train/<script>/<config>/, logs to <save_dir>/logs/. A run resumes
from its newest checkpoint automatically; --resume PATH starts from a given one. A wrong option, script or
config value stops with one message and exit status 2 before anything is launched (--verbose: with traceback).
One training at a time per checkpoint folder: a lock file there (.training.lock) refuses a second one, naming the
PID that holds it; a lock left by a process that died is taken over with a notice. Stopping train.py (Ctrl-C,
SIGTERM, even SIGKILL) stops the trainer processes and every DDP rank.
"""
import argparse
import contextlib
import glob
import os
import re
import sys

import _init_paths  # noqa: F401

from lib.train import launch
from lib.utils.errors import UserError, add_verbose_argument, check_positive, run_cli

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
    train_args += launch.run_options_argv(args)
    run = os.path.normpath(_RUN)
    if args.mode == "single":
        return [sys.executable, run] + train_args
    if not args.nproc_per_node:
        raise SystemExit("train.py: --mode multiple needs --nproc_per_node")
    args.master_port = launch.resolve_master_port(args.master_port, args.nnodes)
    launcher = launch.torchrun_command(args.nproc_per_node, args.nnodes, args.node_rank, args.master_addr,
                                       args.master_port, args.rdzv_timeout)
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
    parser.add_argument("--master_port", type=int, default=None,
                        help=f"port of rank 0 (default {launch.DEFAULT_MASTER_PORT} with --nnodes > 1, else random)")
    parser.add_argument("--rdzv_timeout", type=int, default=launch.DEFAULT_RDZV_TIMEOUT,
                        help="seconds the machines of a multi-node run wait for each other")
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
    launch.add_run_options(parser)
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def check_args(args) -> None:
    """Check the command line before anything is launched: numbers, the script and its config (types and ranges).

    Raises:
        UserError: an invalid option value; ConfigError: an unknown script, a missing or invalid config.
    """
    from lib.config import load_config

    check_positive(args.nproc_per_node, "--nproc_per_node")
    check_positive(args.nnodes, "--nnodes")
    check_positive(args.num_workers, "--num_workers", minimum=0)
    if not 0 <= args.node_rank < args.nnodes:
        raise UserError(f"--node_rank must be in [0, --nnodes - 1] = [0, {args.nnodes - 1}], got {args.node_rank}")
    if args.master_port is not None and not 1 <= args.master_port <= 65535:
        raise UserError(f"--master_port must be a port number in [1, 65535], got {args.master_port}")
    if args.mode != "single" and not args.nproc_per_node:
        raise UserError(f"--mode {args.mode} needs --nproc_per_node (processes per machine); "
                        f"use --mode single for one process")
    load_config(args.script, args.config)
    if args.script_prv:
        load_config(args.script_prv, args.config_prv)
    if args.resume not in (None, "latest") and not os.path.exists(args.resume):
        raise UserError(f"--resume: checkpoint file or folder '{args.resume}' does not exist")


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
    from lib.train.admin.lock import TRAINING_LOCK_ENV, training_lock
    from lib.utils.process import PARENT_PID_ENV

    args = parse_args(argv)
    check_args(args)
    if args.verbose:  # the trainer processes' run_cli reads it
        os.environ["TRACKING_VERBOSE"] = "1"
    check_resume_checkpoint(args)
    cmd = build_command(args)
    # One training per checkpoint folder; in a multi-machine run the machine of node rank 0 holds the lock.
    lock = training_lock(args.save_dir, args.script, args.config) if args.node_rank == 0 else contextlib.nullcontext()
    with lock as lock_path:
        print(" ".join(cmd), flush=True)
        env = dict(os.environ, **{PARENT_PID_ENV: str(os.getpid())})
        if lock_path:
            env[TRAINING_LOCK_ENV] = lock_path
        return launch.run_launcher(cmd, args.nnodes if args.mode != "single" else 1, args.master_addr,
                                   args.master_port or 0, args.rdzv_timeout, args.node_rank, env=env)


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="train.py"))
