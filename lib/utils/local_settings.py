"""The one environment module: the paths of this machine, read from the two ``local.py`` files.

* test side, ``lib/test/evaluation/local.py`` (:class:`EnvSettings`, :func:`evaluation_env_settings`): where results
  and plots go and where the benchmark datasets lie;
* train side, ``lib/train/admin/local.py`` (:class:`EnvironmentSettings`, :func:`training_env_settings`): the
  workspace, TensorBoard folder, pretrained backbones and the training datasets. The field names are those of
  the official OSTrack/STARK ``local.py`` files, so an existing one keeps working.

``tracking/create_default_local_file.py`` writes both files; a missing local.py is a clear error and is never
silently (re)written. Any field can be overridden for one run by the environment variable ``TRACKING_<FIELD>`` in
upper case, e.g. ``TRACKING_OTB_PATH=/data/otb``; with the fields a side needs set that way, its local.py may be
absent. ``lib/test/evaluation/environment.py`` and ``lib/train/admin/environment.py`` re-export this module
under their historical names (``env_settings``, ``create_default_local_file``), which local.py files import.

This module sits below models, training and testing: any layer may read paths from it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from lib.utils.errors import register_user_error

__all__ = ["SettingsError", "SettingsBase", "EnvSettings", "EnvironmentSettings", "TEST_FIELDS", "TRAIN_FIELDS",
           "evaluation_env_settings", "training_env_settings", "create_test_local_file", "create_train_local_file",
           "pretrained_networks_dir", "write_local_file", "ENV_PREFIX", "PROJECT_ROOT"]

ENV_PREFIX = "TRACKING_"

#: the project folder (``lib/..``); the local.py files and the default folders are relative to it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

_HOW_TO_CREATE = ("python tracking/create_default_local_file.py --workspace_dir . --data_dir ./data "
                  "--save_dir ./output  (then edit the dataset paths in it)")


@register_user_error
class SettingsError(RuntimeError):
    """A local.py that is missing, broken, or lacks a field a command needs."""


class SettingsBase:
    """Attribute bag of one local.py, with :meth:`require` (a field that must name an existing path).

    Subclasses set ``FIELDS`` (``[(name, description)]``), ``LOCAL_FILE`` (the local.py path relative to the
    project root), ``MODULE`` (its import path), ``READY_FIELDS`` (the fields that, set through the environment,
    make the local.py optional) and the text of the file :meth:`write_default` writes (``HEADER``, ``LINE``,
    ``FOOTER``); every field starts as ``''``.
    """

    FIELDS: Sequence[Tuple[str, str]] = ()
    LOCAL_FILE = ""
    MODULE = ""
    READY_FIELDS: Sequence[str] = ()
    HEADER = ""
    LINE = ""
    FOOTER = ""

    def __init__(self):
        for name, _ in self.FIELDS:
            setattr(self, name, "")

    # -- reading ------------------------------------------------------------------------------------
    def apply_env_overrides(self) -> "SettingsBase":
        """Set every field named by a non-empty ``TRACKING_<FIELD>`` environment variable; returns self."""
        for name, _ in self.FIELDS:
            value = os.environ.get(ENV_PREFIX + name.upper())
            if value:
                setattr(self, name, value)
        return self

    def require(self, field: str, must_exist: bool = True, what: str = "") -> str:
        """Return the value of ``field``.

        Raises:
            SettingsError: it is empty or, with ``must_exist``, names a path that does not exist. The message
                names the field, the local.py to edit and the environment variable that overrides it.
        """
        value = getattr(self, field, "")
        how = (f"set '{field}' in {self.LOCAL_FILE} (or run tracking/create_default_local_file.py, "
               f"or set the environment variable {ENV_PREFIX}{field.upper()})")
        what = f" ({what})" if what else ""
        if not value:
            raise SettingsError(f"'{field}'{what} is not set: {how}")
        if must_exist and not os.path.exists(value):
            raise SettingsError(f"'{field}'{what} points at '{value}', which does not exist: {how}")
        return value

    def fill_unset_defaults(self) -> None:
        """Values a side has even without local.py (hook; the test side knows the project folder)."""

    @classmethod
    def from_local_module(cls, module) -> "SettingsBase":
        """The settings object a loaded local.py module defines (hook)."""
        raise NotImplementedError

    @classmethod
    def load(cls) -> "SettingsBase":
        """Load this side's local.py and apply the environment overrides.

        An official local.py that defines its own settings class gets this class's helpers (its values are
        copied into an instance of ``cls``).

        Raises:
            SettingsError: local.py is missing (and the environment does not set ``READY_FIELDS``; the message
                says how to create it) or fails to import.
        """
        path = PROJECT_ROOT / cls.LOCAL_FILE
        if not path.is_file():
            env = cls()
            env.fill_unset_defaults()
            env.apply_env_overrides()
            if all(getattr(env, f) for f in cls.READY_FIELDS):
                return env  # fully configured through the environment
            names = " and ".join(ENV_PREFIX + f.upper() for f in cls.READY_FIELDS)
            raise SettingsError(f"{cls.LOCAL_FILE} does not exist. Create it with: {_HOW_TO_CREATE}, or set {names}.")
        try:
            env = cls.from_local_module(importlib.import_module(cls.MODULE))
        except Exception as exc:
            raise SettingsError(f"{path}: could not be loaded ({type(exc).__name__}: {exc})") from exc
        if not isinstance(env, cls):
            own = cls()
            own.__dict__.update(vars(env))
            env = own
        return env.apply_env_overrides()

    # -- writing ------------------------------------------------------------------------------------
    @classmethod
    def default_values(cls, workspace_dir: str, data_dir: str, save_dir: str) -> Dict[str, str]:
        """``{field: default path}`` under the given (absolute) folders (hook)."""
        raise NotImplementedError

    @classmethod
    def write_default(cls, workspace_dir: str, data_dir: str, save_dir: str, overwrite: bool = False) -> str:
        """Write this side's local.py with :meth:`default_values` (atomically).

        Returns:
            the path written, or ``''`` if the file exists and ``overwrite`` is False.
        """
        path = PROJECT_ROOT / cls.LOCAL_FILE
        if path.exists() and not overwrite:
            return ""
        values = cls.default_values(os.path.abspath(workspace_dir), os.path.abspath(data_dir),
                                    os.path.abspath(save_dir))
        lines = [cls.LINE.format(name=name, value=values.get(name, ""), desc=desc) for name, desc in cls.FIELDS]
        write_local_file(str(path), cls.HEADER, lines + ([cls.FOOTER] if cls.FOOTER else []))
        return str(path)


def write_local_file(path: str, header: str, body_lines: List[str]) -> None:
    """Write a local.py (atomically)."""
    from lib.utils.misc import atomic_write

    with atomic_write(path) as f:
        f.write(header)
        f.write("\n".join(body_lines) + "\n")


# =========================================== test side ===========================================

TEST_FIELDS = [
    ("prj_dir", "project root"),
    ("save_dir", "root of outputs; trained checkpoints are read from <save_dir>/checkpoints"),
    ("results_path", "raw tracking results: <results_path>/<tracker>/<config>/<seq>.txt"),
    ("segmentation_path", "segmentation results (unused by the box trackers)"),
    ("network_path", "extra network files"),
    ("result_plot_path", "analysis output: tables, plots, eval_data.npz caches"),
    ("otb_path", "OTB-2015: <otb_path>/<Seq>/img/0001.jpg, groundtruth_rect.txt"),
    ("nfs_path", "NfS: sequences/<Name>/00001.jpg, anno/nfs_<Name>.txt"),
    ("uav_path", "UAV123 and UAV123@10fps: data_seq/UAV123[_10fps]/<video>/000001.jpg, anno/UAV123[_10fps]/<name>.txt"),
    ("tc128_path", "Temple Color 128: <Seq>/img/0001.jpg, <Seq>_gt.txt, <Seq>_frames.txt"),
    ("tpl_path", "Temple Color 128 in pytracking's layout (tpl_<Name>)"),
    ("vot_path", "VOT short-term (2018 layout): <seq>/color/00000001.jpg, groundtruth.txt"),
    ("vot18_path", "VOT2018"),
    ("vot20_path", "VOT2020"),
    ("vot22_path", "VOT2022"),
    ("got10k_path", "GOT-10k root holding test/, val/, train/"),
    ("got10k_lmdb_path", "GOT-10k as lmdb"),
    ("lasot_path", "LaSOT: <class>/<class>-<id>/img/00000001.jpg, groundtruth.txt, full_occlusion.txt, out_of_view.txt"),
    ("lasot_lmdb_path", "LaSOT as lmdb"),
    ("lasot_extension_subset_path", "LaSOT extension subset, LaSOT layout"),
    ("trackingnet_path", "TrackingNet root holding TEST/frames and TEST/anno"),
    ("avist_path", "AVisT: sequences/<seq>/img_00001.jpg, anno/<seq>.txt, full_occlusion/, out_of_view/"),
    ("itb_path", "ITB"),
    ("tnl2k_path", "TNL2K"),
    ("dataspec_path", "split files (pytracking ltr/data_specs), e.g. got10k_val_split.txt"),
    ("davis_dir", "DAVIS (unused by the box trackers)"),
    ("youtubevos_dir", "YouTube-VOS (unused by the box trackers)"),
    ("got_packed_results_path", "where GOT-10k submission zips are written"),
    ("got_reports_path", "GOT-10k server reports (JSON) for plots"),
    ("tn_packed_results_path", "where TrackingNet submission zips are written"),
]

#: test-side dataset fields -> folder under ``--data_dir`` in the default local.py
_TEST_DATA_DIRS = {
    "otb_path": "otb", "nfs_path": "nfs", "uav_path": "uav", "tc128_path": "TC128", "tpl_path": "tpl",
    "vot_path": "vot2018", "vot18_path": "vot2018", "vot20_path": "vot2020", "vot22_path": "vot2022",
    "got10k_path": "got10k", "got10k_lmdb_path": "got10k_lmdb", "lasot_path": "lasot", "lasot_lmdb_path": "lasot_lmdb",
    "lasot_extension_subset_path": "lasot_extension_subset", "trackingnet_path": "trackingnet", "avist_path": "avist",
    "itb_path": "itb", "tnl2k_path": "tnl2k", "dataspec_path": "data_specs", "davis_dir": "davis",
    "youtubevos_dir": "youtubevos",
}

#: test-side output fields -> folder under ``<save_dir>/test`` in the default local.py
_TEST_OUTPUT_DIRS = {
    "results_path": "tracking_results", "segmentation_path": "segmentation_results", "network_path": "networks",
    "result_plot_path": "result_plots", "got_packed_results_path": "got10k_submission",
    "got_reports_path": "got10k_reports", "tn_packed_results_path": "trackingnet_submission",
}


class EnvSettings(SettingsBase):
    """All test-side fields (see ``TEST_FIELDS``), each ``''`` until local.py sets it."""

    FIELDS = TEST_FIELDS
    LOCAL_FILE = "lib/test/evaluation/local.py"
    MODULE = "lib.test.evaluation.local"
    READY_FIELDS = ("results_path", "result_plot_path")
    HEADER = ('"""Test-side paths of this machine (written by tracking/create_default_local_file.py; edit freely).\n\n'
              'Every field can be overridden for one run by TRACKING_<FIELD> (e.g. TRACKING_OTB_PATH).\n"""\n'
              "from lib.test.evaluation.environment import EnvSettings\n\n\n"
              "def local_env_settings():\n    settings = EnvSettings()\n")
    LINE = "    settings.{name} = {value!r}  # {desc}"
    FOOTER = "    return settings"

    def fill_unset_defaults(self) -> None:
        self.prj_dir = str(PROJECT_ROOT)

    @classmethod
    def from_local_module(cls, module) -> SettingsBase:
        return module.local_env_settings()

    @classmethod
    def default_values(cls, workspace_dir: str, data_dir: str, save_dir: str) -> Dict[str, str]:
        values = {"prj_dir": str(PROJECT_ROOT), "save_dir": save_dir}
        values.update({k: os.path.join(save_dir, "test", v) for k, v in _TEST_OUTPUT_DIRS.items()})
        values.update({k: os.path.join(data_dir, v) for k, v in _TEST_DATA_DIRS.items()})
        return values


