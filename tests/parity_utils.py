"""Shared helpers of the parity tests: the deterministic weight fills of the fixtures in
``../shared/reference/parity`` and the comparisons against the official outputs.

Each official fixture was produced by filling every state_dict entry of the official network from its
key name and shape. The recipes differ between tracker families, so each has its own function here:
:func:`fill_stark_recipe` (STARK/AiATrack, STARK_AIATRACK.md section 9) and the OSTrack/GRM/SparseTT
recipe (``OSTRACK_GRM.md`` section 8, ``parity/SPARSETT_FIXTURE.md``), which sets every entry from its
name and shape only:

* ``*num_batches_tracked``: 0 (int64 scalar), nothing drawn;
* otherwise ``r = torch.randn(shape, generator=Generator().manual_seed(zlib.crc32(name)))`` (float32, CPU)
  and the value is ``1 + 0.5 |r|`` (``*running_var``), ``0.1 r`` (``*running_mean``), ``1 + 0.02 r``
  (1-D ``*.weight``: LayerNorm/BatchNorm affine weights) or ``0.02 r`` (everything else).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

__all__ = ["fill_stark_recipe", "recipe_value", "fill_ostrack_recipe", "recipe_state_dict", "fill_state_dict_recipe",
           "state_dict_checksums", "check_checksums", "max_errors", "assert_close_report", "load_reference_keys"]


def recipe_value(name: str, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The recipe's value for one state_dict entry ``name`` of ``shape``."""
    if name.endswith("num_batches_tracked"):
        return torch.zeros(tuple(shape), dtype=torch.int64)
    g = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
    r = torch.randn(tuple(shape), generator=g, dtype=torch.float32)
    if name.endswith("running_var"):
        v = 1 + 0.5 * r.abs()
    elif name.endswith("running_mean"):
        v = 0.1 * r
    elif name.endswith(".weight") and len(shape) == 1:
        v = 1 + 0.02 * r
    else:
        v = 0.02 * r
    return v.to(dtype)


def fill_ostrack_recipe(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The recipe value of every entry of ``state_dict`` (names, shapes and dtypes only; the given tensors are
    not changed). Integer buffers other than ``num_batches_tracked`` get the float value truncated."""
    return {name: recipe_value(name, ref.shape, ref.dtype) for name, ref in state_dict.items()}


def recipe_state_dict(net_or_shapes: Union[nn.Module, Mapping[str, Sequence[int]]]) -> Dict[str, torch.Tensor]:
    """Recipe-filled state_dict of a network, or of a ``{name: shape}`` mapping (float32 entries)."""
    if isinstance(net_or_shapes, nn.Module):
        return fill_ostrack_recipe(net_or_shapes.state_dict())
    return {name: recipe_value(name, shape) for name, shape in net_or_shapes.items()}


def fill_state_dict_recipe(net: nn.Module) -> nn.Module:
    """Fill ``net`` with the recipe (strict load), put it in eval mode and return it."""
    net.load_state_dict(recipe_state_dict(net), strict=True)
    return net.eval()


def state_dict_checksums(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, Tuple[float, float]]:
    """``{key: (sum, sum of |x|)}`` in float64, the format of the fixtures' ``__checksums.json``."""
    return {k: (float(v.double().sum()), float(v.double().abs().sum())) for k, v in state_dict.items()}


def check_checksums(net: nn.Module, checksums_json: Union[str, Path], rel: float = 1e-9) -> int:
    """Compare ``[sum, sum |.|]`` (float64) of every filled entry with the reference checksums.

    Returns:
        number of entries checked.

    Raises:
        AssertionError: naming the first entries whose key set or checksums differ.
    """
    ref = json.loads(Path(checksums_json).read_text())
    ref = ref.get("checksums_sum_abssum", ref)
    mine = state_dict_checksums(net.state_dict())
    assert set(mine) == set(ref), (f"key sets differ: missing {sorted(set(ref) - set(mine))[:5]}, "
                                   f"extra {sorted(set(mine) - set(ref))[:5]}")
    bad = []
    for k, (s, a) in ref.items():
        ts, ta = mine[k]
        if abs(ts - s) > rel * max(1.0, abs(a)) or abs(ta - a) > rel * max(1.0, abs(a)):
            bad.append(f"{k}: ({ts}, {ta}) vs reference ({s}, {a})")
    assert not bad, "fill recipe not reproduced: " + "; ".join(bad[:5])
    return len(ref)


def max_errors(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> Tuple[float, float]:
    """``(max |a - e|, max |a - e| / max(|e|, atol))`` over all elements (float64)."""
    a, e = actual.detach().double(), expected.detach().double()
    diff = (a - e).abs()
    return diff.max().item(), (diff / e.abs().clamp_min(atol)).max().item()


def assert_close_report(name: str, actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4,
                        atol: float = 1e-5, report: Optional[dict] = None) -> None:
    """``torch.testing.assert_close`` with a message that names the output; records
    ``(max abs, max rel)`` error in ``report[name]`` when given."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} vs reference {tuple(expected.shape)}"
    if report is not None:
        report[name] = max_errors(actual, expected, atol)
    torch.testing.assert_close(actual.float(), expected.float(), rtol=rtol, atol=atol,
                               msg=lambda m: f"{name} differs from the official output: {m}")


def load_reference_keys(path: Union[str, Path]) -> Dict[str, list]:
    """``{state_dict key: shape}`` of an official network from ``reference/keys/<tracker>__<config>.json``."""
    data = json.loads(Path(path).read_text())
    return dict(data["state_dict"])


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
