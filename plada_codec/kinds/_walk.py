"""The folder walk every folder listing shares: visible regular files in
canonical order, as packed arrays.

Canonical order is the byte order of the relative paths (``a/b`` joined by
``/``). Sorting each folder's children by their name, with ``/`` appended to
folder names, and descending depth-first gives exactly that order (a sibling
compares with every path below ``d/`` as it compares with ``d/``, because no
name holds a ``/``), so the walk never sorts, or holds, the whole list: its
memory is the packed result (the path bytes, 24 bytes an item for offsets,
sizes and mtimes) plus one folder's entries at a time.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._errors import ReferenceSetError
from ._base import PackedStrings


class FolderWalk(NamedTuple):
    """The files of one folder tree, in canonical order."""

    names: PackedStrings
    """Relative paths (file system bytes, ``/``-joined)."""
    size: np.ndarray
    """int64 bytes of each file."""
    mtime_ns: np.ndarray
    """int64 modification time of each file, in nanoseconds."""
    skipped: int
    """Visible regular files that *keep* refused."""

    def rows(self) -> Iterator[tuple[str, int, int]]:
        """``(relative path, size, mtime_ns)`` per file, as Python objects for one chunk at a time
        (paths decoded with surrogateescape, so undecodable bytes survive)."""
        names = iter(self.names)  # PackedStrings decodes a chunk at a time too
        for start in range(0, len(self.names), _ROWS_CHUNK):
            stop = start + _ROWS_CHUNK
            yield from zip(names, self.size[start:stop].tolist(), self.mtime_ns[start:stop].tolist())


_ROWS_CHUNK = 1 << 13


def _shown(path: str) -> str:
    """A path as a user can read it; escaped only where it holds undecodable bytes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return ascii(path)
    return path


def _sorted_children(folder: str) -> list[tuple[bytes, os.DirEntry, bool]]:
    try:
        with os.scandir(folder) as listing:
            children = []
            for child in listing:
                if child.name.startswith("."):
                    continue  # hidden files and folders are not part of a set
                try:
                    is_dir = child.is_dir(follow_symlinks=False)
                except OSError as exc:
                    raise ReferenceSetError(f"{_shown(child.path)}: cannot stat ({exc.strerror or exc})") from exc
                name = os.fsencode(child.name)
                children.append((name + b"/" if is_dir else name, child, is_dir))
    except OSError as exc:
        raise ReferenceSetError(f"{_shown(folder)}: cannot list ({exc.strerror or exc})") from exc
    children.sort(key=lambda c: c[0])
    return children


def walk_folder(root: str | os.PathLike, keep: Callable[[str], bool] | None = None,
                progress: Callable[[int], None] | None = None) -> FolderWalk:
    """Every visible regular file below *root* (names starting with ``.``
    skipped, files and folders; symbolic links and special files skipped), in
    canonical order; with *keep*, only the files whose base name it accepts.
    *progress*, if given, is called with the number of files found so far
    after each folder. Raises ReferenceSetError for a missing root or an
    unreadable entry."""
    root = Path(root)
    if not root.is_dir():
        raise ReferenceSetError(f"{root}: not a folder" if root.exists() else f"{root}: no such folder")
    # Grown in place (realloc, a few percent of slack), then wrapped by numpy without a copy.
    blob = bytearray()
    ends, sizes, mtimes = array("q", [0]), array("q"), array("q")
    skipped = 0
    # A stack of (prefix, children, next position): depth-first, each folder's children in order.
    stack: list[tuple[bytes, list, int]] = [(b"", _sorted_children(str(root)), 0)]
    while stack:
        prefix, children, position = stack.pop()
        for i in range(position, len(children)):
            key, child, is_dir = children[i]
            if is_dir:
                stack.append((prefix, children, i + 1))
                stack.append((prefix + key, _sorted_children(child.path), 0))
                break
            try:
                if not child.is_file(follow_symlinks=False):
                    continue  # symbolic link, FIFO, socket, device
                if keep is not None and not keep(child.name):
                    skipped += 1
                    continue
                stat = child.stat(follow_symlinks=False)
            except OSError as exc:
                raise ReferenceSetError(f"{_shown(child.path)}: cannot stat ({exc.strerror or exc})") from exc
            blob += prefix
            blob += key
            ends.append(len(blob))
            sizes.append(stat.st_size)
            mtimes.append(stat.st_mtime_ns)
        else:
            if progress is not None:
                progress(len(ends) - 1)
    def wrap(values: array) -> np.ndarray:
        return np.frombuffer(values, np.int64) if len(values) else np.zeros(0, np.int64)

    return FolderWalk(PackedStrings(blob, wrap(ends)), wrap(sizes), wrap(mtimes), skipped)
