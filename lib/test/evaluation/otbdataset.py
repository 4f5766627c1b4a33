"""OTB-2015 (OTB-100): 100 sequences from the official info list (pytracking / OSTrack ``otbdataset.py``).

Layout (``otb_path`` in local.py)::

    <otb_path>/<Seq>/img/0001.jpg ...           frames startFrame..endFrame (Board: 00001.jpg, 5 digits)
    <otb_path>/<Seq>/groundtruth_rect.txt       one x,y,w,h row per frame, ',' or tab/space separated
    <otb_path>/Jogging/groundtruth_rect.1.txt   multi-target videos: Jogging_1/_2, Skating2_1/_2, Human4_2
    <otb_path>/<Seq>/attrs.txt                  optional: the OTB attribute abbreviations, e.g. "IV, SV, OCC"

The info list (``lists/otb.json``, converted from the official list by
``lists/convert_otb_lasot_lists.py``) gives per sequence the image folder, frame range, digits, extension,
annotation file and ``initOmit`` (Tiger1: 5 — the first 5 frames and boxes are dropped). BlurCar1 (247-988),
BlurCar3 (3-359), BlurCar4 (18-397) and David (300-770) start late: their ground-truth files hold one row
per frame of that range. Ground truth is read without opening any image, so an annotation-only folder
(e.g. ``../shared/data/otb100_anno``) is a valid ``otb_path`` for the analysis.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from lib.test.evaluation.annotations import AnnotationError, read_boxes

from .data import InfoListDataset, Sequence
from .frames import FramePaths

__all__ = ["OTBDataset", "OTB_ATTRIBUTES", "load_otb_info"]

_LIST_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lists", "otb.json")

#: The 11 OTB attributes (Wu et al., TPAMI 2015, Table 1), in the benchmark's order.
OTB_ATTRIBUTES = ["IV", "SV", "OCC", "DEF", "MB", "FM", "IPR", "OPR", "OV", "BC", "LR"]


def load_otb_info() -> List[Dict]:
    """The 100 official info entries as dicts (``name, path, startFrame, endFrame, nz, ext, anno_path,
    object_class, initOmit``), plus ``alternatives`` (KiteSurf's pytracking image folder)."""
    with open(_LIST_FILE) as f:
        data = json.load(f)
    entries = [dict(zip(data["columns"], row)) for row in data["rows"]]
    for e in entries:
        e["alternatives"] = [data.get("alternatives", {})[e["name"]]] if e["name"] in data.get("alternatives", {}) else []
    return entries


class OTBDataset(InfoListDataset):
    """OTB-2015 with the official 100-entry info list; Sequence dataset string ``'otb'``.

    Args:
        base_path: the OTB root; default ``env_settings().require('otb_path')``.
        missing: ``'error'`` or ``'skip'``: what :meth:`get_sequence_list` does when sequences of the
            info list have no annotation file in ``base_path`` (:class:`~.data.BaseDataset`).

    Raises:
        DatasetFolderError / SettingsError (construction): the root does not exist.
        MissingSequencesError (from :meth:`get_sequence_list`): sequences absent (``missing='error'``).
        AnnotationError (from :meth:`get_sequence_list`): a malformed annotation row, NaN, a negative
            width/height, or fewer/more boxes than the info list's frames (message names file and line /
            counts).
    """

    name = "otb"

    def __init__(self, base_path: Optional[str] = None, missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(
            base_path, "otb_path", "OTB-2015 root (<Seq>/groundtruth_rect.txt, <Seq>/img/0001.jpg)")
        self.set_infos(load_otb_info())

    def _image_folder(self, info: Dict) -> Dict:
        """The entry's (path, ext), switching to an alternative whose folder exists when the listed one does not."""
        listed = {"path": info["path"], "ext": info["ext"]}
        if os.path.isdir(os.path.join(self.base_path, listed["path"])):
            return listed
        for alt in info.get("alternatives", []):
            if os.path.isdir(os.path.join(self.base_path, alt["path"])):
                return alt
        return listed

    def _sequence_by_name(self, name: str) -> Sequence:
        info = self.infos[name]
        folder = self._image_folder(info)
        start, end, nz, omit = info["startFrame"], info["endFrame"], info["nz"], int(info.get("initOmit") or 0)
        frames = FramePaths(os.path.join(self.base_path, folder["path"]), range(start + omit, end + 1), nz,
                            folder["ext"])
        anno_path = self.annotation_path(name)
        gt = read_boxes(anno_path, what=f"OTB ground truth of '{info['name']}'", negative="allow")
        n_expected = end - start + 1
        if len(gt) != n_expected:
            raise AnnotationError(f"{anno_path}: {len(gt)} boxes for the {n_expected} frames {start}..{end} of OTB "
                               f"sequence '{info['name']}' (expected one row per frame)")
        negative = (gt[:, 2:] < 0).any(axis=1)
        if negative.any():
            row = int(negative.argmax())
            raise AnnotationError(f"{anno_path}, line {row + 1}: negative width/height {gt[row].tolist()} in OTB ground "
                               f"truth of '{info['name']}' (expected x,y,w,h with w, h >= 0)")
        gt = gt[omit:]
        return Sequence(info["name"], frames, "otb", gt, object_class=info.get("object_class"),
                        attributes=self._attributes(info))

    def _attributes(self, info: Dict) -> Optional[Dict[str, bool]]:
        """Flags of the 11 OTB attributes from ``<Seq>/attrs.txt`` if that file exists, else None."""
        path = os.path.join(self.base_path, info["anno_path"].split("/")[0], "attrs.txt")
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            names = {t.strip().upper() for t in f.read().replace("\n", ",").split(",") if t.strip()}
        unknown = names - set(OTB_ATTRIBUTES)
        if unknown:
            raise ValueError(f"{path}: unknown OTB attribute(s) {sorted(unknown)}; known: {', '.join(OTB_ATTRIBUTES)}")
        return {a: a in names for a in OTB_ATTRIBUTES}

