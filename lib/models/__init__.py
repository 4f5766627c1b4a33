"""Networks of every tracker, built by script name: ``build_network(script, config, checkpoint=None)``.

Each tracker package registers its builder with :func:`register_network`; the registry maps a
script name (the one ``tracking/train.py --script`` takes) to a :class:`NetworkSpec`. Packages are
imported lazily, so building OSTrack never imports SparseTT. Official checkpoints are read by the
safe loader of :mod:`lib.utils.checkpoint`, adapted by the network's own ``checkpoint_filter`` (the
one place where foreign key layouts are mapped, like timm's ``checkpoint_filter_fn``) and loaded
strictly.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Union

import torch
from torch import nn

from lib.config import Config, load_config
from lib.utils.checkpoint import (CheckpointError, extract_state_dict, load_state_dict_strict,
                                  safe_load)
from lib.utils.misc import resolve_device

__all__ = ["NetworkSpec", "register_network", "get_network_spec", "build_network", "load_network_checkpoint",
           "NETWORK_MODULES"]

#: script name -> package that registers its network when imported.
NETWORK_MODULES = {
    "ostrack": "lib.models.ostrack",
    "grm": "lib.models.grm",
    "stark_s": "lib.models.stark",
    "stark_st1": "lib.models.stark",
    "stark_st2": "lib.models.stark",
    "aiatrack": "lib.models.aiatrack",
    "sparsett": "lib.models.sparsett",
}


@dataclass
class NetworkSpec:
    """How to build one script's network.

    Attributes:
        script: script name.
        builder: ``builder(cfg, training) -> nn.Module``; ``training=True`` also loads the
            pretrained backbone from ``pretrained_models/`` when present.
        net_type: the class name the official checkpoints record as ``net_type`` and use as file
            prefix (``OSTrack_ep0300.pth.tar``).
        checkpoint_filter: optional ``filter(state_dict, loaded_object) -> state_dict`` mapping a
            foreign key layout (mmtracking, ...) onto the official one; identity when None.
    """

    script: str
    builder: Callable[..., nn.Module]
    net_type: str
    checkpoint_filter: Optional[Callable[[Dict[str, torch.Tensor], Any], Dict[str, torch.Tensor]]] = None


_REGISTRY: Dict[str, NetworkSpec] = {}


def register_network(script: str, net_type: str, checkpoint_filter=None):
    """Decorator registering ``builder(cfg, training=False)`` as the network of ``script``."""

    def deco(builder):
        _REGISTRY[script] = NetworkSpec(script, builder, net_type, checkpoint_filter)
        return builder

    return deco


def get_network_spec(script: str) -> NetworkSpec:
    """The :class:`NetworkSpec` of ``script``, importing its package on first use.

    Raises:
        KeyError: unknown script, or a script whose package is not there yet (lists the known ones).
    """
    if script not in _REGISTRY:
        module = NETWORK_MODULES.get(script)
        if module is None:
            raise KeyError(f"unknown network script '{script}'; known: {', '.join(sorted(NETWORK_MODULES))}")
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                raise KeyError(f"network script '{script}' is not available ({module} is missing)") from exc
            raise
        if script not in _REGISTRY:
            raise KeyError(f"{module} did not register a network for script '{script}'")
    return _REGISTRY[script]


def load_network_checkpoint(net: nn.Module, checkpoint: Union[str, os.PathLike, Mapping], script: str) -> Any:
    """Load an official or toolkit checkpoint into ``net`` strictly.

    Args:
        net: the built network.
        checkpoint: path to a checkpoint file (``torch.save`` dict with ``net``, a SparseTT snapshot,
            an mmtracking file or a bare state_dict), or an already loaded object.
        script: the script whose ``checkpoint_filter`` applies.

    Returns:
        The loaded checkpoint object (inert placeholders for pickled classes).

    Raises:
        FileNotFoundError, CheckpointError: unreadable file, or keys/shapes that do not fit (each
            missing/unexpected key and shape mismatch is listed).
    """
    spec = get_network_spec(script)
    if isinstance(checkpoint, Mapping):
        obj, source = checkpoint, "checkpoint"
    else:
        obj, source = safe_load(checkpoint), f"checkpoint '{os.fspath(checkpoint)}'"
    state_dict = extract_state_dict(obj, source)
    if spec.checkpoint_filter is not None:
        state_dict = spec.checkpoint_filter(state_dict, obj)
    load_state_dict_strict(net, state_dict, source)
    return obj


def build_network(script: str, config: Union[str, os.PathLike, Config],
                  checkpoint: Union[str, os.PathLike, None] = None,
                  device: Union[str, torch.device] = "cpu", training: bool = False) -> nn.Module:
    """Build the network of ``experiments/<script>/<config>.yaml``.

    Args:
        script: ``ostrack``, ``grm``, ``stark_s``, ``stark_st1``, ``stark_st2``, ``aiatrack`` or ``sparsett``.
        config: config name, path to a YAML file, or a loaded :class:`~lib.config.Config`.
        checkpoint: optional checkpoint file loaded strictly (see :func:`load_network_checkpoint`).
        device: where the network goes (``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'auto'``).
        training: build for training (train mode, pretrained backbone loaded from
            ``pretrained_models/`` when the file is there, a warning otherwise). The default builds
            in eval mode and reads nothing but ``checkpoint``.

    Returns:
        The network, with the official state_dict keys and the official forward signature.
    """
    cfg = config if isinstance(config, Config) else load_config(script, config)
    spec = get_network_spec(script)
    net = spec.builder(cfg, training=training)
    if checkpoint is not None:
        load_network_checkpoint(net, checkpoint, script)
    net.to(resolve_device(device))
    net.train(training)
    return net
