"""One training per checkpoint folder: the lock that ``tracking/train.py`` (or rank 0 of a run started without it)
holds in ``<save_dir>/checkpoints/train/<script>/<config>/`` while the training runs (:mod:`lib.utils.locking`)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from lib.config import experiment_path
from lib.utils.locking import FolderLockedError, folder_lock

__all__ = ["checkpoint_folder", "training_lock", "TRAINING_LOCK_ENV", "FolderLockedError"]

#: Set by ``tracking/train.py`` for the processes it starts: the path of the lock it holds for them.
TRAINING_LOCK_ENV = "TRACKING_TRAINING_LOCK"
LOCK_NAME = ".training.lock"


def checkpoint_folder(save_dir: str, script: str, config: str) -> str:
    """``<save_dir>/checkpoints/train/<script>/<config name>``, where the trainer writes the checkpoints."""
    config_name = os.path.splitext(os.path.basename(str(experiment_path(script, config))))[0]
    return os.path.join(os.path.abspath(os.path.expanduser(save_dir)), "checkpoints", "train", script, config_name)


@contextlib.contextmanager
def training_lock(save_dir: str, script: str, config: str) -> Iterator[str]:
    """Hold the lock of the training's checkpoint folder while the block runs; a no-op in a process started by a
    launcher that holds this lock already (``$TRACKING_TRAINING_LOCK``) or for a config file that does not exist.

    Yields:
        the lock file's path, or None where no lock is needed (no such config file).
    Raises:
        FolderLockedError: another training into the same folder runs (the message names its PID and host).
    """
    path = os.path.join(checkpoint_folder(save_dir, script, config), LOCK_NAME)
    if not experiment_path(script, config).is_file():  # the training stops at once with its own message
        yield None
        return
    if os.environ.get(TRAINING_LOCK_ENV) == path:  # held by our launcher
        yield path
        return
    with folder_lock(os.path.dirname(path), what="training", name=LOCK_NAME) as held:
        yield held
