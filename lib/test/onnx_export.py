"""Export every network step of a tracker to ONNX (``tracking/export_onnx.py``).

The tracker itself decides what is exported: it is built with the ONNX Runtime backend
(:meth:`lib.test.tracker.base.BaseTracker.onnx_step`) and run on a generated sequence (first frame plus
``frames`` tracked frames), so each step it calls per template (STARK's template backbone, AiATrack's
reference encoding and target/background embedding, SparseTT's ``feature`` phase) and per frame (OSTrack /
GRM joint forward, STARK / AiATrack search step, SparseTT ``track`` phase) is exported once with the shapes
the tracker uses. Every output is compared with PyTorch on the same inputs while this runs; the largest
errors go into the manifest (``parity_vs_pytorch``).

Static shapes that depend on the benchmark (STARK-ST's number of dynamic templates, AiATrack's number of
references, GRM's division threshold, a graph constant) follow ``dataset``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np
import torch

from lib.models.onnx_export import OnnxExportError, read_manifest, write_manifest
from lib.utils.errors import UserError

__all__ = ["export_tracker_onnx", "tracker_for_script", "synthetic_sequence"]


def tracker_for_script(script: str) -> str:
    """The registered tracker that reads the configs of ``script`` (``stark_st2`` -> ``stark_st``).

    Raises:
        UserError: no tracker reads them (``stark_st1`` is a training stage only).
    """
    from lib.test.tracker import get_tracker_entry, list_trackers

    for name in list_trackers():
        if get_tracker_entry(name).script == script:
            return name
    raise UserError(f"no tracker runs the configs of script '{script}' (trackers: "
                    f"{', '.join(f'{n} ({get_tracker_entry(n).script})' for n in list_trackers())})")


def synthetic_sequence(frames: int, size=(360, 480), seed: int = 0):
    """``frames + 1`` RGB uint8 frames ``(H, W, 3)`` of pixel noise with a bright textured square drifting right,
    and its first box (xywh pixels). Every patch differs and the crops stay inside the frame, so no two tokens are
    equal even where the position embeddings are zero (random weights): equal tokens tie in candidate
    elimination's sort, and which tied token is kept is the runtime's choice."""
    rng = np.random.default_rng(seed)
    H, W = size
    base = (rng.random((H, W, 3)) * 200).astype(np.float32)
    images = []
    for k in range(frames + 1):
        img = base.copy()
        x, y = W // 3 + 4 * k, H // 3
        img[y:y + 60, x:x + 50] = 255 - 0.3 * base[y:y + 60, x:x + 50]  # a bright, textured target
        images.append(img.astype(np.uint8))
    return images, [float(W // 3), float(H // 3), 50.0, 60.0]


def export_tracker_onnx(script: str, config: str, output: str, checkpoint: Optional[str] = None,
                        random_weights: bool = False, dataset: str = "otb", frames: int = 2,
                        threads: Optional[int] = None) -> Dict[str, Any]:
    """Export the network steps of the tracker of ``script`` / ``config`` into ``output``.

    Args:
        script: config script (``ostrack``, ``grm``, ``stark_s``, ``stark_st2``, ``aiatrack``, ``sparsett``).
        config: config name or YAML path.
        output: export folder (created); it gets ``<step>.onnx`` files and ``manifest.json``.
        checkpoint: weights to export (required unless ``random_weights``).
        random_weights: export the randomly initialised network (tests, speed measurements).
        dataset: benchmark whose per-dataset settings fix the shapes and constants (default ``otb``).
        frames: tracked frames of the generated sequence (>= 1).
        threads: ONNX Runtime / torch threads during the export check.

    Returns:
        the manifest (also in ``output/manifest.json``).

    Raises:
        UserError: neither checkpoint nor ``random_weights``, a missing checkpoint, an unknown script, a
            folder holding the exports of another network (:class:`~lib.models.onnx_export.OnnxExportError`).
    """
    from lib.test.tracker import get_tracker_class
    from lib.test.tracker.base import TrackerParams

    if checkpoint is None and not random_weights:
        raise UserError("give the weights to export with --checkpoint PATH (or --random_weights for a randomly "
                        "initialised network)")
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise UserError(f"checkpoint '{checkpoint}' does not exist")
    if int(frames) < 1:
        raise UserError(f"frames must be >= 1, got {frames}")
    name = tracker_for_script(script)
    from lib.config import ConfigError
    from lib.utils.checkpoint import CheckpointError

    try:  # a config that does not exist or does not validate, a checkpoint that does not fit: the user's input
        params = TrackerParams.create(name, config, checkpoint=checkpoint, device="cpu", require_checkpoint=False,
                                      backend="onnxruntime", onnx_dir=os.path.abspath(output), onnx_verify=True,
                                      onnx_threads=threads)
        tracker = get_tracker_class(name)(params, dataset)
    except (FileNotFoundError, ConfigError, CheckpointError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    images, box = synthetic_sequence(int(frames))
    with torch.no_grad():
        tracker.initialize(images[0], {"init_bbox": box})
        for image in images[1:]:
            tracker.track(image)
    errors, reordered = {}, {}
    for key, step in tracker._shared_steps.items():
        if key.startswith("onnx:"):
            for entry in step.files():
                errors[entry["file"]] = {n: list(v) for n, v in step.errors.items()}
                reordered[entry["file"]] = sorted(step.reordered)
    manifest = read_manifest(output)
    if not manifest.get("files"):
        raise OnnxExportError(f"tracker '{name}' called no network step: nothing was exported")
    for entry in manifest["files"]:
        if entry["file"] in errors:
            entry["parity_vs_pytorch"] = errors[entry["file"]]
            entry["same_indices_other_order"] = reordered[entry["file"]]
    manifest.update({"tracker": name, "dataset": dataset, "random_weights": checkpoint is None})
    write_manifest(output, manifest)
    return manifest
