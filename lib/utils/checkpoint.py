"""Checkpoint files: safe loading (no code from the file ever runs), strict key checks, atomic saving.

Official checkpoints of the pytracking family are ``torch.save`` dicts holding ``net`` (the
state_dict) next to pickled objects such as ``settings`` (a ``lib.train.admin.settings.Settings``
instance, easydict configs, ``argparse.Namespace``) and ``stats`` (meters). SparseTT snapshots hold
``model_state_dict``; mmtracking files hold ``state_dict``.

:func:`safe_load` never hands a file to torch's unrestricted unpickler (``weights_only`` off), ``pickle``'s
loader or TorchScript's loader. It reads both ``torch.save`` formats itself:

* the zip format (torch >= 1.6): the archive's ``data.pkl`` and its ``data/<key>`` storage records;
* the legacy format (``_use_new_zipfile_serialization=False``, torch < 1.6): magic number, protocol
  version, system info, the object pickle, the storage keys, then the raw storages.

Each pickle is read by a *restricted unpickler*: ``find_class`` resolves only a short allow-list
(tensor-rebuild functions re-implemented here, ``collections.OrderedDict``, dtypes, storage types,
numpy scalars/arrays); **every other global (a class such as ``Settings``, or a function such as
``os.system``, ``builtins.exec`` or ``subprocess.Popen``) becomes an inert stand-in class** whose
instances only store the arguments and state the pickle gives them. Nothing from the file is ever
called, and persistent ids other than storages are refused. A TorchScript archive (``torch.jit.save``:
a zip holding ``code/`` or ``constants.pkl``), which ``torch.load`` would hand to ``torch.jit.load``,
is refused.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import threading
import warnings
import zipfile
from typing import Any, BinaryIO, Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from lib.utils.errors import UserError

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "InertObject",
    "safe_load",
    "extract_state_dict",
    "verify_checkpoint",
    "check_state_dict",
    "load_state_dict_strict",
    "save_checkpoint_atomic",
]

PathLike = Union[str, os.PathLike]


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file that cannot be read safely, or whose keys/shapes do not fit the network (a user error:
    entry scripts report it as one message and exit status 2)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist (also a ``FileNotFoundError``)."""


class InertObject:
    """Stand-in for a class or function that a checkpoint's pickle references but that is not on the
    allow-list. Calling the global (REDUCE/NEWOBJ/INST) builds one of these; nothing is executed.

    Attributes:
        pickled_global: ``"module.name"`` of the replaced global.
        args, kwargs: the arguments the pickle passed; state: the pickled ``__dict__``/state (BUILD);
        entries: key/value pairs set on it (SETITEMS, e.g. an easydict); list_items: appended values.
        Attribute access falls back to ``state`` (a dict) and ``entries``, so ``settings.script_name`` reads
        the pickled value.
    """

    pickled_global = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__.update(args=args, kwargs=kwargs, state=None, entries={}, list_items=[])
        return obj

    def __init__(self, *args, **kwargs):  # REDUCE calls the stand-in: __new__ already stored the arguments
        pass

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def __setitem__(self, key, value):
        self.__dict__["entries"][key] = value

    def append(self, value):
        self.__dict__["list_items"].append(value)

    def extend(self, values):
        self.__dict__["list_items"].extend(values)

    def __getattr__(self, name):
        if not name.startswith("__"):
            state = self.__dict__.get("state")
            if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
                state = state[0]  # (dict state, slot state)
            if isinstance(state, dict) and name in state:
                return state[name]
            if name in self.__dict__.get("entries", {}):
                return self.__dict__["entries"][name]
        raise AttributeError(f"{self!r} has no attribute '{name}'")

    def __repr__(self) -> str:
        return f"<inert placeholder for {self.pickled_global}>"


_PLACEHOLDERS: Dict[str, type] = {}
_PLACEHOLDER_LOCK = threading.Lock()


