"""Checkpoint files: safe loading (no code from the file ever runs), strict key checks, atomic saving.

Official checkpoints of the pytracking family are ``torch.save`` dicts holding ``net`` (the
state_dict) next to pickled objects such as ``settings`` (a ``lib.train.admin.settings.Settings``
instance) and ``stats`` (meters). SparseTT snapshots hold ``model_state_dict``; mmtracking files hold
``state_dict``. Loading works in two tiers:

1. ``torch.load(weights_only=True)``: tensors and plain containers only. This reads bare state_dicts,
   this toolkit's own checkpoints (plain data only) and SparseTT snapshots.
2. If the file references classes, a *restricted unpickler*: a short allow-list of tensor-rebuild
   functions and plain containers is resolved; **every other global (classes, functions such as
   ``os.system`` or ``builtins.eval``) becomes an inert placeholder object** that stores its
   arguments and never calls anything. Tensors are read as usual.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import types
import warnings
import zipfile
from typing import Any, Dict, Iterable, Mapping, Optional, Union

import torch

__all__ = [
    "CheckpointError",
    "InertObject",
    "safe_load",
    "extract_state_dict",
    "check_state_dict",
    "load_state_dict_strict",
    "save_checkpoint_atomic",
]

PathLike = Union[str, os.PathLike]


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read, or whose keys/shapes do not fit the network."""


class InertObject:
    """Stand-in for a class or function that a checkpoint's pickle references but that is not on the
    allow-list. Calling the global (REDUCE/NEWOBJ) builds one of these; nothing is executed.

    Attributes:
        pickled_global: ``"module.name"`` of the replaced global.
        args: positional arguments the pickle passed; state: the pickled ``__dict__``/state.
    """

    pickled_global = "?"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<inert placeholder for {self.pickled_global}>"


_PLACEHOLDERS: Dict[str, type] = {}


def _placeholder(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _PLACEHOLDERS:
        _PLACEHOLDERS[key] = type(f"Inert[{key}]", (InertObject,), {"pickled_global": key})
    return _PLACEHOLDERS[key]


def _allowed_globals() -> Dict[str, Any]:
    allowed: Dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "collections.defaultdict": collections.defaultdict,
        "collections.deque": collections.deque,
        "collections.Counter": collections.Counter,
        "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
    }
    for name in ("_rebuild_parameter_with_state", "_rebuild_tensor_v3"):
        if hasattr(torch._utils, name):
            allowed[f"torch._utils.{name}"] = getattr(torch._utils, name)
    for name in ("set", "frozenset", "slice", "range", "complex", "bytearray", "int", "float", "str",
                 "bytes", "list", "tuple", "dict", "bool"):
        allowed[f"builtins.{name}"] = getattr(__import__("builtins"), name)
        allowed[f"__builtin__.{name}"] = allowed[f"builtins.{name}"]
    for name in dir(torch):
        obj = getattr(torch, name, None)
        if isinstance(obj, torch.dtype):
            allowed[f"torch.{name}"] = obj
    import numpy as np  # numpy scalars and arrays stored in stats (reconstruction only)

    try:
        from numpy._core import multiarray as _ma
    except ImportError:  # numpy < 2
        from numpy.core import multiarray as _ma
    allowed["numpy.dtype"] = np.dtype
    allowed["numpy.ndarray"] = np.ndarray
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[f"{mod}.scalar"] = _ma.scalar
        allowed[f"{mod}._reconstruct"] = _ma._reconstruct
    for tname in ("float64", "float32", "int64", "int32", "bool_"):
        allowed[f"numpy.{tname}"] = getattr(np, tname)
        allowed[f"numpy.dtypes.{type(np.dtype(tname)).__name__}"] = type(np.dtype(tname))
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; everything else becomes an :class:`InertObject` type."""

    _allowed = None

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _allowed_globals()
        key = f"{module}.{name}"
        if key in _RestrictedUnpickler._allowed:
            return _RestrictedUnpickler._allowed[key]
        return _placeholder(module, name)


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


# A module-like object that torch.load accepts as ``pickle_module``.
_restricted_pickle = types.ModuleType("restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.load = _restricted_load
_restricted_pickle.__dict__["loads"] = lambda data, **kw: _restricted_load(io.BytesIO(data), **kw)


def safe_load(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Any:
    """Load a checkpoint file without executing any code from it.

    Args:
        path: a ``torch.save`` file (zip or legacy format).
        map_location: where tensors go (default CPU).

    Returns:
        The unpickled object; classes that are not allow-listed are :class:`InertObject` instances.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: the file is not a readable torch checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file '{path}' does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        pass  # references classes outside torch's weights-only allow-list: use the restricted unpickler
    except Exception as exc:  # not a torch file at all (corrupt zip, text file, ...)
        if not zipfile.is_zipfile(path) and not _looks_like_legacy_pickle(path):
            raise CheckpointError(f"'{path}' is not a PyTorch checkpoint file: {exc}") from exc
    try:
        # Safe: pickle_module restricts every global to the allow-list above (no code can run).
        return torch.load(path, map_location=map_location, pickle_module=_restricted_pickle,
                          weights_only=False)  # noqa: S614 - restricted unpickler, see module docstring
    except Exception as exc:
        raise CheckpointError(f"could not read checkpoint '{path}': {exc}") from exc


