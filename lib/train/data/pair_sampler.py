"""Track-pair sampling with negative pairs (SiamFC++ / SparseTT training data).

Source: fzh0917/SparseTT (video_analyst) ``videoanalyst/data/sampler/sampler_impl/track_pair_sampler.py``
(``TrackPairSampler``), ``videoanalyst/data/filter/filter_impl/track_pair_filter.py`` (``TrackPairFilter``) and
``videoanalyst/data/utils/filter_box.py``. SPARSETT.md section 6.

For each sample (:meth:`TrackPairSampler.__getitem__`):

1. the pair is negative with probability ``negative_pair_ratio`` (0.33), decided once per sample;
2. a dataset is drawn with probability ``ratio / sum(ratios)``, a sequence uniformly (no length or
   visibility requirement: every frame of the sequence can be drawn, as in video_analyst, whose datasets
   return all frames);
3. positive pair: two frames of that sequence (:func:`pair_frame_ids`), or the image twice for an image
   dataset; negative pair: a random frame of that sequence and a random frame of a random sequence of a
   second, independently drawn dataset;
4. the two raw frames go through :class:`TrackPairFilter`; a rejected pair is drawn again from step 2 (the
   negative/positive decision is kept), then through ``processing`` (the crop and the targets,
   :class:`~lib.train.data.pair_processing.DenseboxPairProcessing`).

The retry loop, dataset choice, broken-file handling and per-index seeding are those of
:class:`~lib.train.data.sampler.TrackingSampler` (its module doc): the official loop retries forever, here
:class:`~lib.train.data.sampler.SamplingError` after ``max_retries`` attempts. Random numbers come from
python's ``random`` (frames) and numpy's global generator (the crop), seeded per loader worker.
"""

from __future__ import annotations

import random
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from .sampler import TrackingSampler, no_processing

__all__ = ["pair_frame_ids", "TrackPairFilter", "TrackPairSampler"]


def pair_frame_ids(num_frames: int, max_diff: int, rng=random) -> Tuple[int, int]:
    """Frame ids ``(template, search)`` of a positive pair in a sequence of ``num_frames`` frames.

    The official ``_sample_pair_idx_pair_within_max_diff``: ``idx1`` uniform in ``[0, L)``; ``idx2`` uniform in
    ``range(idx1 - max_diff, L)`` united with ``range(L + 1, idx1 + max_diff + 1)``, intersected with ``[0, L)``.
    As written (the upper bound is ``L``, not ``idx1``) this allows any frame from ``idx1 - max_diff`` to the
    end of the sequence: at most ``max_diff`` frames *before* the template, any number after it, and the
    template frame itself. That is what the released models were trained with, so it is kept.

    Args:
        num_frames: ``L >= 1``.
        max_diff: ``max_diff`` of the dataset (100 for every SparseTT dataset).
        rng: object with ``randrange`` (python ``random`` or a ``random.Random``).

    Raises:
        ValueError: ``num_frames < 1``.
    """
    if num_frames < 1:
        raise ValueError(f"pair_frame_ids: a sequence needs at least one frame, got {num_frames}")
    idx1 = rng.randrange(num_frames)
    low = max(0, idx1 - int(max_diff))
    return idx1, low + rng.randrange(num_frames - low)


class TrackPairFilter:
    """Rejects training frames whose box is unreasonable (video_analyst ``TrackPairFilter``).

    A frame is rejected when ``max(h / (w + 1e-6), 1 / max(h / (w + 1e-6), 1e-6)) >= max_ratio`` (extreme
    aspect ratio; degenerate boxes with ``w`` or ``h`` 0 fall here too).

    The official code also *means* to reject boxes whose area is not within ``(min_area_rate,
    max_area_rate)`` of the image area, but it puts both comparisons in a tuple inside the list given to
    ``all()``, and a non-empty tuple is always true: the area rule has no effect in the released training.
    ``check_area=False`` (default, ``DATA.FILTER.CHECK_AREA``) reproduces that; ``True`` applies the rule.

    Args:
        min_area_rate / max_area_rate: bounds of ``w * h / (H * W)`` (0.001 / 0.6), used with ``check_area``.
        max_ratio: aspect-ratio bound (10).
        check_area: apply the area rule.
    """

    def __init__(self, min_area_rate: float = 0.001, max_area_rate: float = 0.6, max_ratio: float = 10,
                 check_area: bool = False):
        self.min_area_rate = float(min_area_rate)
        self.max_area_rate = float(max_area_rate)
        self.max_ratio = float(max_ratio)
        self.check_area = bool(check_area)

    def __call__(self, image_hw: Sequence[int], box_xywh) -> bool:
        """True if the frame of size ``image_hw`` ``(H, W)`` with box ``box_xywh`` (pixels) is rejected."""
        eps = 1e-6
        w, h = float(box_xywh[2]), float(box_xywh[3])
        area_rate = w * h / float(image_hw[0] * image_hw[1])
        ratio = h / (w + eps)
        ratio_ok = max(ratio, 1.0 / max(ratio, eps)) < self.max_ratio
        area_ok = self.min_area_rate < area_rate < self.max_area_rate
        return not (ratio_ok and (area_ok or not self.check_area))


