"""The local stat cache beside a manifest (spec/REFERENCE.md section 6, not
normative): each file's size and mtime when the manifest was written, so a
later open verifies the set with one ``stat`` a file instead of reading it."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar, Union

from .._errors import ReferenceSetError, StaleManifestError
from .._ids import shown
from ..kinds._walk import FolderWalk
from .hashing import _file_sha256
from .manifest import _CHECK_CHUNK, _resolve, _scan_folder

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


CACHE_HEADER = "plada-manifest-cache 1"


CACHE_SUFFIX = ".cache"


def _cache_path(manifest: PathLike) -> Path:
    return Path(os.fspath(manifest) + CACHE_SUFFIX)


def _stat_row(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise StaleManifestError(f"{shown(path)}: cannot stat ({exc.strerror or exc})") from exc
    return st.st_size, st.st_mtime_ns


class _NoCache(Exception):
    """No cache belongs to this manifest (missing or written for other bytes)."""


def _read_cache(manifest: Path) -> tuple[dict, int]:
    """The cache's header and the byte offset of its rows (``SIZE MTIME_NS NAME`` LF each)."""
    cache = _cache_path(manifest)
    try:
        with open(cache, "rb") as fh:
            if fh.readline(len(CACHE_HEADER) + 2).decode("utf-8", "replace").rstrip("\n") != CACHE_HEADER:
                raise _NoCache
            header = json.loads(fh.readline(1 << 20))
            rows_at = fh.tell()
    except FileNotFoundError:
        raise _NoCache from None
    except (ValueError, UnicodeDecodeError):
        raise _NoCache from None  # damaged: a miss, as a missing cache is (hash once, then cache again)
    except OSError as exc:
        raise ReferenceSetError(f"{cache}: cannot read ({exc.strerror or exc})") from exc
    if not isinstance(header, dict) or header.get("fingerprint") != _file_sha256(manifest):
        raise _NoCache  # the manifest was replaced or edited since the cache was written
    return header, rows_at


def _cache_rows(rows: Iterable[tuple[str, int, int]]) -> str:
    return "".join(f"{size} {mtime_ns} {name}\n" for name, size, mtime_ns in rows)


def _batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, n)):
        yield chunk


def _cached_rows(fh: BinaryIO, cache: Path) -> Iterator[tuple[str, int, int]]:
    """The cache's rows from the current position as ``(name, size, mtime_ns)``, one line at a time."""
    for line in fh:
        try:
            size, mtime, name = line.decode("utf-8").rstrip("\n").split(" ", 2)
            yield name, int(size), int(mtime)
        except ValueError:
            raise _NoCache from None  # damaged: a miss (see _read_cache)


def _matches_cache(current: Iterable[tuple[str, int, int]], cache: Path, rows_at: int) -> bool:
    """Whether the cache's rows are exactly *current*, compared a chunk at a time."""
    with open(cache, "rb") as fh:
        fh.seek(rows_at)
        for chunk in _batched(current, _CHECK_CHUNK):
            expected = _cache_rows(chunk).encode("utf-8")
            if fh.read(len(expected)) != expected:
                return False
        return fh.read(1) == b""


def _first_change(current: Iterator[tuple[str, int, int]], cached: Iterator[tuple[str, int, int]],
                  path: PathLike | Sequence[PathLike], manifest: Path, what: str, hint: str) -> StaleManifestError:
    """What changed between two listings in the same canonical order, walked side by side:
    the first item added or removed (and how many), else the first resized, else the first touched."""
    added = removed = None
    changed = 0
    resized = touched = None
    a, b = next(current, None), next(cached, None)
    while a is not None or b is not None:
        if a is not None and b is not None and a[0] == b[0]:
            if a[1] != b[1] and resized is None:
                resized = f"{path}: {what} {a[0]!r} is {a[1]} bytes, was {b[1]} when {manifest} was written{hint}"
            elif a[2] != b[2] and touched is None:
                touched = f"{path}: {what} {a[0]!r} was modified since {manifest} was written{hint}"
            a, b = next(current, None), next(cached, None)
        elif b is None or (a is not None and a[0] < b[0]):  # str order of valid UTF-8 is its byte order
            added = added or a[0]  # type: ignore[index]
            changed += 1
            a = next(current, None)
        else:
            removed = removed or b[0]
            changed += 1
            b = next(cached, None)
    if changed:
        change = f"{what} {added!r} was added" if added else f"{what} {removed!r} was removed"
        return StaleManifestError(f"{path} changed since {manifest} was written: {change}"
                                  + (f" (and {changed - 1} more changes)" if changed > 1 else "") + hint)
    if resized or touched:
        return StaleManifestError(resized or touched)
    return StaleManifestError(f"{_cache_path(manifest)}: damaged manifest cache; delete it or rehash")


_REHASH_HINT = (
    "; if the change is intended, hash the set again: plada ref-hash {p} --manifest-out {m} (rehash=True in Python)"
)


def _intact(cache: Path, header: dict, rows_at: int) -> None:
    """Before a difference is blamed on the set: _NoCache (hash once, rewrite the cache) when
    the cache itself is cut short, i.e. does not end with LF or holds fewer or more rows than its
    header records (caches written before the header had "rows" get the LF check only)."""
    with open(cache, "rb") as fh:
        fh.seek(rows_at)
        count, last = 0, b"\n"
        while piece := fh.read(1 << 20):
            count += piece.count(b"\n")
            last = piece[-1:]
    if last != b"\n" or ("rows" in header and header["rows"] != count):
        raise _NoCache


def _verify_cached(path: PathLike | Sequence[PathLike], manifest: Path, kind: str,
                   progress: bool = False, listing: FolderWalk | None = None) -> tuple[int, bytes, str]:
    """The manifest's set, after checking the listing, sizes and mtimes against its cache,
    in streaming fashion: one chunk of rows in memory at a time."""
    header, rows_at = _read_cache(manifest)
    cache = _cache_path(manifest)
    hint = _REHASH_HINT.format(p=path if isinstance(path, (str, os.PathLike)) else "SHARDS...", m=manifest)
    resolved, kind = _resolve(path, header["kind"] if kind == "auto" else kind)
    if kind != header["kind"]:
        raise StaleManifestError(f"{manifest} records a {header['kind']} reference set, not a {kind}{hint}")
    ref = (int(header["n_ref"]), bytes.fromhex(header["fingerprint"]),
           f"{kind} {path} (manifest {manifest}, verified by size and mtime)")
    if kind == "folder":
        walk = listing if listing is not None else _scan_folder(Path(resolved[0]), progress)
        if _matches_cache(walk.rows(), cache, rows_at):
            return ref
        _intact(cache, header, rows_at)
        with open(cache, "rb") as fh:
            fh.seek(rows_at)
            raise _first_change(walk.rows(), _cached_rows(fh, cache), path, manifest, "file", hint)
    # Tar shards: a row per shard, in the order given (a list of shards may be reordered).
    current = [(os.path.basename(s), *_stat_row(s)) for s in resolved]
    if _matches_cache(current, cache, rows_at):
        return ref
    _intact(cache, header, rows_at)
    with open(cache, "rb") as fh:
        fh.seek(rows_at)
        rows = list(_cached_rows(fh, cache))
    if sorted(name for name, _, _ in current) == sorted(name for name, _, _ in rows) and \
            [name for name, _, _ in current] != [name for name, _, _ in rows]:
        raise StaleManifestError(f"{path}: the order of the shards changed since {manifest} was written{hint}")
    raise _first_change(iter(sorted(current)), iter(sorted(rows)), path, manifest, "shard", hint)