def _looks_like_legacy_pickle(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80  # pickle protocol marker


def extract_state_dict(obj: Any, source: str = "checkpoint") -> Dict[str, torch.Tensor]:
    """Return the network state_dict held by a loaded checkpoint.

    Accepts the official pytracking layout (``{'net': state_dict, ...}``), SparseTT snapshots
    (``{'model_state_dict': ...}``), mmtracking files (``{'state_dict': ...}``, keys unchanged: a
    network's own key mapping converts them) and bare state_dicts. A ``module.`` prefix (DataParallel)
    is removed.

    Raises:
        CheckpointError: if no state_dict of tensors can be found; the message names ``source``.
    """
    sd = None
    if isinstance(obj, Mapping):
        for key in ("net", "model_state_dict", "state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                sd = obj[key]
                break
        if sd is None and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            sd = obj
    if sd is None:
        found = sorted(obj.keys()) if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{source}: no network weights found (expected a dict with 'net', 'model_state_dict' or "
            f"'state_dict', or a bare state_dict of tensors; found {found})")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: state_dict entries that are not tensors: {bad[:5]}")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _fmt_list(items: Iterable[str], limit: int = 12) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def check_state_dict(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor],
                     source: str = "checkpoint", what: str = "network") -> None:
    """Compare key sets and shapes strictly.

    Raises:
        CheckpointError: listing missing keys, unexpected keys and shape mismatches.
    """
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [f"{k}: checkpoint {tuple(given[k].shape)} vs {what} {tuple(expected[k].shape)}"
              for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{source} does not fit the {what} ({len(given)} keys in the file, {len(expected)} expected)"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_fmt_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_fmt_list(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {_fmt_list(shapes, 6)}")
        raise CheckpointError("\n  ".join(parts))


def load_state_dict_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                           source: str = "checkpoint") -> None:
    """``model.load_state_dict(state_dict, strict=True)`` after a check that names every problem."""
    check_state_dict(model.state_dict(), state_dict, source, type(model).__name__)
    model.load_state_dict(state_dict, strict=True)


def save_checkpoint_atomic(obj: Any, path: PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it onto ``path``.

    A crash while writing never leaves a truncated checkpoint under the final name.
    """
    from lib.utils.misc import atomic_write

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def warn_once(msg: str, _seen=set()) -> None:  # noqa: B006 - deliberate process-wide memo
    if msg not in _seen:
        _seen.add(msg)
        warnings.warn(msg, stacklevel=2)