class TrackPairSampler(TrackingSampler):
    """Template/search pairs, positive or negative, for SparseTT (see the module doc).

    Args:
        datasets: training datasets (:class:`~lib.train.dataset.BaseVideoDataset`).
        p_datasets: relative sampling weights (``DATA.TRAIN.DATASETS_RATIO``); None: proportional to size.
        samples_per_epoch: ``len(self)`` (``DATA.SAMPLE_PER_EPOCH``, the official ``nr_image_per_epoch``).
        max_diff: ``DATA.MAX_SAMPLE_INTERVAL`` (see :func:`pair_frame_ids`).
        processing: callable on the sampled dict (keys ``template_image``, ``template_box``, ``search_image``,
            ``search_box`` (xywh float32 tensors, pixels), ``is_negative_pair``, ``dataset``).
        negative_pair_ratio: probability of a negative pair (0.33).
        pair_filter: :class:`TrackPairFilter` (None: accept every frame).
        max_retries, skip_bad_data, sample_seed: as :class:`~lib.train.data.sampler.TrackingSampler`.

    Raises:
        ValueError: empty ``datasets``, mismatched ``p_datasets`` or a ratio outside [0, 1].
    """

    def __init__(self, datasets: Sequence, p_datasets: Optional[Sequence[float]], samples_per_epoch: int,
                 max_diff: int = 100, processing: Callable = no_processing, negative_pair_ratio: float = 0.0,
                 pair_filter: Optional[TrackPairFilter] = None, max_retries: int = 100, skip_bad_data: bool = False,
                 sample_seed: Optional[int] = None):
        if not 0.0 <= float(negative_pair_ratio) <= 1.0:
            raise ValueError(f"negative_pair_ratio must be in [0, 1], got {negative_pair_ratio}")
        super().__init__(datasets, p_datasets, samples_per_epoch, max_gap=int(max_diff), num_search_frames=1,
                         num_template_frames=1, processing=processing, max_retries=max_retries,
                         skip_bad_data=skip_bad_data, sample_seed=sample_seed)
        self.max_diff = int(max_diff)
        self.negative_pair_ratio = float(negative_pair_ratio)
        self.pair_filter = pair_filter
        self._negative = False

    def _sample(self):
        # decided once per sample, before any retry (official __getitem__)
        self._negative = random.random() < self.negative_pair_ratio
        return super()._sample()

    @staticmethod
    def _random_sequence(dataset) -> Tuple[int, dict, int]:
        seq_id = random.randrange(dataset.get_num_sequences())
        seq_info = dataset.get_sequence_info(seq_id)
        num_frames = int(seq_info["bbox"].shape[0]) if dataset.is_video_sequence() else 1
        return seq_id, seq_info, num_frames

    def _random_frame(self, dataset):
        seq_id, seq_info, num_frames = self._random_sequence(dataset)
        frames, anno, _ = dataset.get_frames(seq_id, [random.randrange(num_frames)], seq_info)
        return frames[0], anno["bbox"][0]

    def _frames_of_pair(self, dataset) -> List:
        """``[(template frame, xywh box), (search frame, xywh box)]``."""
        if self._negative:
            second = random.choices(self.datasets, self.p_datasets)[0]
            return [self._random_frame(dataset), self._random_frame(second)]
        seq_id, seq_info, num_frames = self._random_sequence(dataset)
        ids = list(pair_frame_ids(num_frames, self.max_diff)) if dataset.is_video_sequence() else [0, 0]
        frames, anno, _ = dataset.get_frames(seq_id, ids, seq_info)
        return [(frames[0], anno["bbox"][0]), (frames[1], anno["bbox"][1])]

    def _try_sample(self, dataset):
        pair = self._frames_of_pair(dataset)
        if self.pair_filter is not None and any(self.pair_filter(im.shape[:2], box) for im, box in pair):
            return None
        (im_z, box_z), (im_x, box_x) = pair
        data = {"template_image": im_z, "template_box": torch.as_tensor(box_z, dtype=torch.float32),
                "search_image": im_x, "search_box": torch.as_tensor(box_x, dtype=torch.float32),
                "is_negative_pair": bool(self._negative), "dataset": dataset.get_name()}
        return self.processing(data)
