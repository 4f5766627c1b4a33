"""Drawing training samples (template and search frames) from the training datasets.

Source: OSTrack/STARK ``lib/train/data/sampler.py`` (``TrackingSampler``), pytracking
``ltr/data/sampler.py`` (the ``interval`` mode). For each sample:

1. a dataset is drawn with probability ``p_datasets[i] / sum(p_datasets)`` (default: proportional to the
   number of sequences);
2. a sequence is drawn uniformly until it has more than ``2 * (num_search + num_template)`` visible frames
   and at least 20 frames (image datasets always pass);
3. frame ids are drawn with the ``frame_sample_mode``:

   * ``causal`` (OSTrack, GRM, STARK-S): a base (template) frame among the visible frames with id in
     ``[num_template - 1, len - num_search)``; extra templates within ``max_gap`` before it; search frames
     among the visible frames in ``(template_id, template_id + max_gap + gap_increase)``; if there are none,
     ``gap_increase += 5`` and the base frame is drawn again;
   * ``interval`` (pytracking ATOM/DiMP): extra templates and search frames within ``max_gap`` of the base
     frame on either side;
   * ``trident`` / ``trident_pro`` (STARK-ST): a random visible template and a random visible search frame;
     one dynamic template per entry of ``max_gap`` drawn within that gap of the search frame, on the side of
     the first template (``trident_pro`` allows an invisible dynamic template);
   * ``stark``: as ``trident`` with the dynamic template required to be *valid* (w, h > 0) rather than visible;

   image datasets repeat their image (frame id 1, as the official code);
4. the frames go through ``processing``; an invalid result (see :class:`~lib.train.data.processing.STARKProcessing`)
   or a failure while reading or processing starts again from step 1.

``train_cls=True`` (STARK-ST stage 2) adds a ``label``: with probability ``pos_prob`` a positive sample
(label 1) as above, otherwise a negative one (label 0): for video datasets a frame where the target is
invisible, its box replaced by a centred box of 1/8 of the image size, or, if there is none, a random frame
of a random sequence (``get_one_search``); for image datasets always ``get_one_search``.

Differences from the official code, on purpose: the official sampler retries forever; here the attempts
are bounded by ``max_retries`` (100, pytracking's ``num_tries``) and a :class:`SamplingError` reports what
failed. A broken file (corrupt frame, malformed ground truth: :data:`BAD_DATA_ERRORS`) raises an error
naming the file unless ``skip_bad_data`` is set, in which case it is logged once and the sample re-drawn
(the official behaviour). ``sample_seed`` makes every sample a function of ``(sample_seed, epoch, index)``
(used to compare single-process and DDP runs on the same global batch).
"""

from __future__ import annotations

import contextlib
import logging
import random
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.utils.data

from lib.train.dataset.base_video_dataset import BAD_DATA_ERRORS
from lib.utils.errors import register_user_error

from .tensordict import TensorDict

__all__ = ["TrackingSampler", "SamplingError", "no_processing", "fork_rng", "FRAME_SAMPLE_MODES"]

log = logging.getLogger(__name__)

FRAME_SAMPLE_MODES = ("causal", "interval", "trident", "trident_pro", "stark")


@register_user_error
class SamplingError(RuntimeError):
    """No valid training sample could be made within the allowed number of attempts."""


def no_processing(data):
    return data


