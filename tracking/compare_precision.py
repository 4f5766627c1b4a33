"""How far reduced precision (or the device-side crop) moves each tracker's boxes from its fp32 boxes.

    python tracking/compare_precision.py                                  # every tracker, bf16 and fp16, OTB
    python tracking/compare_precision.py --trackers ostrack stark_st --frames 30 --precisions bf16
    python tracking/compare_precision.py --crop                           # device crop vs cv2 crop, fp32
    python tracking/compare_precision.py --csv precision.csv

For each tracker the network is built with ``torch.manual_seed(SEED)`` (random but deterministic weights)
and saved as a checkpoint under ``--checkpoint_dir``; the tracker then runs from that checkpoint on the
first ``--frames`` frames of every sequence of ``--sequences`` (default: the shared OTB sequences), once in
fp32 and once per ``--precisions`` (autocast), starting from the ground-truth first box. Per tracker and
precision it prints the mean and minimum per-frame IoU between the fp32 box and the reduced-precision box
(1 = identical) and the largest centre offset in pixels. Random weights give meaningless boxes, so the
trajectories can drift apart once a frame's difference changes a decision (argmax cell, template update);
the figures bound the numerical deviation, not the accuracy of a trained tracker.

``--crop`` instead compares the device-side crop (``lib.utils.crop.sample_target_tensor`` /
``warp_subwindow_tensor``, the CUDA default) with the cv2 crop, both fp32, on the device given.
"""
import argparse
import datetime
import os
import time

import _init_paths  # noqa: F401
import numpy as np
import torch

from lib.config import PROJECT_ROOT, load_config
from lib.models import build_network
from lib.utils.errors import UserError, add_verbose_argument, check_positive, run_cli
from lib.test.tracker import get_tracker_class, get_tracker_entry
from lib.test.tracker.base import TrackerParams
from lib.test.utils.profiling import append_csv_row, load_average, load_sequence_frames
from lib.utils.checkpoint import save_checkpoint_atomic
from lib.utils.misc import resolve_device

SHARED_DIR = os.environ.get("TRACKING_SHARED_DIR", os.path.join(PROJECT_ROOT.parent, "shared"))
DEFAULT_CONFIGS = {"ostrack": "vitb_256_mae_ce_32x4_ep300", "grm": "vitb_256_ep300", "stark_s": "baseline",
                   "stark_st": "baseline", "aiatrack": "baseline", "sparsett": "sparsett_swin_fulldata"}


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row IoU of two ``(N, 4)`` xywh box arrays (pixels)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-12)


def seeded_checkpoint(name: str, config: str, folder: str, seed: int) -> str:
    """Build the network of tracker ``name`` with ``torch.manual_seed(seed)`` and save it (``{'net': ...}``)."""
    script = get_tracker_entry(name).script
    path = os.path.join(folder, f"{name}__{config}__seed{seed}.pth.tar")
    if not os.path.isfile(path):
        torch.manual_seed(seed)
        net = build_network(script, load_config(script, config))
        save_checkpoint_atomic({"net": net.state_dict()}, path)
    return path


