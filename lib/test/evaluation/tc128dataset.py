"""Temple Color 128 (Liang, Blasch, Ling, "Encoding Color Information for Visual Tracking: Algorithms and
Benchmark", TIP 2015; OSTrack ``tc128dataset.py``/``tc128cedataset.py``, pytracking ``tpldataset.py``).

Official layout under ``tc128_path`` (the ``Temple-color-128`` download)::

    <Name>/img/0001.jpg ...
    <Name>/<Name>_gt.txt        xywh, comma (or whitespace) separated, one row per listed frame
    <Name>/<Name>_frames.txt    'first,last' frame numbers (e.g. David: 300,770)

pytracking's renamed copy (``tpl_<Name>/``, with ``Yo-yos`` written ``Yo_yos`` in the folder name) is
read too. The 129 sequences and their frame ranges come from pytracking's list; a ``_frames.txt``
present in the folder takes precedence (as in OSTrack). Sequences are named ``<Name>`` as in the
TC128 download; ``exclude_otb=True`` keeps the 85 sequences that are not in OTB (pytracking
``tpl_nootb``), ``ce_only=True`` the 78 ``_ce`` sequences (OSTrack ``tc128ce``).
"""

from __future__ import annotations

import os
from typing import Optional

from .annotations import AnnotationError, check_box_count, load_packaged_list, read_boxes
from .data import InfoListDataset, Sequence

__all__ = ["TC128Dataset"]


class TC128Dataset(InfoListDataset):
    """Temple Color 128. ``base_path`` defaults to ``tc128_path``; ``missing`` (``'error'``/``'skip'``)
    handles sequences absent from it (:class:`~.data.BaseDataset`)."""

    name = "tc128"

    def __init__(self, base_path: Optional[str] = None, exclude_otb: bool = False, ce_only: bool = False,
                 missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(
            base_path, "tc128_path", "Temple Color 128 (<Name>/img/0001.jpg, <Name>/<Name>_gt.txt, <Name>_frames.txt)")
        data = load_packaged_list("tc128")
        keep = set(data["exclude_otb_keeps"]) if exclude_otb else None
        entries = []
        for e in data["sequences"]:
            if keep is not None and e["name"] not in keep:
                continue
            official = os.path.basename(e["anno_path"])[: -len("_gt.txt")]
            if ce_only and "_ce" not in official:
                continue
            entries.append(dict(e, official_name=official))
        self.set_infos(entries, key="official_name")  # sequences are named as in the TC128 download

    def _folder(self, name: str) -> str:
        official = os.path.join(self.base_path, name)
        if os.path.isdir(official):
            return official
        renamed = os.path.join(self.base_path, os.path.dirname(self.infos[name]["path"]))
        return renamed if os.path.isdir(renamed) else official

    def annotation_path(self, name: str) -> str:
        return os.path.join(self._folder(name), f"{name}_gt.txt")

    def _sequence_by_name(self, name: str) -> Sequence:
        info = self.infos[name]
        folder = self._folder(name)
        anno = self.annotation_path(name)
        gt = read_boxes(anno)
        start, end, source = info["startFrame"], info["endFrame"], "the official sequence list"
        range_file = os.path.join(folder, f"{name}_frames.txt")
        if os.path.isfile(range_file):
            with open(range_file) as f:
                text = f.read().strip()
            try:
                start, end = (int(float(v)) for v in text.replace("\t", ",").replace(" ", ",").split(",") if v)
            except ValueError:
                raise AnnotationError(f"{range_file}, line 1: expected 'first,last' frame numbers, got '{text}'") from None
            source = f"'{range_file}'"
        nz, ext = int(info["nz"]), info["ext"]
        frames = [os.path.join(folder, "img", f"{i:0{nz}d}.{ext}") for i in range(start, end + 1)]
        check_box_count(gt, len(frames), anno, f"{start}..{end} from {source}")
        return Sequence(name, frames, "tc128", gt)