def evaluation_env_settings() -> EnvSettings:
    """The test-side settings: ``lib/test/evaluation/local.py`` plus environment overrides.

    Raises:
        SettingsError: local.py is missing (says how to create it; not raised when ``TRACKING_RESULTS_PATH`` and
            ``TRACKING_RESULT_PLOT_PATH`` are set) or fails to import.
    """
    return EnvSettings.load()


def create_test_local_file(workspace_dir: str, data_dir: str, save_dir: str, overwrite: bool = False) -> str:
    """Write ``lib/test/evaluation/local.py`` with paths under ``data_dir`` and ``save_dir``.

    Returns the path written, or '' if the file exists and ``overwrite`` is False.
    """
    return EnvSettings.write_default(workspace_dir, data_dir, save_dir, overwrite=overwrite)


# =========================================== train side ==========================================

TRAIN_FIELDS = [
    ("workspace_dir", "base folder of training outputs"),
    ("tensorboard_dir", "not used by training any more: TensorBoard goes to <save_dir>/tensorboard"),
    ("pretrained_networks", "pretrained backbones (MAE ViT, ResNet, Swin), default <project>/pretrained_models"),
    ("dataspec_path", "split files (pytracking ltr/data_specs): got10k_*_split.txt, lasot_train_split.txt"),
    ("lasot_dir", "LaSOT: <class>/<class>-<id>/img/00000001.jpg"),
    ("got10k_dir", "GOT-10k train folder (holding list.txt and GOT-10k_Train_000001/...)"),
    ("got10k_val_dir", "GOT-10k val folder"),
    ("lasot_lmdb_dir", "LaSOT as lmdb"),
    ("got10k_lmdb_dir", "GOT-10k as lmdb (keys train/<seq>/...)"),
    ("trackingnet_dir", "TrackingNet: TRAIN_<k>/frames/<vid>/0.jpg, TRAIN_<k>/anno/<vid>.txt"),
    ("trackingnet_lmdb_dir", "TrackingNet as lmdb (one per chunk)"),
    ("coco_dir", "COCO 2017: images/train2017, annotations/instances_train2017.json"),
    ("coco_lmdb_dir", "COCO 2017 as lmdb"),
    ("lvis_dir", "LVIS"),
    ("sbd_dir", "SBD"),
    ("imagenet_dir", "ImageNet VID (ILSVRC2015)"),
    ("imagenet_lmdb_dir", "ImageNet VID as lmdb"),
    ("imagenetdet_dir", "ImageNet DET"),
    ("ecssd_dir", "ECSSD"),
    ("hkuis_dir", "HKU-IS"),
    ("msra10k_dir", "MSRA10k"),
    ("davis_dir", "DAVIS"),
    ("youtubevos_dir", "YouTube-VOS"),
]

