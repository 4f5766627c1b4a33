"""LaSOT test set (280 sequences) and the LaSOT extension subset (150 sequences), pytracking / OSTrack
``lasotdataset.py`` and ``lasotextensionsubsetdataset.py``.

Layout (``lasot_path`` / ``lasot_extension_subset_path`` in local.py)::

    <root>/<class>/<class>-<id>/groundtruth.txt       one x,y,w,h row per frame, comma separated
    <root>/<class>/<class>-<id>/full_occlusion.txt    one comma-separated line of 0/1 per frame
    <root>/<class>/<class>-<id>/out_of_view.txt       likewise
    <root>/<class>/<class>-<id>/img/00000001.jpg ...  frames 1..N (N = ground-truth rows)
    <root>/_attributes/<class>-<id>.txt               optional: the LaSOT toolkit's 14 attribute flags

``target_visible = (full_occlusion == 0) & (out_of_view == 0)`` (the LaSOT toolkit's "absent" flag is the
complement). Ground truth is read without opening any image. Ground-truth rows with zero or negative
width/height exist in the official annotation (e.g. lion-5 frame 553, tiger-6 frame 118) and are kept:
the analysis treats them as invalid frames by each protocol's rules. NaN values and malformed rows are
errors naming file and line.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from lib.test.evaluation.annotations import read_boxes, read_flags

from .data import BaseDataset, Sequence
from .frames import FramePaths

__all__ = ["LaSOTDataset", "LaSOTExtensionSubsetDataset", "LASOT_ATTRIBUTES"]

_LISTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lists")

#: The LaSOT toolkit's 14 attributes, in the column order of its ``annos/att/<seq>.txt`` files
#: (``run_tracker_performance_evaluation.m``: att_fig_name).
LASOT_ATTRIBUTES = ["IV", "POC", "DEF", "MB", "CM", "ROT", "BC", "VC", "SV", "FOC", "FM", "OV", "LR", "ARC"]
LASOT_ATTRIBUTE_NAMES = ["Illumination Variation", "Partial Occlusion", "Deformation", "Motion Blur",
                         "Camera Motion", "Rotation", "Background Clutter", "Viewpoint Change", "Scale Variation",
                         "Full Occlusion", "Fast Motion", "Out-of-View", "Low Resolution", "Aspect Ratio Change"]


def _load_names(key: str) -> List[str]:
    with open(os.path.join(_LISTS, f"{key}.json")) as f:
        return list(json.load(f)["names"])


class LaSOTDataset(BaseDataset):
    """LaSOT test split (280 sequences = 70 classes x 4); Sequence dataset string ``'lasot'``.

    Args:
        base_path: the LaSOT root; default ``env_settings().require('lasot_path')``.
        missing: ``'error'`` or ``'skip'`` for sequences absent from the root (:class:`~.data.BaseDataset`).

    Raises (from :meth:`get_sequence_list`):
        DatasetFolderError / SettingsError (construction): the root does not exist.
        MissingSequencesError: sequences absent from the root (``missing='error'``).
        AnnotationError: malformed ground-truth / flag rows, NaN boxes, or flag files whose length differs
            from the ground truth (message names file and line).
    """

    name = "lasot"
    dataset_string = "lasot"
    list_key = "lasot"
    env_field = "lasot_path"
    what = "LaSOT"

    def __init__(self, base_path: Optional[str] = None, missing: str = "error"):
        super().__init__(missing=missing)
        self.base_path = self.resolve_base_path(base_path, self.env_field,
                                                f"{self.what} root (<class>/<class>-<id>/groundtruth.txt)")
        self.names = _load_names(self.list_key)

    def annotation_path(self, name: str) -> str:
        return os.path.join(self.base_path, name.rsplit("-", 1)[0], name, "groundtruth.txt")

    def _sequence_by_name(self, sequence_name: str) -> Sequence:
        class_name = sequence_name.rsplit("-", 1)[0]
        seq_dir = os.path.join(self.base_path, class_name, sequence_name)
        if not os.path.isdir(seq_dir):
            raise FileNotFoundError(f"{self.what} sequence '{sequence_name}': folder '{seq_dir}' does not exist "
                                    f"(expected <root>/{class_name}/{sequence_name}/groundtruth.txt)")
        gt = read_boxes(os.path.join(seq_dir, "groundtruth.txt"),
                        what=f"{self.what} ground truth of '{sequence_name}'")
        n = len(gt)
        occlusion = read_flags(os.path.join(seq_dir, "full_occlusion.txt"), what="full_occlusion", num_frames=n)
        out_of_view = read_flags(os.path.join(seq_dir, "out_of_view.txt"), what="out_of_view", num_frames=n)
        target_visible = ~occlusion & ~out_of_view
        frames = FramePaths(os.path.join(seq_dir, "img"), range(1, n + 1), 8, "jpg")
        return Sequence(sequence_name, frames, self.dataset_string, gt, object_class=class_name,
                        target_visible=target_visible, attributes=self._attributes(sequence_name))

    def _attributes(self, sequence_name: str) -> Optional[Dict[str, bool]]:
        """The 14 toolkit attribute flags from ``<root>/_attributes/<seq>.txt`` if that file exists."""
        path = os.path.join(self.base_path, "_attributes", f"{sequence_name}.txt")
        if not os.path.isfile(path):
            return None
        flags = read_flags(path, what="attribute")
        if len(flags) != len(LASOT_ATTRIBUTES):
            raise ValueError(f"{path}: {len(flags)} attribute flags, expected {len(LASOT_ATTRIBUTES)} "
                             f"({', '.join(LASOT_ATTRIBUTES)})")
        return {a: bool(v) for a, v in zip(LASOT_ATTRIBUTES, flags)}


class LaSOTExtensionSubsetDataset(LaSOTDataset):
    """LaSOT extension subset (150 sequences = 15 classes x 10), LaSOT layout; dataset string
    ``'lasot_extension_subset'`` (the analysis' LaSOT special case of pytracking does not apply to it).

    Args:
        base_path: the root; default ``env_settings().require('lasot_extension_subset_path')``.
        missing: ``'error'`` or ``'skip'`` (see :class:`LaSOTDataset`).
    """

    name = "lasot_extension_subset"
    dataset_string = "lasot_extension_subset"
    list_key = "lasot_extension_subset"
    env_field = "lasot_extension_subset_path"
    what = "LaSOT extension subset"
