"""The CLI's own error, apart from the exception tree of ``_errors`` (which is about payloads and
reference sets): every ``plada`` subcommand module raises it, ``plada_codec.cli`` maps it to exit 2."""

from __future__ import annotations


class UsageError(Exception):
    """A CLI input problem that is not about the payload format."""