def _placeholder(module: str, name: str) -> type:
    key = f"{module}.{name}"
    with _PLACEHOLDER_LOCK:
        if key not in _PLACEHOLDERS:
            _PLACEHOLDERS[key] = type(f"Inert[{key}]", (InertObject,), {"pickled_global": key})
        return _PLACEHOLDERS[key]


# ----------------------------------------------------------------------------------------------- tensors
class _StorageType:
    """What ``torch.FloatStorage`` & co. resolve to: only their dtype is used."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _Storage:
    """A storage read from the file: raw bytes (``torch.UntypedStorage``, CPU) and the element dtype."""

    def __init__(self, untyped: torch.UntypedStorage, dtype: torch.dtype):
        self.untyped, self.dtype = untyped, dtype


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


def _tensor_from(storage: Any, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...],
                 dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor whose storage is {type(storage).__name__}, not a storage of the file")
    t = torch.empty((0,), dtype=dtype or storage.dtype)
    return t.set_(storage.untyped, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor_from(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    # backward hooks and metadata from the file are dropped: they are never called
    return _tensor_from(storage, storage_offset, size, stride).requires_grad_(bool(requires_grad))


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not isinstance(dtype, torch.dtype):
        raise pickle.UnpicklingError(f"a tensor with dtype {dtype!r}")
    return _tensor_from(storage, storage_offset, size, stride, dtype).requires_grad_(bool(requires_grad))


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f"a parameter holding {type(data).__name__}")
    return torch.nn.Parameter(data, bool(requires_grad))


def _allowed_globals() -> Dict[str, Any]:
    """``"module.name"`` -> object for every global a checkpoint may resolve; everything else is inert."""
    import builtins
    import codecs

    allowed: Dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch.Size": torch.Size,
        "_codecs.encode": codecs.encode,  # bytes objects in protocol 2
    }
    for name, dtype in _STORAGE_DTYPES.items():
        for module in ("torch", "torch.cuda", "torch.storage"):
            allowed[f"{module}.{name}"] = _StorageType(dtype)
    for name in ("set", "frozenset", "complex", "bytearray", "slice"):
        allowed[f"builtins.{name}"] = allowed[f"__builtin__.{name}"] = getattr(builtins, name)
    for name in dir(torch):
        obj = getattr(torch, name, None)
        if isinstance(obj, torch.dtype):
            allowed[f"torch.{name}"] = obj
    # numpy scalars and arrays stored in stats (reconstruction only)
    try:
        from numpy._core import multiarray as _ma
    except ImportError:  # numpy < 2
        from numpy.core import multiarray as _ma
    allowed["numpy.dtype"] = np.dtype
    allowed["numpy.ndarray"] = np.ndarray
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[f"{mod}.scalar"] = _ma.scalar
        allowed[f"{mod}._reconstruct"] = _ma._reconstruct
    for tname in ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool_"):
        allowed[f"numpy.{tname}"] = getattr(np, tname)
        allowed[f"numpy.dtypes.{type(np.dtype(tname)).__name__}"] = type(np.dtype(tname))
    return allowed


_ALLOWED: Optional[Dict[str, Any]] = None


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals (everything else becomes an :class:`InertObject` type) and only
    storage persistent ids (through ``load_storage``)."""

    def __init__(self, file: BinaryIO, load_storage: Optional[Callable[[tuple], Any]] = None):
        super().__init__(file, encoding="latin1")  # latin1: python-2 era byte strings, as torch.load does
        self._load_storage = load_storage

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _allowed_globals()
        key = f"{module}.{name}"
        if key in _ALLOWED:
            return _ALLOWED[key]
        return _placeholder(module, name)

    def persistent_load(self, pid):  # noqa: D401 - pickle API
        if self._load_storage is None or not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise pickle.UnpicklingError(f"persistent id {pid!r:.60} is not a tensor storage")
        return self._load_storage(pid)


