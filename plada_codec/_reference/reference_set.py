"""The :class:`ReferenceSet` value (``n_ref`` and fingerprint) and its
constructors: ids, arrays, folders, tar shards, manifests, cached manifests."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from .._atomic import check_writable_target, write_atomically
from .._constants import MAX_N_REF
from .._errors import ReferenceSetError, StaleManifestError
from .._ids import check_id, is_within, path_argument
from ..kinds._walk import FolderWalk
from ..kinds.npz import NpzKind, array_item_digest
from ..kinds.tar import list_shards, tar_shards
from .cache import _REHASH_HINT, CACHE_HEADER, _batched, _cache_path, _cache_rows, _NoCache, _stat_row, _verify_cached
from .hashing import _bar, _default_workers, _hash_files, _hash_members, _ordered_map
from .manifest import (
    _CHECK_CHUNK,
    MANIFEST_HEADER,
    _first_difference,
    _manifest_has_digests,
    _manifest_items,
    _resolve,
    _scan_folder,
    _to_manifest,
    _walk_paths,
)

PathLike = Union[str, "os.PathLike[str]"]
_HEX64 = re.compile(rb"[0-9a-f]{64}")


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
            return cls(*_verify_cached(path, manifest, kind, progress, listing))
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
