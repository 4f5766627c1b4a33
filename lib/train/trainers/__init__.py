"""Trainers: the epoch loop with checkpoints (:class:`BaseTrainer`) and the training loop (:class:`LTRTrainer`)."""

from .base_trainer import BaseTrainer, capture_rng_state, restore_rng_state
from .ltr_trainer import LTRTrainer

__all__ = ["BaseTrainer", "LTRTrainer", "capture_rng_state", "restore_rng_state"]
