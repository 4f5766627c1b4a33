"""Train-side settings (``lib/train/admin/local.py``, class ``EnvironmentSettings``): the workspace,
TensorBoard folder, pretrained weights and the training datasets.

The field names are those of the official ``lib/train/admin/local.py`` of OSTrack/STARK, so an
existing local.py from those repositories keeps working.
"""

from __future__ import annotations

import importlib
import os

from lib.config import PROJECT_ROOT
from lib.utils.local_settings import SettingsBase, SettingsError, write_local_file

__all__ = ["EnvironmentSettings", "env_settings", "create_default_local_file", "TRAIN_FIELDS", "SettingsError"]

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

LOCAL_FILE_REL = "lib/train/admin/local.py"


class EnvironmentSettings(SettingsBase):
    """All train-side fields (see ``TRAIN_FIELDS``), each ``''`` until local.py sets it."""

    FIELDS = TRAIN_FIELDS
    LOCAL_FILE = LOCAL_FILE_REL


def env_settings() -> EnvironmentSettings:
    """Load ``lib/train/admin/local.py`` (class ``EnvironmentSettings``) and apply environment overrides.

    Raises:
        SettingsError: local.py is missing (says how to create it) or fails to import.
    """
    path = PROJECT_ROOT / LOCAL_FILE_REL
    if not path.is_file():
        env = EnvironmentSettings().apply_env_overrides()
        if env.workspace_dir:
            return env
        raise SettingsError(
            f"{LOCAL_FILE_REL} does not exist. Create it with: python tracking/create_default_local_file.py "
            f"--workspace_dir . --data_dir ./data --save_dir ./output  (then edit the dataset paths in it), "
            f"or set TRACKING_WORKSPACE_DIR.")
    try:
        module = importlib.import_module("lib.train.admin.local")
        env = module.EnvironmentSettings()
    except Exception as exc:
        raise SettingsError(f"{path}: could not be loaded ({type(exc).__name__}: {exc})") from exc
    # An official local.py defines its own EnvironmentSettings class: give it our helpers.
    if not isinstance(env, EnvironmentSettings):
        own = EnvironmentSettings()
        own.__dict__.update(vars(env))
        env = own
    return env.apply_env_overrides()


def create_default_local_file(workspace_dir: str, data_dir: str, save_dir: str, overwrite: bool = False) -> str:
    """Write ``lib/train/admin/local.py`` with paths under ``workspace_dir`` and ``data_dir``.

    Returns the path written, or '' if the file exists and ``overwrite`` is False.
    """
    path = PROJECT_ROOT / LOCAL_FILE_REL
    if path.exists() and not overwrite:
        return ""
    workspace_dir = os.path.abspath(workspace_dir)
    data_dir = os.path.abspath(data_dir)
    save_dir = os.path.abspath(save_dir)
    d = lambda *p: os.path.join(data_dir, *p)  # noqa: E731
    values = {
        "workspace_dir": workspace_dir,
        "tensorboard_dir": os.path.join(save_dir, "tensorboard"),
        "pretrained_networks": str(PROJECT_ROOT / "pretrained_models"),
        "dataspec_path": d("data_specs"),
        "lasot_dir": d("lasot"),
        "got10k_dir": d("got10k", "train"),
        "got10k_val_dir": d("got10k", "val"),
        "lasot_lmdb_dir": d("lasot_lmdb"),
        "got10k_lmdb_dir": d("got10k_lmdb"),
        "trackingnet_dir": d("trackingnet"),
        "trackingnet_lmdb_dir": d("trackingnet_lmdb"),
        "coco_dir": d("coco"),
        "coco_lmdb_dir": d("coco_lmdb"),
        "lvis_dir": d("lvis"),
        "sbd_dir": d("sbd"),
        "imagenet_dir": d("vid"),
        "imagenet_lmdb_dir": d("vid_lmdb"),
        "imagenetdet_dir": d("imagenet_det"),
        "ecssd_dir": d("ecssd"),
        "hkuis_dir": d("hkuis"),
        "msra10k_dir": d("msra10k"),
        "davis_dir": d("davis"),
        "youtubevos_dir": d("youtubevos"),
    }
    header = ('"""Train-side paths of this machine (written by tracking/create_default_local_file.py; edit freely).\n\n'
              'Every field can be overridden for one run by TRACKING_<FIELD> (e.g. TRACKING_LASOT_DIR).\n'
              'Checkpoints and logs go to the --save_dir given to tracking/train.py.\n"""\n'
              "from lib.train.admin.environment import EnvironmentSettings as _Base\n\n\n"
              "class EnvironmentSettings(_Base):\n    def __init__(self):\n        super().__init__()\n")
    lines = [f"        self.{name} = {values.get(name, '')!r}  # {desc}" for name, desc in TRAIN_FIELDS]
    write_local_file(str(path), header, lines)
    return str(path)
