"""Weights & Biases logging of the training statistics (official ``lib/train/data/wandb_logger.py``).

Enabled by ``--use_wandb 1``; ``WANDB_MODE=offline`` keeps the run on disk (``<output_dir>/wandb``).
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
        cur_step: samples seen so far (resumed runs continue the step axis).
        step_interval: samples per logged step (world size x batch size).

    Raises:
        ImportError: wandb is not installed.
    """

    def __init__(self, exp_name: str, cfg: Optional[Dict], output_dir: str, cur_step: int = 0, step_interval: int = 1):
        try:
            import wandb
        except ImportError as exc:
            raise ImportError("--use_wandb 1 needs the wandb package: pip install wandb") from exc
        self.wandb = wandb
        self.step = cur_step
        self.interval = step_interval
        self.run = wandb.init(project="tracking", name=exp_name, config=cfg or {}, dir=output_dir)

    def write_log(self, stats: Dict, epoch: int = -1) -> None:
        self.step += 1
        log_dict = {}
        for loader_name, loader_stats in stats.items():
            if loader_stats is None:
                continue
            for var_name, val in loader_stats.items():
                log_dict[f"{loader_name}/{var_name}"] = val.avg if hasattr(val, "avg") else val.val
            if epoch >= 0:
                log_dict[f"{loader_name}/epoch"] = epoch
        self.wandb.log(log_dict, step=self.step * self.interval)

    def finish(self) -> None:
        self.run.finish()
