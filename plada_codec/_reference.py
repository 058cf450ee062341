"""Reference-set fingerprints (normative rules: spec/REFERENCE.md).

A reference set is an ordered list of items. Its *manifest* is UTF-8 text:

    plada-reference-manifest 1 LF
    then one line per item, in the set's order:  ID LF   or   ID TAB SHA256HEX LF

and the fingerprint is SHA-256 over the manifest's bytes. The same items in the
same order give the same fingerprint on any machine; any change of order,
membership or (when digests are included) content changes it.

Three kinds of set have a canonical manifest: a list of ids, a folder of files
(:meth:`ReferenceSet.from_folder`) and WebDataset-style tar shards
(:meth:`ReferenceSet.from_tar_shards`, :func:`tar_images`); arrays in memory
(:meth:`ReferenceSet.from_array`) use decimal ids. Files are hashed by a pool of
threads (``workers=``): hashlib releases the GIL while it hashes.

A manifest written by :meth:`ReferenceSet.record` (``plada ref-hash PATH
--manifest-out M``) gets a sidecar cache ``M.cache`` listing each file's size
and mtime, so :meth:`ReferenceSet.open` can later verify the set with one
``stat`` per file instead of reading it. The cache is local bookkeeping, not
part of the format.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, Union

import numpy as np

from ._atomic import check_writable_target, write_atomically
from ._constants import MAX_N_REF
from ._errors import ReferenceSetError, StaleManifestError
from ._ids import FORBIDDEN_ID_CHARS, check_id, is_within, path_argument, shown
from ._ids import check_ids as _check_ids  # noqa: F401  (re-exported for _catalog until it imports _ids)
from ._ids import is_within as _is_within  # noqa: F401
from ._ids import path_argument as _path_argument  # noqa: F401
from .kinds import KINDS, detect_kind
from .kinds._walk import FolderWalk, walk_folder
from .kinds.images import IMAGE_EXTENSIONS
from .kinds.npz import NpzKind, array_item_digest
from .kinds.tar import TarImage, list_shards, tar_images, tar_shards

__all__ = [
    "ReferenceSet", "TarImage", "tar_images", "tar_shards", "MANIFEST_HEADER", "array_item_digest",
    "IMAGE_EXTENSIONS", "CACHE_SUFFIX",
]

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")
R = TypeVar("R")

MANIFEST_HEADER = b"plada-reference-manifest 1\n"
CACHE_HEADER = "plada-manifest-cache 1"
CACHE_SUFFIX = ".cache"
_HEX64 = re.compile(rb"[0-9a-f]{64}")
_READ_CHUNK = 1 << 20
# Files (or tar members) handed to one worker at a time: amortises the pool's
# per-task cost over many small files while keeping the workers busy.
_FILES_PER_TASK = 32
_BYTES_PER_TASK = 32 << 20


def _default_workers() -> int:
    return min(8, os.cpu_count() or 1)


# -- hashing, in parallel -------------------------------------------------------


def _bar(progress: bool, desc: str, unit: str, total: int | None = None):
    """A tqdm bar on standard error when *progress* (shown only on a terminal), else a disabled one."""
    from tqdm.auto import tqdm

    scale = unit == "B"
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
                disable=None if progress else True, leave=False, dynamic_ncols=True)


def _listing_bar(progress: bool, root: Path) -> tuple[Any, Callable[[int], None] | None]:
    bar = _bar(progress, f"listing {root}", " files")
    seen = [0]

    def update(found: int) -> None:
        bar.update(found - seen[0])
        seen[0] = found

    return bar, (update if progress else None)


class _Stopped(Exception):
    """A hashing task saw its map being abandoned (Ctrl-C, an error elsewhere)."""


def _ordered_map(func: Callable[[T, threading.Event], R], tasks: Iterable[T], workers: int) -> Iterator[R]:
    """``func(task, stop)`` for every task on *workers* threads, results in task
    order, with a bounded number of tasks in flight (memory stays flat for
    millions of files). When the caller stops early (an exception, Ctrl-C in
    the main thread) *stop* is set: *func* checks it between chunks it reads, so
    the threads end within a chunk, not at the end of a file of gigabytes."""
    stop = threading.Event()
    if workers <= 1:
        yield from (func(task, stop) for task in tasks)
        return
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="plada-hash") as pool:
        try:
            for task in tasks:
                pending.append(pool.submit(func, task, stop))
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            stop.set()
            for future in pending:
                future.cancel()


def _hash_stream(fh: BinaryIO, size: int | None, where: str, stop: threading.Event | None = None) -> str:
    """SHA-256 of the next *size* bytes of *fh* (all of it when None).

    Python 3.10 has no ``hashlib.file_digest``; this is the same loop.
    """
    digest = hashlib.sha256()
    remaining = size
    while remaining is None or remaining > 0:
        if stop is not None and stop.is_set():
            raise _Stopped
        chunk = fh.read(_READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining))
        if not chunk:
            if remaining is not None:
                raise ReferenceSetError(f"{where}: ends {remaining} bytes early (file truncated?)")
            break
        digest.update(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    return digest.hexdigest()


def _hash_files(paths: list[str], stop: threading.Event) -> list[str]:
    out = []
    for path in paths:
        try:
            # os.open/os.read: no buffered-reader object per file, ~1.7x faster on small files.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                digest = hashlib.sha256()
                while chunk := os.read(fd, _READ_CHUNK):
                    digest.update(chunk)
                    if stop.is_set():
                        raise _Stopped
            finally:
                os.close(fd)
        except OSError as exc:
            raise ReferenceSetError(f"{shown(path)}: cannot read ({exc.strerror or exc})") from exc
        out.append(digest.hexdigest())
    return out


def _hash_members(task: tuple[str, list[tuple[int, int]]], stop: threading.Event | None = None) -> list[str]:
    shard, ranges = task
    out = []
    try:
        with open(shard, "rb", buffering=0) as fh:
            for offset, size in ranges:
                fh.seek(offset)
                out.append(_hash_stream(fh, size, f"{shard} at byte {offset}", stop))
    except OSError as exc:
        raise ReferenceSetError(f"{shown(shard)}: cannot read ({exc.strerror or exc})") from exc
    return out


# -- folders --------------------------------------------------------------------


def _scan_folder(root: Path, progress: Callable[[int], None] | bool | None = None) -> FolderWalk:
    """Every visible regular file below *root* in canonical order (spec/REFERENCE.md,
    "Folders"): names starting with "." are skipped (files and folders), symbolic
    links and special files are skipped, names a manifest cannot hold are refused."""
    bar = None
    if isinstance(progress, bool):
        bar, progress = _listing_bar(progress, root)
    try:
        walk = walk_folder(root, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if not len(walk.names):
        raise ReferenceSetError(
            f"{root}: no visible regular files (names starting with '.' and symbolic links do not count); "
            "a reference set holds at least one item"
        )
    names = walk.names
    for start in range(0, len(names), _CHECK_CHUNK):  # one chunk of ids as Python strings at a time
        chunk = names.blob[names.offsets[start]:names.offsets[min(len(names), start + _CHECK_CHUNK)]]
        try:
            text = str(chunk, "utf-8")
        except UnicodeDecodeError:
            text = ""
        if not text or FORBIDDEN_ID_CHARS.search(text):
            for i in range(start, min(len(names), start + _CHECK_CHUNK)):
                check_id(names[i], str(root))
    return walk


_CHECK_CHUNK = 1 << 13  # rows as Python objects at a time: about 2 MB


def _walk_paths(root: Path, walk: FolderWalk) -> Iterator[list[str]]:
    """The walk's files as hashing tasks: runs of paths of at most _FILES_PER_TASK
    files / _BYTES_PER_TASK bytes."""
    base = os.fsencode(root) + b"/"
    blob, offsets, sizes = walk.names.blob, walk.names.offsets, walk.size
    task: list[str] = []
    nbytes = 0
    for i in range(len(walk.names)):
        if task and (len(task) >= _FILES_PER_TASK or nbytes >= _BYTES_PER_TASK):
            yield task
            task, nbytes = [], 0
        task.append(os.fsdecode(base + bytes(blob[offsets[i]:offsets[i + 1]])))
        nbytes += int(sizes[i])
    if task:
        yield task


# -- the manifest cache -----------------------------------------------------------


def _cache_path(manifest: PathLike) -> Path:
    return Path(os.fspath(manifest) + CACHE_SUFFIX)


def _to_manifest(target: BinaryIO | PathLike | None, hash_to: Callable[[BinaryIO | None], T]) -> T:
    """Run *hash_to* with the manifest's destination: a file object, a path
    (written atomically, so a failed hash leaves no half manifest) or None."""
    if isinstance(target, (str, os.PathLike)):
        return write_atomically(target, hash_to)
    return hash_to(target)


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return _hash_stream(fh, None, str(path))


def _stat_row(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise StaleManifestError(f"{shown(path)}: cannot stat ({exc.strerror or exc})") from exc
    return st.st_size, st.st_mtime_ns


def _detect_kind(path: Path, kind: str) -> str:
    """The layout of *path* by the one registry (plada_codec.kinds), or ``manifest`` for a
    file of no layout (a manifest written by ``plada ref-hash --manifest-out``)."""
    if kind == "manifest":
        return kind
    if kind == "auto" and path.is_file():
        for candidate in KINDS.values():
            if candidate.detect(path):
                return candidate.name
        return "manifest"
    return detect_kind(path, kind).name


def _no_manifest(path: str, kind: str) -> ReferenceSetError:
    return ReferenceSetError(
        f"{path}: a {kind} copy has no manifest of its own (spec/REFERENCE.md section 3 defines folders, tar "
        f"shards and arrays); build a catalog of it once (plada catalog build {path} -o ref.plcat) and use "
        "the catalog"
    )


class ReferenceSet:
    """The identity of an ordered reference set: its size and fingerprint.

    Build one with :meth:`from_ids`, :meth:`from_folder`, :meth:`from_tar_shards`,
    :meth:`from_array`, :meth:`from_manifest` or :meth:`open`; pass it as
    ``reference=`` to :func:`plada_codec.encode` (binds the payload) and
    :func:`plada_codec.decode` (checks the binding). Every constructor raises
    :class:`~plada_codec.ReferenceSetError` (a PayloadError and a ValueError) on
    a set it cannot fingerprint.
    """

    __slots__ = ("n_ref", "fingerprint", "source")

    def __init__(self, n_ref: int, fingerprint: bytes, source: str = "") -> None:
        if not isinstance(fingerprint, (bytes, bytearray, memoryview)) or len(fingerprint) != 32:
            raise ReferenceSetError("a reference fingerprint is 32 bytes (SHA-256)")
        if not any(bytes(fingerprint)):
            raise ReferenceSetError("an all-zero fingerprint means 'unbound' (FORMAT.md 8): no reference set has it")
        if isinstance(n_ref, bool) or not isinstance(n_ref, (int, np.integer)):
            raise ReferenceSetError(f"n_ref must be an int, got {type(n_ref).__name__}")
        if not 1 <= n_ref <= MAX_N_REF:
            raise ReferenceSetError(f"a reference set holds 1 to 2**48 items, got {n_ref}")
        self.n_ref = int(n_ref)
        self.fingerprint = bytes(fingerprint)
        self.source = source

    def __len__(self) -> int:
        return self.n_ref

    def __repr__(self) -> str:
        return f"ReferenceSet(n_ref={self.n_ref}, fingerprint={self.hex[:16]}..., source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceSet):
            return NotImplemented
        return (self.n_ref, self.fingerprint) == (other.n_ref, other.fingerprint)

    def __hash__(self) -> int:
        return hash((self.n_ref, self.fingerprint))

    @property
    def hex(self) -> str:
        """The fingerprint as 64 lowercase hex digits."""
        return self.fingerprint.hex()

    # -- constructors --------------------------------------------------------

    @classmethod
    def from_items(
        cls,
        items: Iterable[tuple[str, str | None]],
        *,
        manifest_out: BinaryIO | None = None,
        source: str = "items",
    ) -> ReferenceSet:
        """Fingerprint ``(id, sha256_hex_or_None)`` pairs, in order.

        If *manifest_out* is given the canonical manifest is written to it too.
        """
        hasher = hashlib.sha256(MANIFEST_HEADER)
        if manifest_out is not None:
            manifest_out.write(MANIFEST_HEADER)
        count = 0
        for item in items:
            try:
                item_id, digest = item
            except (TypeError, ValueError):
                raise ReferenceSetError(f"item {count} is not an (id, digest or None) pair: {item!r:.80}") from None
            if not isinstance(item_id, str):
                raise ReferenceSetError(f"item {count}: the id is {type(item_id).__name__}, not str")
            line = check_id(item_id)
            if digest is not None:
                if not isinstance(digest, (str, bytes, bytearray)):
                    raise ReferenceSetError(f"digest of {item_id!r} is {type(digest).__name__}, not a str of hex")
                digest_bytes = digest.encode("ascii", "replace") if isinstance(digest, str) else bytes(digest)
                if not _HEX64.fullmatch(digest_bytes):
                    raise ReferenceSetError(f"digest of {item_id!r} is not 64 lowercase hex digits")
                line += b"\t" + digest_bytes
            line += b"\n"
            hasher.update(line)
            if manifest_out is not None:
                manifest_out.write(line)
            count += 1
        if count == 0:
            raise ReferenceSetError("a reference set holds at least one item")
        return cls(count, hasher.digest(), source)

    @classmethod
    def from_ids(cls, ids: Iterable[str], digests: Iterable[str] | None = None) -> ReferenceSet:
        """Fingerprint a list of item ids (and optionally their content digests)."""
        if digests is None:
            return cls.from_items(((i, None) for i in ids), source="ids")
        ids, digests = list(ids), list(digests)
        if len(ids) != len(digests):
            raise ReferenceSetError(f"{len(ids)} ids but {len(digests)} digests")
        return cls.from_items(zip(ids, digests), source="ids")

    @classmethod
    def from_array(cls, array: np.ndarray, *, content: bool = True) -> ReferenceSet:
        """Fingerprint an in-memory data set: item i is ``array[i]``, id ``str(i)``."""
        try:
            array = np.asarray(array)
        except ValueError as exc:  # ragged nested lists
            raise ReferenceSetError(f"an array reference set must be one array: {exc}") from None
        if array.ndim < 1 or len(array) == 0:
            raise ReferenceSetError("an array reference set needs at least one item along axis 0")
        items: Iterable[tuple[str, str | None]] = (
            (str(i), array_item_digest(array[i]) if content else None) for i in range(len(array))
        )
        return cls.from_items(items, source=f"array{tuple(array.shape)}")

    @staticmethod
    def folder_files(folder: PathLike) -> list[str]:
        """The canonical item ids of *folder*: relative POSIX paths of its visible
        regular files (names starting with "." skipped, symbolic links not
        followed), sorted by UTF-8 bytes (spec/REFERENCE.md, "Folders")."""
        return list(_scan_folder(Path(folder)).names)

    @staticmethod
    def folder_listing(folder: PathLike, progress: Callable[[int], None] | bool | None = None) -> FolderWalk:
        """:meth:`folder_files` as packed arrays (ids, sizes, mtimes), without a
        Python object per file: what a listing of millions of files should use.
        *progress*: True for a bar on standard error (a terminal only), or a
        function called with the count of files found so far."""
        return _scan_folder(Path(folder), progress)

    @classmethod
    def _hash_folder(
        cls, root: Path, walk: FolderWalk, content: bool, manifest_out: BinaryIO | None, workers: int | None,
        progress: bool = False,
    ) -> ReferenceSet:
        if not content:
            return cls.from_items(((name, None) for name in walk.names), manifest_out=manifest_out,
                                  source=f"folder {root}")
        bar = _bar(progress, f"hashing {root}", "B", int(walk.size.sum()))

        def digests() -> Iterator[str]:
            done = 0
            for chunk in _ordered_map(_hash_files, _walk_paths(root, walk), workers or _default_workers()):
                bar.update(int(walk.size[done:done + len(chunk)].sum()))
                done += len(chunk)
                yield from chunk

        try:
            return cls.from_items(zip(walk.names, digests()), manifest_out=manifest_out, source=f"folder {root}")
        finally:
            bar.close()

    @classmethod
    def from_folder(
        cls,
        folder: PathLike,
        *,
        content: bool = True,
        manifest_out: BinaryIO | PathLike | None = None,
        workers: int | None = None,
        progress: bool = False,
    ) -> ReferenceSet:
        """Fingerprint a folder of files in canonical (sorted-path) order.

        With *content* each file's SHA-256 is part of the manifest, so any edit
        of a file changes the fingerprint; without it only the names count.
        Files are hashed by *workers* threads (default: up to 8). *manifest_out*
        (a binary file object or a path) receives the manifest; use
        :meth:`record` to also write the cache that :meth:`open` checks.
        With *progress*, bars of files listed and bytes hashed go to standard
        error when it is a terminal.
        """
        root = Path(path_argument(folder, "folder"))
        walk = _scan_folder(root, progress)
        return _to_manifest(manifest_out, lambda fh: cls._hash_folder(root, walk, content, fh, workers, progress))

    @classmethod
    def _hash_tar(
        cls, shards: list[str], content: bool, manifest_out: BinaryIO | None, workers: int | None,
        progress: bool = False,
    ) -> ReferenceSet:
        # Shards are listed by the one tar lister (in worker processes for a large set),
        # then hashed a shard a task by threads: hashlib releases the GIL.
        listed = dict(zip(shards, list_shards(shards)))

        def shard_items(shard: str, stop: threading.Event) -> list[tuple[str, str | None]]:
            images = listed[shard]
            name = os.path.basename(shard)
            ids = [f"{name}/{key}" for key in images.keys]
            if not content:
                return [(item_id, None) for item_id in ids]
            digests = _hash_members((shard, list(zip(images.offset.tolist(), images.size.tolist()))), stop)
            return list(zip(ids, digests))

        sizes = [os.path.getsize(shard) for shard in shards]
        bar = _bar(progress, f"{'hashing' if content else 'listing'} {len(shards)} tar shards", "B", sum(sizes))

        def items() -> Iterator[tuple[str, str | None]]:
            for size, chunk in zip(sizes, _ordered_map(shard_items, shards, workers or _default_workers())):
                bar.update(size)
                yield from chunk

        try:
            return cls.from_items(items(), manifest_out=manifest_out, source=f"tar shards ({len(shards)})")
        finally:
            bar.close()

    @classmethod
    def from_tar_shards(
        cls,
        shards: PathLike | Sequence[PathLike],
        *,
        content: bool = True,
        manifest_out: BinaryIO | PathLike | None = None,
        workers: int | None = None,
        progress: bool = False,
    ) -> ReferenceSet:
        """Fingerprint a WebDataset-style tar reference set (see :func:`tar_images`).

        Item ids are ``<shard file name>/<key>``; with *content* each digest is
        the SHA-256 of the sample's image member, hashed by *workers* threads.
        """
        resolved = tar_shards(shards)
        return _to_manifest(manifest_out, lambda fh: cls._hash_tar(resolved, content, fh, workers, progress))

    @classmethod
    def from_manifest(cls, path: PathLike) -> ReferenceSet:
        """Fingerprint a manifest file, checking that it is canonical."""
        path = path_argument(path, "manifest")
        try:
            with open(path, "rb") as fh:
                return cls.from_items(_manifest_items(fh, path), source=f"manifest {path}")
        except OSError as exc:
            raise ReferenceSetError(f"{path}: cannot read manifest ({exc.strerror or exc})") from exc
        except ReferenceSetError as exc:
            if str(exc).startswith(f"{path}"):
                raise
            raise ReferenceSetError(f"{path}: {exc}") from exc

    @classmethod
    def from_path(cls, path: PathLike, *, content: bool = True, workers: int | None = None,
                  kind: str = "auto") -> ReferenceSet:
        """A folder of files, tar shards (a ``.tar`` file, or a folder holding only
        ``.tar`` files) or a manifest file (any other file), by :meth:`open`'s rule."""
        return cls.open(path, content=content, workers=workers, kind=kind)

    # -- cached, verified manifests --------------------------------------------

    @classmethod
    def record(
        cls,
        path: PathLike | Sequence[PathLike],
        manifest: PathLike,
        *,
        content: bool = True,
        workers: int | None = None,
        kind: str = "auto",
        progress: bool = False,
    ) -> ReferenceSet:
        """Hash a folder or tar set, write its manifest to *manifest* and the
        sidecar cache ``<manifest>.cache`` (each file's size and mtime), so that
        :meth:`open` can verify the set later without reading it. The manifest
        may not lie inside the folder it describes unless its name starts with ".".
        *progress*: bars on standard error (a terminal only), as in :meth:`from_folder`."""
        manifest = Path(manifest)
        # Refused before hours of hashing, not after: a FIFO, device or link is not replaced.
        check_writable_target(manifest)
        check_writable_target(_cache_path(manifest))
        resolved, kind = _resolve(path, kind)
        if kind in ("manifest", "npz"):
            raise ReferenceSetError(
                f"{path}: is neither a folder nor a .tar shard; a manifest for it cannot be recorded "
                "(a manifest file or an .npz array is read as is: leave out --manifest-out / manifest=)"
            )
        folder = Path(resolved[0]) if kind == "folder" else Path(path) if isinstance(path, (str, os.PathLike)) else None
        if folder is not None and folder.is_dir() and not manifest.name.startswith(".") \
                and is_within(manifest.parent, folder):
            # It would become part of the set it describes (or turn a folder of
            # shards into a folder of files), changing the fingerprint it records.
            raise ReferenceSetError(
                f"{manifest}: a manifest inside the reference folder {folder} would be part of the set; "
                "write it elsewhere (or give it a name starting with '.')"
            )
        if kind == "folder":
            root = Path(resolved[0])
            walk = _scan_folder(root, progress)
            ref = write_atomically(manifest, lambda fh: cls._hash_folder(root, walk, content, fh, workers, progress))
            rows: Iterable[tuple[str, int, int]] = walk.rows()
            where = str(root.resolve())
        else:
            shards = resolved
            # Stat before hashing: a file rewritten while it is read then shows a
            # newer mtime than the cache records, and the next open() says stale.
            rows = [(os.path.basename(s), *_stat_row(s)) for s in shards]
            ref = write_atomically(manifest, lambda fh: cls._hash_tar(shards, content, fh, workers, progress))
            where = os.path.dirname(os.path.abspath(shards[0]))
        # The fingerprint is the SHA-256 of the manifest's bytes: it binds cache and manifest.
        # "rows": how many rows follow, so that a cache cut short at a row boundary (or inside
        # a name, which still parses) is told from a set that changed (_intact).
        header = {"kind": kind, "content": content, "n_ref": ref.n_ref, "fingerprint": ref.hex, "root": where,
                  "rows": len(walk.names) if kind == "folder" else len(shards)}

        def write_cache(fh: BinaryIO) -> None:
            fh.write(f"{CACHE_HEADER}\n{json.dumps(header, sort_keys=True)}\n".encode())
            for chunk in _batched(rows, _CHECK_CHUNK):
                fh.write(_cache_rows(chunk).encode("utf-8"))

        write_atomically(_cache_path(manifest), write_cache)
        ref.source = f"{kind} {path} (manifest {manifest})"
        return ref

    @classmethod
    def open(
        cls,
        path: PathLike | Sequence[PathLike],
        *,
        manifest: PathLike | None = None,
        rehash: bool = False,
        workers: int | None = None,
        content: bool = True,
        kind: str = "auto",
        progress: bool = False,
        listing: FolderWalk | None = None,
    ) -> ReferenceSet:
        """The reference set at *path*: a folder of files, tar shards (a list of
        shards, a ``.tar`` file, or a folder holding only ``.tar`` files), or a
        manifest file. *kind* (``folder``/``tar``) overrides the detection.

        With *manifest* (written earlier by :meth:`record` / ``plada ref-hash
        --manifest-out``), the set is verified against the manifest's cache with
        one ``stat`` per file and the manifest's fingerprint is returned; a set
        that changed since (a file added, removed, resized or touched) raises
        :class:`~plada_codec.StaleManifestError`. A manifest that does not exist
        yet is created; a manifest without a valid cache (copied from elsewhere)
        is checked by hashing the set once, then cached. ``rehash=True`` hashes
        everything again and rewrites manifest and cache. *progress*: bars of
        files listed and bytes hashed on standard error (a terminal only).
        *listing*: the folder's :meth:`folder_listing`, made moments before,
        checked instead of walking the folder a second time.
        """
        if manifest is None:
            resolved, kind = _resolve(path, kind)
            if kind == "manifest":
                return cls.from_manifest(resolved[0])
            if kind == "npz":  # its 'x' array, by section 3.2
                return cls.from_array(NpzKind.array(resolved[0]), content=content)
            if kind == "folder" and listing is not None:
                root = Path(resolved[0])
                return cls._hash_folder(root, listing, content, None, workers, progress)
            if kind == "folder":
                return cls.from_folder(resolved[0], content=content, workers=workers, progress=progress)
            return cls.from_tar_shards(resolved, content=content, workers=workers, progress=progress)
        manifest = Path(manifest)
        found = cls._open_with_manifest(path, manifest, rehash, workers, content, kind, progress, listing)
        if not content and _manifest_has_digests(manifest):
            # The set is what the manifest says (just checked); its names-only fingerprint is the
            # manifest's names without their digests: no file is read for it.
            with open(manifest, "rb") as fh:
                return cls.from_items(((name, None) for name, _ in _manifest_items(fh, manifest)),
                                      source=f"{found.source} (names only)")
        return found

    @classmethod
    def _open_with_manifest(cls, path, manifest: Path, rehash: bool, workers: int | None, content: bool, kind: str,
                            progress: bool, listing: FolderWalk | None) -> ReferenceSet:
        if rehash or not manifest.exists():
            return cls.record(path, manifest, content=content, workers=workers, kind=kind, progress=progress)
        try:
            return _verify_cached(path, manifest, kind, progress, listing)
        except _NoCache:
            pass
        # A manifest with no usable cache: hash once, compare, then cache.
        expected = cls.from_manifest(manifest)
        tmp = manifest.with_name(f".{manifest.name}.{os.getpid()}.check")
        try:
            actual = cls.record(path, tmp, content=_manifest_has_digests(manifest), workers=workers, kind=kind,
                                progress=progress)
            if actual != expected:
                raise StaleManifestError(
                    f"{path} does not match manifest {manifest}: "
                    + _first_difference(manifest, tmp)
                    + _REHASH_HINT.format(p=path if isinstance(path, (str, os.PathLike)) else "SHARDS...", m=manifest)
                )
            check_writable_target(_cache_path(manifest))
            os.replace(_cache_path(tmp), _cache_path(manifest))
        finally:
            tmp.unlink(missing_ok=True)
            _cache_path(tmp).unlink(missing_ok=True)
        expected.source = actual.source.replace(str(tmp), str(manifest))
        return expected


