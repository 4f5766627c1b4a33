"""Print the speed of the training pipeline: frames decoded per second, samples per second of one data
worker (jpeg4py and OpenCV), and training iterations per second of a config.

    # real frames from ../shared/data laid out as GOT-10k / LaSOT training sets in a temporary folder
    python tracking/benchmark_train.py --script ostrack --config tiny_cpu --shared ../shared/data
    # a full config on the same frames (CPU: a small batch; the pretrained file is not needed for speed)
    python tracking/benchmark_train.py --config vitb_256_mae_ce_32x4_ep300 --shared ../shared/data --batch 2 --iters 2
    # your own datasets (the roots of lib/train/admin/local.py), on a GPU, batch 32 with AMP
    python tracking/benchmark_train.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 --device cuda --amp fp16

Figures depend on the machine and its load; the note in the README records the ones measured.
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import _init_paths  # noqa: F401

import torch

from lib.config import load_config
from lib.train.actors import get_recipe
from lib.train.base_functions import build_dataloaders, update_settings
from lib.train.benchmark import bench_decode, bench_iterations, bench_samples, with_backend
from lib.train.run_training import init_seeds, make_settings
from lib.utils.errors import UserError, add_verbose_argument, check_positive, run_cli
from lib.utils.image import jpeg4py_available


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", default="ostrack")
    parser.add_argument("--config", default="tiny_cpu", help="experiments/<script>/<config>.yaml (name or path)")
    parser.add_argument("--shared", default=None, help="../shared/data: lay its sequences out as training sets")
    parser.add_argument("--demo", default=None, help="a training set made by tracking/make_demo_training_set.py")
    parser.add_argument("--batch", type=int, default=None, help="override TRAIN.BATCH_SIZE")
    parser.add_argument("--amp", choices=["off", "fp16", "bf16"], default=None, help="override TRAIN.AMP")
    parser.add_argument("--samples", type=int, default=40, help="samples per worker measurement")
    parser.add_argument("--iters", type=int, default=10, help="training iterations to time (0: skip)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num_workers", type=int, default=0, help="loader workers of the end-to-end figure")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the training step")
    parser.add_argument("--repeat", type=int, default=3, help="measure each figure this many times (median, best)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    for name, minimum in (("samples", 1), ("iters", 0), ("num_workers", 0), ("threads", 1), ("repeat", 1)):
        check_positive(getattr(args, name), f"--{name}", minimum=minimum)
    if args.shared and not os.path.isdir(os.path.join(args.shared, "otb")):
        raise UserError(f"--shared '{args.shared}' holds no otb/ folder (expected ../shared/data)")

    env = None
    if args.shared or args.demo:
        from lib.train.admin.environment import EnvironmentSettings
        from lib.train.dataset.demo_layout import make_demo_training_set

        tmp = Path(tempfile.mkdtemp(prefix="bench_layout_"))
        env = EnvironmentSettings()
        if args.demo:
            demo = Path(args.demo)
            paths = {"got10k_dir": demo / "got10k" / "train", "lasot_dir": demo / "lasot",
                     "dataspec_path": demo / "data_specs"}
        else:
            paths = make_demo_training_set(Path(args.shared), tmp / "data")
        for field, path in paths.items():
            setattr(env, field, str(path))
        env.workspace_dir = str(tmp)
        env.tensorboard_dir = str(tmp / "tensorboard")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.script, args.config)
    if args.batch:
        cfg.TRAIN.BATCH_SIZE = args.batch
    if args.amp:
        cfg.TRAIN.AMP = {"off": False, "fp16": "fp16", "bf16": "bf16"}[args.amp]
    if env is not None:  # the demo set holds LaSOT- and GOT-10k-shaped data only
        cfg.DATA.TRAIN.DATASETS_NAME, cfg.DATA.TRAIN.DATASETS_RATIO = ["LASOT", "GOT10K_train_full"], [1, 1]
        if "VAL" in cfg.DATA:
            cfg.DATA.VAL.DATASETS_NAME, cfg.DATA.VAL.DATASETS_RATIO = ["GOT10K_train_full"], [1]
    init_seeds(0)
    settings = make_settings(args.script, args.config, tempfile.mkdtemp(prefix="bench_out_"), env=env,
                             device=torch.device(args.device), num_workers=args.num_workers)
    settings.console = False
    settings.progress_bar = False
    settings.random_init = True  # speed does not depend on the weights: a missing pretrained file is fine
    recipe = get_recipe(args.script)  # the script's own settings and loaders (AiATrack: references)
    (recipe.update_settings or update_settings)(settings, cfg)
    loader, _ = (recipe.build_dataloaders or build_dataloaders)(cfg, settings)
    sampler = loader.dataset
    device = args.device
    if torch.device(args.device).type == "cuda":
        device += f" ({torch.cuda.get_device_name(torch.device(args.device))})"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {device}")
    template = cfg.DATA.TEMPLATE.get("SIZE", "-")  # AiATrack has no template crop
    print(f"config {args.script}/{args.config}: search {cfg.DATA.SEARCH.SIZE}, template {template}, "
          f"batch {cfg.TRAIN.BATCH_SIZE}, datasets {list(cfg.DATA.TRAIN.DATASETS_NAME)}")

    frames = [d.frame_location(seq, 0) for d in sampler.datasets
              if hasattr(d, "frame_location") and getattr(d, "storage", None) is not None and d.storage.kind == "folder"
              for seq in range(min(4, d.get_num_sequences()))]
    def report(what, values, unit):
        values = sorted(values)
        print(f"{what}: {statistics.median(values):.2f} {unit} (median of {len(values)}, best {values[-1]:.2f})")

    backends = ["jpeg4py", "opencv"] if jpeg4py_available() else ["opencv"]
    for backend in backends:
        if frames:
            report(f"decode [{backend}]", [bench_decode(frames, backend, repeat=5) for _ in range(args.repeat)],
                   "frames/s (one thread)")
        with_backend(sampler.datasets, backend)
        report(f"data pipeline [{backend}]", [bench_samples(sampler, args.samples) for _ in range(args.repeat)],
               "samples/s per worker")

    if args.iters > 0:
        from lib.train.train_script import build_trainer

        with_backend(sampler.datasets, backends[0])
        trainer, _ = build_trainer(settings, cfg=cfg)
        runs = [bench_iterations(trainer, trainer.loaders[0], args.iters) for _ in range(args.repeat)]
        what = f"training [{args.device}, batch {cfg.TRAIN.BATCH_SIZE}, AMP {cfg.TRAIN.get('AMP', False)}]"
        report(f"{what} forward+backward+step", [r["compute"] for r in runs], "it/s")
        report(f"{what} with the loader ({args.num_workers} workers)", [r["end_to_end"] for r in runs], "it/s")


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="benchmark_train.py"))
