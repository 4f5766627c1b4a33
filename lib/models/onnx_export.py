"""ONNX export of a tracker's network steps and the ONNX Runtime sessions that replace them.

A *network step* is a function a tracker calls once per frame or once per template / reference (OSTrack's
joint forward, STARK's template backbone and search step, AiATrack's reference encoding and search step,
SparseTT's ``feature`` and ``track`` phases). Its arguments and results are nested containers (dicts, lists,
tuples, :class:`~lib.utils.misc.NestedTensor`) of tensors and plain constants. :class:`OnnxStep` flattens
them (``torch.utils._pytree``), exports the step with ``torch.onnx.export`` (TorchScript exporter, opset
:data:`OPSET`, static shapes: the shapes of the first call) and runs it in ONNX Runtime; later calls with
the same structure, shapes, dtypes and constants reuse the session, other ones export another file.

Names (ONNX graph inputs/outputs) come from the argument names and container keys: OSTrack's step takes
its network keyword arguments ``{'template', 'search', 'ce_template_mask'}`` and returns the official output
keys (``pred_boxes``, ``score_map``, ``size_map``, ``offset_map``, ``backbone_feat``, ``removed_indexes_s.0``,
...); a positional argument ``img`` holding a NestedTensor gives ``img.tensors`` / ``img.mask``; a list entry
``templates[1]['feat']`` gives ``templates.1.feat``. Arguments that are not tensors (GRM's division
threshold, STARK's head switches) are constants of the exported graph and part of its file name.

Every export directory holds a ``manifest.json``: each file with its step, inputs and outputs (name, shape,
dtype), constants, the (pytree) structure of its arguments and results, the opset, the config and the
SHA-256 of the checkpoint. :func:`weights_key` names the cache folder of a config + checkpoint pair.

Parity: the exported graphs compute the network's function; on the parity fixtures ONNX Runtime (CPU)
reproduces the PyTorch outputs within rtol 1e-4 (``tests/test_onnx_export.py``, README "ONNX").
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import tempfile
import warnings
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from lib.utils.errors import UserError
from lib.utils.misc import NestedTensor, file_sha256

__all__ = ["OPSET", "OnnxStep", "OnnxExportError", "weights_key", "read_manifest",
           "default_cache_dir", "step_file_stem", "onnxruntime_available", "write_manifest"]

#: ONNX opset of every export (>= 17: LayerNormalization as one node).
OPSET = 17
MANIFEST = "manifest.json"


class OnnxExportError(UserError):
    """A step that cannot be exported or run with ONNX Runtime (missing package, unsupported argument)."""


def onnxruntime_available() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _require_onnx():
    if not onnxruntime_available():
        raise OnnxExportError("the ONNX backend needs the packages 'onnx' and 'onnxruntime' "
                              "(pip install onnx onnxruntime; both are in requirements.txt)")
    import onnxruntime

    return onnxruntime


# -- NestedTensor as a pytree node: its tensors and mask are two named leaves --------------------------------
def _register_nested_tensor() -> None:
    if NestedTensor in pytree.SUPPORTED_NODES:
        return
    pytree.register_pytree_node(
        NestedTensor,
        lambda nt: ([nt.tensors, nt.mask], None),
        lambda children, _ctx: NestedTensor(children[0], children[1]),
        serialized_type_name="lib.utils.misc.NestedTensor",
        flatten_with_keys_fn=lambda nt: ([(pytree.GetAttrKey("tensors"), nt.tensors),
                                          (pytree.GetAttrKey("mask"), nt.mask)], None),
    )


_register_nested_tensor()


def _path_name(path: Sequence[Any]) -> str:
    parts = []
    for key in path:
        if isinstance(key, pytree.MappingKey):
            parts.append(str(key.key))
        elif isinstance(key, pytree.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, pytree.GetAttrKey):
            parts.append(str(key.name))
        else:
            parts.append(str(key))
    return ".".join(parts)


def _unique(names: List[str], fallback: List[str]) -> List[str]:
    return names if len(set(names)) == len(names) and all(names) else fallback


def _input_names(arguments: Mapping[str, Any], paths: List[Sequence[Any]]) -> List[str]:
    """Leaf names; a dict argument contributes its keys without the argument's own name (OSTrack's
    ``network_inputs['template']`` is ``template``), everything else is prefixed with the argument name."""
    full = [_path_name(p) for p in paths]
    short = []
    for p in paths:
        top = p[0].key if isinstance(p[0], pytree.MappingKey) else None
        if top is not None and isinstance(arguments.get(top), Mapping) and len(p) > 1:
            short.append(_path_name(p[1:]))
        else:
            short.append(_path_name(p))
    return _unique(short, full)


def _output_names(result: Any, paths: List[Sequence[Any]], declared: Optional[Sequence[str]]) -> List[str]:
    """Leaf names of a step's result: dict keys as they are; a tuple position holding a dict contributes its
    keys alone; other tuple positions take ``declared[i]`` (else ``output<i>``); a bare tensor is ``declared[0]``
    or ``output``."""
    full = [_path_name(p) or "output" for p in paths]
    names = []
    for p in paths:
        if not p:
            names.append(declared[0] if declared else "output")
            continue
        head = p[0]
        if isinstance(head, pytree.SequenceKey) and isinstance(result, (tuple, list)):
            item = result[head.idx]
            if isinstance(item, Mapping) and len(p) > 1:
                names.append(_path_name(p[1:]))
            else:
                base = declared[head.idx] if declared and head.idx < len(declared) else f"output{head.idx}"
                names.append(".".join([base] + ([_path_name(p[1:])] if len(p) > 1 else [])))
        else:
            names.append(_path_name(p))
    return _unique(names, full)


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _constant(value: Any) -> Any:
    """A non-tensor leaf as a JSON value (it becomes part of the exported graph)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, torch.dtype):
        return str(value)
    raise OnnxExportError(f"an argument of type {type(value).__name__} cannot be exported to ONNX "
                          f"(only tensors and bool/int/float/str constants)")


