"""One way to fail: user errors end an entry script with one readable message and exit status 2.

A *user error* is a mistake in what the user gave the program (a path, a config value, a checkpoint, a command-line
option, a data file): the message names the file, line or field and what was expected, and a traceback would only
hide it. Everything else is an internal error and keeps its traceback.

Library code raises :class:`UserError` (or a subclass), or one of the older error classes registered with
:func:`register_user_error` (they keep their own base classes, e.g. ``FileNotFoundError``, so existing ``except``
clauses still catch them). Entry scripts end with::

    if __name__ == "__main__":
        sys.exit(run_cli(main, prog="test.py"))

``--verbose`` anywhere on the command line (or ``TRACKING_VERBOSE=1`` in the environment) re-raises user errors with
their traceback. Ctrl-C exits with status 130 after a one-line notice.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence, Tuple, Type

__all__ = ["UserError", "register_user_error", "user_error_types", "is_user_error", "add_verbose_argument",
           "check_positive", "format_user_error", "run_cli", "USER_ERROR_EXIT", "INTERRUPT_EXIT"]

USER_ERROR_EXIT = 2
INTERRUPT_EXIT = 130


class UserError(Exception):
    """A mistake in the user's input; reported as one message and exit status 2 by :func:`run_cli`."""


_USER_ERROR_TYPES: list = [UserError]


def register_user_error(cls: Type[BaseException]) -> Type[BaseException]:
    """Mark an exception class as a user error for :func:`run_cli`; usable as a class decorator.

    Args:
        cls: the exception class (its subclasses are user errors too).
    Returns:
        ``cls`` unchanged.
    """
    if cls not in _USER_ERROR_TYPES:
        _USER_ERROR_TYPES.append(cls)
    return cls


def user_error_types() -> Tuple[Type[BaseException], ...]:
    """The exception classes that :func:`run_cli` reports as user errors (UserError first)."""
    return tuple(_USER_ERROR_TYPES)


def is_user_error(exc: BaseException) -> bool:
    """True if ``exc`` is an instance of a registered user-error class."""
    return isinstance(exc, user_error_types())


def _verbose(argv: Sequence[str]) -> bool:
    return "--verbose" in argv or os.environ.get("TRACKING_VERBOSE", "") not in ("", "0")


def add_verbose_argument(parser) -> None:
    """Add ``--verbose`` (read by :func:`run_cli`: keep the traceback of a user error) to an argparse parser."""
    parser.add_argument("--verbose", action="store_true",
                        help="show the traceback of a user error (for bug reports)")


def check_positive(value, name: str, minimum: int = 1) -> None:
    """Raise :class:`UserError` unless ``value`` (a command-line number) is None or at least ``minimum``.

    Args:
        value: the parsed option value (int or float) or None (option not given).
        name: the option as the user typed it, e.g. ``'--iters'``.
        minimum: the smallest valid value (default 1).
    Raises:
        UserError: ``value < minimum``.
    """
    if value is not None and value < minimum:
        raise UserError(f"{name} must be {'a positive number' if minimum == 1 else f'at least {minimum}'}, "
                        f"got {value}")


def format_user_error(exc: BaseException) -> str:
    """The one-line (or few-line) message of a user error, without the class name of built-in errors."""
    text = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]  # KeyError's str() quotes its argument
    return text or type(exc).__name__


def run_cli(main: Callable[..., Optional[int]], prog: Optional[str] = None,
            argv: Optional[Sequence[str]] = None) -> int:
    """Run an entry script's ``main`` and turn user errors into one message and exit status 2.

    Args:
        main: the script's main function; called with ``argv`` when it is given, else without arguments.
            Its return value (None counts as 0) is the exit status.
        prog: program name for messages (default: ``sys.argv[0]``'s base name).
        argv: the arguments to pass to ``main`` (default: none passed; ``main`` reads ``sys.argv``).
    Returns:
        the exit status: ``main``'s, 2 for a user error, 130 for Ctrl-C.
    Raises:
        the user error itself when ``--verbose`` is on the command line or ``TRACKING_VERBOSE=1``;
        any internal error (with its traceback).
    """
    prog = prog or os.path.basename(sys.argv[0] or "tracking")
    args_seen = list(argv) if argv is not None else sys.argv[1:]
    try:
        status = main(argv) if argv is not None else main()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return INTERRUPT_EXIT
    except user_error_types() as exc:
        if _verbose(args_seen):
            raise
        print(f"{prog}: error: {format_user_error(exc)}", file=sys.stderr)
        return USER_ERROR_EXIT
    return 0 if status is None else int(status)
