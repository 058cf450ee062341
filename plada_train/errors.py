"""The error everyday mistakes raise: one line, with a fix hint."""

from __future__ import annotations


class DataError(ValueError):
    """A user input that cannot work (missing file, wrong count, bad option).

    The CLI prints its message as one line and exits 2; the Python API lets it
    propagate. Messages say what is wrong and how to fix it. Raised in a
    DataLoader worker, torch re-raises it in the main process with the
    worker's traceback as the message; the constructor keeps the one line."""

    def __init__(self, message: str = "") -> None:
        if isinstance(message, str) and "\nOriginal Traceback" in message:
            last = message.rstrip().rsplit("\n", 1)[-1]
            message = last.split("DataError: ", 1)[-1] + " (in a DataLoader worker)"
        super().__init__(message)


__all__ = ["DataError"]