#: train-side dataset fields -> folder under ``--data_dir`` in the default local.py
_TRAIN_DATA_DIRS = {
    "dataspec_path": "data_specs", "lasot_dir": "lasot", "got10k_dir": os.path.join("got10k", "train"),
    "got10k_val_dir": os.path.join("got10k", "val"), "lasot_lmdb_dir": "lasot_lmdb", "got10k_lmdb_dir": "got10k_lmdb",
    "trackingnet_dir": "trackingnet", "trackingnet_lmdb_dir": "trackingnet_lmdb", "coco_dir": "coco",
    "coco_lmdb_dir": "coco_lmdb", "lvis_dir": "lvis", "sbd_dir": "sbd", "imagenet_dir": "vid",
    "imagenet_lmdb_dir": "vid_lmdb", "imagenetdet_dir": "imagenet_det", "ecssd_dir": "ecssd", "hkuis_dir": "hkuis",
    "msra10k_dir": "msra10k", "davis_dir": "davis", "youtubevos_dir": "youtubevos",
}


class EnvironmentSettings(SettingsBase):
    """All train-side fields (see ``TRAIN_FIELDS``), each ``''`` until local.py sets it."""

    FIELDS = TRAIN_FIELDS
    LOCAL_FILE = "lib/train/admin/local.py"
    MODULE = "lib.train.admin.local"
    READY_FIELDS = ("workspace_dir",)
    HEADER = ('"""Train-side paths of this machine (written by tracking/create_default_local_file.py; edit freely).\n\n'
              'Every field can be overridden for one run by TRACKING_<FIELD> (e.g. TRACKING_LASOT_DIR).\n'
              'Checkpoints and logs go to the --save_dir given to tracking/train.py.\n"""\n'
              "from lib.train.admin.environment import EnvironmentSettings as _Base\n\n\n"
              "class EnvironmentSettings(_Base):\n    def __init__(self):\n        super().__init__()\n")
    LINE = "        self.{name} = {value!r}  # {desc}"

    @classmethod
    def from_local_module(cls, module) -> SettingsBase:
        return module.EnvironmentSettings()

    @classmethod
    def default_values(cls, workspace_dir: str, data_dir: str, save_dir: str) -> Dict[str, str]:
        values = {"workspace_dir": workspace_dir, "tensorboard_dir": os.path.join(save_dir, "tensorboard"),
                  "pretrained_networks": str(PROJECT_ROOT / "pretrained_models")}
        values.update({k: os.path.join(data_dir, v) for k, v in _TRAIN_DATA_DIRS.items()})
        return values