def _storage_dtype(storage_type: Any) -> torch.dtype:
    if not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f"storage of unsupported type {storage_type!r:.80}")
    return storage_type.dtype


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _load_zip(path: str, zf: zipfile.ZipFile) -> Any:
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pkl) != 1:
        raise CheckpointError(f"'{path}' is a zip archive but not a torch.save checkpoint (it holds no data.pkl; "
                              f"entries: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})")
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = zf.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
    if byteorder != "little":
        raise CheckpointError(f"'{path}' was saved on a {byteorder}-endian machine: not supported")
    storages: Dict[str, _Storage] = {}

    def load_storage(pid: tuple) -> _Storage:
        if len(pid) != 5:
            raise pickle.UnpicklingError(f"storage id of {len(pid)} fields, expected 5")
        _, storage_type, key, _location, numel = pid
        key = key.decode() if isinstance(key, bytes) else str(key)
        if key not in storages:
            dtype = _storage_dtype(storage_type)
            nbytes = int(numel) * _element_size(dtype)
            record = f"{prefix}data/{key}"
            if record not in names:
                raise pickle.UnpicklingError(f"storage record '{record}' is missing")
            info = zf.getinfo(record)
            if info.file_size < nbytes:
                raise pickle.UnpicklingError(f"storage record '{record}' holds {info.file_size} bytes, "
                                             f"{nbytes} expected")
            buf = torch.empty(nbytes, dtype=torch.uint8)
            view, pos = buf.numpy(), 0
            with zf.open(record) as fh:
                while pos < nbytes:
                    chunk = fh.read(min(1 << 24, nbytes - pos))
                    if not chunk:
                        raise pickle.UnpicklingError(f"storage record '{record}' ends early")
                    view[pos:pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                    pos += len(chunk)
            storages[key] = _Storage(buf.untyped_storage(), dtype)
        return storages[key]

    with zf.open(pkl[0]) as fh:
        return _RestrictedUnpickler(fh, load_storage).load()


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_legacy(path: str, f: BinaryIO) -> Any:
    def plain() -> Any:
        return _RestrictedUnpickler(f).load()

    magic = plain()
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"'{path}' is a plain Python pickle, not a torch.save checkpoint (no PyTorch magic "
                              f"number): only torch.save files are read")
    protocol = plain()
    if protocol != 1001:
        raise CheckpointError(f"'{path}' is a legacy torch.save file of unsupported protocol version {protocol!r}")
    sys_info = plain()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise CheckpointError(f"'{path}' was saved on a big-endian machine: not supported")
    roots: Dict[str, _Storage] = {}
    views: Dict[str, _Storage] = {}

    def load_storage(pid: tuple) -> _Storage:
        if len(pid) != 6:
            raise pickle.UnpicklingError(f"storage id of {len(pid)} fields, expected 6")
        _, storage_type, root_key, _location, numel, view_metadata = pid
        dtype = _storage_dtype(storage_type)
        root_key = str(root_key)
        if root_key not in roots:
            roots[root_key] = _Storage(torch.empty(int(numel) * _element_size(dtype), dtype=torch.uint8)
                                       .untyped_storage(), dtype)
        root = roots[root_key]
        if view_metadata is None:
            return root
        view_key, offset, view_size = view_metadata
        if str(view_key) not in views:
            size = _element_size(dtype)
            views[str(view_key)] = _Storage(root.untyped[int(offset) * size:(int(offset) + int(view_size)) * size],
                                            dtype)
        return views[str(view_key)]

    result = _RestrictedUnpickler(f, load_storage).load()
    keys = plain()
    if not isinstance(keys, list):
        raise pickle.UnpicklingError("the storage key list is missing")
    for key in keys:
        key = str(key)
        if key not in roots:
            raise pickle.UnpicklingError(f"storage '{key}' is listed but not used")
        head = f.read(8)
        if len(head) != 8:
            raise EOFError
        storage = roots[key]
        nbytes = struct.unpack("<q", head)[0] * _element_size(storage.dtype)
        if nbytes != storage.untyped.nbytes():
            raise pickle.UnpicklingError(f"storage '{key}' holds {nbytes} bytes, {storage.untyped.nbytes()} expected")
        if nbytes:  # straight into the storage the tensors already view
            target = torch.empty((0,), dtype=torch.uint8).set_(storage.untyped).numpy()
            if f.readinto(memoryview(target)) != nbytes:
                raise EOFError
    return result


