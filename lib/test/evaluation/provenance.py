"""What made each result file: ``<results folder>/_provenance.json`` beside the results of a tracker/config/run.

The file (written atomically by the parent process) holds ``records`` (what made results: the resolved config's
SHA-256, the checkpoint's path, size, modification time and SHA-256, the precision, and the other options that can
change boxes: dataset, device, batched evaluation, compile, CUDA graph, tracker extras) and ``sequences``, which maps
each sequence's result path (relative to the folder, e.g. ``got10k/GOT-10k_Val_000001``) to its record. A sequence is
entered when its tracking starts, so a result that appears later (even after the parent was killed) belongs to it.

A rerun compares the **config contents, the checkpoint contents and the precision** of the existing results with its
own: if any differ the run stops before tracking (:class:`ProvenanceMismatchError`, exit status 2) and says which,
unless ``overwrite`` (``tracking/test.py --overwrite``) asks to track those sequences again. Results without an entry
(made before these records existed, or by another tool) have unknown provenance: they are kept and skipped as
before, with one note saying so (``--overwrite`` tracks them again too).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time
from typing import Any, Dict, List, Optional

from lib.utils.errors import UserError
from lib.utils.misc import atomic_write, file_sha256

from .running import SetupError

__all__ = ["PROVENANCE_FILE", "COMPARED_FIELDS", "ProvenanceMismatchError", "make_record", "record_id",
           "ResultProvenance", "file_sha256"]

PROVENANCE_FILE = "_provenance.json"
#: The fields of a record that must agree for existing results to be reused.
COMPARED_FIELDS = ("config_sha256", "checkpoint_sha256", "precision")


class ProvenanceMismatchError(SetupError, UserError):
    """Existing results were made with another config, checkpoint or precision than the run asks for."""


def _config_sha256(cfg) -> str:
    data = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def make_record(tracker, options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The provenance record of a :class:`~lib.test.evaluation.tracker.Tracker` (its parameters on its own device).

    Args:
        tracker: the tracker (name, config, checkpoint, precision, dataset, extras).
        options: further options that can change boxes (``device``, ``batch_sequences``, ...), recorded as given.
    """
    import torch

    params = tracker.get_parameters()  # on its own device: a CPU would refuse --cuda_graph
    ckpt = os.fspath(params.checkpoint) if params.checkpoint is not None else None
    checkpoint: Dict[str, Any] = {"path": None}
    if ckpt is not None and os.path.isfile(ckpt):
        st = os.stat(ckpt)
        checkpoint = {"path": os.path.abspath(ckpt), "size": st.st_size,
                      "mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime)),
                      "sha256": file_sha256(ckpt)}
    extra = {k: v for k, v in sorted(tracker.extra.items()) if k != "visdom_info"}
    return {
        "tracker": tracker.name, "config": str(tracker.parameter_name),
        "config_file": _config_file(params),
        "config_sha256": _config_sha256(params.cfg),
        "checkpoint": checkpoint, "checkpoint_sha256": checkpoint.get("sha256"),
        "precision": params.precision, "dataset": tracker.dataset_name, "run_id": tracker.run_id,
        "options": dict({"compile": bool(params.compile), "cuda_graph": bool(params.cuda_graph), "extra": extra},
                        **(options or {})),
        "torch": torch.__version__, "host": socket.gethostname(), "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _config_file(params) -> Optional[str]:
    if not params.script:
        return None
    from lib.config import experiment_path

    return os.path.abspath(str(experiment_path(params.script, params.config_name)))


def record_id(record: Dict[str, Any]) -> str:
    """A short identifier of a record (every field but its creation time: runs with equal settings share it)."""
    key = json.dumps({k: v for k, v in record.items() if k != "created"}, sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _short(field: str, value: Any) -> str:
    if value is None:
        return "none"
    if field.endswith("sha256"):
        return f"sha256 {str(value)[:12]}"
    return str(value)


def describe_differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """``'<field>: <existing results> (results) vs <this run> (now)'`` for every compared field that differs (empty:
    the existing results may be reused)."""
    lines = []
    for field in COMPARED_FIELDS:
        if old.get(field) != new.get(field):
            what = {"config_sha256": "config contents", "checkpoint_sha256": "checkpoint contents"}.get(field, field)
            before, now = _short(field, old.get(field)), _short(field, new.get(field))
            if field == "config_sha256":
                before += f" of {old.get('config_file') or old.get('config')}"
                now += f" of {new.get('config_file') or new.get('config')}"
            if field == "checkpoint_sha256":
                before += f" ('{(old.get('checkpoint') or {}).get('path')}')"
                now += f" ('{(new.get('checkpoint') or {}).get('path')}')"
            lines.append(f"{what}: {before} (results) vs {now} (now)")
    return lines


class ResultProvenance:
    """The provenance file of one results folder (``Tracker.results_dir``)."""

    def __init__(self, results_dir: str):
        self.results_dir = results_dir
        self.path = os.path.join(results_dir, PROVENANCE_FILE)
        self.records: Dict[str, Dict[str, Any]] = {}
        self.sequences: Dict[str, str] = {}
        self._read()

    def _read(self) -> None:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (FileNotFoundError, NotADirectoryError):  # no record yet (the folder check reports a bad folder)
            return
        except (OSError, ValueError) as exc:
            raise ProvenanceMismatchError(
                f"the provenance record '{self.path}' cannot be read ({exc}); move it away to treat the results in "
                f"'{self.results_dir}' as of unknown provenance") from exc
        self.records = dict(data.get("records", {}))
        self.sequences = dict(data.get("sequences", {}))

    def key(self, result_base: str) -> str:
        """The entry name of a sequence's result path (``<folder>/<sub>/<seq>`` -> ``<sub>/<seq>``)."""
        return os.path.relpath(result_base, self.results_dir).replace(os.sep, "/")

    def record_of(self, result_base: str) -> Optional[Dict[str, Any]]:
        """The record that made the results of ``result_base``, or None (unknown provenance)."""
        rid = self.sequences.get(self.key(result_base))
        return self.records.get(rid) if rid else None

    def enter(self, result_bases: List[str], record: Dict[str, Any]) -> None:
        """Attribute ``result_bases`` to ``record`` and write the file atomically (merged with what another
        process may have written meanwhile)."""
        if not result_bases:
            return
        rid = record_id(record)
        latest = ResultProvenance(self.results_dir)
        self.records.update(latest.records)
        self.sequences.update({k: v for k, v in latest.sequences.items() if k not in self.sequences})
        self.records[rid] = record
        for base in result_bases:
            self.sequences[self.key(base)] = rid
        used = set(self.sequences.values())
        self.records = {k: v for k, v in self.records.items() if k in used}
        os.makedirs(self.results_dir, exist_ok=True)
        with atomic_write(self.path) as f:
            json.dump({"format": 1, "records": self.records, "sequences": dict(sorted(self.sequences.items()))}, f,
                      indent=1, sort_keys=True)
