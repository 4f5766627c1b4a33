"""Playback of saved tracking results: the ground truth and several trackers' boxes drawn on the
frames of a sequence, with a legend, to the screen or a video file (``tracking/play_results.py``).

Result files hold one box per frame, ``x, y, w, h`` in pixels (comma, tab or space separated), in
``<results folder>/<tracker>[/<config>]/<sequence>.txt``. Published result collections spell sequence
names differently (``Couple.txt`` / ``couple.txt``, ``Jogging-1.txt`` / ``jogging_1.txt``): a file is
matched by its name ignoring case and treating ``-`` and ``_`` alike when the exact name is absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from lib.utils.errors import register_user_error
from lib.utils.image import imread_rgb
from lib.vis.draw import GT_COLOR, PALETTE, draw_boxes, draw_text, resize_max_side
from lib.vis.video import FrameDisplay, VideoFileWriter

__all__ = ["PlaybackError", "TrackerResult", "sequence_key", "find_result_file", "load_result_boxes",
           "load_tracker_results", "render_playback_frame", "iter_playback_frames", "play_sequence"]


@register_user_error
class PlaybackError(ValueError):
    """A result file that cannot be played (unreadable line, ambiguous name; the message names the file)."""


def sequence_key(name: str) -> str:
    """Case- and punctuation-insensitive key of a sequence name: lower case, ``-`` -> ``_``."""
    return str(name).strip().lower().replace("-", "_")


def find_result_file(folder: Union[str, Path], seq_name: str, ext: str = ".txt") -> Optional[Path]:
    """``<folder>/<seq_name><ext>``, else the one file whose :func:`sequence_key` matches; None if none.

    Raises:
        PlaybackError (a ValueError): several files match (the message lists them).
    """
    folder = Path(folder)
    exact = folder / f"{seq_name}{ext}"
    if exact.is_file():
        return exact
    if not folder.is_dir():
        return None
    key = sequence_key(seq_name)
    matches = sorted(p for p in folder.iterdir()
                     if p.suffix.lower() == ext and p.is_file() and sequence_key(p.stem) == key)
    if len(matches) > 1:
        raise PlaybackError(f"several result files in '{folder}' match sequence '{seq_name}': "
                         f"{', '.join(p.name for p in matches)}")
    return matches[0] if matches else None


def load_result_boxes(path: Union[str, Path]) -> np.ndarray:
    """Boxes of a result file as ``(N, 4)`` float64 xywh pixels (NaN kept).

    Raises:
        PlaybackError (a ValueError): a non-empty line that is not 4 numbers (the message names file and line).
    """
    rows = []
    with open(path, "r") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.replace(",", " ").replace("\t", " ").split()
            if not parts:
                continue
            try:
                vals = [float(v) for v in parts]
            except ValueError:
                vals = []
            if len(vals) != 4:
                raise PlaybackError(f"{path}:{lineno}: expected 4 numbers x, y, w, h, got '{line.strip()}'")
            rows.append(vals)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


@dataclass
class TrackerResult:
    """One tracker's boxes on one sequence.

    Attributes:
        name: legend label (the tracker spec as given, e.g. ``ATOM`` or ``ostrack/vitb_256_mae_ce_32x4_ep300``).
        boxes: ``(N, 4)`` xywh pixels, or None when no result file was found.
        path: the file read (None when missing).
    """

    name: str
    boxes: Optional[np.ndarray]
    path: Optional[Path]

    def box(self, frame: int) -> Optional[np.ndarray]:
        if self.boxes is None or frame >= len(self.boxes):
            return None
        return self.boxes[frame]


def load_tracker_results(specs: Sequence[str], seq_name: str, results_dir: Union[str, Path]) -> List[TrackerResult]:
    """Result of each tracker spec ``<name>[/<config>]`` below ``results_dir`` for ``seq_name``.

    A tracker without a file for the sequence gets ``boxes=None`` (drawn as missing in the legend).
    """
    out = []
    for spec in specs:
        path = find_result_file(Path(results_dir) / spec, seq_name)
        out.append(TrackerResult(name=spec, boxes=None if path is None else load_result_boxes(path), path=path))
    return out


def render_playback_frame(image: np.ndarray, frame: int, gt_box: Optional[Sequence[float]],
                          results: Sequence[TrackerResult], max_side: Optional[int] = None,
                          seq_name: Optional[str] = None) -> np.ndarray:
    """One frame with the ground truth (green, ``ground truth``), each tracker's box (colours of
    :data:`lib.vis.draw.PALETTE` in order, labelled with its name; ``(no result)`` where the file
    is missing) and the frame number at the bottom left.

    Args:
        image: ``(H, W, 3)`` RGB uint8.
        frame: 0-based frame index (shown 1-based, as benchmark frame files are numbered).
        gt_box: xywh pixels or None (not drawn).
        max_side: shrink the frame to this longer side first; boxes follow.
    """
    image, scale = resize_max_side(image, max_side) if max_side else (image, 1.0)
    boxes, colors, labels = [], [], []
    if gt_box is not None:
        boxes.append(gt_box), colors.append(GT_COLOR), labels.append("ground truth")
    for i, res in enumerate(results):
        boxes.append(res.box(frame))
        colors.append(PALETTE[i % len(PALETTE)])
        labels.append(res.name if res.boxes is not None else f"{res.name} (no result)")
    out = draw_boxes(image, boxes, colors=colors, labels=labels, scale=scale)
    text = f"#{frame + 1}" if seq_name is None else f"{seq_name} #{frame + 1}"
    return draw_text(out, text, (6, out.shape[0] - 8), font_scale=max(0.4, min(0.8, out.shape[0] / 600.0)))


def iter_playback_frames(seq, results: Sequence[TrackerResult], start: int = 0, stop: Optional[int] = None,
                         show_gt: bool = True, max_side: Optional[int] = None) -> Iterator[Tuple[int, np.ndarray]]:
    """``(frame index, drawn RGB frame)`` for frames ``start .. stop-1`` of a
    :class:`lib.test.evaluation.data.Sequence` (frames are image paths; ground truth ``(N, 4)`` xywh)."""
    n = len(seq.frames)
    stop = n if stop is None else min(int(stop), n)
    gt = np.asarray(seq.ground_truth_rect, dtype=np.float64).reshape(-1, 4) if show_gt else np.zeros((0, 4))
    for i in range(max(0, int(start)), stop):
        image = imread_rgb(str(seq.frames[i]))
        gt_box = gt[i] if i < len(gt) else None
        yield i, render_playback_frame(image, i, gt_box, results, max_side=max_side, seq_name=seq.name)


def play_sequence(seq, results: Sequence[TrackerResult], save_video: Union[str, os.PathLike, None] = None,
                  fps: float = 30.0, start: int = 0, stop: Optional[int] = None, show_gt: bool = True,
                  max_side: Optional[int] = None, display: Optional[FrameDisplay] = None) -> int:
    """Draw the sequence with the results to ``save_video`` (written only when complete) or, without
    it, to the screen (q/Esc stops).

    Returns:
        Number of frames written or shown.

    Raises:
        RuntimeError: no video file asked and no display available.
    """
    frames = iter_playback_frames(seq, results, start=start, stop=stop, show_gt=show_gt, max_side=max_side)
    count = 0
    if save_video is not None:
        with VideoFileWriter(save_video, fps=fps) as writer:
            for _, rgb in frames:
                writer.write(rgb)
                count += 1
        return count
    display = display or FrameDisplay(f"{seq.name}")
    try:
        for _, rgb in frames:
            if not display.show(rgb, delay_ms=int(1000 / max(fps, 1e-3))):
                break
            count += 1
    finally:
        display.close()
    return count
