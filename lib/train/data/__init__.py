"""Training data pipeline: sampler, processing (crops and augmentation), transforms and the loader."""

from .loader import LTRLoader, WorkerSeeder, ltr_collate, ltr_collate_stack1
from .processing import BaseProcessing, STARKProcessing
from .sampler import FRAME_SAMPLE_MODES, SamplingError, TrackingSampler
from .tensordict import TensorDict, TensorList

__all__ = ["LTRLoader", "WorkerSeeder", "ltr_collate", "ltr_collate_stack1", "BaseProcessing", "STARKProcessing",
           "TrackingSampler", "SamplingError", "FRAME_SAMPLE_MODES", "TensorDict", "TensorList"]