class _NoCache(Exception):
    """No cache belongs to this manifest (missing or written for other bytes)."""


def _resolve(path: PathLike | Sequence[PathLike], kind: str) -> tuple[list[str], str]:
    if isinstance(path, (bytes, str, os.PathLike)) or not isinstance(path, Sequence):
        path = path_argument(path)
    if not isinstance(path, (str, os.PathLike)):
        if kind not in ("auto", "tar"):
            raise ReferenceSetError(f"a list of paths is a tar set, not kind {kind!r}")
        return tar_shards(path), "tar"
    kind = _detect_kind(Path(path), kind)
    if kind == "tar":
        return tar_shards(path), "tar"
    if kind not in ("folder", "manifest", "npz"):
        raise _no_manifest(os.fspath(path), kind)
    if kind == "folder" and not Path(path).is_dir():
        raise ReferenceSetError(f"{path}: not a folder")
    return [os.fspath(path)], kind


def _manifest_items(fh: BinaryIO, path: PathLike) -> Iterator[tuple[str, str | None]]:
    if fh.readline() != MANIFEST_HEADER:
        raise ReferenceSetError(
            f"{path}: not a plada reference manifest (first line must be "
            f"{MANIFEST_HEADER.decode().strip()!r})"
        )
    for lineno, line in enumerate(fh, start=2):
        if not line.endswith(b"\n"):
            raise ReferenceSetError(f"{path}:{lineno}: line does not end in LF")
        fields = line[:-1].split(b"\t")
        if len(fields) > 2:
            raise ReferenceSetError(f"{path}:{lineno}: more than one TAB")
        try:
            item_id = fields[0].decode("utf-8")
        except UnicodeDecodeError:
            raise ReferenceSetError(f"{path}:{lineno}: id is not UTF-8") from None
        try:
            digest = fields[1].decode("ascii") if len(fields) == 2 else None
        except UnicodeDecodeError:
            raise ReferenceSetError(f"{path}:{lineno}: digest is not 64 lowercase hex digits") from None
        check_id(item_id, f"{path}:{lineno}")
        yield item_id, digest


