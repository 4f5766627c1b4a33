"""Launching training processes: the torchrun command of one machine, the multi-node rendezvous (one default
port, a timeout, a message naming address and port when the machines never meet) and the command-line options
that ``tracking/train.py`` passes on to ``lib/train/run_training.py``.

Multi-node rendezvous: every machine runs ``torchrun`` with the same ``--master_addr`` and ``--master_port``
(default :data:`DEFAULT_MASTER_PORT`, the fixed port of the official multi-node command); machine 0 opens the
port and waits for the others, the others connect to it. Both give up after ``--rdzv_timeout`` seconds
(torchrun's static rendezvous ``timeout``); :func:`run_launcher` then reports a :class:`RendezvousError` naming
the address, the port and what to check, instead of torchrun's traceback alone.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
from typing import List, Optional, Sequence

from lib.utils.errors import UserError

__all__ = ["DEFAULT_MASTER_PORT", "DEFAULT_RDZV_TIMEOUT", "RENDEZVOUS_MARKER_ENV", "LAUNCH_COMMAND_ENV",
           "RendezvousError", "resolve_master_port", "torchrun_command", "run_in_group", "run_launcher", "mark_started",
           "RUN_OPTIONS", "add_run_options", "run_options_argv"]

#: port of the rank-0 machine when several machines train and --master_port is not given (the official
#: OSTrack/STARK ``tracking/train.py --mode multi_node`` used the fixed port 20000 as well).
DEFAULT_MASTER_PORT = 20000
#: seconds the machines wait for each other (torchrun's own default for the static rendezvous is 600).
DEFAULT_RDZV_TIMEOUT = 600
#: environment variable naming a file the training processes create when they start (after the rendezvous).
RENDEZVOUS_MARKER_ENV = "TRACKING_RDZV_MARKER"
#: environment variable holding the user's command line (stored in every checkpoint).
LAUNCH_COMMAND_ENV = "TRACKING_LAUNCH_COMMAND"


class RendezvousError(UserError):
    """The machines of a multi-node run did not meet within the rendezvous timeout."""


def resolve_master_port(master_port: Optional[int], nnodes: int) -> int:
    """``master_port`` if given; :data:`DEFAULT_MASTER_PORT` when several machines train (each machine must
    use the same port, so it cannot be random); a random port in 10000-50000 for one machine (as the
    official script, so that two runs on one machine do not collide)."""
    if master_port:
        return int(master_port)
    if nnodes > 1:
        return DEFAULT_MASTER_PORT
    return random.randint(10000, 50000)


def torchrun_command(nproc_per_node: int, nnodes: int, node_rank: int, master_addr: str, master_port: int,
                     rdzv_timeout: int = DEFAULT_RDZV_TIMEOUT) -> List[str]:
    """``python -m torch.distributed.run ...`` (everything before the training script).

    Raises:
        UserError: ``node_rank`` outside ``[0, nnodes)`` or a non-positive process count or timeout.
    """
    if nproc_per_node < 1 or nnodes < 1:
        raise UserError(f"--nproc_per_node ({nproc_per_node}) and --nnodes ({nnodes}) must be at least 1")
    if not 0 <= node_rank < nnodes:
        raise UserError(f"--node_rank {node_rank} must be in [0, {nnodes - 1}] (--nnodes {nnodes})")
    if rdzv_timeout < 1:
        raise UserError(f"--rdzv_timeout must be a positive number of seconds, got {rdzv_timeout}")
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc_per_node),
            "--nnodes", str(nnodes), "--node_rank", str(node_rank), "--master_addr", master_addr,
            "--master_port", str(master_port), "--rdzv_conf", f"timeout={int(rdzv_timeout)}"]


def mark_started() -> None:
    """Called by each training process when it starts: create the marker file that tells
    :func:`run_launcher` the rendezvous succeeded."""
    path = os.environ.get(RENDEZVOUS_MARKER_ENV)
    if path:
        try:
            with open(path, "a"):
                pass
        except OSError:
            pass


def run_in_group(cmd: Sequence[str], env: Optional[dict] = None) -> int:
    """Run ``cmd`` in its own process group and wait for it; returns its exit status (128 + signal if stopped).

    The child dies with this process (parent-death signal, also on SIGKILL), and SIGINT / SIGTERM / SIGHUP sent to
    this process are forwarded to the child's group (torchrun passes them on to its ranks).
    """
    from lib.utils.process import forward_signals, set_parent_death_signal

    parent = os.getpid()

    def in_child():  # after fork, before exec: the death signal survives exec
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:  # the launcher died before the line above
            os._exit(128 + signal.SIGTERM)

    proc = subprocess.Popen(list(cmd), env=env, start_new_session=True,
                            preexec_fn=in_child if sys.platform.startswith("linux") else None)
    with forward_signals(proc.pid) as received:
        while True:
            try:
                status = proc.wait()
                break
            except KeyboardInterrupt:  # a signal arrived while not yet relayed: keep waiting for the child
                continue
    if received:
        print(f"train.py: stopped by {signal.Signals(received[0]).name}", file=sys.stderr, flush=True)
        return 128 + int(received[0])
    return 128 - status if status < 0 else status


def run_launcher(cmd: Sequence[str], nnodes: int = 1, master_addr: str = "", master_port: int = 0,
                 rdzv_timeout: int = DEFAULT_RDZV_TIMEOUT, node_rank: int = 0,
                 argv: Optional[Sequence[str]] = None, env: Optional[dict] = None) -> int:
    """Run ``cmd`` (the single process or torchrun) with :func:`run_in_group` and return its exit status.

    The user's command line (``argv``, default ``sys.argv``) goes to the training processes in
    :data:`LAUNCH_COMMAND_ENV` (checkpoints store it).

    Raises:
        RendezvousError: several machines, the launcher failed and no training process ever started: the
            machines did not meet at ``master_addr:master_port`` within ``rdzv_timeout`` seconds.
    """
    env = dict(os.environ if env is None else env)
    env[LAUNCH_COMMAND_ENV] = shlex.join([sys.executable] + list(sys.argv if argv is None else argv))
    if nnodes <= 1:
        return run_in_group(list(cmd), env)
    fd, marker = tempfile.mkstemp(prefix="tracking_rdzv_")
    os.close(fd)
    os.unlink(marker)
    env[RENDEZVOUS_MARKER_ENV] = marker
    try:
        rc = run_in_group(list(cmd), env)
        started = os.path.exists(marker)
    finally:
        if os.path.exists(marker):
            os.unlink(marker)
    if rc != 0 and not started:
        role = ("this machine (node 0) opened the port and waited for the others" if node_rank == 0 else
                f"this machine (node {node_rank}) tried to connect to node 0")
        raise RendezvousError(
            f"the {nnodes} machines did not meet at {master_addr}:{master_port} within {rdzv_timeout} s ({role}). "
            f"Start every machine with the same --nnodes {nnodes}, --master_addr {master_addr} and --master_port "
            f"{master_port} (node 0 must be able to listen on that port and the others to reach it: firewall, "
            f"address of node 0 as the others see it); --rdzv_timeout sets how long they wait.")
    return rc


# options passed through to run_training.py -----------------------------------------------------------------
RUN_OPTIONS = (
    # (flag, type, default, help)
    ("--save_every", int, 0, "also save a checkpoint every N epochs (crash safety; kept until the next one)"),
    ("--save_every_iters", int, 0, "also save a checkpoint every N training iterations, inside an epoch: the run "
                                   "resumes at that iteration bit for bit (kept until the next one)"),
    ("--accum_iter", int, None, "accumulate gradients over N iterations per optimizer step (overrides "
                                "TRAIN.ACCUM_ITER): N x batch x processes = the global batch"),
    ("--resume_changed_config", None, False, "resume even though the config differs from the checkpoint's"),
    ("--no_resume", None, False, "start from scratch even if the run has checkpoints"),
    ("--random_init", None, False, "train although the pretrained backbone file is missing (random weights)"),
    ("--no_progress", None, False, "no progress bar (for log files); the log lines stay"),
)


def add_run_options(parser) -> None:
    """Add the options of :data:`RUN_OPTIONS` to an argparse parser (train.py and run_training.py)."""
    for flag, kind, default, text in RUN_OPTIONS:
        if kind is None:
            parser.add_argument(flag, action="store_true", help=text)
        else:
            parser.add_argument(flag, type=kind, default=default, help=text)


def run_options_argv(args) -> List[str]:
    """The options of :data:`RUN_OPTIONS` set in ``args``, as command-line arguments for run_training.py."""
    out: List[str] = []
    for flag, kind, default, _ in RUN_OPTIONS:
        value = getattr(args, flag[2:])
        if kind is None:
            if value:
                out.append(flag)
        elif value is not None and value != default:
            out += [flag, str(value)]
    return out
