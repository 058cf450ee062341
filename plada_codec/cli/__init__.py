"""``plada``: encode, decode, inspect, verify and compare PLADA payloads; hash reference sets;
build and resolve catalogs; export a payload's selection for other training code (``plada export``);
check another decoder (``plada conformance``).

Exit status: 0 success; 1 the payload is invalid, exceeds a limit or does not
match the reference set; 2 bad usage: a bad option or input file, an invalid
selection to encode, an unreadable or unwritable file, or a reference set that
cannot be fingerprinted or changed since its manifest was written; 141 the
reader of standard output went away (``plada decode p -o - | head``), silently,
as for a program SIGPIPE ended; 130 interrupted (Ctrl-C: one line, no output
file left half-written). ``inspect`` still prints the header and sections
of a payload whose body does not decode, then exits 1.
Every error is one line on standard error: ``plada <command>: error: ...``.
The commands live one module a group (``payload``, ``reference``, ``catalog``, ``conformance``,
``export``); :func:`run_command` runs a command of this CLI and of ``plada-train`` alike.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from ._run import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_MAP,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    error,
    exit_status,
    known_error,
    os_error_message,
    run_command,
)
from .catalog import add_catalog_command
from .conformance import add_conformance_command
from .export import add_export_command
from .payload import PAYLOAD_COMMANDS, add_payload_commands
from .reference import add_ref_hash_command

__all__ = ["main", "build_parser", "OneLineParser", "run_command", "exit_status", "known_error", "os_error_message",
           "error", "UsageError", "EXIT_MAP", "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_INTERRUPTED",
           "EXIT_BROKEN_PIPE"]

_EPILOG = (
    "exit status: 0 success; 1 invalid payload, limit exceeded or reference mismatch; "
    "2 usage error, bad input file, invalid selection, or a reference set that cannot be "
    "hashed or changed since its manifest; 130 interrupted (Ctrl-C); 141 the output pipe closed early "
    "(as after SIGPIPE)"
)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (``PROG <cmd>: error: ...``); both CLIs parse with it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``plada`` parser: each command sets ``func``, which returns the exit status."""
    parser = OneLineParser(prog="plada", description=__doc__.split("\n")[0].replace("``", ""), epilog=_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_payload_commands(sub, _EPILOG)
    add_ref_hash_command(sub, _EPILOG)
    add_catalog_command(sub, _EPILOG)
    add_conformance_command(sub, _EPILOG)
    add_export_command(sub, _EPILOG)
    return parser


def _last_resort(command: str, exc: Exception) -> tuple[int, str] | None:
    # So that no input gives a traceback: a payload command failing here met a
    # payload the decoder should have refused.
    if not isinstance(exc, (ValueError, TypeError, RecursionError, MemoryError, OverflowError)):
        return None
    if command in PAYLOAD_COMMANDS:
        return EXIT_INVALID, f"invalid payload ({type(exc).__name__}: {exc})"
    return EXIT_USAGE, f"invalid input ({type(exc).__name__}: {exc})"


def main(argv: list[str] | None = None) -> int:
    """Run ``plada``; returns the exit status (the table in the module docstring)."""
    return run_command("plada", build_parser, argv, last_resort=_last_resort)

