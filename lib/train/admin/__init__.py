"""Training administration: environment (local.py), settings, statistics, loggers and DDP helpers."""

from .environment import EnvironmentSettings, SettingsError, env_settings
from .settings import Settings
from .stats import AverageMeter, StatValue

__all__ = ["EnvironmentSettings", "SettingsError", "env_settings", "Settings", "AverageMeter", "StatValue"]
