"""Video output for the playback: an MP4/AVI writer whose file appears only when complete, and showing
frames on the screen. (Frame *sources*, camera index included, are read by ``tracking/video_demo.py``'s
own module.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from lib.utils.errors import register_user_error
from lib.utils.misc import make_temp_file

__all__ = ["VideoFileWriter", "FrameDisplay", "read_video", "VideoFileError", "NoDisplayError"]


@register_user_error
class VideoFileError(ValueError, OSError):
    """A video file that cannot be written or read (wrong extension, no codec, unreadable; the message names it)."""


@register_user_error
class NoDisplayError(RuntimeError):
    """Frames were to be shown on the screen but no display is available."""


_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}


class VideoFileWriter:
    """Writes RGB frames to a video file that appears under its name only once complete.

    Frames go to a temporary file beside ``path`` (same extension, so OpenCV picks the same
    container), renamed onto ``path`` by :meth:`close`; on an exception inside ``with`` the temporary
    file is removed. The size is fixed by the first frame; later frames of another size are resized.

    Args:
        path: ``.mp4`` (MPEG-4 part 2, ``mp4v``) or ``.avi`` (MJPG), ``.mkv``, ``.mov``.
        fps: frames per second.

    Raises:
        VideoFileError (a ValueError and an OSError): an unsupported extension.
        VideoFileError: OpenCV cannot open a writer for it.
    """

    def __init__(self, path: Union[str, os.PathLike], fps: float = 30.0):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in _FOURCC:
            raise VideoFileError(f"video file '{self.path}': extension must be one of {', '.join(sorted(_FOURCC))}")
        self.fps = float(fps)
        self.fourcc = _FOURCC[ext]
        fd, tmp = make_temp_file(self.path, suffix=ext)  # same extension: OpenCV picks the same container
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = None
        self.size: Optional[Tuple[int, int]] = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` RGB uint8 frame."""
        if self._writer is None:
            h, w = rgb.shape[:2]
            self.size = (w, h)
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self._writer.isOpened():
                self._discard()
                raise VideoFileError(f"OpenCV could not open a '{self.fourcc}' writer for '{self.path}'")
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it onto :attr:`path`.

        Raises:
            VideoFileError: no frame was written (nothing is created).
        """
        if self._writer is None:
            self._discard()
            raise VideoFileError(f"no frame was written to '{self.path}'")
        self._writer.release()
        self._writer = None
        os.replace(self._tmp, self.path)
        return self.path

    def _discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._discard()


class FrameDisplay:
    """Shows frames in a window: OpenCV's ``imshow`` where OpenCV has a GUI, else matplotlib with an
    interactive backend.

    Raises:
        NoDisplayError (a RuntimeError): no display is possible (headless OpenCV and a non-interactive matplotlib
            backend); the message suggests writing a video instead.
    """

    def __init__(self, title: str = "tracking"):
        self.title = title
        self._mode = None
        self._mpl = None

    def _open(self, rgb: np.ndarray) -> None:
        try:
            cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cv2.waitKey(1)
            self._mode = "cv2"
            return
        except cv2.error:
            pass
        import matplotlib

        backend = matplotlib.get_backend().lower()
        if backend in ("agg", "pdf", "ps", "svg", "cairo", "template") or not (
                os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"):
            raise NoDisplayError("no display available (OpenCV has no GUI and matplotlib's backend is "
                               f"'{matplotlib.get_backend()}'): write a video with --save_video out.mp4 instead")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.axis("off")
        self._mpl = (plt, fig, ax.imshow(rgb))
        fig.canvas.manager.set_window_title(self.title)
        plt.show(block=False)
        self._mode = "mpl"

    def show(self, rgb: np.ndarray, delay_ms: int = 1) -> bool:
        """Show one frame; False when the user asked to stop (q/Esc, or closed the window)."""
        if self._mode is None:
            self._open(rgb)
            return True
        if self._mode == "cv2":
            cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            key = cv2.waitKey(max(1, int(delay_ms))) & 0xFF
            return key not in (ord("q"), 27)
        plt, fig, im = self._mpl
        if not plt.fignum_exists(fig.number):
            return False
        im.set_data(rgb)
        plt.pause(max(0.001, delay_ms / 1000.0))
        return True

    def close(self) -> None:
        if self._mode == "cv2":
            cv2.destroyWindow(self.title)
        elif self._mode == "mpl":
            self._mpl[0].close(self._mpl[1])
        self._mode = None


def read_video(path: Union[str, os.PathLike]) -> list:
    """All frames of a video file as ``(H, W, 3)`` RGB uint8 arrays.

    Raises:
        VideoFileError (an OSError): OpenCV cannot open the file.
    """
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoFileError(f"video '{path}' could not be opened by OpenCV")
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return frames
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
