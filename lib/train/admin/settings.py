"""Training settings: what ``run_training`` and the YAML decide for one run (paths, crop sizes, ranks, ...).

The official ``Settings`` object was pickled into every checkpoint; here :meth:`Settings.to_dict` gives a
plain-data copy (strings, numbers, lists, dicts) that is stored instead, so a checkpoint never needs this
class to be read.
"""

from __future__ import annotations

from typing import Any, Dict

__all__ = ["Settings"]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "FIELDS"):  # environment settings: their declared fields
        return {name: _plain(getattr(value, name, "")) for name, _ in value.FIELDS}
    if hasattr(value, "__dict__") and not callable(value):
        return {str(k): _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


class Settings:
    """Attribute bag of one training run.

    Common attributes: ``env`` (train-side environment settings), ``script_name``, ``config_name``,
    ``project_path`` (``'train/<script>/<config>'``), ``save_dir``, ``local_rank`` / ``rank`` /
    ``world_size`` (-1 / 0 / 1 without DDP), ``use_lmdb``, ``use_wandb``, ``seed``, ``device``, plus the
    values copied from the YAML (``batchsize``, ``grad_clip_norm``, ``print_interval``, ``output_sz``, ...).
    """

    def __init__(self, env=None, **kwargs):
        if env is None:
            from .environment import env_settings

            env = env_settings()
        self.env = env
        self.use_gpu = True
        for k, v in kwargs.items():
            setattr(self, k, v)

    def to_dict(self) -> Dict[str, Any]:
        """Plain-data copy (no objects), for checkpoints and logs."""
        return {k: _plain(v) for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"Settings({self.to_dict()!r})"
