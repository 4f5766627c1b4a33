"""Where a training run's code came from: the project's git commit, stored in every checkpoint."""

from __future__ import annotations

import functools
import subprocess
from typing import Optional

from lib.config import PROJECT_ROOT

__all__ = ["git_commit"]


@functools.lru_cache(maxsize=1)
def git_commit() -> Optional[str]:
    """The project's git commit (40 hex digits, ``+dirty`` appended when tracked files are modified), or None
    when the project is not a git checkout or git is not installed."""
    try:
        run = functools.partial(subprocess.run, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        head = run(["git", "rev-parse", "HEAD"])
        if head.returncode != 0:
            return None
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"])
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
