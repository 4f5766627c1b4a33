"""VOT short-term challenges 2018, 2020 and 2022 (OSTrack ``votdataset.py``; pytracking has 2018 only).

Layout under ``vot18_path`` / ``vot20_path`` / ``vot22_path`` (a VOT toolkit workspace's
``sequences/`` folder, or the folder that holds the sequences)::

    <seq>/color/00000001.jpg ...     (VOT2018+ layout; the older flat <seq>/00000001.jpg is read too)
    <seq>/groundtruth.txt            one region per frame

Regions are rectangles (4 values), polygons (8 values: converted to the axis-aligned min/max box
``(x1, y1, x2 - x1, y2 - y1)``) or, from VOT2020 on, RLE masks ``m<x0>,<y0>,<w>,<h>,...`` (their region
box, as OSTrack reads them). The number of frames is the number of ground-truth rows. The years
share sequence names, so result files go to ``<results_dir>/vot20<yy>/`` (``Sequence.results_subdir``).
"""

from __future__ import annotations

import os
from typing import Optional

from .annotations import load_packaged_list, read_vot_regions
from .data import BaseDataset, Sequence

__all__ = ["VOTDataset"]


class VOTDataset(BaseDataset):
    """VOT20<year> short-term (year 18, 20 or 22). ``base_path`` defaults to ``vot<year>_path``; ``missing``
    (``'error'``/``'skip'``) handles sequences absent from it (:class:`~.data.BaseDataset`)."""

    name = "vot"

    def __init__(self, base_path: Optional[str] = None, year: int = 18, missing: str = "error"):
        super().__init__(missing=missing)
        year = int(year) % 100
        by_year = load_packaged_list("vot")["by_year"]
        if f"vot{year}" not in by_year:
            raise ValueError(f"VOT year must be one of {sorted(int(k[3:]) for k in by_year)}, got {year}")
        self.year = year
        self.names = list(by_year[f"vot{year}"])
        base = self.resolve_base_path(base_path, f"vot{year}_path",
                                      f"VOT20{year} (<seq>/color/00000001.jpg, <seq>/groundtruth.txt)")
        nested = os.path.join(base, "sequences")
        if os.path.isdir(nested) and not os.path.isdir(os.path.join(base, self.names[0])):
            base = nested  # a VOT toolkit workspace
        self.base_path = base

    def annotation_path(self, name: str) -> str:
        return os.path.join(self.base_path, name, "groundtruth.txt")

    def _sequence_by_name(self, name: str) -> Sequence:
        folder = os.path.join(self.base_path, name)
        gt = read_vot_regions(self.annotation_path(name))
        image_dir = os.path.join(folder, "color")
        if not os.path.isdir(image_dir) and os.path.isfile(os.path.join(folder, "00000001.jpg")):
            image_dir = folder  # the flat layout of older VOT releases
        frames = [os.path.join(image_dir, f"{i:08d}.jpg") for i in range(1, len(gt) + 1)]
        return Sequence(name, frames, "vot", gt, results_subdir=f"vot20{self.year}")
