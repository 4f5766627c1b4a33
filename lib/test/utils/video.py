"""Running a tracker on a video file, an image folder or a camera (``tracking/video_demo.py``).

The official ``Tracker.run_video`` (OSTrack ``lib/test/evaluation/tracker.py``) reads frames with
OpenCV, lets the user draw the first box with ``cv2.selectROI`` when none is given, draws the box on
each frame and optionally saves the boxes (int, tab-separated). Differences here: frames go to the
tracker as RGB (the official demo passed OpenCV's BGR frames), the annotated video can be written,
it runs headless when a box is given, and a progress bar shows the frame rate. Drawing, the video
writer and the window are those of :mod:`lib.vis` (shared with the result playback).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from lib.utils.image import FrameReadError, imread_rgb
from lib.utils.misc import atomic_write

__all__ = ["FrameSource", "open_frame_source", "display_available", "select_roi", "run_video_demo", "write_boxes",
           "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class FrameSource:
    """Frames of a video file, an image folder or a camera, as ``(H, W, 3)`` RGB uint8 arrays.

    Attributes:
        description: what was opened (for messages).
        fps: frame rate of the source (the video's own; 30 for folders and cameras when unknown).
        num_frames: number of frames if known (folders, most video files), else None.
        files: the image files of a folder source.
    """

    description: str
    fps: float = 30.0
    num_frames: Optional[int] = None
    files: List[str] = field(default_factory=list)
    capture: Optional[cv2.VideoCapture] = None

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the frames in order.

        Raises:
            FrameReadError: an image of the folder, or the first frame of a video/camera, cannot be read
                (the message names the file or device). A video that ends before the frame count its
                header announces ends the iteration with a warning on stderr naming the first missing frame.
        """
        if self.files:
            for path in self.files:
                yield imread_rgb(path)
            return
        index = 0
        while True:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                if index == 0:
                    raise FrameReadError(f"{self.description}: the first frame could not be read")
                if self.num_frames and index < self.num_frames:
                    print(f"warning: {self.description} ended early: frame {index + 1} (1-based) could not be "
                          f"read, the video announces {self.num_frames} frames (a truncated or corrupt file?); "
                          f"{index} frames were read", file=sys.stderr, flush=True)
                return
            index += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()


def open_frame_source(source: str) -> FrameSource:
    """Open ``source``: a camera index (``"0"``), an image folder (sorted by file name) or a video file.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a folder without images, or a file/camera OpenCV cannot open (named in the message).
    """
    source = str(source)
    if source.isdigit() and not os.path.exists(source):
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise ValueError(f"camera {source} could not be opened")
        return FrameSource(f"camera {source}", fps=cap.get(cv2.CAP_PROP_FPS) or 30.0, capture=cap)
    if os.path.isdir(source):
        files = sorted(os.path.join(source, f) for f in os.listdir(source) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise ValueError(f"image folder '{source}' holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return FrameSource(f"image folder '{source}'", fps=30.0, num_frames=len(files), files=files)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"video source '{source}' does not exist (expected a video file, an image folder "
                                f"or a camera index)")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise ValueError(f"video file '{source}' could not be opened by OpenCV")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return FrameSource(f"video file '{source}'", fps=cap.get(cv2.CAP_PROP_FPS) or 30.0,
                       num_frames=count if count > 0 else None, capture=cap)


def display_available() -> bool:
    """Whether windows can be shown (an X11/Wayland display on Linux; assumed elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def select_roi(frame_rgb: np.ndarray, window: str = "Select target ROI and press ENTER") -> List[float]:
    """Let the user draw the first box with ``cv2.selectROI``; returns xywh pixels.

    Raises:
        NoDisplayError (a RuntimeError and a user error): no display, OpenCV without GUI support, or an empty
            selection.
    """
    from lib.vis.video import NoDisplayError

    if not display_available():
        raise NoDisplayError("no display to draw the first box on: pass it with --init_box x y w h")
    frame = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    cv2.putText(frame, "Select target ROI and press ENTER", (20, 30), cv2.FONT_HERSHEY_COMPLEX_SMALL, 1.5,
                (0, 0, 0), 1)
    try:
        x, y, w, h = cv2.selectROI(window, frame, fromCenter=False)
        cv2.destroyWindow(window)
    except cv2.error as exc:
        raise NoDisplayError(f"cv2.selectROI failed ({exc}); OpenCV may lack GUI support: pass --init_box") from exc
    if w <= 0 or h <= 0:
        raise NoDisplayError("no box was selected: draw a box and press ENTER, or pass --init_box x y w h")
    return [float(x), float(y), float(w), float(h)]


def write_boxes(path: str, boxes: Sequence[Sequence[float]], delimiter: str = "\t") -> None:
    """Write boxes as ints, one ``x y w h`` row per frame (the runner's result format), atomically."""
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).astype(int)
    with atomic_write(path) as f:
        np.savetxt(f, arr, delimiter=delimiter, fmt="%d")


def run_video_demo(tracker, source: FrameSource, init_box: Optional[Sequence[float]] = None,
                   save_video: Optional[str] = None, save_boxes: Optional[str] = None, show: bool = False,
                   max_frames: Optional[int] = None, progress: bool = True) -> Tuple[List[List[float]], float]:
    """Track through ``source`` from ``init_box`` (or a box drawn by the user).

    Args:
        tracker: a tracker (``initialize(image, {'init_bbox': box})``, ``track(image)``); its debug views
            go to ``tracker.debug_sink`` when one is attached (``debug_frame_done`` is called per frame).
        source: from :func:`open_frame_source`.
        init_box: first-frame box xywh in pixels; None asks the user (needs a display).
        save_video: write the annotated frames there (``.mp4``/``.avi``/...; the file appears when complete).
        save_boxes: write the boxes there (ints, tab-separated), atomically.
        show: show each annotated frame in a window (``q`` or Esc stops).
        max_frames: stop after that many frames (including the first).
        progress: show a tqdm progress bar.

    Returns:
        ``(boxes, fps)``: one xywh box per processed frame (the first is the initial box) and the
        tracking speed in frames per second (``track`` calls only).

    Raises:
        InitBoxError (a ValueError): an invalid first box; NoDisplayError (a RuntimeError): no box and no
        display; FrameReadError: a frame that cannot be read; VideoFileError (an OSError): the output video
        cannot be written. All are user errors (lib/utils/errors.py). A video that ends before the frame
        count of its header ends the run with a warning naming the frame.
    """
    from tqdm import tqdm

    from lib.vis.draw import PALETTE, draw_boxes
    from lib.vis.video import FrameDisplay, VideoFileWriter

    total = source.num_frames if max_frames is None else min(max_frames, source.num_frames or max_frames)
    boxes: List[List[float]] = []
    elapsed = 0.0
    with ExitStack() as stack:  # the video file appears only if every frame went through
        stack.callback(source.close)
        frames = iter(source)
        first = next(frames)
        if init_box is None:
            init_box = select_roi(first)
        writer = stack.enter_context(VideoFileWriter(save_video, fps=source.fps)) if save_video else None
        display = FrameDisplay("Tracking (q: quit)") if show else None
        if display is not None:
            stack.callback(display.close)
        bar = stack.enter_context(tqdm(total=total, unit="frame", desc=source.description, disable=not progress))
        frame, keep_going = first, True
        while keep_going:
            if not boxes:
                tracker.initialize(frame, {"init_bbox": list(init_box)})
                box = [float(v) for v in init_box]
            else:
                t0 = time.perf_counter()
                box = [float(v) for v in tracker.track(frame)["target_bbox"]]
                elapsed += time.perf_counter() - t0
            if hasattr(tracker, "debug_frame_done"):
                tracker.debug_frame_done()
            boxes.append(box)
            annotated = draw_boxes(frame, [box], colors=[PALETTE[0]], thickness=3)
            if writer is not None:
                writer.write(annotated)
            if display is not None:
                keep_going = display.show(annotated)
            bar.update(1)
            if elapsed > 0:
                bar.set_postfix(fps=f"{(len(boxes) - 1) / elapsed:.2f}")
            if max_frames is not None and len(boxes) >= max_frames:
                break
            frame = next(frames, None)
            keep_going = keep_going and frame is not None
    if save_boxes:
        write_boxes(save_boxes, boxes)
    fps = (len(boxes) - 1) / elapsed if elapsed > 0 else float("nan")
    return boxes, fps
