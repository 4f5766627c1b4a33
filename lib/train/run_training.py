"""Run one training process (launched directly for one process, or by ``torchrun`` for DDP).

    python lib/train/run_training.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --save_dir ./output

Under ``torchrun`` the rank comes from the ``LOCAL_RANK`` / ``RANK`` / ``WORLD_SIZE`` environment variables
(a ``--local_rank`` argument of the deprecated launcher is accepted and ignored). Each rank seeds python,
numpy and torch with ``seed + rank``. Source: OSTrack/STARK ``lib/train/run_training.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lib.config import experiment_path  # noqa: E402

__all__ = ["init_seeds", "make_settings", "run_training", "stop_with_launcher", "main"]


def init_seeds(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) and make cuDNN deterministic (official ``init_seeds``)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def make_settings(script: str, config: str, save_dir: str, local_rank: int = -1, rank: int = 0, world_size: int = 1,
                  device=None, seed: int = 42, use_lmdb: bool = False, use_wandb: bool = False,
                  script_prv=None, config_prv=None, resume=None, num_workers=None, env=None, skip_bad_data=False,
                  **options):
    """The :class:`~lib.train.admin.settings.Settings` of one run (official ``run_training`` fields).

    ``options`` are the run options of :mod:`lib.train.launch` (``save_every``, ``save_every_iters``,
    ``accum_iter``, ``resume_changed_config``, ``no_resume``, ``random_init``, ``no_progress``), set as
    attributes of the settings."""
    from lib.train.admin.settings import Settings

    cfg_file = str(experiment_path(script, config))
    config_name = os.path.splitext(os.path.basename(cfg_file))[0]
    settings = Settings(env=env)
    settings.script_name = script
    settings.config_name = config_name
    settings.cfg_file = cfg_file
    settings.project_path = f"train/{script}/{config_name}"
    if script_prv and config_prv:
        settings.project_path_prv = f"train/{script_prv}/{config_prv}"
    settings.local_rank = local_rank
    settings.rank = rank
    settings.world_size = world_size
    settings.device = device
    settings.save_dir = os.path.abspath(save_dir)
    settings.use_lmdb = bool(use_lmdb)
    settings.use_wandb = bool(use_wandb)
    settings.seed = seed
    settings.resume = resume
    settings.num_workers = num_workers
    settings.skip_bad_data = bool(skip_bad_data)
    for key, value in options.items():
        setattr(settings, key, value)
    if options.get("no_progress"):
        settings.progress_bar = False
    return settings


def run_training(script: str, config: str, save_dir: str, seed: int = 42, use_lmdb: bool = False,
                 use_wandb: bool = False, script_prv=None, config_prv=None, resume=None, num_workers=None,
                 cudnn_benchmark: bool = False, skip_bad_data: bool = False, **options):
    """Join the DDP group if launched by torchrun, seed, build the settings and train (``options``: see
    :func:`make_settings`)."""
    from lib.train import launch
    from lib.train.admin import multigpu
    from lib.train.train_script import run

    launch.mark_started()
    cv2.setNumThreads(0)
    local_rank, rank, world, device = multigpu.init_distributed()
    init_seeds(seed + rank)
    # init_seeds makes cuDNN deterministic (as the official script ends up); --cudnn_benchmark 1 re-enables autotuning
    torch.backends.cudnn.benchmark = cudnn_benchmark
    # settings.seed is the base seed: workers are seeded from (seed, epoch, rank, worker_id) and the
    # DistributedSampler from (seed, epoch), identical on every rank.
    settings = make_settings(script, config, save_dir, local_rank, rank, world, device, seed, use_lmdb,
                             use_wandb, script_prv, config_prv, resume, num_workers, skip_bad_data=skip_bad_data,
                             **options)
    finished = False
    try:
        result = run(settings)
        finished = True
        return result
    finally:
        multigpu.cleanup_distributed(barrier=finished)


def stop_with_launcher() -> None:
    """End this process when its launcher dies (``tracking/train.py``, which sets ``$TRACKING_PARENT_PID``, or
    ``torchrun``), even one killed by SIGKILL (:func:`lib.utils.process.stop_with_parent`). A process started from
    a shell is left alone (it may be meant to outlive the shell, as with ``nohup``)."""
    from lib.utils.process import PARENT_PID_ENV, stop_with_parent

    if os.environ.get(PARENT_PID_ENV) == str(os.getppid()) or "TORCHELASTIC_RUN_ID" in os.environ:
        stop_with_parent(os.getppid())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run one training process (see tracking/train.py).")
    parser.add_argument("--script", required=True, help="training script (ostrack, grm, stark_s, ...)")
    parser.add_argument("--config", required=True, help="experiments/<script>/<config>.yaml name, or a YAML path")
    parser.add_argument("--save_dir", default="./output", help="checkpoints, logs and TensorBoard go below it")
    parser.add_argument("--seed", type=int, default=42, help="base seed (each rank adds its rank)")
    parser.add_argument("--use_lmdb", type=int, choices=[0, 1], default=0)
    parser.add_argument("--use_wandb", type=int, choices=[0, 1], default=0)
    parser.add_argument("--script_prv", default=None, help="previous stage's script (two-stage training)")
    parser.add_argument("--config_prv", default=None, help="previous stage's config")
    parser.add_argument("--resume", default=None, help="'latest' (default behaviour) or a checkpoint path")
    parser.add_argument("--num_workers", type=int, default=None, help="override TRAIN.NUM_WORKER")
    parser.add_argument("--cudnn_benchmark", type=int, choices=[0, 1], default=0)
    parser.add_argument("--skip_bad_data", type=int, choices=[0, 1], default=0,
                        help="log and skip corrupt frames / broken annotations instead of stopping")
    parser.add_argument("--local_rank", type=int, default=-1, help=argparse.SUPPRESS)  # deprecated launcher
    from lib.train.launch import RUN_OPTIONS, add_run_options

    add_run_options(parser)
    from lib.utils.errors import add_verbose_argument

    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    from lib.train.admin.lock import training_lock

    stop_with_launcher()
    # Rank 0 holds the checkpoint folder's lock (a no-op when train.py holds it for us).
    lock = training_lock(args.save_dir, args.script, args.config) if os.environ.get("RANK", "0") == "0" else \
        contextlib.nullcontext()
    options = {flag[2:]: getattr(args, flag[2:]) for flag, *_ in RUN_OPTIONS}
    with lock:
        run_training(args.script, args.config, args.save_dir, args.seed, bool(args.use_lmdb), bool(args.use_wandb),
                     args.script_prv, args.config_prv, args.resume, args.num_workers, bool(args.cudnn_benchmark),
                     bool(args.skip_bad_data), **options)
    return 0


if __name__ == "__main__":
    from lib.utils.errors import run_cli

    sys.exit(run_cli(main, prog="run_training.py"))