def training_env_settings() -> EnvironmentSettings:
    """The train-side settings: ``lib/train/admin/local.py`` (class ``EnvironmentSettings``) plus environment
    overrides.

    Raises:
        SettingsError: local.py is missing (says how to create it; not raised when ``TRACKING_WORKSPACE_DIR`` is
            set) or fails to import.
    """
    return EnvironmentSettings.load()


def create_train_local_file(workspace_dir: str, data_dir: str, save_dir: str, overwrite: bool = False) -> str:
    """Write ``lib/train/admin/local.py`` with paths under ``workspace_dir`` and ``data_dir``.

    Returns the path written, or '' if the file exists and ``overwrite`` is False.
    """
    return EnvironmentSettings.write_default(workspace_dir, data_dir, save_dir, overwrite=overwrite)


def pretrained_networks_dir() -> str:
    """The folder of pretrained backbone weights: ``pretrained_networks`` of the train local.py (or
    ``TRACKING_PRETRAINED_NETWORKS``), else ``<project>/pretrained_models``. Nothing is downloaded."""
    try:
        folder = training_env_settings().pretrained_networks
    except SettingsError:  # no local.py: environment overrides only
        folder = EnvironmentSettings().apply_env_overrides().pretrained_networks
    return folder or str(PROJECT_ROOT / "pretrained_models")
