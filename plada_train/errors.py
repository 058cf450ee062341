"""The error everyday mistakes raise: one line, with a fix hint."""

from __future__ import annotations


class DataError(ValueError):
    """A user input that cannot work (missing file, wrong count, bad option).

    The CLI prints its message as one line and exits 2; the Python API lets it
    propagate. Messages say what is wrong and how to fix it."""


__all__ = ["DataError"]
