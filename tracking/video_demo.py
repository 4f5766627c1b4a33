"""Run a tracker on a video file, an image folder or a camera and save the annotated video and boxes.

    python tracking/video_demo.py ostrack vitb_256_mae_ce_32x4_ep300 ../shared/data/videos/bag.avi \\
        --init_box 292 128 146 133 --checkpoint OSTrack_ep0300.pth.tar --save_video bag_out.mp4 --save_boxes bag.txt

Without --init_box the first box is drawn with the mouse (needs a display). Without --checkpoint the
trainer's output (<save_dir>/checkpoints/train/<script>/<config>/<Net>_ep<TEST.EPOCH>.pth.tar) is used.
"""
import argparse
import os
import sys

import _init_paths  # noqa: F401

from lib.test.tracker import get_tracker_class, list_trackers
from lib.test.tracker.base import TrackerParams, check_backend
from lib.test.utils.debug import make_debug_sink
from lib.test.utils.video import display_available, open_frame_source, run_video_demo
from lib.utils.errors import UserError, add_verbose_argument, check_positive, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tracker_name", help=f"tracker ({', '.join(list_trackers())})")
    parser.add_argument("tracker_param", help="config name, e.g. vitb_256_mae_ce_32x4_ep300")
    parser.add_argument("source", help="video file, image folder or camera index")
    parser.add_argument("--init_box", "--optional_box", type=float, nargs=4, metavar=("X", "Y", "W", "H"),
                        default=None, help="first-frame box in pixels (default: draw it)")
    parser.add_argument("--checkpoint", default=None, help="network checkpoint (official .pth.tar or state_dict)")
    parser.add_argument("--save_video", default=None, help="write the annotated video here (.mp4 or .avi)")
    parser.add_argument("--save_boxes", default=None, help="write the boxes here (x y w h ints, tab-separated)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the per-frame network step")
    parser.add_argument("--cuda_graph", action="store_true",
                        help="capture the per-frame network step into a CUDA graph (CUDA, fixed-shape networks)")
    parser.add_argument("--backend", default="pytorch", choices=("pytorch", "onnxruntime"),
                        help="who runs the network steps (onnxruntime: their ONNX exports, fp32, CPU)")
    parser.add_argument("--onnx_dir", default=None, help="--backend onnxruntime: folder of tracking/export_onnx.py")
    parser.add_argument("--max_frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--no_display", action="store_true", help="do not show frames even with a display")
    parser.add_argument("--debug", type=int, default=0, help="debug level: views in visdom, else PNG files")
    parser.add_argument("--visdom_server", default="127.0.0.1", help="visdom server for --debug views")
    parser.add_argument("--visdom_port", type=int, default=8097, help="visdom port for --debug views")
    add_verbose_argument(parser)
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    show = display_available() and not args.no_display
    if args.init_box is None and not display_available():
        parser.error("no display to draw the first box on: pass it with --init_box X Y W H")
    check_positive(args.max_frames, "--max_frames")
    if args.init_box is not None and not (args.init_box[2] > 0 and args.init_box[3] > 0):
        raise UserError(f"--init_box X Y W H needs a positive width and height, got {args.init_box}")
    try:
        source = open_frame_source(args.source)
    except (FileNotFoundError, ValueError) as exc:  # the message names the source
        raise UserError(str(exc)) from exc
    params = TrackerParams.create(args.tracker_name, args.tracker_param, checkpoint=args.checkpoint,
                                  device=args.device, debug=args.debug, precision=args.precision,
                                  compile=args.compile, cuda_graph=args.cuda_graph, backend=args.backend,
                                  **({"onnx_dir": args.onnx_dir} if args.onnx_dir else {}))
    try:
        check_backend(params)
    except ValueError as exc:  # an unknown backend or one that cannot run these options
        raise UserError(str(exc)) from exc
    tracker = get_tracker_class(args.tracker_name)(params, "video")
    # --debug L: the tracker's views in visdom, or PNG files under <save_dir>/debug/ when no server answers
    tracker.debug_sink = make_debug_sink(args.debug, args.tracker_name, args.tracker_param,
                                         os.path.splitext(os.path.basename(os.path.normpath(args.source)))[0],
                                         args.visdom_server, args.visdom_port)
    try:
        boxes, fps = run_video_demo(tracker, source, args.init_box, save_video=args.save_video,
                                    save_boxes=args.save_boxes, show=show, max_frames=args.max_frames)
    finally:
        if tracker.debug_sink is not None:
            tracker.debug_sink.close()
    print(f"{len(boxes)} frames, {fps:.2f} frames/s (tracking only) on {params.device}, precision {args.precision}")
    for what, path in (("video", args.save_video), ("boxes", args.save_boxes)):
        if path:
            print(f"{what} written to {path}")
    return boxes


if __name__ == "__main__":
    sys.exit(run_cli(lambda: 0 if main() is not None else 1, prog="video_demo.py"))
