"""Where pretrained backbone weights (MAE ViT, ...) are looked up for training."""

from __future__ import annotations

import logging
import os
import warnings
from typing import List, Optional, Tuple

from torch import nn


__all__ = ["pretrained_dir", "find_pretrained", "load_full_model_weights"]

_logger = logging.getLogger(__name__)


def pretrained_dir() -> str:
    """``pretrained_networks`` of ``lib/train/admin/local.py`` (or ``TRACKING_PRETRAINED_NETWORKS``), else
    ``<project>/pretrained_models``. Every backbone (ViT, ResNet, Swin) looks here."""
    from lib.utils.local_settings import pretrained_networks_dir

    return pretrained_networks_dir()


def find_pretrained(filename: str, what: str = "backbone") -> Optional[str]:
    """Path of ``filename`` in :func:`pretrained_dir`, or None with a warning that training starts
    from random ``what`` weights. Nothing is ever downloaded."""
    path = filename if os.path.isabs(filename) else os.path.join(pretrained_dir(), filename)
    if os.path.isfile(path):
        return path
    warnings.warn(f"pretrained {what} weights '{path}' not found: the {what} starts from random weights "
                  f"(put the file there or set pretrained_networks in lib/train/admin/local.py)", stacklevel=2)
    return None


def load_full_model_weights(model: nn.Module, path: str) -> Optional[Tuple[List[str], List[str]]]:
    """Start training from a whole tracker checkpoint (``MODEL.PRETRAIN_FILE`` naming an OSTrack or GRM
    checkpoint, official ``build_ostrack``/``build_grm``): its ``net`` is loaded non-strictly with the safe
    loader (no code from the file runs). ``path`` is used as given (relative to the working directory).

    Returns:
        ``(missing_keys, unexpected_keys)``, or None (with a warning) when the file does not exist.
    """
    if not os.path.isfile(path):
        warnings.warn(f"MODEL.PRETRAIN_FILE '{path}' not found: training starts from random weights", stacklevel=2)
        return None
    from lib.utils.checkpoint import extract_state_dict, safe_load

    state = extract_state_dict(safe_load(path), path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    _logger.info("loaded %s weights from '%s' (missing %s, unexpected %s)", type(model).__name__, path, missing,
                 unexpected)
    return list(missing), list(unexpected)
