"""A small real training set for smoke runs: benchmark sequences (OTB, UAV123, VOT as in ``../shared/data``)
laid out by links as a GOT-10k ``train`` folder and a LaSOT folder, plus a data_specs folder.

Used by the quick start (``tracking/make_demo_training_set.py``), the training tests and the benchmark
script. It exercises the real data path (folder layouts, visibility files, split files, JPEG frames); it
is far too small to train a useful tracker.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

__all__ = ["SEQUENCES", "read_benchmark_gt", "write_got10k", "write_lasot", "write_dataspec", "make_demo_training_set"]

# name -> (frames folder, frame pattern (1-based), ground-truth file) below ../shared/data
SEQUENCES = {
    "Couple": ("otb/Couple/img", "{:04d}.jpg", "otb/Couple/groundtruth_rect.txt"),
    "Crossing": ("otb/Crossing/img", "{:04d}.jpg", "otb/Crossing/groundtruth_rect.txt"),
    "Football1": ("otb/Football1/img", "{:04d}.jpg", "otb/Football1/groundtruth_rect.txt"),
    "Basketball": ("otb/Basketball/img", "{:04d}.jpg", "otb/Basketball/groundtruth_rect.txt"),
    "bag": ("vot/bag", "{:08d}.jpg", "vot/bag/groundtruth.txt"),
    "person11": ("uav123_10fps/data_seq/UAV123_10fps/person11", "{:06d}.jpg",
                 "uav123_10fps/anno/UAV123_10fps/person11.txt"),
}


def read_benchmark_gt(shared: Path, name: str) -> np.ndarray:
    """``(N, 4)`` xywh boxes of a shared sequence (tab/comma/space separated; VOT 8-value polygons become
    their axis-aligned bounding boxes)."""
    rows = []
    for line in (Path(shared) / SEQUENCES[name][2]).read_text().splitlines():
        vals = [float(v) for v in line.replace("\t", ",").replace(" ", ",").split(",") if v]
        if not vals:
            continue
        if len(vals) == 8:
            xs, ys = vals[0::2], vals[1::2]
            vals = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        rows.append(vals)
    return np.array(rows, np.float64)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(os.path.abspath(src), dst)
    except OSError:  # file systems without symlinks
        shutil.copyfile(src, dst)


def write_got10k(shared: Path, root: Path, names: Iterable[str], absent: Optional[Dict[str, List[int]]] = None) -> Path:
    """GOT-10k ``train`` layout under ``root`` (list.txt, ``GOT-10k_Train_<k>/00000001.jpg``, groundtruth.txt,
    absence.label, cover.label, meta_info.ini). ``absent``: per sequence, 0-based frames written as absent.
    Returns the train folder."""
    absent = absent or {}
    train = Path(root) / "train"
    train.mkdir(parents=True, exist_ok=True)
    seq_names = []
    for k, name in enumerate(names, 1):
        seq = f"GOT-10k_Train_{k:06d}"
        seq_names.append(seq)
        frames_rel, pattern, _ = SEQUENCES[name]
        gt = read_benchmark_gt(shared, name)
        d = train / seq
        for i in range(len(gt)):
            _link(Path(shared) / frames_rel / pattern.format(i + 1), d / f"{i + 1:08d}.jpg")
        np.savetxt(d / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
        flags = np.zeros(len(gt), int)
        flags[absent.get(name, [])] = 1
        (d / "absence.label").write_text("\n".join(str(v) for v in flags) + "\n")
        (d / "cover.label").write_text("\n".join(str(0 if v else 8) for v in flags) + "\n")
        (d / "meta_info.ini").write_text("[METAINFO]\nurl: none\nbegin: 0\nend: 0\nanno_fps: 10Hz\n"
                                         f"object_class: {name.lower()}\nmotion_class: moving\nmajor_class: thing\n"
                                         "root_class: object\nmotion_adverb: slowly\nresolution: (0, 0)\n")
    (train / "list.txt").write_text("\n".join(seq_names) + "\n")
    return train


def write_lasot(shared: Path, root: Path, spec: Dict[str, str]) -> Tuple[Path, List[str]]:
    """LaSOT layout under ``root``: ``spec`` maps ``<class>-<id>`` to a shared sequence name.
    Returns ``(root, sequence names)``."""
    root = Path(root)
    for seq_name, name in spec.items():
        cls = seq_name.split("-")[0]
        frames_rel, pattern, _ = SEQUENCES[name]
        gt = read_benchmark_gt(shared, name)
        d = root / cls / seq_name
        for i in range(len(gt)):
            _link(Path(shared) / frames_rel / pattern.format(i + 1), d / "img" / f"{i + 1:08d}.jpg")
        np.savetxt(d / "groundtruth.txt", gt, fmt="%d", delimiter=",")
        zeros = ",".join("0" for _ in range(len(gt)))
        (d / "full_occlusion.txt").write_text(zeros + "\n")
        (d / "out_of_view.txt").write_text(zeros + "\n")
    return root, list(spec)


def write_dataspec(root: Path, lasot_names: List[str]) -> Path:
    """A data_specs folder holding ``lasot_train_split.txt`` for the demo LaSOT sequences."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "lasot_train_split.txt").write_text("\n".join(lasot_names) + "\n")
    return root


def make_demo_training_set(shared: Path, dst: Path, got10k=("Couple", "Football1", "bag", "person11"),
                           lasot=(("person-1", "Couple"), ("bag-1", "bag"), ("person-2", "person11"))
                           ) -> Dict[str, Path]:
    """Write the demo GOT-10k and LaSOT training sets under ``dst``.

    Returns ``{'got10k_dir', 'lasot_dir', 'dataspec_path'}`` (the fields of lib/train/admin/local.py).
    OTB Crossing and Basketball are left out by default so they can serve as test sequences.
    """
    dst = Path(dst)
    got = write_got10k(shared, dst / "got10k", list(got10k))
    las, names = write_lasot(shared, dst / "lasot", dict(lasot))
    spec = write_dataspec(dst / "data_specs", names)
    return {"got10k_dir": got, "lasot_dir": las, "dataspec_path": spec}
