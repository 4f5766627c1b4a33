"""Actors (network forward + loss for one batch) and the per-script *train recipes*.

A :class:`TrainRecipe` says everything script-specific about training: the actor class, the loss
functions and their weights (from the config), the optimizer's parameter groups, when checkpoints are
kept, and whether the previous stage's checkpoint is loaded. Each tracker's actor module registers its
recipe with :func:`register_recipe` when imported; modules are imported lazily from
:data:`ACTOR_MODULES`, so training OSTrack never imports STARK's actor.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .base_actor import BaseActor

__all__ = ["BaseActor", "TrainRecipe", "register_recipe", "get_recipe", "get_actor_class", "ACTOR_MODULES",
           "backbone_param_groups", "ostrack_checkpoint_epochs", "last_epochs_or_every"]

#: script name -> module registering its recipe on import.
ACTOR_MODULES = {
    "ostrack": "lib.train.actors.ostrack",
    "grm": "lib.train.actors.grm",
    "stark_s": "lib.train.actors.stark",
    "stark_st1": "lib.train.actors.stark",
    "stark_st2": "lib.train.actors.stark",
    "aiatrack": "lib.train.actors.aiatrack",
    "sparsett": "lib.train.actors.sparsett",
}


def backbone_param_groups(net, cfg) -> List[Dict]:
    """Official OSTrack/STARK optimizer groups: parameters whose name lacks ``'backbone'`` at ``TRAIN.LR``,
    backbone parameters at ``TRAIN.LR * TRAIN.BACKBONE_MULTIPLIER``; with ``TRAIN.TRAIN_CLS`` only the
    parameters whose name contains ``'cls'`` (all others frozen). Frozen parameters are left out."""
    named = list(net.named_parameters())
    if cfg.TRAIN.get("TRAIN_CLS", False):
        for n, p in named:
            if "cls" not in n:
                p.requires_grad = False
        return [{"params": [p for n, p in named if "cls" in n and p.requires_grad]}]
    return [
        {"params": [p for n, p in named if "backbone" not in n and p.requires_grad]},
        {"params": [p for n, p in named if "backbone" in n and p.requires_grad],
         "lr": cfg.TRAIN.LR * cfg.TRAIN.BACKBONE_MULTIPLIER},
    ]


def ostrack_checkpoint_epochs(epoch: int, max_epochs: int) -> bool:
    """OSTrack keeps a checkpoint at the last epoch, every 40th epoch, epochs 79/159/239 and the last 5."""
    return epoch >= max_epochs or epoch % 40 == 0 or epoch in (79, 159, 239) or epoch > max_epochs - 5


def last_epochs_or_every(last: int, every: int) -> Callable[[int, int], bool]:
    """Rule keeping the last ``last`` epochs and every ``every``-th (STARK: 10/100, GRM: 5/100)."""

    def rule(epoch: int, max_epochs: int) -> bool:
        return epoch >= max_epochs or epoch > max_epochs - last or epoch % every == 0

    return rule


@dataclass
class TrainRecipe:
    """What is specific to one script's training.

    Attributes:
        script: script name (``ostrack``, ...).
        actor_cls: the :class:`BaseActor` subclass.
        build_objective: ``fn(cfg) -> (objective, loss_weight)`` dicts keyed by loss name.
        param_groups: ``fn(net, cfg) -> list of optimizer groups`` (default :func:`backbone_param_groups`).
        checkpoint_epochs: ``fn(epoch, max_epochs) -> bool``: keep this epoch's checkpoint.
        load_previous_stage: load ``--script_prv/--config_prv``'s last checkpoint before training
            (STARK-ST stage 2); also done whenever those arguments are given.
        build_dataloaders: optional ``fn(cfg, settings) -> (loader_train, loader_val or None)`` replacing the
            standard loaders of :func:`lib.train.base_functions.build_dataloaders` (AiATrack's reference
            sampler, SparseTT's pair sampler).
        update_settings: optional ``fn(settings, cfg)`` replacing :func:`lib.train.base_functions.update_settings`
            (configs without the standard DATA.TEMPLATE/SEARCH keys).
        settings_hook: optional ``fn(settings, cfg)`` run after the settings update.
        build_optimizer: optional ``fn(net, cfg) -> (optimizer, epoch scheduler)`` replacing
            :func:`lib.train.base_functions.get_optimizer_scheduler` (SparseTT's AdamW with its multi-stage
            learning rates); ``param_groups`` is then not used.
        prepare_network: optional ``fn(net, cfg, settings) -> net`` applied to the built network before it is
            wrapped for DDP (SparseTT's synchronised batch norm).
        pretrained_files: optional ``fn(cfg) -> [(path, config key)]``: the pretrained backbone files the config
            needs (:mod:`lib.train.pretrained`), checked before the data is loaded.
    """

    script: str
    actor_cls: type
    build_objective: Callable[..., Tuple[Dict, Dict]]
    param_groups: Callable = backbone_param_groups
    checkpoint_epochs: Callable[[int, int], bool] = ostrack_checkpoint_epochs
    load_previous_stage: bool = False
    build_dataloaders: Optional[Callable] = None
    update_settings: Optional[Callable] = None
    settings_hook: Optional[Callable] = None
    build_optimizer: Optional[Callable] = None
    prepare_network: Optional[Callable] = None
    pretrained_files: Optional[Callable] = None
    extra: Dict = field(default_factory=dict)


_RECIPES: Dict[str, TrainRecipe] = {}


def register_recipe(recipe: TrainRecipe) -> TrainRecipe:
    """Register ``recipe`` under ``recipe.script`` (overwrites an earlier one)."""
    _RECIPES[recipe.script] = recipe
    return recipe


def get_recipe(script: str) -> TrainRecipe:
    """The recipe of ``script``, importing its actor module on first use.

    Raises:
        KeyError: unknown script, or its actor module is not there yet (lists the known scripts).
    """
    if script not in _RECIPES:
        module = ACTOR_MODULES.get(script)
        if module is None:
            raise KeyError(f"no training recipe for script '{script}'; known: {', '.join(sorted(ACTOR_MODULES))}")
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                raise KeyError(f"training for script '{script}' is not available ({module} is missing)") from exc
            raise
        if script not in _RECIPES:
            raise KeyError(f"{module} did not register a training recipe for script '{script}'")
    return _RECIPES[script]


def get_actor_class(script: str) -> type:
    """The actor class of ``script`` (``ostrack`` -> ``OSTrackActor``)."""
    return get_recipe(script).actor_cls
