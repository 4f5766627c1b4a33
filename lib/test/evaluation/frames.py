"""Lazy lists of numbered frame paths, so building a benchmark's sequences costs no per-frame work.

LaSOT's 280 test sequences have 685k frames: formatting every path up front takes longer than the whole
analysis. :class:`FramePaths` behaves like the list ``[pattern.format(i) for i in indices]`` (len,
indexing, negative indices, slicing, iteration, equality with a list) but formats a path only when asked.
"""

from __future__ import annotations

from collections.abc import Sequence as _SequenceABC
from typing import Iterator, Union

__all__ = ["FramePaths"]


class FramePaths(_SequenceABC):
    """``[f"{folder}/{i:0{digits}d}.{ext}" for i in indices]``, formatted on access.

    Args:
        folder: image folder (no trailing separator needed).
        indices: a ``range`` of frame numbers as they appear in the file names (e.g. ``range(1, N + 1)``).
        digits: zero-padded width of the number (LaSOT/GOT-10k 8, OTB 4, Board 5, UAV 6).
        ext: file extension without the dot.
    """

    __slots__ = ("folder", "indices", "digits", "ext")

    def __init__(self, folder: str, indices: range, digits: int, ext: str = "jpg"):
        self.folder = folder.rstrip("/\\") if len(folder) > 1 else folder
        self.indices = indices
        self.digits = int(digits)
        self.ext = ext

    def _path(self, number: int) -> str:
        return f"{self.folder}/{number:0{self.digits}d}.{self.ext}"

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: Union[int, slice]):
        if isinstance(item, slice):
            return FramePaths(self.folder, self.indices[item], self.digits, self.ext)
        return self._path(self.indices[item])

    def __iter__(self) -> Iterator[str]:
        for i in self.indices:
            yield self._path(i)

    def __eq__(self, other) -> bool:
        if isinstance(other, FramePaths):
            return list(self) == list(other)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        if len(self) == 0:
            return "FramePaths([])"
        return f"FramePaths({self[0]!r} ... {self[-1]!r}, {len(self)} frames)"