def _manifest_has_digests(manifest: Path) -> bool:
    with open(manifest, "rb") as fh:
        fh.readline()
        return b"\t" in fh.readline()


def _first_difference(expected: Path, actual: Path) -> str:
    """Where manifest *actual* (just hashed) first departs from *expected*, in words."""

    def item(line: bytes) -> str:
        return line.decode("utf-8", "replace").rstrip("\n").split("\t")[0]

    with open(expected, "rb") as a, open(actual, "rb") as b:
        lineno = 0
        while True:
            lineno += 1
            line_a, line_b = a.readline(), b.readline()
            if line_a == line_b:
                if not line_a:
                    return "they differ"
                continue
            if not line_b:
                return f"the set ends before manifest item {item(line_a)!r} (line {lineno})"
            if not line_a:
                return f"the set has items past the manifest's end, from {item(line_b)!r}"
            if item(line_a) == item(line_b):
                return f"item {item(line_a)!r} (manifest line {lineno}) has different content"
            return f"manifest line {lineno} is {item(line_a)!r} but the set has {item(line_b)!r} there"


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
                   progress: bool = False, listing: FolderWalk | None = None) -> ReferenceSet:
    """The manifest's set, after checking the listing, sizes and mtimes against its cache,
    in streaming fashion: one chunk of rows in memory at a time."""
    header, rows_at = _read_cache(manifest)
    cache = _cache_path(manifest)
    hint = _REHASH_HINT.format(p=path if isinstance(path, (str, os.PathLike)) else "SHARDS...", m=manifest)
    resolved, kind = _resolve(path, header["kind"] if kind == "auto" else kind)
    if kind != header["kind"]:
        raise StaleManifestError(f"{manifest} records a {header['kind']} reference set, not a {kind}{hint}")
    ref = ReferenceSet(int(header["n_ref"]), bytes.fromhex(header["fingerprint"]),
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
