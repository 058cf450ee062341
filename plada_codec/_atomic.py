"""The one atomic file write of the project.

``write_atomically(path, write)`` calls ``write(fh)`` on a temporary file in
*path*'s folder, flushes and fsyncs it, then renames it over *path*
(``os.replace``), so readers see the old file or the new one, never half of
one. It refuses a *path* that exists and is not a regular file (a device node,
a FIFO, a symbolic link, a folder): replacing ``/dev/full`` or a link with a
regular file would be data loss. The temporary file is removed on any failure,
``KeyboardInterrupt`` included; one left by a killed process (``.NAME.PID.tmp``)
is removed by the next successful write of the same path once that process is gone.

Every file plada_codec writes goes through it (``plada encode -o``, ``plada
decode -o``, manifests and their caches, catalogs), and so should plada_train's:
``from plada_codec import write_atomically`` (plada_train imports only the
public API, which tests/codec/test_backend.py checks).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar, Union

from ._errors import ReferenceSetError

__all__ = ["write_atomically", "check_writable_target", "open_for_reading", "NotARegularFileError"]

T = TypeVar("T")
PathLike = Union[str, "os.PathLike[str]"]


class NotARegularFileError(ReferenceSetError, OSError):
    """The output path exists and is not a regular file; nothing was written."""


def _what(mode: int) -> str:
    return ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def check_writable_target(path: PathLike) -> None:
    """Raise :class:`NotARegularFileError` when *path* exists as anything but a regular file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise NotARegularFileError(f"{os.fspath(path)}: exists and is {_what(mode)}; refusing to replace it "
                                   "(give the path of a regular file)")


def open_for_reading(path: PathLike, *, follow: bool = True) -> int:
    """The one read-side counterpart: a read-only descriptor of *path* if it is a regular file.
    Opened without blocking (a FIFO planted where a file was expected is never waited on) and,
    unless *follow*, without following a final symbolic link; checked with ``fstat`` before
    any read, so the file checked is the file read. :class:`NotARegularFileError` for anything
    else, OSError (FileNotFoundError, ELOOP for a link when not *follow*, ...) when it cannot
    be opened."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotARegularFileError(f"{os.fspath(path)}: is {_what(mode)}, not a regular file")
    return fd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of *path* whose writing process no longer runs."""
    prefix = f".{path.name}."
    try:
        names = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return []
    pids = [(p, p.name[len(prefix):-4]) for p in names]
    return [p for p, pid in pids if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))]


def write_atomically(path: PathLike, write: Callable[[BinaryIO], T]) -> T:
    """Write *path* through ``write(fh)`` atomically; returns what *write* returns."""
    path = Path(path)
    check_writable_target(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # O_NOFOLLOW: a link planted at the temporary name is not written through.
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_BINARY", 0), 0o666)
        except OSError as exc:  # name the file the user asked for, not our temporary one
            exc.filename = os.fspath(path)
            raise
        with os.fdopen(fd, "wb") as fh:
            result = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for stale in _stale_temporaries(path):  # left by a killed writer; its pid may be reused, not its file
        stale.unlink(missing_ok=True)
    return result