def weights_key(config_text: str, checkpoint_sha256: str) -> str:
    """16 hex digits naming the network a config + checkpoint pair builds (the cache folder's suffix)."""
    return hashlib.sha256((config_text + "\n" + checkpoint_sha256).encode("utf-8")).hexdigest()[:16]


def default_cache_dir() -> str:
    """Root of the export cache: ``$TRACKING_ONNX_CACHE``, else ``~/.cache/tracking_onnx``."""
    return os.environ.get("TRACKING_ONNX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tracking_onnx")


def step_file_stem(name: str) -> str:
    """File-name stem of a step name (``'search backbone + transformer'`` -> ``search_backbone_transformer``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "step"


def read_manifest(directory: str) -> Dict[str, Any]:
    """The ``manifest.json`` of an export directory (an empty manifest where there is none).

    Raises:
        OnnxExportError: a manifest that is not valid JSON.
    """
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        return {"files": []}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise OnnxExportError(f"{path}: not a readable export manifest ({exc})") from exc


def write_manifest(directory: str, manifest: Dict[str, Any]) -> None:
    """Write ``manifest.json`` into ``directory`` atomically (temporary file, then rename)."""
    path = os.path.join(directory, MANIFEST)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, path)


class _folder_lock:
    """Exclusive lock on ``<directory>/.lock`` (``fcntl.flock``; a no-op where fcntl is missing)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.handle = None

    def __enter__(self):
        try:
            import fcntl

            os.makedirs(self.directory, exist_ok=True)
            self.handle = open(os.path.join(self.directory, ".lock"), "a")
        except (ImportError, OSError):  # not POSIX, or a read-only folder of ready files: nothing to export
            self.handle = None
            return self
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            import fcntl

            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
        return False


class _FlatStep(nn.Module):
    """``forward(*tensors)``: rebuild the step's arguments from the tensor leaves (constants in place),
    call it and return its tensor leaves. ``owner`` (the network) is a child, so the exporter's eval /
    train switch reaches it."""

    def __init__(self, fn: Callable, owner: Optional[nn.Module], signature: inspect.Signature, spec,
                 leaves: List[Any], tensor_pos: List[int]):
        super().__init__()
        self.fn = fn
        self.owner = owner
        self.signature = signature
        self.spec = spec
        self.leaves = leaves
        self.tensor_pos = tensor_pos
        self.out_spec = None
        self.out_paths: List[Any] = []
        self.result = None

    def forward(self, *tensors):
        leaves = list(self.leaves)
        for pos, t in zip(self.tensor_pos, tensors):
            leaves[pos] = t
        arguments = pytree.tree_unflatten(leaves, self.spec)
        bound = inspect.BoundArguments(self.signature, arguments)
        result = self.fn(*bound.args, **bound.kwargs)
        flat, self.out_spec = pytree.tree_flatten_with_path(result)
        self.out_paths = [p for p, _ in flat]
        self.result = result
        outs = [v for _, v in flat]
        bad = [type(v).__name__ for v in outs if not isinstance(v, torch.Tensor)]
        if bad:
            raise OnnxExportError(f"step results must be tensors (in containers); got {', '.join(sorted(set(bad)))}")
        return tuple(outs)


