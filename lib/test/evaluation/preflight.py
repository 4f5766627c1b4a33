"""Checks before any tracking starts (``tracking/test.py``, :func:`lib.test.evaluation.running.run_dataset`).

Each check raises one :class:`PreflightError` (a :class:`~lib.test.evaluation.running.SetupError` and a
:class:`~lib.utils.errors.UserError`: one message, exit status 2) that names every problem at once, so no compute is
spent on a run that cannot succeed:

- :func:`check_checkpoints`: each tracker's checkpoint exists, is a readable checkpoint file (read with the safe
  loader of :mod:`lib.utils.checkpoint`) and fits the network (key names and shapes, compared with the network
  built once on the ``meta`` device, or on the CPU where a builder needs real tensors).
- :func:`check_frames`: the first frame of every sequence to track exists (a dataset folder with annotations only).
- :func:`check_writable`: every results folder can be created and written.
"""

from __future__ import annotations

import os
import tempfile
from typing import Dict, Iterable, List, Sequence as Seq, Tuple

from lib.utils.errors import UserError

from .running import SetupError

__all__ = ["PreflightError", "check_checkpoints", "check_checkpoint", "check_frames", "check_writable"]


class PreflightError(SetupError, UserError):
    """A run that would fail for every sequence: missing frames, a results folder that cannot be written, a
    checkpoint that is missing, unreadable or does not fit the network."""


def _expected_state_dict(script: str, cfg) -> Dict:
    """The state_dict (names and shapes) of ``script``'s network for ``cfg``: built on the ``meta`` device (no memory,
    no weights initialised), or on the CPU for a builder that needs real tensors."""
    import torch

    from lib.models import get_network_spec

    spec = get_network_spec(script)
    try:
        with torch.device("meta"):
            net = spec.builder(cfg, training=False)
    except Exception:  # e.g. a builder calling .item(): build it for real, once
        net = spec.builder(cfg, training=False)
    return net.state_dict()


_PASSED: set = set()  # (real path, size, mtime, script, config) of checkpoints that passed


def check_checkpoint(params) -> None:
    """Check the checkpoint of one tracker's :class:`~lib.test.tracker.base.TrackerParams`.

    Nothing is checked without a checkpoint (random weights) beyond that; for a tracker without a network script
    (plugins, test doubles) only that the file exists.

    Raises:
        PreflightError: the file does not exist, is a folder, cannot be read as a checkpoint, holds no network
            weights, or its keys/shapes do not fit the network (every missing/unexpected key and shape is listed).
    """
    from lib.utils.checkpoint import CheckpointError, check_state_dict, extract_state_dict, safe_load

    path = params.checkpoint
    if path is None:
        return
    path = os.fspath(path)
    who = f"tracker '{params.name}' with config '{params.config_name}'"
    if os.path.isdir(path):
        raise PreflightError(f"checkpoint '{path}' of {who} is a folder, not a checkpoint file")
    if not os.path.isfile(path):
        raise PreflightError(f"checkpoint '{path}' of {who} does not exist")
    if not params.script:
        return
    st = os.stat(path)
    passed = (os.path.realpath(path), st.st_size, st.st_mtime_ns, params.script, str(params.config_name))
    if passed in _PASSED:  # checked already in this process (run_tracker checks before reading the dataset)
        return
    from lib.models import get_network_spec

    source = f"checkpoint '{path}'"
    try:
        obj = safe_load(path)
        state_dict = extract_state_dict(obj, source)
        spec = get_network_spec(params.script)
        if spec.checkpoint_filter is not None:
            state_dict = spec.checkpoint_filter(state_dict, obj)
        check_state_dict(_expected_state_dict(params.script, params.cfg), state_dict, source,
                         f"network of {who}")
    except (CheckpointError, FileNotFoundError, IsADirectoryError, UserError) as exc:
        raise PreflightError(str(exc)) from exc
    _PASSED.add(passed)


def check_checkpoints(trackers: Iterable) -> None:
    """:func:`check_checkpoint` for each :class:`~lib.test.evaluation.tracker.Tracker` (parameters built on the CPU).

    Raises:
        PreflightError: see :func:`check_checkpoint`.
    """
    for trk in trackers:
        check_checkpoint(trk.get_parameters())  # its own device: --cuda_graph needs CUDA


def check_frames(sequences: Seq, limit: int = 8) -> None:
    """Check that the first frame of every sequence exists (lmdb frames, ``[lmdb_path, key]``, are not checked).

    Raises:
        PreflightError: naming every sequence without frames (the first ``limit`` with the path looked for).
    """
    missing: List[Tuple[str, str]] = []
    seen = set()
    for seq in sequences:
        if seq.name in seen:
            continue
        seen.add(seq.name)
        if not seq.frames:
            missing.append((seq.name, "no frames listed"))
            continue
        first = seq.frames[0]
        if isinstance(first, (str, os.PathLike)) and not os.path.isfile(first):
            missing.append((seq.name, os.fspath(first)))
    if not missing:
        return
    shown = ", ".join(f"{name} ('{where}')" for name, where in missing[:limit])
    more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
    raise PreflightError(
        f"{len(missing)} of the {len(seen)} sequences to track have no frames (first frame missing): {shown}{more}. "
        f"Does the dataset folder hold the images, not only the annotations?")


def check_writable(folders: Iterable[str]) -> None:
    """Create each results folder if needed and write (then remove) a small file in it.

    Raises:
        PreflightError: naming the folders that cannot be written and why.
    """
    problems = []
    for folder in sorted(set(folders)):
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_test.", delete=True):
                pass
        except OSError as exc:
            problems.append(f"'{folder}' ({exc.strerror or exc})")
    if problems:
        raise PreflightError(f"cannot write results to {', '.join(problems)}; results_path comes from "
                             f"lib/test/evaluation/local.py (or $TRACKING_RESULTS_PATH)")
