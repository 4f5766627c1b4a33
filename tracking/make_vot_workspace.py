"""Write a VOT toolkit workspace from local VOT sequences (no download) with a ``trackers.ini`` that runs one of our
trackers over TraX (``tracking/vot_tracker.py``).

    python tracking/make_vot_workspace.py --workspace DIR --sequences_root DIR [--sequences bag ...] [--frames N]
        --tracker <tracker> <config> [--checkpoint PATH | --random_weights] [--device cpu] [--dataset vot18]
        [--stack unsupervised|vot2018|...] [--identifier NAME] [--timeout 120]

Then, in DIR::

    vot evaluate --workspace DIR <identifier>
    vot analysis --workspace DIR <identifier>

Sequences: every folder under ``--sequences_root`` (or those named) holding ``groundtruth.txt`` and its frames,
in the VOT2018+ layout (``<seq>/color/00000001.jpg``) or the older flat one (``<seq>/00000001.jpg``). The workspace
gets ``sequences/list.txt`` and, per sequence, a ``sequence`` description, links to the frames under ``color/``
and the ground truth (its first ``--frames`` rows with ``--frames N``). With a ``list.txt`` present the toolkit
does not download its stack's dataset.

Stacks: ``unsupervised`` (default: one run per sequence from the first frame, analysed by average accuracy;
written to the workspace as ``stack.yaml``) or a stack of the installed toolkit (``vot2018``, ``vot2020``, ...:
their reset-based ``baseline`` and ``realtime`` experiments; see the README for what vot-toolkit 0.9.0 does with
them).
"""

import argparse
import os
import shlex
import sys

import _init_paths  # noqa: F401

from lib.utils.errors import UserError, run_cli

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the ``unsupervised`` stack this helper writes: the VOT-ST unsupervised experiment (one run from frame 1).
UNSUPERVISED_STACK = """title: Unsupervised runs on local VOT sequences (tracking/make_vot_workspace.py)
experiments:
  unsupervised:
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_accuracy
        name: accuracy
        burnin: 1
"""


def find_sequences(root: str, names=None):
    """``[(name, frame folder, groundtruth path, frame count)]`` of the VOT sequences under ``root``.

    Raises:
        UserError: a missing root, a named sequence that is not there, a sequence without frames, or none at all.
    """
    if not os.path.isdir(root):
        raise UserError(f"--sequences_root '{root}' is not a folder")
    candidates = names or sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "groundtruth.txt")))
    found = []
    for name in candidates:
        folder = os.path.join(root, name)
        gt = os.path.join(folder, "groundtruth.txt")
        if not os.path.isfile(gt):
            raise UserError(f"sequence '{name}': '{gt}' does not exist (expected <seq>/groundtruth.txt under '{root}')")
        frames = os.path.join(folder, "color")
        if not os.path.isfile(os.path.join(frames, "00000001.jpg")):
            frames = folder
        if not os.path.isfile(os.path.join(frames, "00000001.jpg")):
            raise UserError(f"sequence '{name}': no frames (expected {folder}/color/00000001.jpg or {folder}/00000001.jpg)")
        with open(gt) as f:
            rows = [line for line in f.read().splitlines() if line.strip()]
        found.append((name, frames, rows))
    if not found:
        raise UserError(f"no VOT sequences (<seq>/groundtruth.txt) under '{root}'")
    return found


