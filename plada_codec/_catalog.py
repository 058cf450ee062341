"""Catalogs: the storage-independent list of a reference set's items
(normative: spec/REFERENCE.md section 8).

A catalog is UTF-8 text::

    plada-catalog 1 LF
    fields id [group] [sha256] LF
    one line per item:  ID [TAB GROUP] [TAB SHA256HEX] LF

with the lines sorted by (GROUP, ID) as UTF-8 bytes, ids unique. The
fingerprint is SHA-256 over those bytes (a ``.zst`` file holds them as one
Zstandard frame for transport; the fingerprint is of the decompressed text).
A payload made against a catalog carries its ``N`` and fingerprint, and its
indices are catalog positions: the same images give the same catalog whether
they are stored as a folder tree, shuffled tar shards or parquet, so a
payload reaches every copy. :meth:`Catalog.resolve` maps a local copy onto the
catalog (present, missing and extra items) and caches the map beside the
catalog, so later runs read no image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ReferenceSetError
from ._npz import map_npz
from ._reference import ReferenceSet, _check_ids, _is_within, _path_argument
from .kinds import Listing, detect_kind
from .kinds._base import PackedStrings, PathLike

__all__ = ["Catalog", "Resolution", "CATALOG_HEADER", "DEFAULT_MAX_CATALOG_BYTES"]

CATALOG_HEADER = b"plada-catalog 1\n"
_FIELD_SETS = {("id",), ("id", "group"), ("id", "sha256"), ("id", "group", "sha256")}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# A catalog of 14.2M ImageNet ids with digests is about 1.2 GB of text; refuse
# more than twice that before decompressing it.
DEFAULT_MAX_CATALOG_BYTES = 1 << 32
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # TAB and LF are the separators
_HEX_LINES = re.compile(rb"(?:[0-9a-f]{64}\n)*")
_SHOWN = 5  # ids shown in a report of missing / extra / differing items
_RESOLUTION_VERSION = 1


def _shown(ids: Iterable[str]) -> str:
    return ", ".join(repr(i) for i in ids)


def _as_bytes_array(values: Sequence[bytes]) -> np.ndarray:
    """Byte strings as a fixed-width ``S`` array. Ids hold no NUL byte (a
    control character), so numpy's NUL padding keeps byte order and equality."""
    return np.array(values, dtype=bytes) if len(values) else np.zeros(0, "S1")


