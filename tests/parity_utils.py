"""Shared helpers of the parity tests: the deterministic weight fill of the reference fixtures and
the comparisons against the official outputs.

The fill recipe (``../shared/reference/OSTRACK_GRM.md`` section 8, also used for GRM and SparseTT)
sets every ``state_dict`` entry from its name and shape only:

* ``*num_batches_tracked``: 0 (int64 scalar), nothing drawn;
* otherwise ``r = torch.randn(shape, generator=Generator().manual_seed(zlib.crc32(name)))`` (float32, CPU)
  and the value is ``1 + 0.5 |r|`` (``*running_var``), ``0.1 r`` (``*running_mean``), ``1 + 0.02 r``
  (1-D ``*.weight``: LayerNorm/BatchNorm affine weights) or ``0.02 r`` (everything else).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

__all__ = ["recipe_value", "recipe_state_dict", "fill_state_dict_recipe", "check_checksums", "max_errors",
           "assert_close_report", "load_reference_keys"]


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


def recipe_state_dict(net_or_shapes: Union[nn.Module, Mapping[str, torch.Size]]) -> Dict[str, torch.Tensor]:
    """Recipe-filled state_dict for a network (or a ``{name: shape}`` mapping)."""
    if isinstance(net_or_shapes, nn.Module):
        shapes = {k: (v.shape, v.dtype) for k, v in net_or_shapes.state_dict().items()}
    else:
        shapes = {k: (torch.Size(v), torch.float32) for k, v in net_or_shapes.items()}
    out = {}
    for name, (shape, dtype) in shapes.items():
        out[name] = recipe_value(name, shape, dtype if dtype.is_floating_point else torch.int64)
    return out


def fill_state_dict_recipe(net: nn.Module) -> nn.Module:
    """Fill ``net`` with the recipe (strict load), put it in eval mode and return it."""
    net.load_state_dict(recipe_state_dict(net), strict=True)
    return net.eval()


def check_checksums(net: nn.Module, checksums_json: Union[str, Path], rel: float = 1e-9) -> int:
    """Compare ``[sum, sum |.|]`` (float64) of every filled entry with the reference checksums.

    Returns:
        number of entries checked.

    Raises:
        AssertionError: naming the first entries whose key set or checksums differ.
    """
    ref = json.loads(Path(checksums_json).read_text())
    ref = ref.get("checksums_sum_abssum", ref)
    sd = net.state_dict()
    assert set(sd) == set(ref), (f"key sets differ: missing {sorted(set(ref) - set(sd))[:5]}, "
                                 f"extra {sorted(set(sd) - set(ref))[:5]}")
    bad = []
    for k, (s, a) in ref.items():
        t = sd[k].detach().double()
        ts, ta = t.sum().item(), t.abs().sum().item()
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
