"""Throughput of batched evaluation: frames per second of ``--batch_sequences B`` for several B.

    python tracking/benchmark_batched.py ostrack vitb_256_mae_ce_32x4_ep300 --otb_path ../shared/data/otb \
        --frames 20 --batch 1 4 [--checkpoint PATH] [--device cpu|cuda] [--precision fp32|bf16] [--threads N]

Runs the test runner (:func:`lib.test.evaluation.running.run_dataset`, as ``tracking/test.py`` does) on the
OTB sequences found in ``--otb_path``, cut to their first ``--frames`` frames (``--repeat K`` lists each
sequence K times under new names, for more sequences than the folder holds), once per batch size, each into
a fresh temporary results folder. Without ``--checkpoint`` the network gets deterministic random weights
(``torch.manual_seed(0)``; speed only). For each B it prints:

* ``tracker fps``: frames / summed per-frame times of the result files (the runner's figure: initialisation
  and tracking steps, frame reads excluded);
* ``wall fps``: frames / wall-clock seconds of the whole run (tracker construction, reads, writing included);
* whether the written boxes equal those of the first B, and the largest difference in pixels.

Hardware, torch version, device, precision and torch threads are printed with the figures. On a CPU, batching
gains little (the matrix products already use every core); it is meant for GPUs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import _init_paths  # noqa: F401

from lib.utils.errors import add_verbose_argument, check_positive, run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tracker_name", help="a tracker with the batched-step protocol (ostrack, grm)")
    parser.add_argument("tracker_param", help="config name or YAML path")
    shared = os.environ.get("TRACKING_SHARED_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                                "shared"))
    parser.add_argument("--otb_path", default=os.path.join(shared, "data", "otb"),
                        help="OTB folder (default: $TRACKING_SHARED_DIR/data/otb, else ../shared/data/otb)")
    parser.add_argument("--frames", type=int, default=20, help="frames per sequence (from the first)")
    parser.add_argument("--repeat", type=int, default=1, help="list every sequence this many times")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="batch sizes to run")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: random weights, seed 0)")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; on CUDA the "
                                                                   "tracker lowers them to 2)")
    parser.add_argument("--cuda_graph", action="store_true",
                        help="capture the batched network step into a CUDA graph (one graph per batch size)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    for name in ("frames", "repeat", "threads"):
        check_positive(getattr(args, name), f"--{name}")
    for b in args.batch:
        check_positive(b, "--batch")

    import numpy as np
    import torch

    from lib.models import build_network
    from lib.test.evaluation.data import Sequence
    from lib.test.evaluation.otbdataset import OTBDataset
    from lib.test.evaluation.running import run_dataset
    from lib.test.evaluation.tracker import Tracker
    from lib.test.tracker import get_tracker_entry
    from lib.test.tracker.base import TrackerParams
    from lib.utils.checkpoint import save_checkpoint_atomic

    if args.threads:
        torch.set_num_threads(args.threads)
    seqs = OTBDataset(base_path=args.otb_path, missing="skip").get_sequence_list()
    seqs = [Sequence(s.name if k == 0 else f"{s.name}_{k}", list(s.frames[:args.frames]), s.dataset,
                     s.ground_truth_rect[:args.frames]) for k in range(args.repeat) for s in seqs]
    n_frames = sum(len(s.frames) for s in seqs)
    with tempfile.TemporaryDirectory(prefix="bench_batched_") as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            params = TrackerParams.create(args.tracker_name, args.tracker_param, require_checkpoint=False)
            torch.manual_seed(0)
            net = build_network(get_tracker_entry(args.tracker_name).script, params.cfg)
            checkpoint = os.path.join(tmp, "random_seed0.pth.tar")
            save_checkpoint_atomic({"net": net.state_dict()}, checkpoint)
        cuda = torch.device(args.device).type == "cuda"
        hw = torch.cuda.get_device_name(torch.device(args.device)) if cuda else (platform.processor() or platform.machine())
        print(f"{args.tracker_name} {args.tracker_param}: {len(seqs)} sequences x {args.frames} frames "
              f"({n_frames} frames) | device {args.device} ({hw}) | torch {torch.__version__}"
              f"{' CUDA ' + torch.version.cuda if cuda else ''} | {args.precision}"
              f"{' + CUDA graph' if args.cuda_graph else ''} | torch threads "
              f"{torch.get_num_threads()} | cpu cores {os.cpu_count()}")
        reference = None
        for b in args.batch:
            trk = Tracker(args.tracker_name, args.tracker_param, "otb", checkpoint=checkpoint,
                          results_path=os.path.join(tmp, f"b{b}"), device=args.device, precision=args.precision,
                          extra={"cuda_graph": True} if args.cuda_graph else None)
            start = time.perf_counter()
            results = run_dataset(seqs, [trk], progress=False, batch_sequences=b, device=args.device)
            wall = time.perf_counter() - start
            failed = [r for r in results if r.status != "done"]
            if failed:
                print(f"B={b}: {len(failed)} sequences did not finish: {failed[0].error}")
                return 1
            seconds = sum(r.seconds for r in results)
            boxes = {s.name: np.loadtxt(trk.result_files(s)["boxes"], delimiter="\t") for s in seqs}
            if reference is None:
                reference, same = boxes, "reference"
            else:
                diff = max(float(np.abs(boxes[k] - reference[k]).max()) for k in boxes)
                same = "boxes equal" if diff == 0 else f"boxes differ by up to {diff:g} px"
            print(f"B={b:3d}: tracker {n_frames / seconds:8.2f} fps | wall {n_frames / wall:8.2f} fps | {same}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="benchmark_batched.py"))
