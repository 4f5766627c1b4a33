"""TensorBoard scalars of the training loop: one event folder per loader (``train``, ``val``) below
``<tensorboard_dir>/<project_path>`` (official ``lib/train/admin/tensorboard.py``)."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Dict, Iterable

__all__ = ["TensorboardWriter"]


class TensorboardWriter:
    """Writes each loader's epoch averages as scalars named like the statistics (``Loss/total``, ...)."""

    def __init__(self, directory: str, loader_names: Iterable[str]):
        from torch.utils.tensorboard import SummaryWriter

        self.directory = directory
        self.writer = OrderedDict((name, SummaryWriter(os.path.join(directory, name))) for name in loader_names)

    def write_info(self, script_name: str, description: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        w = SummaryWriter(os.path.join(self.directory, "info"))
        w.add_text("Script_name", script_name)
        w.add_text("Description", description)
        w.close()

    def write_epoch(self, stats: Dict, epoch: int, ind: int = -1) -> None:
        """Add the last history entry of every meter with new data, at step ``epoch``."""
        for loader_name, loader_stats in stats.items():
            if loader_stats is None or loader_name not in self.writer:
                continue
            for var_name, val in loader_stats.items():
                if hasattr(val, "history") and getattr(val, "has_new_data", True) and val.history:
                    self.writer[loader_name].add_scalar(var_name, val.history[ind], epoch)
            self.writer[loader_name].flush()

    def close(self) -> None:
        for w in self.writer.values():
            w.close()
