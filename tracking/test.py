"""Run a tracker on a benchmark (or one sequence of it) and write the raw result files.

    python tracking/test.py <tracker> <config> --dataset <name> [--sequence NAME_OR_INDEX] [--threads N]
        [--num_gpus G] [--runid K] [--debug L] [--checkpoint PATH] [--device DEV] [--precision fp32|fp16|bf16]
        [--compile] [--cuda_graph] [--crop auto|cv2|device] [--backend pytorch|onnxruntime [--onnx_dir DIR]]
        [--dataset_path DIR] [--tracker_module MODULE] [--visdom_server HOST --visdom_port PORT]
        [--batch_sequences B] [--overwrite]

Results: <results_path>/<tracker>/<config>[_<runid:03d>]/<seq>.txt (+ <seq>_time.txt); GOT-10k and
TrackingNet in the got10k/ and trackingnet/ sub-folders. Finished sequences are skipped, so rerunning
the same command resumes a killed run.
Before any tracking the run checks that the checkpoint exists and fits the network, that the sequences to track
have frames and that the results folder is writable (exit status 2 otherwise, nothing tracked).
<results folder>/_provenance.json records what made each result (config contents, checkpoint, precision and the
other options); a rerun whose config contents, checkpoint or precision differ from those of the existing results
stops and names the differences (exit status 2); --overwrite tracks those sequences again. Results without a
record (older runs) are kept and skipped, with a note.
--batch_sequences B > 1 (batched evaluation, for benchmark throughput on a GPU; OSTrack and GRM) tracks B
sequences per worker in lockstep with one batched network forward per step; the boxes equal those of B = 1 up to
the float rounding of batched matrix products (see lib/test/evaluation/batched.py), and <seq>_time.txt holds the step time divided by the sequences in it.
Exit status: 0 if every sequence finished, 1 if any failed,
2 for a usage or set-up error (unknown tracker or dataset, missing local.py field or folder, invalid config;
--verbose shows the traceback of such an error), 128 + the signal
number when stopped by Ctrl-C (130), SIGTERM (143) or SIGHUP: the workers stop with the parent (also when it is
killed with SIGKILL), finished sequences are kept and the same command resumes the run.
"""

import argparse
import shlex
import signal
import sys

import _init_paths  # noqa: F401

from lib.utils.errors import add_verbose_argument, check_positive, run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tracker_name", help="registered tracker name (ostrack, grm, stark_s, stark_st, aiatrack, sparsett)")
    parser.add_argument("tracker_param", help="config name (experiments/<script>/<name>.yaml) or a YAML path")
    parser.add_argument("--dataset", "--dataset_name", dest="dataset", default="otb",
                        help="benchmark name (default otb); see lib/test/evaluation/datasets.py")
    parser.add_argument("--dataset_path", default=None, help="read the dataset from this folder instead of local.py's")
    parser.add_argument("--sequence", default=None, help="one sequence: its index (tried first) or its name")
    parser.add_argument("--threads", type=int, default=0, help="worker processes (0 = run in this process)")
    parser.add_argument("--num_gpus", type=int, default=None, help="GPUs to spread the workers over (default: all)")
    parser.add_argument("--runid", type=int, default=None, help="run id: results go to <config>_<runid:03d>")
    parser.add_argument("--debug", type=int, default=0, help="debug level (>0: no skipping, nothing saved, errors raise)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: the trainer's output path)")
    parser.add_argument("--device", default=None, help="force a device for every worker (cpu, cuda, cuda:1)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"), help="inference precision")
    parser.add_argument("--tracker_module", action="append", default=[],
                        help="import this module first (it registers extra trackers); repeatable")
    parser.add_argument("--visdom_server", default=None, help="visdom server for --debug views")
    parser.add_argument("--visdom_port", type=int, default=None, help="visdom port for --debug views")
    parser.add_argument("--batch_sequences", type=int, default=1,
                        help="sequences tracked in lockstep per worker with one batched forward per step (default 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="track again the sequences whose existing results were made with another config, "
                             "checkpoint or precision (or of unknown provenance); without it such a run stops")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--compile", action="store_true", help="torch.compile the per-frame network step")
    parser.add_argument("--cuda_graph", action="store_true",
                        help="capture the per-frame network step into a CUDA graph (CUDA, fixed-shape networks)")
    parser.add_argument("--crop", default="auto", choices=("auto", "cv2", "device"),
                        help="search/template crops: auto (cv2 on the CPU, on the device on CUDA; with --cuda_graph the "
                             "whole frame, crop to box, in one graph), cv2 (the official crop pixels; with --cuda_graph "
                             "only the network step is captured) or device")
    parser.add_argument("--backend", default="pytorch", choices=("pytorch", "onnxruntime"),
                        help="who runs the network steps: PyTorch, or ONNX Runtime on their ONNX exports (fp32, CPU)")
    parser.add_argument("--onnx_dir", default=None,
                        help="--backend onnxruntime: ONNX files of tracking/export_onnx.py (missing steps are exported "
                             "there); default: a cache folder keyed by config and checkpoint")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    check_positive(args.threads, "--threads", minimum=0)
    check_positive(args.num_gpus, "--num_gpus", minimum=0)
    check_positive(args.runid, "--runid", minimum=0)
    check_positive(args.batch_sequences, "--batch_sequences")

    from lib.test.evaluation.running import run_tracker

    try:
        results = run_tracker(args.tracker_name, args.tracker_param, dataset_name=args.dataset,
                              sequence=args.sequence, run_id=args.runid, debug=args.debug, threads=args.threads,
                              num_gpus=args.num_gpus, checkpoint=args.checkpoint, device=args.device,
                              precision=args.precision, dataset_path=args.dataset_path,
                              tracker_modules=args.tracker_module, visdom_server=args.visdom_server,
                              visdom_port=args.visdom_port, progress=not args.no_progress,
                              batch_sequences=args.batch_sequences, compile=args.compile, cuda_graph=args.cuda_graph,
                              overwrite=args.overwrite, backend=args.backend, onnx_dir=args.onnx_dir, crop=args.crop)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the workers are stopped, finished sequences kept
        signum = int(getattr(exc, "signum", signal.SIGINT))
        args_given = sys.argv[1:] if argv is None else list(argv)
        script = sys.argv[0] if argv is None and sys.argv[0] else "tracking/test.py"
        print(f"test.py: stopped by {signal.Signals(signum).name}; the finished sequences are kept. Run the same "
              f"command to resume:\n  python {shlex.join([script] + args_given)}", file=sys.stderr, flush=True)
        return 128 + signum
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"failed: {r.tracker} {r.sequence}: {r.error}" + (f" (see {r.error_log})" if r.error_log else ""),
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="test.py"))
