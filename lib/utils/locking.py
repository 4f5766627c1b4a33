"""A lock file that lets one process at a time work in a folder (one training per checkpoint folder).

The lock is ``fcntl.flock`` on a file in the folder (``os.O_CREAT``, so creating it is atomic): the kernel releases it
when the holder dies, however it dies, so a lock is never held by a dead process. The file records the holder (PID,
host, start time, command line) for the message that refuses a second process; a file left behind by a holder that
died is taken over with a notice. On systems without ``fcntl`` (Windows) the file itself is the lock, created with
``O_CREAT | O_EXCL`` and taken over when the recorded PID no longer runs on this host.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from typing import Iterator, Optional

from lib.utils.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["FolderLockedError", "folder_lock", "read_lock_holder"]


class FolderLockedError(UserError):
    """Another running process holds the folder's lock; the message names its PID and host."""


def read_lock_holder(path: str) -> Optional[dict]:
    """The holder record of lock file ``path`` (``{'pid', 'host', 'started', 'command'}``), or None if absent or
    unreadable."""
    try:
        with open(path) as f:
            record = json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "pid" in record else None


def _describe(holder: Optional[dict]) -> str:
    if not holder:
        return "a process that left no record"
    text = f"PID {holder.get('pid')} on host {holder.get('host', '?')}"
    if holder.get("started"):
        text += f", started {holder['started']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def _pid_running(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _record(what: str) -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                       "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)})


@contextlib.contextmanager
def folder_lock(folder: str, what: str = "training", name: str = ".lock", notify=None) -> Iterator[str]:
    """Hold ``<folder>/<name>`` while the block runs (the folder is created if needed).

    Args:
        folder: the folder to lock (a training's checkpoint folder).
        what: what the lock protects, for the messages (``training``).
        name: lock file name.
        notify: ``notify(message)`` for the notice that a stale lock was taken over (default: print to stderr).
    Yields:
        the lock file's path.
    Raises:
        FolderLockedError: another running process holds the lock (the message names its PID and host).
    """
    notify = notify or (lambda msg: print(msg, file=sys.stderr, flush=True))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)

    def refuse(holder):
        raise FolderLockedError(
            f"another {what} is running in '{folder}': its lock '{path}' is held by {_describe(holder)}. Wait for it "
            f"to end or stop it first; to run both, give this one another --save_dir or config")

    if fcntl is None:
        fd = _acquire_exclusive_file(path, refuse, notify, what)
    else:
        fd = _acquire_flock(path, refuse, notify, what)
    try:
        yield path
    finally:
        try:
            os.remove(path)  # while still holding it: a waiting process retries on the new file
        except OSError:
            pass
        os.close(fd)


def _acquire_flock(path: str, refuse, notify, what: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = read_lock_holder(path)
            os.close(fd)
            refuse(holder)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
    stale = read_lock_holder(path)
    if stale and int(stale.get("pid", -1)) != os.getpid():
        notify(f"note: took over the stale {what} lock '{path}' left by {_describe(stale)}, which is no longer running")
    os.ftruncate(fd, 0)
    os.write(fd, _record(what).encode())
    os.fsync(fd)
    return fd


def _acquire_exclusive_file(path: str, refuse, notify, what: str) -> int:
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_lock_holder(path)
            if holder and (holder.get("host") != socket.gethostname() or _pid_running(int(holder["pid"]))):
                refuse(holder)
            notify(f"note: took over the stale {what} lock '{path}' left by {_describe(holder)}, which is no longer "
                   f"running")
            with contextlib.suppress(OSError):
                os.remove(path)
            continue
        os.write(fd, _record(what).encode())
        return fd
    refuse(read_lock_holder(path))
