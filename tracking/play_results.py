"""Play saved tracking results: the ground truth and several trackers' boxes on the frames, with a legend.

    python tracking/play_results.py --dataset otb --sequence Couple --trackers ATOM SiamRPN++ \\
        --dataset_path ../shared/data/otb --results_dir ../shared/data/results/otb100 --save_video couple.mp4
    python tracking/play_results.py --dataset lasot --sequence airplane-1 --trackers ostrack/vitb_256_mae_ce_32x4_ep300

A tracker is ``<name>[/<config>]``; its results are ``<results_dir>/<name>[/<config>]/<sequence>.txt``
(``--results_dir`` defaults to ``results_path`` of lib/test/evaluation/local.py). File names are matched
ignoring case and treating '-' and '_' alike. Without --save_video the frames are shown on the screen
(q or Esc stops). The dataset folder may hold part of the benchmark: only the played sequence must be there.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from lib.utils.errors import UserError, add_verbose_argument, check_positive, run_cli
from lib.vis.playback import load_tracker_results, play_sequence, sequence_key


def load_sequence(dataset: str, sequence: str, dataset_path=None):
    """The sequence ``sequence`` of benchmark ``dataset`` (registry of lib/test/evaluation/datasets.py).

    Only the sequences present in the dataset folder are listed (a partial copy of a benchmark plays).

    Raises:
        UnknownDatasetError: unknown dataset; SettingsError: no dataset folder configured;
        UserError: a sequence that is not in the folder (the message lists close names).
    """
    from lib.test.evaluation.datasets import load_dataset

    seqs = load_dataset(dataset, base_path=dataset_path, missing="skip").get_sequence_list()
    for seq in seqs:
        if seq.name == sequence:
            return seq
    key = sequence_key(sequence)
    for seq in seqs:
        if sequence_key(seq.name) == key:
            return seq
    close = [s.name for s in seqs if key[:3] in sequence_key(s.name)][:10]
    raise UserError(f"sequence '{sequence}' is not in dataset '{dataset}' ({len(seqs)} sequences present"
                    + (f": {', '.join(s.name for s in seqs)}" if 0 < len(seqs) <= 10 else "") + ")"
                    + (f"; similar: {', '.join(close)}" if close and len(seqs) > 10 else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="benchmark name (otb, lasot, uav, ...)")
    parser.add_argument("--sequence", required=True, help="sequence name")
    parser.add_argument("--trackers", nargs="+", required=True, help="tracker specs <name>[/<config>]")
    parser.add_argument("--results_dir", default=None, help="root of the result folders (default: results_path)")
    parser.add_argument("--dataset_path", default=None, help="dataset root (default: from local.py)")
    parser.add_argument("--save_video", default=None, help="write an .mp4/.avi instead of showing the frames")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second of the video / display")
    parser.add_argument("--start", type=int, default=0, help="first frame (0-based)")
    parser.add_argument("--stop", type=int, default=None, help="stop before this frame")
    parser.add_argument("--max_side", type=int, default=None, help="shrink frames to this longer side")
    parser.add_argument("--no_gt", action="store_true", help="do not draw the ground truth")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    check_positive(args.fps, "--fps")
    check_positive(args.start, "--start", minimum=0)
    check_positive(args.max_side, "--max_side")
    if args.stop is not None and args.stop <= args.start:
        raise UserError(f"--stop ({args.stop}) must be greater than --start ({args.start})")

    results_dir = args.results_dir
    if results_dir is None:
        from lib.test.evaluation.environment import env_settings

        results_dir = env_settings().results_path
    seq = load_sequence(args.dataset, args.sequence, args.dataset_path)
    results = load_tracker_results(args.trackers, seq.name, results_dir)
    for r in results:
        if r.boxes is None:
            print(f"play_results: no result of '{r.name}' for '{seq.name}' under {results_dir}", file=sys.stderr)
        elif len(r.boxes) != len(seq.frames):
            print(f"play_results: '{r.path}' holds {len(r.boxes)} boxes for {len(seq.frames)} frames", file=sys.stderr)
    n = play_sequence(seq, results, save_video=args.save_video, fps=args.fps, start=args.start, stop=args.stop,
                      show_gt=not args.no_gt, max_side=args.max_side)
    where = args.save_video if args.save_video else "the screen"
    print(f"play_results: {n} frames of {seq.name} with {', '.join(r.name for r in results)} -> {where}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="play_results.py"))
