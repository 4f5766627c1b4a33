"""Train-side settings (``lib/train/admin/local.py``, class ``EnvironmentSettings``): the workspace, TensorBoard
folder, pretrained weights and the training datasets.

The implementation is the one environment module, :mod:`lib.utils.local_settings` (shared with testing); this
module keeps the names that local.py files (official OSTrack/STARK ones included) import.
"""

from lib.utils.local_settings import TRAIN_FIELDS, EnvironmentSettings, SettingsError
from lib.utils.local_settings import create_train_local_file as create_default_local_file
from lib.utils.local_settings import training_env_settings as env_settings

__all__ = ["EnvironmentSettings", "env_settings", "create_default_local_file", "TRAIN_FIELDS", "SettingsError"]