def write_workspace(workspace: str, sequences, stack: str, tracker_ini: str, frames=None) -> None:
    """Write ``config.yaml``, ``trackers.ini``, ``sequences/`` (and ``stack.yaml`` for the unsupervised stack).

    Raises:
        UserError: a sequence with fewer frames than ground-truth rows (after ``frames``).
    """
    seq_root = os.path.join(workspace, "sequences")
    os.makedirs(seq_root, exist_ok=True)
    for name, frame_dir, rows in sequences:
        rows = rows[:frames] if frames else rows
        dst = os.path.join(seq_root, name)
        color = os.path.join(dst, "color")
        os.makedirs(color, exist_ok=True)
        for i in range(1, len(rows) + 1):
            src = os.path.join(frame_dir, f"{i:08d}.jpg")
            if not os.path.isfile(src):
                raise UserError(f"sequence '{name}': frame '{src}' is missing ({len(rows)} ground-truth rows)")
            link = os.path.join(color, f"{i:08d}.jpg")
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(src), link)
        with open(os.path.join(dst, "groundtruth.txt"), "w") as f:
            f.write("\n".join(rows) + "\n")
        with open(os.path.join(dst, "sequence"), "w") as f:
            f.write(f"name={name}\nfps=30\nformat=default\nchannels.color=color{os.sep}%08d.jpg\n")
    with open(os.path.join(seq_root, "list.txt"), "w") as f:
        f.write("\n".join(name for name, _, _ in sequences) + "\n")
    if stack == "unsupervised":
        with open(os.path.join(workspace, "stack.yaml"), "w") as f:
            f.write(UNSUPERVISED_STACK)
        stack = "stack.yaml"
    with open(os.path.join(workspace, "config.yaml"), "w") as f:
        f.write(f"registry:\n- ./trackers.ini\nstack: {stack}\n")
    with open(os.path.join(workspace, "trackers.ini"), "w") as f:
        f.write(tracker_ini)


def tracker_ini(identifier: str, tracker: str, config: str, checkpoint=None, random_weights=False, device="auto",
                precision="fp32", dataset=None, timeout: int = 120, python: str = sys.executable) -> str:
    """The ``trackers.ini`` section that starts ``tracking/vot_tracker.py`` with these options (absolute paths)."""
    command = [python, os.path.join(PROJECT_ROOT, "tracking", "vot_tracker.py"), tracker, config, "--device", device,
               "--precision", precision]
    if checkpoint:
        command += ["--checkpoint", os.path.abspath(checkpoint)]
    if random_weights:
        command += ["--random_weights"]
    if dataset:
        command += ["--dataset", dataset]
    return (f"[{identifier}]\nlabel = {tracker} {config}\nprotocol = trax\ncommand = {shlex.join(command)}\n"
            f"timeout = {int(timeout)}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, help="workspace folder to write (created)")
    parser.add_argument("--sequences_root", required=True, help="folder holding the VOT sequences")
    parser.add_argument("--sequences", nargs="+", default=None, help="only these sequences (default: all there)")
    parser.add_argument("--frames", type=int, default=None, help="keep the first N frames of every sequence")
    parser.add_argument("--tracker", nargs=2, required=True, metavar=("TRACKER", "CONFIG"), help="tracker and config")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file")
    parser.add_argument("--random_weights", action="store_true", help="untrained network (tests only)")
    parser.add_argument("--device", default="auto", help="device of the tracker process (default auto)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--dataset", default=None, help="per-benchmark settings of the tracker (e.g. vot18, vot20)")
    parser.add_argument("--stack", default="unsupervised", help="unsupervised (default) or a toolkit stack name")
    parser.add_argument("--identifier", default=None, help="tracker identifier in trackers.ini (default <tracker>_<config>)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds the toolkit waits for the tracker (default 120)")
    args = parser.parse_args(argv)

    if args.frames is not None and args.frames < 2:
        raise UserError(f"--frames must be at least 2, got {args.frames}")
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        raise UserError(f"--checkpoint '{args.checkpoint}' does not exist")
    if not args.checkpoint and not args.random_weights:
        raise UserError("give --checkpoint PATH (or --random_weights for a test workspace)")
    if os.path.isfile(os.path.join(args.workspace, "config.yaml")):
        raise UserError(f"'{args.workspace}' already holds a workspace (config.yaml); choose another folder")
    sequences = find_sequences(args.sequences_root, args.sequences)
    identifier = args.identifier or f"{args.tracker[0]}_{args.tracker[1]}"
    ini = tracker_ini(identifier, args.tracker[0], args.tracker[1], checkpoint=args.checkpoint,
                      random_weights=args.random_weights, device=args.device, precision=args.precision,
                      dataset=args.dataset, timeout=args.timeout)
    write_workspace(args.workspace, sequences, args.stack, ini, frames=args.frames)
    print(f"workspace {args.workspace}: {len(sequences)} sequence(s), stack {args.stack}, tracker '{identifier}'")
    print(f"run: vot evaluate --workspace {args.workspace} {identifier} && "
          f"vot analysis --workspace {args.workspace} {identifier}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="make_vot_workspace.py"))
