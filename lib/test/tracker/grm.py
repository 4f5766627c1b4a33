"""GRM test-time tracker (official ``lib/test/tracker/grm.py`` with ``lib/test/parameter/grm.py``).

The steps are OSTrack's (:class:`~lib.test.tracker.ostrack.OSTrackTracker`: template crop once, search
crop around the previous box, Hann-windowed score map, box mapped back and clipped), with two changes:

* the template mask is GRM's box mask (:func:`lib.models.grm.generate_mask_cond`), always computed;
* the network gets the division threshold of the benchmark: ``TEST.HYPER[<dataset name upper-cased>]``,
  else ``TEST.HYPER.DEFAULT`` (:func:`lib.config.grm.division_threshold`).

Debug views (level 1): OSTrack's (Tracking, search_region, template, score_map, score_map_hann) and
``token_division``: the search region once per dividing block, with the search-only tokens faded and the
tokens that attend to everything (template included) left clear.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence

import cv2
import numpy as np
import torch

from lib.config.grm import division_threshold
from lib.models.grm import DivisionAttention, generate_mask_cond
from lib.test.tracker.base import TrackerParams
from lib.test.tracker.ostrack import OSTrackTracker, whiten_tokens

__all__ = ["GRMTracker", "division_visualization"]


def division_visualization(search_patch: np.ndarray, decisions: Mapping[int, torch.Tensor], patch_size: int = 16,
                           columns: int = 4, alpha: float = 0.2) -> np.ndarray:
    """Tiles of the search patch, one per dividing block, with the search-only tokens whitened.

    Args:
        search_patch: ``(S, S, 3)`` uint8 search crop.
        decisions: block index -> ``(1, N_x, 2)`` one-hot decision (column 1: attends to everything).
        patch_size: token side in pixels (16).
        columns: tiles per row.
        alpha: weight kept by a faded pixel.

    Returns:
        ``(rows * (S + 8), columns * (S + 8), 3)`` uint8 image; each tile is labelled with its block index
        and its number of attend-to-all tokens.
    """
    image = np.asarray(search_patch)
    H, W, _ = image.shape
    blocks = sorted(decisions)
    rows = max(1, math.ceil(len(blocks) / columns))
    canvas = np.full((rows * (H + 8), columns * (W + 8), 3), 255, np.uint8)
    for k, block in enumerate(blocks):
        attend_all = decisions[block][0, :, 1].detach().cpu().numpy().astype(bool)
        tile = whiten_tokens(image, np.flatnonzero(~attend_all), patch_size, alpha).astype(np.uint8)
        cv2.putText(tile, f"block {block}: {int(attend_all.sum())} A", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 0, 0), 1, cv2.LINE_AA)
        r, c = divmod(k, columns)
        canvas[r * (H + 8):r * (H + 8) + H, c * (W + 8):c * (W + 8) + W] = tile
    return canvas


class GRMTracker(OSTrackTracker):
    """GRM on a sequence of ``(H, W, 3)`` RGB uint8 frames.

    Args:
        params: tracker parameters (script ``grm``; see :class:`~lib.test.tracker.ostrack.OSTrackTracker`).
        dataset_name: benchmark name of the runner (``lasot``, ``uav``, ``nfs``, ``avist``, ``got10k_test``,
            ``trackingnet``, ...); picks the division threshold.

    Attributes:
        threshold: the test-time division threshold in use (0: argmax division).

    Raises (construction): CheckpointError / FileNotFoundError for a checkpoint that does not fit;
        ValueError for a ``TEST.HYPER`` entry that is not a threshold in [0, 1].
    """

    def __init__(self, params: TrackerParams, dataset_name: Optional[str] = None):
        super().__init__(params, dataset_name)
        self.threshold = division_threshold(self.cfg, dataset_name)
        self._divisions: Dict[int, torch.Tensor] = {}

    def template_mask(self, box: Sequence[float], resize_factor: float) -> torch.Tensor:
        """GRM's ``(1, N_z)`` float template box mask (used by the ``roi*`` target types only)."""
        return generate_mask_cond(self.cfg, 1, self.device, self.template_box_in_crop(box, resize_factor))

    def network_inputs(self, search: torch.Tensor) -> Dict[str, Any]:
        """Keyword arguments of the network call: template, search region ``(1, 3, S, S)``, GRM's template box
        mask and the benchmark's division threshold (a number: the sequences of one batch share it)."""
        return {"template": self.template, "search": search, "template_mask": self.box_mask_z,
                "threshold": self.threshold}

    def frame_constants(self) -> Dict[str, Optional[torch.Tensor]]:
        """The per-sequence tensors of the network call (template, GRM's template box mask)."""
        return {"template": self.template, "template_mask": self.box_mask_z}

    def network_forward(self, network_inputs: Dict[str, Any]) -> Dict[str, Any]:
        """GRM on a batch of B search regions (with B = 1: the single-sequence step).

        The division is per sample: every search token gets a one-hot decision from its own feature and its
        own sample's target representation, and the attention mask is built per sample, so no token count
        is shared across the batch (no token is removed; the tensors keep ``N_z + N_x`` tokens). With a
        debug sink attached, the per-block decisions ``(B, N_x, 2)`` are recorded for the ``token_division``
        view (forward hooks, removed after). Hann window and box decoding follow on the device (``_decode``)."""
        if self.debug_sink is None:
            return self._decode(self.network(**network_inputs))
        divisions: Dict[int, torch.Tensor] = {}
        handles = [blk.attn.register_forward_hook(lambda m, i, o, idx=idx: divisions.__setitem__(idx, o[1]))
                   for idx, blk in enumerate(self.network.backbone.blocks) if isinstance(blk.attn, DivisionAttention)]
        try:
            out = self.network(**network_inputs)
        finally:
            for handle in handles:
                handle.remove()
        self._divisions = divisions
        return self._decode(out)

    def _show_debug(self, image, x_patch_arr, score_map, response, out) -> None:
        """OSTrack's views and the per-block token division."""
        super()._show_debug(image, x_patch_arr, score_map, response, out)
        if self._divisions:
            stride = int(self.cfg.MODEL.BACKBONE.STRIDE)
            self.debug_show(division_visualization(x_patch_arr, self._divisions, patch_size=stride), "image", 1,
                            "token_division")
