"""The pretrained backbone files a training config needs, checked before any long work starts.

A full config (MAE ViT-B/L for OSTrack and GRM, ImageNet ResNet-50/101 for STARK and AiATrack, ImageNet Swin-T
for SparseTT) that starts from random weights because its file is missing trains for days to a useless network;
:func:`check_pretrained` makes that a :class:`PretrainedMissingError` naming the file and where to get it, unless
``--random_init`` is given. The small ``tiny_cpu`` configs ask for no file (empty ``PRETRAIN_FILE`` /
``PRETRAINED``) or use ResNet-18, which no official config uses, and are not checked.

Each script's :class:`~lib.train.actors.TrainRecipe` names its function (``pretrained_files``).
"""

from __future__ import annotations

import os
from typing import List, Tuple

from lib.utils.errors import UserError

__all__ = ["PretrainedMissingError", "PRETRAINED_SOURCES", "vit_pretrained_files", "resnet_pretrained_files",
           "swin_pretrained_files", "check_pretrained"]

#: file name -> where to download it (the sources the official repositories point to).
PRETRAINED_SOURCES = {
    "mae_pretrain_vit_base.pth": "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth",
    "mae_pretrain_vit_large.pth": "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_large.pth",
    "resnet50-19c8e357.pth": "https://download.pytorch.org/models/resnet50-19c8e357.pth",
    "resnet101-5d3b4d8f.pth": "https://download.pytorch.org/models/resnet101-5d3b4d8f.pth",
    "swin_tiny_patch4_window7_224.pth":
        "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth",
}


class PretrainedMissingError(UserError):
    """A config's pretrained backbone file is not there (and ``--random_init`` was not given)."""


def _in_pretrained_dir(filename: str) -> str:
    from lib.models.backbones.pretrained import pretrained_dir

    return filename if os.path.isabs(filename) else os.path.join(pretrained_dir(), filename)


def vit_pretrained_files(cfg, tracker_tags=("OSTrack", "GRM")) -> List[Tuple[str, str]]:
    """OSTrack / GRM: ``MODEL.PRETRAIN_FILE`` in the pretrained folder (MAE weights), or as given when it names
    a whole tracker checkpoint; nothing when it is empty. Returns ``[(path, config key)]``."""
    name = cfg.MODEL.get("PRETRAIN_FILE", "") or ""
    if not name:
        return []
    if any(tag in name for tag in tracker_tags):
        return [(name, "MODEL.PRETRAIN_FILE")]
    return [(_in_pretrained_dir(name), "MODEL.PRETRAIN_FILE")]


def resnet_pretrained_files(cfg) -> List[Tuple[str, str]]:
    """STARK / AiATrack: the ImageNet weights of ``MODEL.BACKBONE.TYPE`` when it is ResNet-50 or -101 (the
    official configs' backbones); smaller ResNets (test configs) are not required."""
    from lib.models.backbones.resnet import RESNET_PRETRAINED_FILES, pretrained_resnet_path

    name = cfg.MODEL.BACKBONE.TYPE
    if name not in ("resnet50", "resnet101"):
        return []
    found = pretrained_resnet_path(name)
    return [(found or _in_pretrained_dir(RESNET_PRETRAINED_FILES[name]), "MODEL.BACKBONE.TYPE")]


def swin_pretrained_files(cfg) -> List[Tuple[str, str]]:
    """SparseTT: ``MODEL.BACKBONE.PRETRAINED`` in the pretrained folder; nothing when it is empty."""
    name = cfg.MODEL.BACKBONE.get("PRETRAINED", "") or ""
    return [(_in_pretrained_dir(name), "MODEL.BACKBONE.PRETRAINED")] if name else []


def check_pretrained(recipe, cfg, random_init: bool = False) -> List[str]:
    """Check that the pretrained files ``recipe.pretrained_files(cfg)`` exist.

    Returns:
        the missing paths (empty when all are there; with ``random_init`` the missing ones are returned
        instead of raising).

    Raises:
        PretrainedMissingError: a file is missing and ``random_init`` is False; the message names the file,
            the config key asking for it, where to download it and ``--random_init``.
    """
    fn = getattr(recipe, "pretrained_files", None)
    if fn is None:
        return []
    missing = [(path, key) for path, key in fn(cfg) if not os.path.isfile(path)]
    if missing and not random_init:
        lines = []
        for path, key in missing:
            url = PRETRAINED_SOURCES.get(os.path.basename(path))
            where = f"download it from {url}" if url else "it is the weights this config starts from"
            lines.append(f"'{path}' ({key}) does not exist: {where} and put it there (the folder is "
                         f"pretrained_networks of lib/train/admin/local.py or TRACKING_PRETRAINED_NETWORKS)")
        raise PretrainedMissingError("pretrained backbone weights missing: " + "; ".join(lines)
                                     + ". Give --random_init to train from random weights anyway.")
    return [path for path, _ in missing]
