"""Child processes that never outlive their parent, and signal forwarding to a child process group.

A worker (test runner worker, training rank) calls :func:`stop_with_parent` first thing: on Linux the kernel sends
it a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``, read through ctypes), and on every system a daemon
thread polls ``os.getppid()`` and ends the process when the parent is gone (the child was re-parented). So killing
the parent, even with SIGKILL, stops its workers within about a second.

A launcher that waits for a child (``tracking/train.py`` waiting for ``run_training.py`` or ``torchrun``) uses
:func:`forward_signals` so that SIGTERM / SIGINT / SIGHUP sent to it reach the child's process group.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Iterator, Optional, Sequence

__all__ = ["set_parent_death_signal", "watch_parent", "stop_with_parent", "forward_signals", "PARENT_PID_ENV"]

#: Environment variable through which a launcher passes its PID to the child it starts: the child knows that it was
#: started by a launcher it must not outlive (a process started from a shell keeps running after the shell ends).
PARENT_PID_ENV = "TRACKING_PARENT_PID"

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``).

    Returns:
        True if the request was registered; False on systems without ``prctl`` (the polling thread of
        :func:`watch_parent` is the fallback there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _end_process(sig: int, grace_s: float) -> None:
    """Send ``sig`` to this process; if it is still alive after ``grace_s`` seconds, exit at once."""
    try:
        os.kill(os.getpid(), sig)
    except OSError:
        pass
    time.sleep(grace_s)
    os._exit(128 + int(sig))


def watch_parent(parent_pid: int, interval_s: float = 0.2, sig: int = signal.SIGTERM,
                 grace_s: float = 3.0) -> threading.Thread:
    """Start a daemon thread that ends this process once ``parent_pid`` is no longer its parent.

    The process receives ``sig`` (its default action ends it); if it survives ``grace_s`` seconds it exits with
    ``os._exit``. Works on every system where a dead parent's children are re-parented (POSIX); on Windows, where
    ``os.getppid`` keeps the dead parent's PID, the thread also checks that ``parent_pid`` still exists.

    Args:
        parent_pid: PID of the parent this process must not outlive.
        interval_s: polling period.
        sig: signal sent to this process when the parent is gone.
        grace_s: seconds before ``os._exit`` if ``sig`` did not end the process.
    Returns:
        the started thread.
    """

    def alive() -> bool:
        if os.getppid() != parent_pid:
            return False
        if os.name == "nt":  # no re-parenting: look for the process itself
            try:
                os.kill(parent_pid, 0)
            except OSError:
                return False
        return True

    def loop() -> None:
        while alive():
            time.sleep(interval_s)
        _end_process(sig, grace_s)

    thread = threading.Thread(target=loop, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def stop_with_parent(parent_pid: Optional[int] = None, sig: int = signal.SIGTERM, interval_s: float = 0.2) -> None:
    """End this process when its parent dies: :func:`set_parent_death_signal` plus :func:`watch_parent`.

    Args:
        parent_pid: the parent's PID as the parent knows it (pass it to the child; default: ``$TRACKING_PARENT_PID``
            if set, else ``os.getppid()`` now). If the parent is already gone the process ends at once.
        sig: signal that ends this process (SIGTERM: default action ends it; SIGKILL: nothing can delay it).
        interval_s: polling period of the watchdog thread.
    """
    if parent_pid is None:
        env = os.environ.get(PARENT_PID_ENV, "")
        parent_pid = int(env) if env.isdigit() else os.getppid()
    set_parent_death_signal(sig)
    watch_parent(int(parent_pid), interval_s=interval_s, sig=sig)


@contextlib.contextmanager
def forward_signals(pgid: int, signals: Sequence[Optional[int]] = (signal.SIGINT, signal.SIGTERM,
                                                                   getattr(signal, "SIGHUP", None))) -> Iterator[list]:
    """While the block runs, relay ``signals`` received by this process to the process group ``pgid``.

    Yields a list that collects the numbers of the signals received (the caller exits with ``128 + signal``).
    Only installable from the main thread; elsewhere (and for signals the system lacks) nothing is installed.
    """
    received: list = []
    previous = {}

    def relay(signum, _frame):
        received.append(signum)
        try:
            os.killpg(pgid, signum)
        except OSError:  # the group is gone already
            pass

    if threading.current_thread() is threading.main_thread() and hasattr(os, "killpg"):
        for sig in signals:
            if sig is None:
                continue
            try:
                previous[sig] = signal.signal(sig, relay)
            except (OSError, ValueError):
                pass
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
