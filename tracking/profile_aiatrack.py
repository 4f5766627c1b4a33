"""CPU/GPU speed of AiATrack: per-frame network latency with feature reuse, and tracker frames/s on a
real sequence.

Per-frame cost (what ``AiATrackTracker.track`` runs): backbone + encoder of the search region,
decoder against ``1 + n`` cached reference memories, corner head and IoU head. For comparison the
same step without feature reuse (every reference re-encoded) is timed too.

Example::

    python tracking/profile_aiatrack.py --config baseline --threads 2 --runs 20 \
        --sequence ../shared/data/otb/Crossing --frames 40
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

import _init_paths  # noqa: F401
import torch

from lib.config import load_config
from lib.models import build_network
from lib.models.aiatrack import target_background_region
from lib.test.tracker.aiatrack import AiATrackTracker, hyper_parameters
from lib.test.tracker.base import TrackerParams
from lib.utils.image import imread_rgb
from lib.utils.misc import NestedTensor, resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, runs: int, warmup: int, device: torch.device) -> str:
    """Median wall-clock and process-CPU milliseconds of ``fn`` (CPU time: all threads together; on a
    shared machine it is less disturbed by other processes than wall-clock time)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return f"median wall {statistics.median(wall):8.1f} ms, process CPU {statistics.median(cpu):8.1f} ms"


def profile_network(config: str, device: torch.device, runs: int, warmup: int, dataset: str) -> None:
    cfg = load_config("aiatrack", config)
    _, num_short, _, key = hyper_parameters(cfg, dataset)
    net = build_network("aiatrack", cfg, device=device).eval()
    size = int(cfg.TEST.SEARCH_SIZE)
    img = torch.randn(1, 3, size, size, device=device)
    mask = torch.zeros(1, size, size, dtype=torch.bool, device=device)
    n_refs = 1 + num_short
    with torch.no_grad():
        ref = net.forward_backbone(NestedTensor(img, mask))
        mem = net.transformer.run_encoder(ref["feat"], ref["mask"], ref["pos"], ref["inr"])
        region = target_background_region(torch.tensor([0.4, 0.4, 0.2, 0.2]), size // 16)[None].to(device)
        emb = net.refer_embedding(region)
        cached = dict(refer_mem_list=[mem] * n_refs, refer_emb_list=[emb] * n_refs,
                      refer_pos_list=[ref["inr"]] * n_refs, refer_msk_list=[ref["mask"]] * n_refs)

        def step_reuse():
            search = net.forward_backbone(NestedTensor(img, mask))
            out_embed = net.forward_transformer(search_dic=search, **cached)[0]
            _, coord = net.forward_box_head(out_embed)
            net.forward_iou_head(out_embed, coord[None, None])

        def step_no_reuse():
            search = net.forward_backbone(NestedTensor(img, mask))
            refs = [net.forward_backbone(NestedTensor(img, mask)) for _ in range(n_refs)]
            out_embed = net.forward_transformer(search_dic=search, refer_dic_list=refs, refer_reg_list=[region] * n_refs)[0]
            _, coord = net.forward_box_head(out_embed)
            net.forward_iou_head(out_embed, coord[None, None])

        parts = {
            "backbone (search)": lambda: net.forward_backbone(NestedTensor(img, mask)),
            "encoder (search)": lambda: net.transformer.run_encoder(ref["feat"], ref["mask"], ref["pos"], ref["inr"]),
            f"decoder ({n_refs} cached refs)": lambda: net.transformer.run_decoder(mem, *cached.values()),
        }
        print(f"AiATrack {config}, HYPER {key}: {n_refs} references; {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M "
              f"parameters; device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, fp32")
        for name, fn in parts.items():
            print(f"  {name:<30s} {_median_ms(fn, runs, warmup, device)}")
        print(f"  {'per-frame step, feature reuse':<30s} {_median_ms(step_reuse, runs, warmup, device)}")
        print(f"  {'per-frame step, no reuse':<30s} {_median_ms(step_no_reuse, max(3, runs // 4), 1, device)}")


def profile_tracker(config: str, device: torch.device, sequence: str, frames: int, dataset: str) -> None:
    img_dir = os.path.join(sequence, "img")
    with open(os.path.join(sequence, "groundtruth_rect.txt")) as f:
        first_box = [float(v) for v in re.split(r"[,\s]+", f.readline().strip())]
    names = sorted(os.listdir(img_dir))[:frames]
    images = [imread_rgb(os.path.join(img_dir, n)) for n in names]
    params = TrackerParams.create("aiatrack", config, checkpoint=None, require_checkpoint=False, device=device)
    tracker = AiATrackTracker(params, dataset)
    tracker.initialize(images[0], {"init_bbox": first_box})
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for image in images[1:]:
        tracker.track(image)
    _sync(device)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(images) - 1
    print(f"  tracker on {os.path.basename(sequence.rstrip('/'))} ({images[0].shape[1]}x{images[0].shape[0]}, "
          f"{n} frames after init, random weights): {n / elapsed:.2f} frames/s wall "
          f"({1000 * elapsed / n:.1f} ms/frame incl. crop and preprocessing), process CPU {1000 * cpu / n:.1f} ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="baseline")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dataset", default="otb", help="selects the TEST.HYPER entry (number of references)")
    parser.add_argument("--sequence", default=None, help="OTB-layout sequence folder for the tracker fps")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    profile_network(args.config, device, args.runs, args.warmup, args.dataset)
    if args.sequence:
        profile_tracker(args.config, device, args.sequence, args.frames, args.dataset)


if __name__ == "__main__":
    main()
