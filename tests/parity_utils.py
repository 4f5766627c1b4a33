"""Deterministic weight fills of the parity fixtures in ``../shared/reference/parity``.

Each official fixture was produced by filling every state_dict entry of the official network from its
key name and shape. The recipes differ between tracker families, so each has its own function here.
"""

from __future__ import annotations

import zlib
from typing import Dict

import torch
from torch import nn

__all__ = ["fill_stark_recipe"]

_NORM_TYPES = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d)


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORM_TYPES) or type(module).__name__ == "FrozenBatchNorm2d"


@torch.no_grad()
def fill_stark_recipe(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Fill ``model`` in place with the STARK/AiATrack fixture recipe (STARK_AIATRACK.md section 9).

    For every state_dict key: ``noise = torch.normal(0, 0.02, shape, generator=manual_seed(crc32(key)))``;
    the value is ``noise``, except ``*.num_batches_tracked`` (left as built), ``*.running_var``
    (``1 + |noise|``) and ``<module>.weight`` of LayerNorm / BatchNorm1d / BatchNorm2d /
    FrozenBatchNorm2d modules (``1 + noise``). Attention ``in_proj_weight`` etc. are plain noise.

    Returns:
        The filled state_dict (the model is loaded with it strictly).
    """
    modules = dict(model.named_modules())
    state = model.state_dict()
    filled = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            filled[key] = value.clone()
            continue
        gen = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
        noise = torch.normal(0.0, 0.02, size=tuple(value.shape), generator=gen)
        prefix, _, leaf = key.rpartition(".")
        if leaf == "running_var":
            noise = 1 + noise.abs()
        elif leaf == "weight" and _is_norm(modules.get(prefix, nn.Identity())):
            noise = 1 + noise
        filled[key] = noise.to(value.dtype)
    model.load_state_dict(filled, strict=True)
    return filled
