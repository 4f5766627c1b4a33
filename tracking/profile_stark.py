"""Forward latency of the STARK networks (one tracking step with cached template features).

    python tracking/profile_stark.py                       # S50, ST50, ST101 on CPU
    python tracking/profile_stark.py --threads 2 --runs 20 --device cpu

A step is what the tracker runs per frame: the backbone on the 320x320 search region, the
concatenation with the cached template tokens (1 template for STARK-S, 2 for STARK-ST), the
transformer, the corner head (and the score head for STARK-ST). Random weights, float32, batch 1,
``torch.no_grad``; the median over ``--runs`` timed steps after ``--warmup`` untimed ones. The process
CPU time (summed over threads) is printed too: on a shared machine it moves less than wall time.
"""
import argparse
import platform
import statistics
import time

import _init_paths  # noqa: F401
import torch

from lib.models import build_network
from lib.utils.merge import merge_template_search
from lib.utils.misc import NestedTensor, resolve_device

MODELS = {"S50": ("stark_s", "baseline", 1), "ST50": ("stark_st2", "baseline", 2),
          "ST101": ("stark_st2", "baseline_R101", 2)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile(name: str, device: torch.device, runs: int, warmup: int) -> dict:
    """Median/min step latency (ms) and parameter count of one model of :data:`MODELS`."""
    script, config, n_templates = MODELS[name]
    net = build_network(script, config, device=device)
    gen = torch.Generator().manual_seed(0)
    template = NestedTensor(torch.randn(1, 3, 128, 128, generator=gen).to(device),
                            torch.zeros(1, 128, 128, dtype=torch.bool, device=device))
    search = NestedTensor(torch.randn(1, 3, 320, 320, generator=gen).to(device),
                          torch.zeros(1, 320, 320, dtype=torch.bool, device=device))
    heads = {"run_box_head": True, "run_cls_head": True} if script != "stark_s" else {"run_box_head": True}
    times, backbone_times, cpu_times = [], [], []
    with torch.no_grad():
        z_dicts = [net.forward_backbone(template) for _ in range(n_templates)]
        for i in range(warmup + runs):
            _sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            x_dict = net.forward_backbone(search)
            _sync(device)
            t1 = time.perf_counter()
            net.forward_transformer(seq_dict=merge_template_search(z_dicts + [x_dict]), **heads)
            _sync(device)
            t2, c2 = time.perf_counter(), time.process_time()
            if i >= warmup:
                times.append((t2 - t0) * 1000)
                cpu_times.append((c2 - c0) * 1000)
                backbone_times.append((t1 - t0) * 1000)
    return {"model": name, "config": f"{script}/{config}", "params_M": sum(p.numel() for p in net.parameters()) / 1e6,
            "step_ms_median": statistics.median(times), "step_ms_min": min(times),
            "backbone_ms_median": statistics.median(backbone_times), "cpu_ms_median": statistics.median(cpu_times)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"torch {torch.__version__}, device {device} ({what}), threads {torch.get_num_threads()}, float32, "
          f"batch 1, {args.warmup} warm-up + {args.runs} timed steps")
    for name in args.models:
        r = profile(name, device, args.runs, args.warmup)
        print(f"{r['model']:6s} {r['config']:24s} params {r['params_M']:.2f} M  step median {r['step_ms_median']:.1f} ms "
              f"(min {r['step_ms_min']:.1f})  backbone median {r['backbone_ms_median']:.1f} ms  "
              f"process CPU time median {r['cpu_ms_median']:.1f} ms (all threads)")


if __name__ == "__main__":
    main()