class _Ids(Sequence):
    """The catalog's ids as a read-only sequence of str, in catalog order."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [v.decode("utf-8") for v in self._array[i].tolist()]
        return self._array[i].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (v.decode("utf-8") for v in self._array.tolist())


class Catalog:
    """An ordered, storage-independent list of item ids (spec/REFERENCE.md 8).

    ``len(catalog)`` is N; ``catalog.ids`` the ids in catalog order;
    ``catalog.index_of(id)`` an id's position, the index a payload uses;
    ``catalog.reference`` the :class:`ReferenceSet` (N, fingerprint) to pass to
    :func:`~plada_codec.encode` / :func:`~plada_codec.decode`. Build one from a
    local copy with :meth:`build`, read one with :meth:`open`, and map a local
    copy of any layout onto it with :meth:`resolve`.
    """

    def __init__(self, ids: np.ndarray, groups: np.ndarray | None, digests: np.ndarray | None,
                 fingerprint: bytes, path: str = "") -> None:
        self._ids, self._groups, self._digests = ids, groups, digests
        self.fingerprint = fingerprint
        self.path = path
        self._by_id: np.ndarray | None = None

    # -- what it holds ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"Catalog(n={len(self)}, fingerprint={self.hex[:16]}..., fields={' '.join(self.fields)})"

    @property
    def fields(self) -> tuple[str, ...]:
        return ("id",) + (("group",) if self._groups is not None else ()) + (
            ("sha256",) if self._digests is not None else ())

    @property
    def hex(self) -> str:
        return self.fingerprint.hex()

    @property
    def ids(self) -> Sequence[str]:
        """The item ids in catalog order (position i is payload index i)."""
        return _Ids(self._ids)

    @property
    def has_digests(self) -> bool:
        return self._digests is not None

    def group_of(self, position: int) -> str | None:
        return None if self._groups is None else self._groups[position].decode("utf-8")

    def digest_of(self, position: int) -> str | None:
        return None if self._digests is None else self._digests[position].tobytes().hex()

    @property
    def reference(self) -> ReferenceSet:
        """N and fingerprint, the binding a payload made against this catalog carries."""
        return ReferenceSet(len(self), self.fingerprint, source=f"catalog {self.path or '(in memory)'}")

    def _sorted(self) -> np.ndarray:
        if self._by_id is None:
            self._by_id = np.argsort(self._ids, kind="stable")
        return self._by_id

    def positions_of(self, ids: np.ndarray | Sequence[str]) -> np.ndarray:
        """Catalog positions of many ids at once (``-1`` for an id not in the catalog)."""
        if not isinstance(ids, np.ndarray):
            try:
                if isinstance(ids, str):
                    raise TypeError
                ids = _as_bytes_array([str.encode(i, "utf-8", "surrogateescape") for i in ids])
            except TypeError:  # str.encode refuses anything but a str
                raise ReferenceSetError("catalog ids are looked up as a sequence of str") from None
        order = self._sorted()
        if not len(ids):
            return np.zeros(0, np.int64)
        found = np.searchsorted(self._ids, ids, sorter=order)
        found = np.minimum(found, len(order) - 1)
        positions = order[found].astype(np.int64)
        positions[self._ids[positions] != ids] = -1
        return positions

    def index_of(self, item_id: str) -> int:
        """The position of *item_id* (KeyError if the catalog does not hold it)."""
        if not isinstance(item_id, str):
            raise ReferenceSetError(f"index_of takes one id, a str, not {type(item_id).__name__} "
                                    f"(positions_of looks up many)")
        position = int(self.positions_of([item_id])[0])
        if position < 0:
            raise KeyError(item_id)
        return position

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and int(self.positions_of([item_id])[0]) >= 0

    # -- the file ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The canonical catalog text (what the fingerprint hashes)."""
        out = io.BytesIO()
        self._write_text(out)
        return out.getvalue()

    def _write_text(self, out: Any) -> None:
        out.write(CATALOG_HEADER)
        out.write(("fields " + " ".join(self.fields) + "\n").encode("ascii"))
        ids = self._ids.tolist()
        groups = self._groups.tolist() if self._groups is not None else None
        digests = [d.hex().encode("ascii") for d in map(bytes, self._digests)] if self._digests is not None else None
        step = 1 << 16
        for start in range(0, len(ids), step):
            columns = [ids[start:start + step]]
            if groups is not None:
                columns.append(groups[start:start + step])
            if digests is not None:
                columns.append(digests[start:start + step])
            out.write(b"".join(b"\t".join(row) + b"\n" for row in zip(*columns)))

    def write(self, path: PathLike, *, level: int = 19) -> None:
        """Write the catalog to *path* atomically; a name ending in ``.zst``
        gets one Zstandard frame (at *level*) for transport."""
        import zstandard

        from ._atomic import write_atomically

        data = self.to_bytes()
        if os.fspath(path).endswith(".zst"):
            data = zstandard.ZstdCompressor(level=level, write_content_size=True).compress(data)
        write_atomically(Path(path), lambda fh: fh.write(data))
        self.path = os.fspath(path)

    @classmethod
    def open(cls, path: PathLike, *, max_bytes: int = DEFAULT_MAX_CATALOG_BYTES) -> Catalog:
        """Read and check a catalog file (plain text or one ``.zst`` frame).
        Raises :class:`~plada_codec.ReferenceSetError` naming the first
        problem (line number) for a file that breaks spec/REFERENCE.md 8."""
        path = Path(_path_argument(path, "catalog"))
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(_ZSTD_MAGIC))
                fh.seek(0)
                if head == _ZSTD_MAGIC:
                    data = _read_zstd(fh, max_bytes, path)
                else:
                    size = os.fstat(fh.fileno()).st_size
                    if size > max_bytes:
                        raise ReferenceSetError(f"{path}: catalog of {size} bytes is over the limit of {max_bytes}")
                    data = fh.read()
        except OSError as exc:
            raise ReferenceSetError(f"{path}: cannot read the catalog ({exc.strerror or exc})") from None
        return cls.from_bytes(data, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "catalog") -> Catalog:
        """Parse canonical catalog text (see :meth:`open`)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ReferenceSetError(f"{where}: catalog text must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if not data.startswith(CATALOG_HEADER):
            if data.startswith(b"plada-reference-manifest"):
                raise ReferenceSetError(f"{where}: a reference manifest, not a catalog; use it with --manifest")
            raise ReferenceSetError(f"{where}: not a plada catalog (first line must be 'plada-catalog 1')")
        fields_end = data.find(b"\n", len(CATALOG_HEADER))
        fields_line = data[len(CATALOG_HEADER):fields_end] if fields_end >= 0 else b""
        fields = tuple(fields_line.split(b" "))
        if not fields_line.startswith(b"fields ") or tuple(f.decode("ascii", "replace") for f in fields[1:]) \
                not in _FIELD_SETS:
            raise ReferenceSetError(f"{where}: line 2 must be 'fields id', 'fields id group', 'fields id sha256' "
                                    f"or 'fields id group sha256', got {fields_line[:80]!r}")
        names = [f.decode("ascii") for f in fields[1:]]
        body = data[fields_end + 1:]
        if not body:
            raise ReferenceSetError(f"{where}: the catalog lists no items (a reference set holds at least one)")
        if not body.endswith(b"\n"):
            raise ReferenceSetError(f"{where}: the last line does not end in LF")
        bad = _FORBIDDEN.search(body)
        if bad:
            line = body.count(b"\n", 0, bad.start()) + 3
            raise ReferenceSetError(f"{where}:{line}: control character 0x{body[bad.start()]:02x} (ids and groups "
                                    "hold no U+0000-U+001F or U+007F; no CR, no blank line)")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = body.count(b"\n", 0, exc.start) + 3
            raise ReferenceSetError(f"{where}:{line}: not valid UTF-8") from None
        lines = body[:-1].split(b"\n")
        columns: list[list[bytes]]
        if len(names) == 1:
            if b"\t" in body:
                line = body.count(b"\n", 0, body.find(b"\t")) + 3
                raise ReferenceSetError(f"{where}:{line}: a TAB in a catalog whose only field is id")
            columns = [lines]
        else:
            split = [line.split(b"\t") for line in lines]
            for number, row in enumerate(split):
                if len(row) != len(names):
                    raise ReferenceSetError(f"{where}:{number + 3}: {len(row)} fields, the header names {len(names)}")
            columns = [list(c) for c in zip(*split)]
            del split
        del lines
        ids = columns[0]
        for number, item_id in enumerate(ids):
            if not item_id:
                raise ReferenceSetError(f"{where}:{number + 3}: empty id")
        groups = _as_bytes_array(columns[names.index("group")]) if "group" in names else None
        digests = None
        if "sha256" in names:
            hexes = columns[names.index("sha256")]
            joined = b"\n".join(hexes) + b"\n"
            match = _HEX_LINES.match(joined)
            if match is None or match.end() != len(joined):
                line = joined.count(b"\n", 0, match.end() if match else 0) + 3
                raise ReferenceSetError(f"{where}:{line}: a digest must be 64 lowercase hex digits")
            digests = np.frombuffer(bytes.fromhex(b"".join(hexes).decode("ascii")), np.uint8).reshape(-1, 32)
        id_array = _as_bytes_array(ids)
        del columns, ids
        _check_order(id_array, groups, where)
        catalog = cls(id_array, groups, digests, hashlib.sha256(data).digest(), where)
        _check_unique(catalog, where)
        return catalog

    # -- building -----------------------------------------------------------------

    @classmethod
    def from_items(cls, ids: Sequence[str], *, groups: Sequence[str] | None = None,
                   digests: Sequence[str] | None = None, where: str = "items") -> Catalog:
        """The catalog of these items, in canonical order (any order given)."""
        ids = list(ids)
        if not ids:
            raise ReferenceSetError(f"{where}: no items; a catalog holds at least one")
        for item_id in ids:
            if not isinstance(item_id, str) or not item_id:
                raise ReferenceSetError(f"{where}: item id must be a non-empty str, got {item_id!r}")
        _check_ids(ids, where)
        encoded = _as_bytes_array([i.encode("utf-8") for i in ids])
        group_array = None
        if groups is not None:
            groups = list(groups)
            if len(groups) != len(ids):
                raise ReferenceSetError(f"{where}: {len(groups)} groups for {len(ids)} ids")
            if any(groups):
                _check_ids([g for g in groups if g], f"{where} (groups)")
            group_array = _as_bytes_array([g.encode("utf-8") for g in groups])
        digest_array = None
        if digests is not None:
            digests = list(digests)
            if len(digests) != len(ids):
                raise ReferenceSetError(f"{where}: {len(digests)} digests for {len(ids)} ids")
            joined = "\n".join(digests) + "\n"
            if not _HEX_LINES.fullmatch(joined.encode("ascii", "replace")):
                raise ReferenceSetError(f"{where}: digests must be 64 lowercase hex digits")
            digest_array = np.frombuffer(bytes.fromhex("".join(digests)), np.uint8).reshape(-1, 32)
        order = np.argsort(encoded, kind="stable") if group_array is None else np.lexsort((encoded, group_array))
        catalog = cls(encoded[order], None if group_array is None else group_array[order],
                      None if digest_array is None else digest_array[order], b"", "")
        _check_unique(catalog, where, hint="; ids must be unique (choose another --id rule)")
        catalog.fingerprint = hashlib.sha256(catalog.to_bytes()).digest()
        return catalog

    @classmethod
    def build(cls, path: PathLike, output: PathLike | None = None, *, id: str = "stem", group: str = "none",
              content: bool = True, kind: str = "auto", workers: int | None = None) -> Catalog:
        """The catalog of the copy at *path* (a folder tree, ``.tar`` shards,
        parquet files or an ``.npz``), written to *output* when given.

        *id* is the id rule (``stem``: a file's or member's base name up to its
        first ``.``; ``key``: the same with its folders kept; ``column:NAME``
        for parquet); *group* ``none``, ``parent`` (the item's folder name) or
        ``prefix:SEP`` (the id up to its first SEP); *content* adds each item's
        SHA-256. Duplicate and empty ids are refused naming the items.
        """
        if output is not None and Path(path).is_dir() and not Path(output).name.startswith(".") \
                and _is_within(Path(output).parent, Path(path)):
            # It would become an item of the copy it lists (a folder's fingerprint and manifests
            # change with every visible file) the next time that copy is listed.
            raise ReferenceSetError(f"{output}: a catalog inside the folder it lists ({path}) would become one of "
                                    "its items; write it elsewhere (or give it a name starting with '.')")
        listing = detect_kind(path, kind).scan(os.fspath(path))
        ids = item_ids(listing, id)
        groups = _groups(listing, ids, group)
        digests = _digests(listing, range(len(listing)), workers) if content else None
        catalog = cls.from_items(ids, groups=groups, digests=digests, where=os.fspath(path))
        if output is not None:
            catalog.write(output)
        return catalog

    # -- resolving a local copy -------------------------------------------------

    def resolve(self, local: PathLike, *, kind: str = "auto", id: str = "stem", content: bool | None = None,
                index: PathLike | None = None, workers: int | None = None, rebuild: bool = False) -> Resolution:
        """Map the local copy at *local* (any layout) onto this catalog.

        Every catalog item is found where the copy holds it (file; shard and
        member offset; parquet file and row) or reported missing; local items
        the catalog lacks are extra. With *content* (default: when the catalog
        has digests) each present item is hashed once and items whose bytes
        differ are reported (a re-encoded copy differs everywhere: its ids
        still resolve). The map is cached in *index* (default: beside the
        catalog), valid while the copy's files keep their sizes and mtimes, so
        a later resolve reads no image.
        """
        local = os.fspath(local)
        kind_class = detect_kind(local, kind)
        if content is None:
            content = self.has_digests
        if content and not self.has_digests:
            raise ReferenceSetError(f"{self.path}: the catalog has no digests to check content against")
        cache = Path(index) if index is not None else self._default_index(local, kind_class.name, id, content)
        if index is not None and cache is not None and cache.exists() and not _is_resolution_cache(cache):
            # the cache is rewritten whenever it is stale: never over a file given by mistake that
            # is not one (the catalog itself, a payload); a damaged one of ours is rewritten
            raise ReferenceSetError(f"{cache}: exists and is not a resolution cache; refusing to overwrite it "
                                    f"(give another --index path, or remove the file)")
        if cache is not None and not rebuild:
            cached = Resolution._load(cache, self, local, kind_class, id, content)
            if cached is not None:
                return cached
        listing = kind_class.scan(local)
        resolution = Resolution._make(self, listing, id, content, workers)
        if cache is not None:
            resolution._save(cache, local, id, content)
        return resolution

    def _default_index(self, local: str, kind: str, rule: str, content: bool) -> Path | None:
        if not self.path or self.path == "(in memory)":
            return None
        tag = hashlib.sha256(f"{os.path.abspath(local)}\0{kind}\0{rule}\0{int(content)}".encode(
            "utf-8", "surrogateescape")).hexdigest()[:16]
        return Path(f"{self.path}.{tag}.resolved.npz")


def _is_resolution_cache(path: Path) -> bool:
    """Whether *path* is an ``.npz`` that a resolution wrote (a stale one, or a damaged one
    under the default name, included)."""
    if path.name.endswith(".resolved.npz"):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            return "meta.npy" in archive.namelist() and "local_of.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _read_zstd(fh: Any, max_bytes: int, path: Path) -> bytes:
    """One Zstandard frame's content. Input goes in 4 KiB at a time, so no
    call can expand past about 128 MiB before the limit is checked (a block
    of a few bytes can stand for 128 KiB)."""
    import zstandard

    out = io.BytesIO()
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        while not decompressor.eof:
            chunk = fh.read(4096)
            if not chunk:
                raise ReferenceSetError(f"{path}: the catalog's Zstandard frame is truncated")
            out.write(decompressor.decompress(chunk))
            if out.tell() > max_bytes:
                raise ReferenceSetError(f"{path}: catalog decompresses to more than the limit of {max_bytes} bytes")
    except zstandard.ZstdError as exc:
        raise ReferenceSetError(f"{path}: damaged Zstandard frame ({exc})") from None
    if decompressor.unused_data or fh.read(1):
        raise ReferenceSetError(f"{path}: bytes after the catalog's Zstandard frame")
    return out.getvalue()


def _check_order(ids: np.ndarray, groups: np.ndarray | None, where: str) -> None:
    if len(ids) < 2:
        return
    if groups is None:
        ascending = ids[1:] > ids[:-1]
    else:
        ascending = (groups[1:] > groups[:-1]) | ((groups[1:] == groups[:-1]) & (ids[1:] > ids[:-1]))
    bad = np.flatnonzero(~ascending)
    if len(bad):
        i = int(bad[0])
        what = "(group, id)" if groups is not None else "id"
        raise ReferenceSetError(f"{where}:{i + 4}: lines must be sorted by {what} as UTF-8 bytes, without repeats; "
                                f"{ids[i + 1].decode()!r} follows {ids[i].decode()!r}")


def _check_unique(catalog: Catalog, where: str, hint: str = "") -> None:
    """Refuse a repeated id; the id order it sorts is kept for ``index_of``."""
    order = catalog._sorted()
    ordered = catalog._ids[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(same):
        raise ReferenceSetError(f"{where}: item id {ordered[same[0]].decode()!r} appears twice{hint}")


def item_ids(listing: Listing, rule: str) -> list[str]:
    """Each listed item's id under *rule*, refusing empty ids naming the item."""
    ids = list(listing.kind.item_names(listing, rule))
    for i, item_id in enumerate(ids):
        if not item_id:
            raise ReferenceSetError(f"{listing.where(i)}: empty id under the {rule!r} rule; choose another --id")
    _check_ids(ids, listing.root)
    return ids


def _groups(listing: Listing, ids: list[str], rule: str) -> list[str] | None:
    if rule == "none":
        return None
    if rule == "parent":
        return [name.rpartition("/")[0].rpartition("/")[2] for name in listing.names]
    if rule.startswith("prefix:") and len(rule) > len("prefix:"):
        separator = rule.partition(":")[2]
        return [item_id.partition(separator)[0] for item_id in ids]
    raise ReferenceSetError(f"unknown group rule {rule!r}; use none, parent or prefix:SEP")


def _digests(listing: Listing, items: Iterable[int], workers: int | None) -> list[str]:
    """hex SHA-256 of each item; files are hashed by threads (hashlib and file
    reads release the GIL), shards and parquet row groups in order."""
    items = list(items)
    if listing.kind.name == "folder" and len(items) > 64:
        with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
            return list(pool.map(listing.digest, items, chunksize=64))
    return [listing.digest(i) for i in items]


# -- resolutions ----------------------------------------------------------------------


class Resolution:
    """A local copy mapped onto a catalog.

    ``local_of[p]`` is the local item holding catalog position p (``-1`` when
    the copy lacks it); :meth:`read` gives position p's bytes. ``present``,
    ``missing`` and ``extra`` count catalog items held, catalog items not
    held, and local items the catalog does not list; ``differ`` (None when
    content was not checked) counts held items whose bytes differ from the
    catalog's digest.
    """

    def __init__(self, catalog: Catalog, listing: Listing, local_of: np.ndarray, extra_ids: list[str],
                 n_extra: int, differ: np.ndarray | None) -> None:
        self.catalog, self.listing, self.local_of = catalog, listing, local_of
        self.extra = n_extra
        self.extra_ids = extra_ids
        self.differ_positions = differ
        self.from_cache = False

    def __repr__(self) -> str:
        return (f"Resolution({self.listing.kind.name} {self.listing.root!r}: present={self.present}, "
                f"missing={self.missing}, extra={self.extra})")

    @property
    def n(self) -> int:
        return len(self.local_of)

    @property
    def present(self) -> int:
        return int(np.count_nonzero(self.local_of >= 0))

    @property
    def missing(self) -> int:
        return self.n - self.present

    @property
    def differ(self) -> int | None:
        return None if self.differ_positions is None else len(self.differ_positions)

    def present_positions(self) -> np.ndarray:
        """The catalog positions this copy holds, ascending."""
        return np.flatnonzero(self.local_of >= 0)

    def missing_positions(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Which of *positions* (default: all) the copy lacks."""
        positions = np.arange(self.n) if positions is None else np.asarray(positions, np.int64)
        return positions[self.local_of[positions] < 0]

    def differing_positions(self, positions: np.ndarray, workers: int | None = None) -> np.ndarray:
        """Which of *positions* the copy holds with bytes other than the catalog's
        (each such item is read and hashed; a re-encoded copy differs everywhere)."""
        digests_of = self.catalog._digests
        if digests_of is None:
            raise ReferenceSetError(f"{self.catalog.path}: the catalog has no digests to check content against")
        positions = np.asarray(positions, np.int64)
        held = positions[self.local_of[positions] >= 0]
        digests = _digests(self.listing, self.local_of[held].tolist(), workers)
        want = digests_of[held]  # (n, 32) uint8
        got = np.frombuffer(bytes.fromhex("".join(digests)), np.uint8).reshape(-1, 32)
        return held[np.any(got != want, axis=1)]

    def holds(self, position: int) -> bool:
        return bool(self.local_of[position] >= 0)

    def _local(self, position: int) -> int:
        local = int(self.local_of[position])
        if local < 0:
            raise ReferenceSetError(f"catalog item {self.catalog.ids[position]!r} (position {position}) is missing "
                                    f"from {self.listing.root}")
        return local

    def read(self, position: int) -> bytes:
        """The bytes of catalog item *position* in this copy."""
        return self.listing.read(self._local(position))

    def where(self, position: int) -> str:
        return self.listing.where(self._local(position))

    def to_dict(self, shown: int = _SHOWN) -> dict[str, Any]:
        ids = self.catalog.ids
        missing = self.missing_positions()[:shown]
        out: dict[str, Any] = {
            "catalog": self.catalog.hex, "n": self.n, "local": self.listing.root, "kind": self.listing.kind.name,
            "present": self.present, "missing": self.missing, "extra": self.extra,
            "missing_ids": [ids[int(p)] for p in missing], "extra_ids": self.extra_ids[:shown],
            "differ": self.differ,
            "differ_ids": None if self.differ_positions is None else
            [ids[int(p)] for p in self.differ_positions[:shown]],
            "from_cache": self.from_cache,
        }
        return out

    def summary(self) -> str:
        d = self.to_dict()
        lines = [f"{d['local']} ({d['kind']}) against catalog {d['catalog'][:16]}... of {d['n']} items:",
                 f"  present {d['present']}, missing {d['missing']}, extra {d['extra']}"
                 + ("" if d["differ"] is None else f", content differs {d['differ']}")]
        if d["missing"]:
            lines.append(f"  missing, first: {_shown(d['missing_ids'])}")
        if d["extra"]:
            lines.append(f"  extra (not in the catalog), first: {_shown(d['extra_ids'])}")
        if d["differ"]:
            lines.append(f"  content differs, first: {_shown(d['differ_ids'])}"
                         + (" (every item: a re-encoded copy? ids still resolve)" if d["differ"] == d["present"]
                            else ""))
        return "\n".join(lines)

    # -- making, caching ------------------------------------------------------------

    @classmethod
    def _make(cls, catalog: Catalog, listing: Listing, rule: str, content: bool, workers: int | None) -> Resolution:
        ids = item_ids(listing, rule)
        encoded = _as_bytes_array([i.encode("utf-8") for i in ids])
        order = np.argsort(encoded, kind="stable")
        same = np.flatnonzero(encoded[order][1:] == encoded[order][:-1])
        if len(same):
            a, b = int(order[same[0]]), int(order[same[0] + 1])
            raise ReferenceSetError(f"{listing.where(a)} and {listing.where(b)} have the same id {ids[a]!r}; "
                                    "a copy holds each item once")
        positions = catalog.positions_of(encoded)
        del encoded, order
        local_of = np.full(len(catalog), -1, np.int64)
        held = np.flatnonzero(positions >= 0)
        local_of[positions[held]] = held
        extra = np.flatnonzero(positions < 0)
        extra_ids = [ids[int(i)] for i in extra[:_SHOWN]]
        differ = None
        if content:
            digests = _digests(listing, held.tolist(), workers)
            assert catalog._digests is not None
            wanted = catalog._digests[positions[held]]
            got = np.frombuffer(bytes.fromhex("".join(digests)), np.uint8).reshape(-1, 32) if digests else wanted[:0]
            differ = np.sort(positions[held][np.any(got != wanted, axis=1)])
        local_of = local_of.astype(np.int32) if len(listing) < 2**31 else local_of
        return cls(catalog, listing, local_of, extra_ids, len(extra), differ)

    def _save(self, path: Path, local: str, rule: str, content: bool) -> None:
        from ._atomic import write_atomically

        listing = self.listing
        meta = {"version": _RESOLUTION_VERSION, "catalog": self.catalog.hex, "local": os.path.abspath(local),
                "kind": listing.kind.name, "id": rule, "content": content, "sources": listing.sources,
                "signature": listing.signature, "extra": self.extra, "extra_ids": self.extra_ids,
                "listing_extra": {k: v for k, v in listing.extra.items() if k in ("ignored", "layouts")}}
        arrays: dict[str, Any] = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8", "surrogateescape"), np.uint8),
                  "local_of": self.local_of, "source": listing.source, "offset": listing.offset,
                  "size": listing.size, "names_blob": np.frombuffer(listing.names.blob, np.uint8),
                  "names_offsets": listing.names.offsets}
        if self.differ_positions is not None:
            arrays["differ"] = self.differ_positions
        try:
            write_atomically(path, lambda fh: np.savez(fh, **arrays))
        except (OSError, ReferenceSetError):
            pass  # a cache that cannot be written costs time, not correctness

    @classmethod
    def _load(cls, path: Path, catalog: Catalog, local: str, kind: Any, rule: str,
              content: bool) -> Resolution | None:
        try:
            arrays = map_npz(path)
            meta = json.loads(bytes(arrays["meta"]).decode("utf-8", "surrogateescape"))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None  # missing or corrupt: resolve again
        if (meta.get("version") != _RESOLUTION_VERSION or meta.get("catalog") != catalog.hex
                or meta.get("local") != os.path.abspath(local) or meta.get("kind") != kind.name
                or meta.get("id") != rule or meta.get("content") != content):
            return None
        try:
            signature = [tuple(row) for row in meta["signature"]]
            if signature != kind.signature(local):
                return None
            names = PackedStrings(bytes(arrays["names_blob"]), np.asarray(arrays["names_offsets"]))
            listing_extra = dict(meta.get("listing_extra", {}))
            listing = Listing(kind, local, list(meta["sources"]), names, arrays["source"], arrays["offset"],
                              arrays["size"], signature, extra=listing_extra)
            kind.restore(listing)
            local_of = arrays["local_of"]
            if len(local_of) != len(catalog) or len(listing.source) != len(names):
                return None
            resolution = cls(catalog, listing, local_of, list(meta["extra_ids"]), int(meta["extra"]),
                             arrays.get("differ"))
        except (KeyError, ValueError, TypeError, ReferenceSetError):
            return None
        resolution.from_cache = True
        return resolution