def _is_torchscript(names: Iterable[str]) -> bool:
    return any(n.endswith("/constants.pkl") or n == "constants.pkl" or "/code/" in n or n.startswith("code/")
               for n in names)


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        for k in list(obj.keys()):
            obj[k] = _to_device(obj[k], device)
        return obj
    if isinstance(obj, list):
        obj[:] = [_to_device(v, device) for v in obj]
        return obj
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def safe_load(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Any:
    """Load a ``torch.save`` checkpoint file without executing any code from it.

    Args:
        path: a ``torch.save`` file (zip or legacy format).
        map_location: where tensors go (default CPU; tensors in dicts, lists and tuples are moved).

    Returns:
        The unpickled object: tensors, plain containers and numbers; classes and functions that are not
        allow-listed are :class:`InertObject` instances.

    Raises:
        CheckpointNotFoundError (a ``FileNotFoundError`` and a :class:`CheckpointError`): no such path.
        CheckpointError: a directory, an empty file, a TorchScript archive, a plain pickle, a truncated or
            corrupt file, or anything else that is not a readable ``torch.save`` file. One line, naming the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f"checkpoint file '{path}' does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint '{path}' is a directory, not a checkpoint file (give the .pth/.pth.tar "
                              f"file inside it)")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(0)
            if size == 0:
                raise CheckpointError(f"checkpoint '{path}' is an empty file (0 bytes; an interrupted copy?)")
            if head.startswith(b"PK"):
                try:
                    with zipfile.ZipFile(f) as zf:
                        if _is_torchscript(zf.namelist()):
                            raise CheckpointError(
                                f"'{path}' is a TorchScript archive (torch.jit.save), not a torch.save checkpoint: "
                                f"TorchScript files hold code and are never loaded; save the weights with "
                                f"torch.save(model.state_dict(), path)")
                        obj = _load_zip(path, zf)
                except zipfile.BadZipFile as exc:
                    raise CheckpointError(f"checkpoint '{path}' is a truncated or corrupt zip archive ({exc})") from exc
            elif head[:1] == b"\x80":
                obj = _load_legacy(path, f)
            else:
                raise CheckpointError(f"'{path}' is not a PyTorch checkpoint (neither a torch.save zip archive nor a "
                                      f"legacy torch.save file; it starts with {head!r})")
    except CheckpointError:
        raise
    except EOFError as exc:
        raise CheckpointError(f"checkpoint '{path}' ends early: the file is truncated") from exc
    except (pickle.UnpicklingError, ValueError, TypeError, RuntimeError, KeyError, IndexError, AttributeError,
            struct.error, OverflowError, MemoryError, zipfile.BadZipFile, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint '{path}' cannot be read: {reason}") from exc
    device = torch.device(map_location)
    return obj if device.type == "cpu" else _to_device(obj, device)


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


def verify_checkpoint(path: PathLike) -> Dict[str, torch.Tensor]:
    """Pre-flight check of a checkpoint given on a command line: it loads safely and holds network weights.

    Returns:
        the state_dict (see :func:`extract_state_dict`).
    Raises:
        CheckpointNotFoundError, CheckpointError: from :func:`safe_load` and :func:`extract_state_dict`, naming
        the file.
    """
    return extract_state_dict(safe_load(path), f"checkpoint '{os.fspath(path)}'")


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
