"""Export every network step a tracker calls per frame and per template to ONNX (opset 17, static shapes).

    python tracking/export_onnx.py --script ostrack --config vitb_256_mae_ce_32x4_ep300 \
        --checkpoint OSTrack_ep0300.pth.tar --output onnx/ostrack256
    python tracking/export_onnx.py --script aiatrack --config baseline --dataset lasot --checkpoint X --output DIR
    python tracking/export_onnx.py --script stark_st2 --config tiny_cpu --random_weights --output /tmp/stark

The tracker runs a short generated sequence with the ONNX Runtime backend: each step it calls is exported
once (OSTrack / GRM: forward.onnx; STARK: template.onnx, search.onnx; AiATrack: reference_backbone.onnx,
reference_encoder.onnx, embedding.onnx, search.onnx; SparseTT: feature.onnx, track.onnx) and its outputs are
compared with PyTorch. DIR/manifest.json lists every file with its inputs and outputs (name, shape, dtype),
the opset, the config, the checkpoint's SHA-256 and the measured errors. ``--dataset`` fixes the shapes that
depend on the benchmark (STARK-ST templates, AiATrack references, GRM threshold). Use the folder with
``tracking/test.py ... --backend onnxruntime --onnx_dir DIR``.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from lib.utils.errors import run_cli


def main(argv=None) -> int:
    from lib.models import NETWORK_MODULES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, choices=sorted(NETWORK_MODULES), help="config script")
    parser.add_argument("--config", required=True, help="config name (experiments/<script>/<name>.yaml) or YAML path")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint", default=None, help="checkpoint whose weights are exported")
    weights.add_argument("--random_weights", action="store_true", help="export a randomly initialised network")
    parser.add_argument("--output", required=True, help="folder for the .onnx files and manifest.json")
    parser.add_argument("--dataset", default="otb", help="benchmark whose per-dataset settings fix shapes (default otb)")
    parser.add_argument("--frames", type=int, default=2, help="tracked frames of the generated check sequence")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads of the check")
    parser.add_argument("--verbose", action="store_true", help="tracebacks for user errors too")
    args = parser.parse_args(argv)

    from lib.test.onnx_export import export_tracker_onnx

    manifest = export_tracker_onnx(args.script, args.config, args.output, checkpoint=args.checkpoint,
                                   random_weights=args.random_weights, dataset=args.dataset, frames=args.frames,
                                   threads=args.threads)
    print(f"{manifest['tracker']} / {args.config}: opset {manifest['opset']}, checkpoint "
          f"{manifest['checkpoint_sha256'][:16]}, {len(manifest['files'])} file(s) in {args.output}")
    for entry in manifest["files"]:
        print(f"  {entry['file']}")
        for kind in ("inputs", "outputs"):
            for t in entry[kind]:
                print(f"    {kind[:-1]:>6} {t['name']:<22} {str(tuple(t['shape'])):<20} {t['dtype']}")
        for name, (abs_err, rel_err, ratio) in entry.get("parity_vs_pytorch", {}).items():
            note = "  (beyond rtol 1e-4)" if ratio > 1 else ""
            if name in entry.get("same_indices_other_order", []):
                note = "  (same indices, another order among tied scores)"
            print(f"    vs PyTorch {name:<20} max abs {abs_err:.2e}  max rel {rel_err:.2e}  "
                  f"|a-e|/(1e-5+1e-4|e|) {ratio:.2f}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="export_onnx.py"))
