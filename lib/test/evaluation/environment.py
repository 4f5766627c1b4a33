"""Test-side settings (``lib/test/evaluation/local.py``): where results go and where datasets lie.

The implementation is the one environment module, :mod:`lib.utils.local_settings` (shared with training); this
module keeps the names that local.py files and the official code import (``EnvSettings``, ``env_settings``,
``create_default_local_file``).
"""

from lib.utils.local_settings import TEST_FIELDS, EnvSettings, SettingsError
from lib.utils.local_settings import create_test_local_file as create_default_local_file
from lib.utils.local_settings import evaluation_env_settings as env_settings

__all__ = ["EnvSettings", "env_settings", "create_default_local_file", "TEST_FIELDS", "SettingsError"]
