"""Base class of the training datasets and the two ways their files are stored (a folder or an lmdb).

A training dataset is a list of sequences; each sequence has frames, a box per frame and a visibility
flag per frame. :class:`BaseVideoDataset` is the interface the :class:`~lib.train.data.sampler.TrackingSampler`
uses (pytracking ``ltr/dataset/base_video_dataset.py``, OSTrack ``lib/train/dataset``):

* ``get_num_sequences()``, ``get_sequence_info(seq_id) -> {'bbox', 'valid', 'visible', ...}``,
* ``get_frames(seq_id, frame_ids, anno) -> (frames, anno_frames, object_meta)``,
* ``is_video_sequence()`` (False for image datasets such as COCO, whose single image is repeated).

Every dataset reads its files through a *storage*: :class:`FolderStorage` (files below a root folder) or
:class:`LmdbStorage` (the same relative paths as keys of an lmdb, TOOLKIT.md section D), so the ``_lmdb``
variants are the same classes with another storage. Ground truth is read with pandas; frames with
:func:`lib.utils.image.imread_rgb` (jpeg4py where libturbojpeg exists, OpenCV otherwise).
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas
import torch
import torch.utils.data

from lib.utils.errors import register_user_error
from lib.utils.image import FrameReadError, imread_rgb
from lib.utils.lmdb_utils import LmdbError, decode_img, lmdb_has_key, read_bytes

__all__ = ["DatasetError", "FolderStorage", "LmdbStorage", "BaseVideoDataset", "read_box_file", "read_flag_file",
           "read_split_file", "resolve_dataspec_path", "empty_object_meta", "BAD_DATA_ERRORS"]


@register_user_error
class DatasetError(RuntimeError):
    """A dataset folder, split file or annotation that is missing or has the wrong layout.

    The message names the file (or folder) and what was expected.
    """


#: Errors that mean "this piece of the dataset is broken" (as opposed to a bug in the code).
BAD_DATA_ERRORS = (DatasetError, FrameReadError, LmdbError)


class FolderStorage:
    """Files below a root folder, addressed by '/'-separated relative paths."""

    kind = "folder"

    def __init__(self, root: str):
        self.root = os.fspath(root)

    def where(self, rel: str) -> str:
        """Human-readable location of ``rel`` (for messages)."""
        return os.path.join(self.root, rel)

    def exists(self, rel: str) -> bool:
        return os.path.exists(os.path.join(self.root, rel))

    def read_bytes(self, rel: str) -> bytes:
        path = os.path.join(self.root, rel)
        if not os.path.isfile(path):
            raise DatasetError(f"file '{path}' does not exist")
        with open(path, "rb") as f:
            return f.read()

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def read_image(self, rel: str, loader: Callable[[str], np.ndarray]) -> np.ndarray:
        return loader(os.path.join(self.root, rel))


class LmdbStorage:
    """The keys of one lmdb environment (the official lmdb layout: keys are the original relative paths)."""

    kind = "lmdb"

    def __init__(self, lmdb_path: str):
        self.root = os.fspath(lmdb_path)

    def where(self, rel: str) -> str:
        return f"{self.root} (lmdb key '{rel}')"

    def exists(self, rel: str) -> bool:
        return lmdb_has_key(self.root, rel)

    def read_bytes(self, rel: str) -> bytes:
        return read_bytes(self.root, rel)

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def read_image(self, rel: str, loader: Callable[[str], np.ndarray]) -> np.ndarray:
        return decode_img(self.root, rel)


def read_box_file(storage, rel: str, expected_rows: Optional[int] = None) -> torch.Tensor:
    """Read a comma-separated box file (one ``x,y,w,h`` row per frame) with pandas.

    The official reader is ``pandas.read_csv(delimiter=',', header=None, dtype=float32, na_filter=False)``;
    a file holding ``NaN`` entries is read again with NaN parsing on (those rows become invisible frames).

    Returns:
        ``(N, 4)`` float32 tensor, xywh in image pixels.

    Raises:
        DatasetError: missing file, unparsable text, not 4 columns, or ``expected_rows`` not met
            (the message names the file).
    """
    where = storage.where(rel)
    try:
        data = storage.read_bytes(rel)
    except (DatasetError, LmdbError) as exc:
        raise DatasetError(f"ground-truth file {exc}") from exc
    kwargs = dict(delimiter=",", header=None, dtype=np.float32, low_memory=False)
    try:
        gt = pandas.read_csv(io.BytesIO(data), na_filter=False, **kwargs).values
    except pandas.errors.EmptyDataError as exc:
        raise DatasetError(f"ground-truth file '{where}' is empty") from exc
    except ValueError:
        try:
            gt = pandas.read_csv(io.BytesIO(data), **kwargs).values
        except Exception as exc:
            raise DatasetError(f"ground-truth file '{where}' is not comma-separated numbers x,y,w,h: {exc}") from exc
    if gt.ndim != 2 or gt.shape[1] != 4:
        raise DatasetError(f"ground-truth file '{where}' has {gt.shape[1] if gt.ndim == 2 else '?'} columns per "
                           f"row, expected 4 (x,y,w,h separated by commas)")
    if expected_rows is not None and gt.shape[0] != expected_rows:
        raise DatasetError(f"ground-truth file '{where}' has {gt.shape[0]} rows, expected {expected_rows}")
    return torch.from_numpy(np.ascontiguousarray(gt))


def read_flag_file(storage, rel: str, num_frames: int, one_line: bool) -> torch.Tensor:
    """Read per-frame 0/1 (or small integer) flags: one per line (GOT-10k ``absence.label``, ``cover.label``)
    or all on one comma-separated line (LaSOT ``full_occlusion.txt``, ``out_of_view.txt``).

    Returns:
        ``(num_frames,)`` uint8 tensor.

    Raises:
        DatasetError: missing file, not integers, or not ``num_frames`` values (names the file).
    """
    where = storage.where(rel)
    try:
        text = storage.read_text(rel)
    except (DatasetError, LmdbError) as exc:
        raise DatasetError(f"visibility file {exc}") from exc
    tokens = text.replace(",", " ").split() if one_line else [line.split(",")[0] for line in text.split()]
    try:
        values = [int(float(t)) for t in tokens]
    except ValueError as exc:
        raise DatasetError(f"visibility file '{where}' holds a value that is not an integer: {exc}") from exc
    if len(values) != num_frames:
        raise DatasetError(f"visibility file '{where}' has {len(values)} values, expected {num_frames} "
                           f"(one per ground-truth row)")
    return torch.tensor(values, dtype=torch.uint8)


def resolve_dataspec_path(dataspec_path: Optional[str]) -> str:
    """``dataspec_path`` or, when None, the ``dataspec_path`` field of ``lib/train/admin/local.py``."""
    if dataspec_path:
        return dataspec_path
    from lib.train.admin.environment import env_settings

    return env_settings().require("dataspec_path", what="folder of the split files (pytracking ltr/data_specs)")


def read_split_file(dataspec_path: Optional[str], filename: str, as_int: bool) -> list:
    """Read a split file (one sequence index or name per line) from the data_specs folder.

    Raises:
        DatasetError: the file is missing (names it and says where to get it) or malformed.
    """
    folder = resolve_dataspec_path(dataspec_path)
    path = os.path.join(folder, filename)
    if not os.path.isfile(path):
        raise DatasetError(f"split file '{path}' does not exist: put the split files of pytracking's "
                           f"ltr/data_specs in the folder named by 'dataspec_path' (lib/train/admin/local.py)")
    try:
        values = pandas.read_csv(path, header=None, dtype=np.int64 if as_int else str).squeeze("columns")
    except Exception as exc:
        raise DatasetError(f"split file '{path}' could not be read: {exc}") from exc
    if np.ndim(values) == 0:
        values = pandas.Series([values.item() if hasattr(values, "item") else values])
    return values.values.tolist()


def empty_object_meta(object_class_name=None, major_class=None) -> OrderedDict:
    """The per-sequence meta dict of the official datasets."""
    return OrderedDict({"object_class_name": object_class_name, "motion_class": None, "major_class": major_class,
                        "root_class": None, "motion_adverb": None})


class BaseVideoDataset(torch.utils.data.Dataset):
    """Base class of video (and image-as-sequence) training datasets.

    Args:
        name: display name (``'GOT10k'``, ``'LaSOT'``, ...).
        root: dataset folder or lmdb path.
        image_loader: ``loader(path) -> (H, W, 3) RGB uint8`` for folder storage (default
            :func:`lib.utils.image.imread_rgb`).
    """

    def __init__(self, name: str, root: str, image_loader: Optional[Callable[[str], np.ndarray]] = None):
        self.name = name
        self.root = root
        self.image_loader = image_loader or imread_rgb
        self.sequence_list: List = []
        self.class_list: List[str] = []

    def __len__(self) -> int:
        return self.get_num_sequences()

    def __getitem__(self, index):  # pragma: no cover - the sampler calls get_frames
        raise NotImplementedError("use get_frames(seq_id, frame_ids); datasets are sampled by TrackingSampler")

    def is_video_sequence(self) -> bool:
        """True for video datasets, False for image datasets used as one-frame sequences."""
        return True

    def is_synthetic_video_dataset(self) -> bool:
        return False

    def get_name(self) -> str:
        raise NotImplementedError

    def get_num_sequences(self) -> int:
        return len(self.sequence_list)

    def has_class_info(self) -> bool:
        return False

    def has_occlusion_info(self) -> bool:
        return False

    def has_segmentation_info(self) -> bool:
        return False

    def get_num_classes(self) -> int:
        return len(self.class_list)

    def get_class_list(self) -> List[str]:
        return self.class_list

    def get_sequences_in_class(self, class_name: str) -> List[int]:
        raise NotImplementedError

    def get_sequence_info(self, seq_id: int) -> Dict[str, torch.Tensor]:
        """``{'bbox': (N,4) float32 xywh pixels, 'valid': (N,) bool, 'visible': (N,) uint8, ...}``."""
        raise NotImplementedError

    def get_frames(self, seq_id: int, frame_ids: Sequence[int], anno: Optional[dict] = None
                   ) -> Tuple[List[np.ndarray], Dict[str, list], OrderedDict]:
        """Frames ``frame_ids`` (0-based) of sequence ``seq_id``.

        Returns:
            ``(frames, anno_frames, object_meta)``: the ``(H, W, 3)`` RGB uint8 frames, a dict holding for
            each key of ``anno`` (default :meth:`get_sequence_info`) the list of per-frame values, and the
            sequence's meta dict (``object_class_name``, ...).
        """
        raise NotImplementedError

    # helpers shared by the video datasets ------------------------------------------------------------------
    @staticmethod
    def _select_frames(anno: dict, frame_ids: Sequence[int]) -> Dict[str, list]:
        return {key: [value[f_id, ...].clone() for f_id in frame_ids] for key, value in anno.items()}

    def _check_frame_count(self, storage, frame_rel: Callable[[int], str], num_rows: int, gt_rel: str,
                           cache: Dict) -> None:
        """Raise :class:`DatasetError` unless the sequence has exactly ``num_rows`` frames.

        Checks that the frame of the last row exists and the one after it does not (two look-ups,
        cached per sequence), so a ground-truth file with fewer rows than frames (or more) is an error
        naming the file instead of silently training on part of the video.
        """
        key = (gt_rel, num_rows)
        if cache.get(key):
            return
        if num_rows == 0:
            raise DatasetError(f"ground-truth file '{storage.where(gt_rel)}' has no rows")
        last, after = frame_rel(num_rows - 1), frame_rel(num_rows)
        if not storage.exists(last):
            raise DatasetError(f"ground-truth file '{storage.where(gt_rel)}' has {num_rows} rows but frame "
                               f"'{storage.where(last)}' does not exist (fewer frames than rows)")
        if storage.exists(after):
            raise DatasetError(f"ground-truth file '{storage.where(gt_rel)}' has {num_rows} rows but the sequence "
                               f"has more frames ('{storage.where(after)}' exists): the annotation has fewer rows "
                               f"than frames")
        cache[key] = True
