"""Weights & Biases logging of the training statistics (official ``lib/train/data/wandb_logger.py``).

Enabled by ``--use_wandb 1``; ``WANDB_MODE=offline`` keeps the run on disk (``<output_dir>/wandb``). The step
axis is the training iteration (``(epoch - 1) x iterations per epoch + i``), and the run id is kept in the
checkpoints so that a resumed run continues the same wandb run instead of starting a new one.
"""

from __future__ import annotations

from typing import Dict, Optional

__all__ = ["WandbWriter"]


class WandbWriter:
    """Logs the running averages of every loader every ``print_interval`` iterations.

    Args:
        exp_name: run name (``<script>/<config>``).
        cfg: configuration dict stored with the run.
        output_dir: folder of the wandb files.
        run_id: id of the run to continue (a resumed training run); None starts a new run.

    Raises:
        ImportError: wandb is not installed.
    """

    def __init__(self, exp_name: str, cfg: Optional[Dict], output_dir: str, run_id: Optional[str] = None):
        try:
            import wandb
        except ImportError as exc:
            raise ImportError("--use_wandb 1 needs the wandb package: pip install wandb") from exc
        self.wandb = wandb
        self.run = wandb.init(project="tracking", name=exp_name, config=cfg or {}, dir=output_dir, id=run_id,
                              resume="allow" if run_id else None)
        self.run_id = getattr(self.run, "id", run_id)

    def write_log(self, stats: Dict, epoch: int = -1, step: int = 0) -> None:
        """Log every loader's running averages at ``step`` (the training iteration)."""
        log_dict = {}
        for loader_name, loader_stats in stats.items():
            if loader_stats is None:
                continue
            for var_name, val in loader_stats.items():
                log_dict[f"{loader_name}/{var_name}"] = val.avg if hasattr(val, "avg") else val.val
            if epoch >= 0:
                log_dict[f"{loader_name}/epoch"] = epoch
        self.wandb.log(log_dict, step=int(step))

    def finish(self) -> None:
        self.run.finish()