def run_boxes(name: str, config: str, checkpoint: str, device, precision: str, sequences, dataset: str,
              **extra) -> list:
    """Boxes (``(N, 4)`` arrays, first frame excluded) of the tracker on each sequence."""
    params = TrackerParams.create(name, config, checkpoint=checkpoint, device=device, precision=precision, **extra)
    tracker = get_tracker_class(name)(params, dataset)
    out = []
    for frames, box in sequences:
        tracker.initialize(frames[0], {"init_bbox": list(box)})
        out.append(np.asarray([tracker.track(f)["target_bbox"] for f in frames[1:]], dtype=np.float64))
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trackers", nargs="+", default=list(DEFAULT_CONFIGS), choices=list(DEFAULT_CONFIGS))
    parser.add_argument("--config", action="append", default=[], metavar="TRACKER=CONFIG",
                        help="config of a tracker (default: the official ones above)")
    parser.add_argument("--sequences", default=os.path.join(SHARED_DIR, "data", "otb"),
                        help="folder of OTB-style sequences (each with img/ and groundtruth_rect.txt)")
    parser.add_argument("--frames", type=int, default=20, help="frames per sequence (the first one initialises)")
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp16"], choices=["bf16", "fp16"])
    parser.add_argument("--crop", action="store_true", help="compare the device crop with the cv2 crop instead")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="otb", help="benchmark name given to the trackers (hyper-parameters)")
    parser.add_argument("--checkpoint_dir", default="/tmp/compare_precision")
    parser.add_argument("--csv", default=None, help="append one row per tracker and variant to this CSV file")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    check_positive(args.frames, "--frames", minimum=2)
    check_positive(args.threads, "--threads")
    if not os.path.isdir(args.sequences):
        raise UserError(f"--sequences '{args.sequences}' is not a folder of OTB-style sequences")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    configs = dict(DEFAULT_CONFIGS)
    for item in args.config:
        key, _, value = item.partition("=")
        if key not in configs or not value:
            raise SystemExit(f"--config expects TRACKER=CONFIG with a tracker of {list(configs)}, got '{item}'")
        configs[key] = value
    folders = sorted(os.path.join(args.sequences, d) for d in os.listdir(args.sequences)
                     if os.path.isdir(os.path.join(args.sequences, d, "img")))
    if not folders:
        raise SystemExit(f"no OTB-style sequences (folders with img/) in '{args.sequences}'")
    sequences = [load_sequence_frames(f, args.frames) for f in folders]
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    variants = ([("device crop", "fp32", {"device_crop": True})] if args.crop
                else [(p, p, {}) for p in args.precisions])
    reference_extra = {"device_crop": False} if args.crop else {}
    print(f"sequences: {', '.join(os.path.basename(f) for f in folders)} ({args.frames} frames each); device "
          f"{device}, torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}")
    header = (f"{'tracker':>9} {'variant':>12} {'frames':>6} {'mean IoU':>9} {'min IoU':>9} {'max centre px':>13} "
              f"{'s':>6}")
    print(header)
    for name in args.trackers:
        config = configs[name]
        checkpoint = seeded_checkpoint(name, config, args.checkpoint_dir, args.seed)
        ref = run_boxes(name, config, checkpoint, device, "fp32", sequences, args.dataset, **reference_extra)
        for label, precision, extra in variants:
            t0 = time.perf_counter()
            try:
                other = run_boxes(name, config, checkpoint, device, precision, sequences, args.dataset, **extra)
            except RuntimeError as exc:  # e.g. an op without a kernel for this dtype on this device
                print(f"{name:>9} {label:>12}  failed: {exc}")
                continue
            a, b = np.concatenate(ref), np.concatenate(other)
            iou = box_iou_xywh(a, b)
            centre = np.hypot(a[:, 0] + a[:, 2] / 2 - b[:, 0] - b[:, 2] / 2,
                              a[:, 1] + a[:, 3] / 2 - b[:, 1] - b[:, 3] / 2)
            elapsed = time.perf_counter() - t0
            print(f"{name:>9} {label:>12} {len(iou):>6} {iou.mean():>9.5f} {iou.min():>9.5f} {centre.max():>13.3f} "
                  f"{elapsed:>6.0f}", flush=True)
            if args.csv:
                append_csv_row(args.csv, {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                                          "tracker": name, "config": config, "variant": label,
                                          "device": str(device),
                                          "torch": torch.__version__, "threads": torch.get_num_threads(),
                                          "seed": args.seed, "frames": len(iou),
                                          "mean_iou": round(float(iou.mean()), 6),
                                          "min_iou": round(float(iou.min()), 6),
                                          "max_centre_px": round(float(centre.max()), 4), "load_avg": load_average()})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="compare_precision.py"))
