"""Helpers of the parity tests: the deterministic weight fill of the reference fixtures and comparisons.

The fill is the recipe of ``../shared/reference/parity`` for OSTrack, GRM and SparseTT (see
``OSTRACK_GRM.md`` section 8 and ``parity/SPARSETT_FIXTURE.md``): every state_dict entry is filled from its
name and shape only, so the same network built by different code gets the same weights.
"""

from __future__ import annotations

import zlib
from typing import Dict, Mapping, Tuple

import torch

__all__ = ["recipe_value", "fill_ostrack_recipe", "state_dict_checksums", "max_errors"]


def recipe_value(name: str, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The recipe's value of one state_dict entry ``name`` of ``shape``, cast to ``dtype``.

    * ``*num_batches_tracked``: int64 zeros (nothing drawn);
    * otherwise ``r = torch.randn(shape, generator=Generator().manual_seed(zlib.crc32(name)))`` (float32, one
      draw of the full shape) and ``running_var`` -> ``1 + 0.5|r|``, ``running_mean`` -> ``0.1 r``, 1-D
      ``*.weight`` -> ``1 + 0.02 r``, everything else -> ``0.02 r``; integer dtypes truncate (``0.02 r`` -> 0).
    """
    if name.endswith("num_batches_tracked"):
        return torch.zeros(tuple(shape), dtype=torch.int64)
    g = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
    r = torch.randn(tuple(shape), generator=g, dtype=torch.float32)
    if name.endswith("running_var"):
        v = 1 + 0.5 * r.abs()
    elif name.endswith("running_mean"):
        v = 0.1 * r
    elif name.endswith(".weight") and r.dim() == 1:
        v = 1 + 0.02 * r
    else:
        v = 0.02 * r
    return v.to(dtype)


def fill_ostrack_recipe(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The OSTrack/GRM/SparseTT fixture fill of every entry of ``state_dict`` (pure: names, shapes and dtypes
    only; the given tensors are not changed).

    Returns:
        A new dict with the same keys in the same order, on the CPU (see :func:`recipe_value`).
    """
    return {name: recipe_value(name, ref.shape, ref.dtype) for name, ref in state_dict.items()}


def state_dict_checksums(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, Tuple[float, float]]:
    """``{key: (sum, sum of |x|)}`` in float64, the format of the fixtures' ``__checksums.json``."""
    return {k: (float(v.sum(dtype=torch.float64)), float(v.abs().sum(dtype=torch.float64)))
            for k, v in state_dict.items()}


def max_errors(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> Tuple[float, float]:
    """``(max |a - e|, max |a - e| / max(|e|, atol))`` over all elements (float64)."""
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    diff = (a - e).abs()
    return diff.max().item(), (diff / e.abs().clamp_min(atol)).max().item()
