"""Helpers of the parity tests: the deterministic weight fill the reference fixtures were made with.

Recipe (``../shared/reference/STARK_AIATRACK.md`` section 9): for every state_dict key, noise
``N(0, 0.02)`` from a generator seeded with ``zlib.crc32(key)``; ``running_var`` = ``1 + |noise|``;
the ``weight`` of LayerNorm / BatchNorm1d / BatchNorm2d / FrozenBatchNorm2d modules = ``1 + noise``;
``num_batches_tracked`` untouched.
"""

from __future__ import annotations

import zlib

import torch
from torch import nn

__all__ = ["fill_stark_recipe"]

_NORM_TYPES = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d)


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORM_TYPES) or type(module).__name__ == "FrozenBatchNorm2d"


@torch.no_grad()
def fill_stark_recipe(model: nn.Module) -> nn.Module:
    """Overwrite every parameter and buffer of ``model`` in place with the STARK/AiATrack fixture
    recipe and return the model."""
    modules = dict(model.named_modules())
    for key, tensor in model.state_dict(keep_vars=True).items():
        if key.endswith("num_batches_tracked"):
            continue
        g = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
        noise = torch.normal(0.0, 0.02, size=tuple(tensor.shape), generator=g)
        module_name, _, leaf = key.rpartition(".")
        if leaf == "running_var":
            value = 1.0 + noise.abs()
        elif leaf == "weight" and _is_norm(modules[module_name]):
            value = 1.0 + noise
        else:
            value = noise
        tensor.copy_(value.to(tensor.dtype))
    return model