@contextlib.contextmanager
def fork_rng(seed: int):
    """Seed the python, numpy and torch (CPU) generators with ``seed`` inside the block and restore their
    previous states afterwards."""
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class TrackingSampler(torch.utils.data.Dataset):
    """Samples template/search frames from the training datasets (see the module doc).

    Args:
        datasets: the training datasets (:class:`~lib.train.dataset.BaseVideoDataset`).
        p_datasets: relative sampling weight of each dataset (``DATA.TRAIN.DATASETS_RATIO``); None:
            proportional to their sizes.
        samples_per_epoch: ``len(self)`` (``DATA.TRAIN.SAMPLE_PER_EPOCH``).
        max_gap: ``DATA.MAX_SAMPLE_INTERVAL``: an int (causal, interval) or a list of ints, one per dynamic
            template (trident, trident_pro, stark).
        num_search_frames, num_template_frames: frames of each kind per sample.
        processing: callable turning the sampled ``TensorDict`` into network inputs.
        frame_sample_mode: one of :data:`FRAME_SAMPLE_MODES`.
        train_cls: draw positive/negative samples with a ``label`` (STARK-ST stage 2).
        pos_prob: probability of a positive sample with ``train_cls``.
        max_retries: attempts per sample before :class:`SamplingError`.
        skip_bad_data: log and skip broken files instead of raising.
        sample_seed: if given, every sample is a deterministic function of ``(sample_seed, epoch, index)``.

    Raises:
        ValueError: unknown ``frame_sample_mode`` (or one that ``train_cls`` cannot use), empty ``datasets`` or
            mismatched ``p_datasets``.
    """

    def __init__(self, datasets: Sequence, p_datasets: Optional[Sequence[float]], samples_per_epoch: int,
                 max_gap: Union[int, Sequence[int]], num_search_frames: int, num_template_frames: int = 1,
                 processing: Callable = no_processing, frame_sample_mode: str = "causal", train_cls: bool = False,
                 pos_prob: float = 0.5, max_retries: int = 100, skip_bad_data: bool = False,
                 sample_seed: Optional[int] = None):
        if not datasets:
            raise ValueError("TrackingSampler needs at least one dataset")
        if frame_sample_mode not in FRAME_SAMPLE_MODES:
            raise ValueError(f"unknown frame sample mode '{frame_sample_mode}' "
                             f"(known: {', '.join(FRAME_SAMPLE_MODES)})")
        if train_cls and frame_sample_mode not in ("trident", "trident_pro", "stark"):
            raise ValueError(f"train_cls needs frame_sample_mode trident, trident_pro or stark, "
                             f"not '{frame_sample_mode}'")
        if p_datasets is None:
            p_datasets = [len(d) for d in datasets]
        if len(p_datasets) != len(datasets):
            raise ValueError(f"{len(datasets)} datasets but {len(p_datasets)} sampling ratios (DATASETS_RATIO)")
        total = float(sum(p_datasets))
        self.datasets = list(datasets)
        self.p_datasets = [x / total for x in p_datasets]
        self.samples_per_epoch = int(samples_per_epoch)
        self.max_gap = max_gap
        self.num_search_frames = num_search_frames
        self.num_template_frames = num_template_frames
        self.processing = processing
        self.frame_sample_mode = frame_sample_mode
        self.train_cls = train_cls
        self.pos_prob = pos_prob
        self.max_retries = max_retries
        self.skip_bad_data = skip_bad_data
        self.sample_seed = sample_seed
        self.epoch = 0
        self._reported = set()

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Record the epoch (part of the per-sample seed with ``sample_seed``)."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> TensorDict:
        if self.sample_seed is None:
            return self._sample()
        state = np.random.SeedSequence([int(self.sample_seed), self.epoch, int(index)]).generate_state(2, np.uint64)
        seed = int(state[0] % (2 ** 63))
        with fork_rng(seed):
            return self._sample()

    def _sample(self) -> TensorDict:
        last_error, invalid = None, 0
        for _ in range(self.max_retries):
            dataset = random.choices(self.datasets, self.p_datasets)[0]
            try:
                data = self._try_sample(dataset)
            except BAD_DATA_ERRORS as exc:
                if not self.skip_bad_data:
                    raise
                self._report(exc)
                last_error = exc
                continue
            except SamplingError:
                raise
            except Exception as exc:  # the official sampler re-draws on any failure of reading or processing
                log.debug("sample failed: %s", exc, exc_info=True)
                last_error = exc
                continue
            if data is not None and data.get("valid", True):
                return data
            invalid += 1
        detail = f"; last error: {type(last_error).__name__}: {last_error}" if last_error is not None else ""
        raise SamplingError(f"no valid training sample after {self.max_retries} attempts ({invalid} rejected by the "
                            f"processing: crops that are all padding or boxes too small){detail}. Datasets: "
                            f"{', '.join(d.get_name() for d in self.datasets)}")

    def _report(self, exc: Exception) -> None:
        msg = str(exc)
        if msg not in self._reported:
            self._reported.add(msg)
            log.warning("skipping broken training data: %s", msg)

    def _try_sample(self, dataset) -> Optional[TensorDict]:
        is_video = dataset.is_video_sequence()
        seq_id, visible, seq_info = self.sample_seq_from_dataset(dataset, is_video)
        if is_video:
            template_ids, search_ids = self._frame_ids(visible, seq_info)
            if template_ids is None:
                return None
        else:
            template_ids = [1] * self.num_template_frames
            search_ids = [1] * self.num_search_frames

        template_frames, template_anno, _ = dataset.get_frames(seq_id, template_ids, seq_info)
        H, W, _ = template_frames[0].shape
        template_masks = template_anno["mask"] if "mask" in template_anno else \
            [torch.zeros((H, W))] * self.num_template_frames
        label = None
        if not self.train_cls or random.random() < self.pos_prob:
            if self.train_cls:
                label = torch.ones(1)
            search_frames, search_anno, meta_search = dataset.get_frames(seq_id, search_ids, seq_info)
        else:
            label = torch.zeros(1)
            neg_ids = self._sample_visible_ids(visible, num_ids=1, force_invisible=True) if is_video else None
            if neg_ids is None:
                search_frames, search_anno, meta_search = self.get_one_search()
            else:
                search_frames, search_anno, meta_search = dataset.get_frames(seq_id, neg_ids, seq_info)
                search_anno["bbox"] = [self.get_center_box(H, W)]
        Hs, Ws, _ = search_frames[0].shape
        search_masks = (search_anno["mask"] if "mask" in search_anno
                        else [torch.zeros((Hs, Ws))] * self.num_search_frames)

        data = TensorDict({"template_images": template_frames,
                           "template_anno": template_anno["bbox"],
                           "template_masks": template_masks,
                           "search_images": search_frames,
                           "search_anno": search_anno["bbox"],
                           "search_masks": search_masks,
                           "dataset": dataset.get_name(),
                           "test_class": meta_search.get("object_class_name")})
        data = self.processing(data)
        if label is not None:
            data["label"] = label
        return data

    # frame-id sampling -----------------------------------------------------------------------------------
    def _gaps(self) -> List[int]:
        return list(self.max_gap) if isinstance(self.max_gap, (list, tuple)) else [int(self.max_gap)]

    def _frame_ids(self, visible, seq_info):
        mode = self.frame_sample_mode
        if mode == "causal":
            return self._frame_ids_causal(visible)
        if mode == "interval":
            return self._frame_ids_interval(visible)
        if mode in ("trident", "trident_pro"):
            return self.get_frame_ids_trident(visible)
        return self.get_frame_ids_stark(visible, seq_info["valid"])

    def _frame_ids_causal(self, visible, max_loops: int = 1000):
        max_gap = self._gaps()[0]
        gap_increase = 0
        for _ in range(max_loops):
            base = self._sample_visible_ids(visible, num_ids=1, min_id=self.num_template_frames - 1,
                                            max_id=len(visible) - self.num_search_frames)
            if base is None:
                return None, None
            prev = self._sample_visible_ids(visible, num_ids=self.num_template_frames - 1,
                                            min_id=base[0] - max_gap - gap_increase, max_id=base[0])
            if prev is None:
                gap_increase += 5
                continue
            template_ids = base + prev
            search_ids = self._sample_visible_ids(visible, min_id=template_ids[0] + 1,
                                                  max_id=template_ids[0] + max_gap + gap_increase,
                                                  num_ids=self.num_search_frames)
            gap_increase += 5
            if search_ids is not None:
                return template_ids, search_ids
        return None, None

    def _frame_ids_interval(self, visible, max_loops: int = 1000):
        max_gap = self._gaps()[0]
        gap_increase = 0
        for _ in range(max_loops):
            base = self._sample_visible_ids(visible, num_ids=1)
            if base is None:
                return None, None
            extra = self._sample_visible_ids(visible, num_ids=self.num_template_frames - 1,
                                             min_id=base[0] - max_gap - gap_increase,
                                             max_id=base[0] + max_gap + gap_increase)
            if extra is None:
                gap_increase += 5
                continue
            template_ids = base + extra
            search_ids = self._sample_visible_ids(visible, num_ids=self.num_search_frames,
                                                  min_id=template_ids[0] - max_gap - gap_increase,
                                                  max_id=template_ids[0] + max_gap + gap_increase)
            gap_increase += 5
            if search_ids is not None:
                return template_ids, search_ids
        return None, None

    def _dynamic_templates(self, visible, valid, allow_invisible: bool, use_valid: bool, max_loops: int = 1000):
        for _ in range(max_loops):
            template_id1 = self._sample_visible_ids(visible, num_ids=1)
            search_ids = self._sample_visible_ids(visible, num_ids=1)
            if template_id1 is None or search_ids is None:
                return None, None
            extra = []
            for max_gap in self._gaps():
                if template_id1[0] >= search_ids[0]:
                    min_id, max_id = search_ids[0], search_ids[0] + max_gap
                else:
                    min_id, max_id = search_ids[0] - max_gap, search_ids[0]
                if use_valid:
                    f_id = self._sample_visible_ids(valid, num_ids=1, min_id=min_id, max_id=max_id)
                else:
                    f_id = self._sample_visible_ids(visible, num_ids=1, min_id=min_id, max_id=max_id,
                                                    allow_invisible=allow_invisible)
                extra += [None] if f_id is None else f_id
            if extra and None not in extra:
                return template_id1 + extra, search_ids
        return None, None

    def get_frame_ids_trident(self, visible):
        """Template ids ``[initial, dynamic...]`` and search ids in the trident / trident_pro manner."""
        return self._dynamic_templates(visible, None, allow_invisible=self.frame_sample_mode == "trident_pro",
                                       use_valid=False)

    def get_frame_ids_stark(self, visible, valid):
        """Template and search ids in the 'stark' manner (dynamic template valid, not necessarily visible)."""
        return self._dynamic_templates(visible, valid, allow_invisible=False, use_valid=True)

    @staticmethod
    def _sample_visible_ids(visible, num_ids: int = 1, min_id: Optional[int] = None, max_id: Optional[int] = None,
                            allow_invisible: bool = False, force_invisible: bool = False) -> Optional[List[int]]:
        """``num_ids`` frame ids drawn with replacement among the (visible) frames in ``[min_id, max_id)``;
        None if there is none."""
        if num_ids == 0:
            return []
        if min_id is None or min_id < 0:
            min_id = 0
        if max_id is None or max_id > len(visible):
            max_id = len(visible)
        if force_invisible:
            valid_ids = [i for i in range(min_id, max_id) if not visible[i]]
        elif allow_invisible:
            valid_ids = list(range(min_id, max_id))
        else:
            valid_ids = [i for i in range(min_id, max_id) if visible[i]]
        if not valid_ids:
            return None
        return random.choices(valid_ids, k=num_ids)

    def sample_seq_from_dataset(self, dataset, is_video_dataset: bool, max_draws: int = 10000):
        """A random sequence with enough visible frames: ``(seq_id, visible, seq_info)``.

        Raises:
            SamplingError: ``max_draws`` sequences drawn and none qualified (names the dataset).
        """
        need = 2 * (self.num_search_frames + self.num_template_frames)
        for _ in range(max_draws):
            seq_id = random.randint(0, dataset.get_num_sequences() - 1)
            seq_info = dataset.get_sequence_info(seq_id)
            visible = seq_info["visible"]
            enough = int(visible.to(torch.int64).sum().item()) > need and len(visible) >= 20
            if enough or not is_video_dataset:
                return seq_id, visible, seq_info
        raise SamplingError(f"dataset '{dataset.get_name()}' ({dataset.get_num_sequences()} sequences): no sequence "
                            f"with at least 20 frames and more than {need} visible frames in {max_draws} draws")

    def get_one_search(self):
        """A random frame of a random sequence of a random dataset (negative samples)."""
        dataset = random.choices(self.datasets, self.p_datasets)[0]
        is_video = dataset.is_video_sequence()
        seq_id, visible, seq_info = self.sample_seq_from_dataset(dataset, is_video)
        if is_video:
            if self.frame_sample_mode == "stark":
                ids = self._sample_visible_ids(seq_info["valid"], num_ids=1)
            else:
                ids = self._sample_visible_ids(visible, num_ids=1, allow_invisible=True)
        else:
            ids = [1]
        return dataset.get_frames(seq_id, ids, seq_info)

    @staticmethod
    def get_center_box(H: int, W: int, ratio: float = 1 / 8) -> torch.Tensor:
        """A fake xywh box of ``ratio`` times the image size at the image centre (negative samples)."""
        cx, cy, w, h = W / 2, H / 2, W * ratio, H * ratio
        return torch.tensor([int(cx - w / 2), int(cy - h / 2), int(w), int(h)])
