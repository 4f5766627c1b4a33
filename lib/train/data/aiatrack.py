"""AiATrack's training samples: reference frames, a later search frame, target/background regions of
the references and IoU-Net proposals around the search box.

Built on the shared pipeline: :class:`ReferenceSampler` is a :class:`~lib.train.data.sampler.TrackingSampler`
(dataset and sequence draws, retries, bad-data handling, per-index seeds) with AiATrack's frame-id rule;
:class:`AiATrackProcessing` is a :class:`~lib.train.data.processing.STARKProcessing` (jitter, the shared
crop, transforms, all-padding rejection) over the kinds ``search`` and ``reference``.

Source: Little-Podi/AiATrack @ cdb3a4e ``lib/train/data/sampler.py`` (``getitem``) and
``lib/train/data/processing.py`` (``AIATRACKProcessing``); ``lib/train/base_functions.py`` (settings).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import processing_utils as prutils
from .processing import STARKProcessing
from .sampler import TrackingSampler, no_processing
from .tensordict import TensorDict

__all__ = ["ReferenceSampler", "AiATrackProcessing", "PROPOSAL_SIGMA_FACTORS"]

#: standard deviations (relative to sqrt(w*h)) of the proposal perturbation, one drawn per proposal.
PROPOSAL_SIGMA_FACTORS = [0.03, 0.05, 0.1, 0.2, 0.3]


class ReferenceSampler(TrackingSampler):
    """Draws ``1 + num_short_refer`` reference frames and one later search frame per sample.

    Frame ids (video datasets; the official ``getitem``, which hard-codes ``num_short_refer = 1``):
    a base frame among the visible frames with id in ``[num_short_refer, len - 1)``; ``num_short_refer``
    earlier visible frames within ``max_gap * num_short_refer + gap_increase`` before it (with
    replacement); the references are these ids sorted (the earliest is the *initial* reference,
    jittered with the template factors); the search frame is a visible frame in
    ``(last reference, last reference + max_gap + gap_increase)``. When a draw fails ``gap_increase``
    grows by 5 and the base frame is drawn again. Image datasets repeat their image.

    A sequence qualifies with at least 20 frames and more than ``2 * (references + 1)`` visible frames.
    The sample holds ``search_images``/``search_anno``/``search_masks`` and
    ``reference_images``/``reference_anno``/``reference_masks`` (lists, boxes xywh in pixels) and
    ``dataset``, and goes through ``processing``.

    Args:
        datasets, p_datasets, samples_per_epoch: see :class:`TrackingSampler`.
        max_gap: ``DATA.MAX_SAMPLE_INTERVAL`` (200).
        processing: usually :class:`AiATrackProcessing`.
        num_short_refer: short-term references during training (1 in the official training).
        max_retries, skip_bad_data, sample_seed: see :class:`TrackingSampler`.
    """

    def __init__(self, datasets: Sequence, p_datasets: Optional[Sequence[float]], samples_per_epoch: int,
                 max_gap: int, processing: Callable = no_processing, num_short_refer: int = 1,
                 max_retries: int = 100, skip_bad_data: bool = False, sample_seed: Optional[int] = None):
        if isinstance(max_gap, (list, tuple)):
            raise ValueError(f"AiATrack's DATA.MAX_SAMPLE_INTERVAL is one integer, got {max_gap!r}")
        if num_short_refer < 1:
            raise ValueError(f"num_short_refer must be at least 1, got {num_short_refer}")
        super().__init__(datasets, p_datasets, samples_per_epoch, max_gap, num_search_frames=1,
                         num_template_frames=1 + num_short_refer, processing=processing, frame_sample_mode="causal",
                         max_retries=max_retries, skip_bad_data=skip_bad_data, sample_seed=sample_seed)
        self.num_short_refer = num_short_refer

    def get_reference_ids(self, visible: torch.Tensor, max_loops: int = 1000
                          ) -> Tuple[Optional[List[int]], Optional[List[int]]]:
        """``(reference_ids, search_ids)`` of a video (see the class doc), or ``(None, None)``."""
        n = self.num_short_refer
        gap_increase = 0
        for _ in range(max_loops):
            base = self._sample_visible_ids(visible, num_ids=1, min_id=n, max_id=len(visible) - 1)
            if base is None:
                return None, None
            prev = self._sample_visible_ids(visible, num_ids=n, min_id=base[0] - self.max_gap * n - gap_increase,
                                            max_id=base[0])
            if prev is None:
                gap_increase += 5
                continue
            reference_ids = sorted(base + prev)
            search_ids = self._sample_visible_ids(visible, num_ids=1, min_id=reference_ids[-1] + 1,
                                                  max_id=reference_ids[-1] + self.max_gap + gap_increase)
            gap_increase += 5
            if search_ids is not None:
                return reference_ids, search_ids
        return None, None

    def _try_sample(self, dataset) -> Optional[TensorDict]:
        is_video = dataset.is_video_sequence()
        seq_id, visible, seq_info = self.sample_seq_from_dataset(dataset, is_video)
        if is_video:
            reference_ids, search_ids = self.get_reference_ids(visible)
            if reference_ids is None:
                return None
        else:
            reference_ids, search_ids = [1] * (self.num_short_refer + 1), [1]
        search_frames, search_anno, _ = dataset.get_frames(seq_id, search_ids, seq_info)
        reference_frames, reference_anno, _ = dataset.get_frames(seq_id, reference_ids, seq_info)
        data = TensorDict({"search_images": search_frames,
                           "search_anno": search_anno["bbox"],
                           "search_masks": _masks(search_anno, search_frames),
                           "reference_images": reference_frames,
                           "reference_anno": reference_anno["bbox"],
                           "reference_masks": _masks(reference_anno, reference_frames),
                           "dataset": dataset.get_name()})
        return self.processing(data)


def _masks(anno: Dict, frames: List) -> List[torch.Tensor]:
    if "mask" in anno:
        return anno["mask"]
    return [torch.zeros(f.shape[:2]) for f in frames]


class AiATrackProcessing(STARKProcessing):
    """AiATrack's processing: the shared crops of the search frame and the references, then the
    reference regions and the search proposals.

    Kinds ``search`` then ``reference`` (the joint transform draws for the search frame and repeats
    the draw on the references, as the official code). Every frame is cropped with the search factor
    and size; the first (initial) reference is jittered with the ``'initial'`` factors
    (``DATA.TEMPLATE.*_JITTER``, 0 in the shipped configs), the other references with the
    ``'reference'`` factors and the search frame with the ``'search'`` factors (both
    ``DATA.SEARCH.*_JITTER``, 4.5 / 0.5).

    Added fields (``mode='sequence'``):

    * ``reference_region`` ``(N_r, F*F, 2)``: per reference, the one-hot target/background assignment of
      the ``F x F`` feature cells (``F = output_sz // feat_stride``) from the reference box rounded to
      the grid (:func:`lib.models.aiatrack.target_background_region`);
    * ``search_proposals`` ``(N_s, P, 4)``: ``num_proposals`` (16) boxes xywh normalised to the search
      crop, :func:`~lib.train.data.processing_utils.perturb_box` of the search box with ``min_iou`` 0.1
      and a sigma factor drawn from :data:`PROPOSAL_SIGMA_FACTORS`;
    * ``proposal_iou`` ``(N_s, P)``: their IoU with the search box mapped to ``[-1, 1]``
      (``2 * IoU - 1``), the IoU head's regression target.

    Args:
        search_area_factor, output_sz, center_jitter_factor, scale_jitter_factor: dicts with the keys
            ``search`` and ``reference`` (the jitter dicts also ``initial``).
        num_proposals: proposals per search frame (16).
        proposal_min_iou: ``min_iou`` of :func:`perturb_box` (0.1).
        other arguments: see :class:`STARKProcessing` (``mode`` must be ``'sequence'``).

    Raises:
        ValueError: ``mode`` other than ``'sequence'``.
    """

    kinds = ("search", "reference")

    def __init__(self, *args, num_proposals: int = 16, proposal_min_iou: float = 0.1,
                 proposal_sigma_factors: Sequence[float] = tuple(PROPOSAL_SIGMA_FACTORS), **kwargs):
        super().__init__(*args, **kwargs)
        if self.mode != "sequence":
            raise ValueError(f"AiATrackProcessing works in mode 'sequence' (several references), got '{self.mode}'")
        self.transform["reference"] = self.transform["search"]
        self.num_proposals = num_proposals
        self.proposal_min_iou = proposal_min_iou
        self.proposal_sigma_factors = list(proposal_sigma_factors)

    def _jitter_boxes(self, boxes, kind: str):
        if kind != "reference":
            return super()._jitter_boxes(boxes, kind)
        return [self._get_jittered_box(boxes[0], "initial")] + [self._get_jittered_box(a, kind) for a in boxes[1:]]

    def generate_proposals(self, box: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``num_proposals`` perturbed copies of ``box`` (xywh) and their IoU with it mapped to [-1, 1]:
        ``((P, 4), (P,))``."""
        proposals = torch.zeros((self.num_proposals, 4))
        gt_iou = torch.zeros(self.num_proposals)
        for i in range(self.num_proposals):
            proposals[i], gt_iou[i] = prutils.perturb_box(box, min_iou=self.proposal_min_iou,
                                                          sigma_factor=self.proposal_sigma_factors)
        return proposals, gt_iou * 2 - 1

    def __call__(self, data: TensorDict) -> TensorDict:
        from lib.models.aiatrack import target_background_region

        data = super().__call__(data)
        if not data["valid"]:
            return data
        feat_sz = self.output_sz["reference"] // self.feat_stride
        data["reference_region"] = target_background_region(data["reference_anno"], feat_sz)
        proposals, gt_iou = zip(*[self.generate_proposals(a) for a in data["search_anno"]])
        data["search_proposals"] = torch.stack(proposals)
        data["proposal_iou"] = torch.stack(gt_iou)
        return data
