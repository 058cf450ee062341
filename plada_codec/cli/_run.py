"""How both CLIs (``plada``, ``plada-train``) run a command: exit statuses, the exception-to-exit map,
the one error line, closed standard streams, Ctrl-C and a closed output pipe."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import EncodeError, PayloadError, ReferenceSetError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
EXIT_INTERRUPTED = 130  # 128 + SIGINT

ExitMap = tuple[tuple[tuple[type[BaseException], ...], int, bool], ...]


class UsageError(Exception):
    """A CLI input problem that is not about the payload format (exit 2)."""


# The one exception-to-exit map of both CLIs (plada_train.cli extends it with its DataError):
# (exception classes, exit status, whether the message names the exception class); first match
# wins. The input to encode or the reference set is a usage error (2), a payload's own fault 1.
EXIT_MAP: ExitMap = (
    ((UsageError,), EXIT_USAGE, False),
    ((EncodeError, ReferenceSetError), EXIT_USAGE, True),
    ((PayloadError,), EXIT_INVALID, True),  # before ValueError: some payload errors are ValueErrors too
)


def exit_status(exc: BaseException, table: ExitMap = EXIT_MAP) -> tuple[int, str]:
    """(exit status, one-line message) of an error *table* knows; ValueError for one it does not."""
    for kinds, status, named in table:
        if isinstance(exc, kinds):
            return status, f"{type(exc).__name__}: {exc}" if named else str(exc)
    raise ValueError(f"no exit status for {type(exc).__name__}")


def os_error_message(exc: OSError) -> str:
    """An unreadable or unwritable file in one line: ``NAME: reason``."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def known_error(exc: BaseException, table: ExitMap = EXIT_MAP,
                os_error: Callable[[OSError], str] = os_error_message) -> tuple[int, str] | None:
    """(exit status, message) of an error *table* knows or of an OSError (2), else None."""
    try:
        return exit_status(exc, table)
    except ValueError:
        pass
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):  # unreadable, unwritable, a full disk
        return EXIT_USAGE, os_error(exc)
    return None


def error(who: str, message: str, status: int) -> int:
    """Print ``WHO: error: MESSAGE`` as one line on standard error; return *status*."""
    print(f"{who}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return status


class _ClosedStream:
    """Stands for a standard stream the shell closed (``<&-``, ``>&-``: Python
    then holds None): reading or writing it is a usage error, not an AttributeError."""

    def __init__(self, name: str) -> None:
        self._name = name

    # A forked worker (multiprocessing) closes stdin and flushes both at exit: nothing to do.
    def close(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def __getattr__(self, attribute: str):
        raise UsageError(f"standard {self._name} is closed")


def run_command(prog: str, build_parser: Callable[[], argparse.ArgumentParser], argv: Sequence[str] | None, *,
                exit_map: ExitMap = EXIT_MAP, tag: str = "",
                interrupted: Callable[[argparse.Namespace], str | None] = lambda args: "interrupted",
                os_error: Callable[[OSError], str] = os_error_message,
                last_resort: Callable[[str, Exception], tuple[int, str] | None] | None = None,
                output_is_a_result: bool = True) -> int:
    """Parse *argv* and run the chosen ``args.func``; every way it can end becomes an exit status.

    An error *exit_map* knows, or an OSError (*os_error* words it), is one line
    ``PROG COMMAND{tag}: error: MESSAGE``; *last_resort* (command, error) may map
    what is left, else it propagates. Ctrl-C prints ``PROG COMMAND: MESSAGE``
    with *interrupted*'s message (None: silence) and exits 130; a closed output
    pipe exits 141 silently. A standard stream the shell closed is a usage error
    once read or written; with *output_is_a_result* False (a command whose
    standard output only reports progress) a closed output is discarded instead,
    so that it cannot stop a run after its work is done."""
    if sys.stderr is None:  # nowhere to say anything: the exit status alone
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    closed: dict[str, Any] = {name: _ClosedStream(text) for name, text in (("stdin", "input"), ("stdout", "output"))
                              if getattr(sys, name) is None}
    if "stdout" in closed and not output_is_a_result:
        closed["stdout"] = open(os.devnull, "w")  # noqa: SIM115 (closed with the run below)
    for name, stream in closed.items():
        setattr(sys, name, stream)
    try:
        return _run(prog, build_parser, argv, exit_map, tag, interrupted, os_error, last_resort)
    finally:
        for name, stream in closed.items():
            if not isinstance(stream, _ClosedStream):
                stream.close()
            setattr(sys, name, None)


def _run(prog, build_parser, argv, exit_map, tag, interrupted, os_error, last_resort) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # --help or a usage message into a closed stream
        return error(f"{prog}{tag}", str(exc), EXIT_USAGE)
    command = args.command
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # Outputs are written atomically and hashing threads stop within a chunk: nothing
        # half-done to report beyond this line (under torchrun, from one rank only).
        message = interrupted(args)
        if message is not None:
            print(f"{prog} {command}: {message}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``plada decode p | head``): no message, and stdout
        # must not be flushed again at exit. 141 = 128 + SIGPIPE, the status of a
        # program the signal ended, so `set -o pipefail` scripts see what they expect.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        known = known_error(exc, exit_map, os_error)
        if known is None and last_resort is not None:
            known = last_resort(command, exc)
        if known is None:
            raise
        status, message = known
        return error(f"{prog} {command}{tag}", message, status)
