"""Multi-layer perceptron of DETR/STARK (box MLP head, STARK-ST's score head).

Source: DETR ``models/detr.py::MLP``; STARK ``lib/models/stark/head.py::MLP`` (optional BatchNorm1d).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (none after the last).

    State_dict keys: ``layers.<i>.weight/bias``, or ``layers.<i>.0.*`` (Linear) and ``layers.<i>.1.*``
    (BatchNorm1d) with ``BN=True``.

    Args:
        input_dim: input features.
        hidden_dim: width of the hidden layers.
        output_dim: output features.
        num_layers: number of linear layers (>= 1).
        BN: add a BatchNorm1d after every linear layer (inputs must then be ``(B, C)``).

    Raises:
        ValueError: ``num_layers < 1``.
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int, BN: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP needs at least one layer, got num_layers={num_layers}")
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        dims = list(zip([input_dim] + h, h + [output_dim]))
        if BN:
            self.layers = nn.ModuleList(nn.Sequential(nn.Linear(n, k), nn.BatchNorm1d(k)) for n, k in dims)
        else:
            self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., input_dim)`` -> ``(..., output_dim)``."""
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x
