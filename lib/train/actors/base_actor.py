"""Base class of the actors: an actor runs a training batch through the network and computes the loss
(pytracking ``ltr/actors/base_actor.py``)."""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

__all__ = ["BaseActor"]


class BaseActor:
    """Runs a batch through ``net`` and computes the loss with ``objective``.

    Args:
        net: the network (possibly wrapped in DDP).
        objective: dict of loss callables (``{'giou': ..., 'l1': ..., 'focal': ...}``).
        loss_weight: dict of weights with the same keys.
        settings: training settings (:class:`~lib.train.admin.settings.Settings`).
        cfg: the experiment configuration.
    """

    def __init__(self, net: nn.Module, objective: Dict, loss_weight: Dict = None, settings=None, cfg=None):
        self.net = net
        self.objective = objective
        self.loss_weight = loss_weight or {}
        self.settings = settings
        self.cfg = cfg

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Forward ``data`` (a batch ``TensorDict``, frames stacked on dim 0, batch on dim 1; it also
        holds ``epoch``). Returns ``(loss, stats)`` with the 0-d loss and a dict of floats to log."""
        raise NotImplementedError

    def to(self, device) -> None:
        self.net.to(device)

    def train(self, mode: bool = True) -> None:
        self.net.train(mode)

    def eval(self) -> None:
        self.train(False)
