"""Where pretrained backbone weights (MAE ViT, ...) are looked up for training."""

from __future__ import annotations

import os
import warnings
from typing import Optional

from lib.config import PROJECT_ROOT

__all__ = ["pretrained_dir", "find_pretrained"]


def pretrained_dir() -> str:
    """``pretrained_networks`` of ``lib/train/admin/local.py`` (or ``TRACKING_PRETRAINED_NETWORKS``), else
    ``<project>/pretrained_models``. Every backbone (ViT, ResNet, Swin) looks here."""
    from lib.train.admin.environment import EnvironmentSettings, SettingsError, env_settings

    try:
        folder = env_settings().pretrained_networks
    except SettingsError:  # no local.py: environment overrides only
        folder = EnvironmentSettings().apply_env_overrides().pretrained_networks
    return folder or str(PROJECT_ROOT / "pretrained_models")


def find_pretrained(filename: str, what: str = "backbone") -> Optional[str]:
    """Path of ``filename`` in :func:`pretrained_dir`, or None with a warning that training starts
    from random ``what`` weights. Nothing is ever downloaded."""
    path = filename if os.path.isabs(filename) else os.path.join(pretrained_dir(), filename)
    if os.path.isfile(path):
        return path
    warnings.warn(f"pretrained {what} weights '{path}' not found: the {what} starts from random weights "
                  f"(put the file there or set pretrained_networks in lib/train/admin/local.py)", stacklevel=2)
    return None
