"""Test-side settings (``lib/test/evaluation/local.py``): where results go and where datasets lie.

``env_settings()`` reads ``local.py`` (written by ``tracking/create_default_local_file.py``) and
applies ``TRACKING_<FIELD>`` environment overrides. A missing local.py is a clear error; it is never
silently (re)written.
"""

from __future__ import annotations

import importlib
import os

from lib.config import PROJECT_ROOT
from lib.utils.local_settings import SettingsBase, SettingsError, write_local_file

__all__ = ["EnvSettings", "env_settings", "create_default_local_file", "TEST_FIELDS", "SettingsError"]

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

LOCAL_FILE_REL = "lib/test/evaluation/local.py"


class EnvSettings(SettingsBase):
    """All test-side fields (see ``TEST_FIELDS``), each ``''`` until local.py sets it."""

    FIELDS = TEST_FIELDS
    LOCAL_FILE = LOCAL_FILE_REL


def env_settings() -> EnvSettings:
    """Load ``lib/test/evaluation/local.py`` and apply environment overrides.

    Raises:
        SettingsError: local.py is missing (says how to create it) or fails to import.
    """
    path = PROJECT_ROOT / LOCAL_FILE_REL
    if not path.is_file():
        env = EnvSettings()
        env.prj_dir = str(PROJECT_ROOT)
        env.apply_env_overrides()
        if all(getattr(env, f) for f in ("results_path", "result_plot_path")):
            return env  # fully configured through the environment
        raise SettingsError(
            f"{LOCAL_FILE_REL} does not exist. Create it with: python tracking/create_default_local_file.py "
            f"--workspace_dir . --data_dir ./data --save_dir ./output  (then edit the dataset paths in it), "
            f"or set TRACKING_RESULTS_PATH and TRACKING_RESULT_PLOT_PATH.")
    try:
        module = importlib.import_module("lib.test.evaluation.local")
        env = module.local_env_settings()
    except Exception as exc:
        raise SettingsError(f"{path}: could not be loaded ({type(exc).__name__}: {exc})") from exc
    return env.apply_env_overrides()


def create_default_local_file(workspace_dir: str, data_dir: str, save_dir: str, overwrite: bool = False) -> str:
    """Write ``lib/test/evaluation/local.py`` with paths under ``data_dir`` and ``save_dir``.

    Returns the path written, or '' if the file exists and ``overwrite`` is False.
    """
    path = PROJECT_ROOT / LOCAL_FILE_REL
    if path.exists() and not overwrite:
        return ""
    data_dir = os.path.abspath(data_dir)
    save_dir = os.path.abspath(save_dir)
    values = {
        "prj_dir": str(PROJECT_ROOT),
        "save_dir": save_dir,
        "results_path": os.path.join(save_dir, "test", "tracking_results"),
        "segmentation_path": os.path.join(save_dir, "test", "segmentation_results"),
        "network_path": os.path.join(save_dir, "test", "networks"),
        "result_plot_path": os.path.join(save_dir, "test", "result_plots"),
        "otb_path": os.path.join(data_dir, "otb"),
        "nfs_path": os.path.join(data_dir, "nfs"),
        "uav_path": os.path.join(data_dir, "uav"),
        "tc128_path": os.path.join(data_dir, "TC128"),
        "tpl_path": os.path.join(data_dir, "tpl"),
        "vot_path": os.path.join(data_dir, "vot2018"),
        "vot18_path": os.path.join(data_dir, "vot2018"),
        "vot20_path": os.path.join(data_dir, "vot2020"),
        "vot22_path": os.path.join(data_dir, "vot2022"),
        "got10k_path": os.path.join(data_dir, "got10k"),
        "got10k_lmdb_path": os.path.join(data_dir, "got10k_lmdb"),
        "lasot_path": os.path.join(data_dir, "lasot"),
        "lasot_lmdb_path": os.path.join(data_dir, "lasot_lmdb"),
        "lasot_extension_subset_path": os.path.join(data_dir, "lasot_extension_subset"),
        "trackingnet_path": os.path.join(data_dir, "trackingnet"),
        "avist_path": os.path.join(data_dir, "avist"),
        "itb_path": os.path.join(data_dir, "itb"),
        "tnl2k_path": os.path.join(data_dir, "tnl2k"),
        "dataspec_path": os.path.join(data_dir, "data_specs"),
        "davis_dir": os.path.join(data_dir, "davis"),
        "youtubevos_dir": os.path.join(data_dir, "youtubevos"),
        "got_packed_results_path": os.path.join(save_dir, "test", "got10k_submission"),
        "got_reports_path": os.path.join(save_dir, "test", "got10k_reports"),
        "tn_packed_results_path": os.path.join(save_dir, "test", "trackingnet_submission"),
    }
    header = ('"""Test-side paths of this machine (written by tracking/create_default_local_file.py; edit freely).\n\n'
              'Every field can be overridden for one run by TRACKING_<FIELD> (e.g. TRACKING_OTB_PATH).\n"""\n'
              "from lib.test.evaluation.environment import EnvSettings\n\n\n"
              "def local_env_settings():\n    settings = EnvSettings()\n")
    lines = []
    for name, desc in TEST_FIELDS:
        lines.append(f"    settings.{name} = {values.get(name, '')!r}  # {desc}")
    lines.append("    return settings")
    write_local_file(str(path), header, lines)
    return str(path)