class _Session:
    """One exported file and its ONNX Runtime session."""

    def __init__(self, entry: Dict[str, Any], directory: str, threads: int):
        ort = _require_onnx()
        self.entry = entry
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(os.path.join(directory, entry["file"]), options,
                                            providers=["CPUExecutionProvider"])
        self.graph_inputs = [i.name for i in self.session.get_inputs()]
        self.output_names = [o["name"] for o in entry["outputs"]]
        self.out_spec = pytree.treespec_loads(entry["out_spec"])

    def run(self, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
        return self.session.run(self.output_names, {k: feeds[k] for k in self.graph_inputs})


_SESSIONS: "OrderedDict[Tuple[str, int, int, str], _Session]" = OrderedDict()
#: sessions kept per process (the newest ones; a tracker's steps are 1 to 4 files)
MAX_CACHED_SESSIONS = 8


def _cached_session(entry: Dict[str, Any], directory: str, threads: int) -> _Session:
    """One ONNX Runtime session per file, thread count and entry per process (the trackers of a run, built per
    sequence, share them); at most :data:`MAX_CACHED_SESSIONS` are kept."""
    path = os.path.realpath(os.path.join(directory, entry["file"]))
    key = (path, os.stat(path).st_mtime_ns, int(threads), entry["key"])
    if key in _SESSIONS:
        _SESSIONS.move_to_end(key)
    else:
        _SESSIONS[key] = _Session(entry, directory, threads)
        while len(_SESSIONS) > MAX_CACHED_SESSIONS:
            _SESSIONS.popitem(last=False)
    return _SESSIONS[key]


class OnnxStep:
    """A network step run by ONNX Runtime (CPU), exported from ``fn`` on its first call with given shapes.

    Args:
        fn: the step (tensors in containers in, tensors in containers out), e.g. ``tracker.network_forward``.
        name: step name; the file is ``<stem>.onnx`` (``<stem>__<n>.onnx`` for further shape variants).
        directory: where the files and ``manifest.json`` live (created); files listed there with the same
            step name, argument structure, shapes, dtypes and constants are reused without exporting.
        owner: the module whose parameters ``fn`` uses (its train/eval mode is kept; eval for export).
        output_names: names of the positions of a tuple result (see :func:`_output_names`).
        threads: ONNX Runtime intra-op threads (default: ``torch.get_num_threads()``).
        export: False: never export, only use files listed in the manifest (``--onnx_dir`` of ready files).
        manifest_info: extra fields for the manifest (config, checkpoint hash, script).
        verify: also run ``fn`` in PyTorch on every call and keep the largest errors per output in
            :attr:`errors` (``{name: (max abs, max rel, tolerance ratio)}``: rel = ``|a - e| / max(|e|, 1e-5)``,
            ratio = ``max |a - e| / (1e-5 + 1e-4 |e|)``, <= 1 within rtol 1e-4 / atol 1e-5); for tests and
            ``export_onnx.py`` checks. Integer-valued outputs holding the same values in another order along the
            last dimension (index lists sorted by tied scores) count as equal and are listed in :attr:`reordered`.

    Calling it like ``fn`` returns ``fn``'s result structure with CPU tensors moved to the device of the
    first tensor argument.

    Raises (on call):
        OnnxExportError: onnx / onnxruntime missing, an argument that is neither a tensor nor a constant,
            or (``export=False``) no listed file fits the call.
    """

    def __init__(self, fn: Callable, name: str, directory: str, owner: Optional[nn.Module] = None,
                 output_names: Optional[Sequence[str]] = None, threads: Optional[int] = None, export: bool = True,
                 manifest_info: Optional[Dict[str, Any]] = None, verify: bool = False, opset: int = OPSET):
        self.fn = fn
        self.name = name
        self.directory = directory
        self.owner = owner if owner is not None else getattr(fn, "__self__", None)
        if not isinstance(self.owner, nn.Module):
            self.owner = getattr(self.owner, "network", None)
        self.declared_outputs = list(output_names) if output_names else None
        self.threads = torch.get_num_threads() if threads is None else int(threads)
        self.export = export
        self.manifest_info = dict(manifest_info or {})
        self.verify = verify
        self.opset = int(opset)
        self.signature = inspect.signature(fn)
        self._sessions: Dict[str, _Session] = {}
        self.errors: Dict[str, Tuple[float, float, float]] = {}
        #: integer-valued outputs that held the same values as PyTorch's in another order (ties), see _compare
        self.reordered: set = set()

    # -- flattening --------------------------------------------------------------------------------------
    def _flatten(self, args, kwargs):
        bound = self.signature.bind(*args, **kwargs)
        arguments = dict(bound.arguments)
        flat, spec = pytree.tree_flatten_with_path(arguments)
        paths = [p for p, _ in flat]
        leaves = [v for _, v in flat]
        tensor_pos = [i for i, v in enumerate(leaves) if isinstance(v, torch.Tensor)]
        names_all = _input_names(arguments, paths)
        consts = {names_all[i]: _constant(v) for i, v in enumerate(leaves) if i not in set(tensor_pos)}
        tensors = [leaves[i] for i in tensor_pos]
        names = [names_all[i] for i in tensor_pos]
        key = json.dumps({"step": self.name, "in_spec": pytree.treespec_dumps(spec),
                          "inputs": [[n, list(t.shape), _dtype_name(t)] for n, t in zip(names, tensors)],
                          "constants": consts}, sort_keys=True)
        return arguments, spec, leaves, tensor_pos, tensors, names, consts, key

    # -- export ------------------------------------------------------------------------------------------
    def _export(self, spec, leaves, tensor_pos, tensors, names, consts, key) -> Dict[str, Any]:
        _require_onnx()
        os.makedirs(self.directory, exist_ok=True)
        manifest = read_manifest(self.directory)
        stem = step_file_stem(self.name)
        taken = {e["file"] for e in manifest.get("files", [])}
        file, n = f"{stem}.onnx", 1
        while file in taken:
            n += 1
            file = f"{stem}__{n}.onnx"
        const_leaves = [None if i in set(tensor_pos) else v for i, v in enumerate(leaves)]
        flat = _FlatStep(self.fn, self.owner, self.signature, spec, const_leaves, tensor_pos)
        cpu_inputs = tuple(t.detach().cpu() for t in tensors)
        modes = {m: m.training for m in flat.modules()}  # restored exactly afterwards (export runs in eval)
        path = os.path.join(self.directory, file)
        tmp = path + ".tmp"
        try:
            flat.eval()
            with torch.no_grad():
                flat(*cpu_inputs)  # the result structure, and names of the outputs
            out_names = _output_names(flat.result, flat.out_paths, self.declared_outputs)
            out_spec = flat.out_spec
            clash = set(out_names) & set(names)
            if clash:
                out_names = [f"out.{n}" if n in clash else n for n in out_names]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings: shapes are static by design
                # the TorchScript exporter (torch < 2.5 has no `dynamo` argument and uses it anyway)
                legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
                torch.onnx.export(flat, cpu_inputs, tmp, input_names=names, output_names=out_names,
                                  opset_version=self.opset, do_constant_folding=True, **legacy)
            flat.eval()  # the exporter restores the wrapper's own mode onto every module
            with torch.no_grad():
                outs = flat(*cpu_inputs)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        finally:
            for module, training in modes.items():
                module.training = training
        os.replace(tmp, path)
        import onnx

        model = onnx.load(path, load_external_data=False)
        graph_inputs = {i.name for i in model.graph.input}
        entry = {
            "file": file, "step": self.name, "key": key,
            "inputs": [{"name": n, "shape": list(t.shape), "dtype": _dtype_name(t), "used": n in graph_inputs}
                       for n, t in zip(names, tensors)],
            "outputs": [{"name": n, "shape": list(o.shape), "dtype": _dtype_name(o)} for n, o in zip(out_names, outs)],
            "constants": consts,
            "in_spec": pytree.treespec_dumps(spec),
            "out_spec": pytree.treespec_dumps(out_spec),
            "nodes": sorted({node.op_type for node in model.graph.node}),
        }
        manifest = read_manifest(self.directory)
        manifest.update({"opset": self.opset, "torch": torch.__version__, "onnx": onnx.__version__})
        manifest.update(self.manifest_info)
        manifest["files"] = [e for e in manifest.get("files", []) if e["file"] != file] + [entry]
        write_manifest(self.directory, manifest)
        return entry

    def _session(self, spec, leaves, tensor_pos, tensors, names, consts, key) -> _Session:
        session = self._sessions.get(key)
        if session is not None:
            return session
        with _folder_lock(self.directory):  # worker processes sharing a cache folder export each file once
            entry = self._entry(key, names, tensors, consts)
            if entry is None:
                entry = self._export(spec, leaves, tensor_pos, tensors, names, consts, key)
        session = self._sessions[key] = _cached_session(entry, self.directory, self.threads)
        return session

    def _entry(self, key, names, tensors, consts) -> Optional[Dict[str, Any]]:
        """The manifest entry of a file that fits the call (None: export one).

        Raises:
            OnnxExportError: the folder holds another network's files, or none fits and ``export`` is False.
        """
        manifest = read_manifest(self.directory)
        for field in ("script", "config_text", "checkpoint_sha256"):
            if field in manifest and field in self.manifest_info and manifest[field] != self.manifest_info[field]:
                raise OnnxExportError(
                    f"'{self.directory}' holds ONNX files of another network ({field} differs: "
                    f"{str(manifest[field])[:80]!r}); use an empty folder or the files of this config and checkpoint")
        entry = next((e for e in manifest.get("files", []) if e.get("key") == key
                      and os.path.isfile(os.path.join(self.directory, e["file"]))), None)
        if entry is None and not self.export:
            shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, tensors))
            raise OnnxExportError(f"no ONNX file in '{self.directory}' fits step '{self.name}' with inputs "
                                  f"{shapes} and constants {consts}; export it with tracking/export_onnx.py")
        return entry

    # -- call ------------------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        arguments, spec, leaves, tensor_pos, tensors, names, consts, key = self._flatten(args, kwargs)
        session = self._session(spec, leaves, tensor_pos, tensors, names, consts, key)
        device = tensors[0].device if tensors else torch.device("cpu")
        feeds = {n: t.detach().cpu().contiguous().numpy() for n, t in zip(names, tensors)}
        outs = [torch.from_numpy(o).to(device) for o in session.run(feeds)]
        if self.verify:
            self._compare(args, kwargs, outs, session.output_names)
        return pytree.tree_unflatten(outs, session.out_spec)

    def _compare(self, args, kwargs, outs, out_names) -> None:
        with torch.no_grad():
            ref = [v for v in pytree.tree_leaves(self.fn(*args, **kwargs))]
        for name, a, e in zip(out_names, outs, ref):
            a64, e64 = a.double().cpu(), e.detach().double().cpu()
            diff = (a64 - e64).abs()
            if not diff.numel():
                continue
            if (bool((diff > 0).any()) and bool((a64 == a64.round()).all()) and bool((e64 == e64.round()).all())
                    and torch.equal(a64.sort(dim=-1).values, e64.sort(dim=-1).values)):
                # index outputs (candidate elimination's removed indices) listing the same indices in another
                # order: the order among exactly tied scores is the runtime's choice (torch.sort vs TopK)
                self.reordered.add(name)
                diff = torch.zeros_like(diff)
            err = (float(diff.max()), float((diff / e64.abs().clamp_min(1e-5)).max()),
                   float((diff / (1e-5 + 1e-4 * e64.abs())).max()))
            old = self.errors.get(name, (0.0, 0.0, 0.0))
            self.errors[name] = tuple(max(o, e) for o, e in zip(old, err))

    def files(self) -> List[Dict[str, Any]]:
        """Manifest entries of the files this step has used so far."""
        return [s.entry for s in self._sessions.values()]
