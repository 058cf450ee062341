"""The parts every reference kind shares: the :class:`Listing` it returns and
the :class:`Kind` interface."""

from __future__ import annotations

import hashlib
import json
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Union

import numpy as np

from .._atomic import NotARegularFileError, open_for_reading, write_atomically
from .._errors import ReferenceSetError
from .._npz import map_npz_cache

PathLike = Union[str, "os.PathLike[str]"]


def stem_of(name: str) -> str:
    """The base name of *name* (after its last ``/``) up to its first ``.``:
    ``train/n01/n01_10026.JPEG`` -> ``n01_10026``. The same rule as a
    WebDataset sample key, so a file and the tar sample made from it agree."""
    return name.rpartition("/")[2].partition(".")[0]


def key_of(name: str) -> str:
    """*name* up to the first ``.`` of its base name, folders kept:
    ``train/n01/n01_10026.JPEG`` -> ``train/n01/n01_10026``."""
    folder, slash, base = name.rpartition("/")
    return folder + slash + base.partition(".")[0]


class PackedStrings:
    """N strings as one UTF-8 blob plus N+1 offsets: two objects, not N.

    String i is ``blob[offsets[i]:offsets[i + 1]]``. Offsets that are not one
    non-decreasing run within the blob raise ``ValueError``; indexing follows
    Python's sequence rules (negative indices count from the end, a slice gives
    a list of str, an index out of range raises ``IndexError``)."""

    __slots__ = ("blob", "offsets")

    def __init__(self, blob: bytes | bytearray | memoryview | np.ndarray, offsets: np.ndarray) -> None:
        # A uint8 array (a memory map of an index file, say) is read through a memoryview: no copy.
        self.blob = memoryview(np.ascontiguousarray(blob, np.uint8)) if isinstance(blob, np.ndarray) else blob  # type: ignore[arg-type]
        self.offsets = np.asarray(offsets)
        if self.offsets.ndim != 1 or not self.offsets.size or self.offsets.dtype.kind not in "iu":
            raise ValueError(f"offsets must be a 1-d integer array of N + 1 entries, got {self.offsets.dtype} "
                             f"of shape {self.offsets.shape}")
        self.offsets = self.offsets.astype(np.int64, copy=False)
        if self.offsets[0] < 0 or self.offsets[-1] > len(self.blob) or not self._rising():
            raise ValueError(f"offsets must rise from 0 or more to at most the blob's {len(self.blob)} bytes")

    def _rising(self) -> bool:
        # A chunk at a time: np.diff over 14M memory-mapped offsets would be a 113 MB temporary.
        offsets = self.offsets
        for start in range(0, len(offsets) - 1, self._ITER_CHUNK << 7):
            piece = offsets[start:start + (self._ITER_CHUNK << 7) + 1]
            if np.any(piece[1:] < piece[:-1]):
                return False
        return True

    @classmethod
    def pack(cls, strings: Iterable[str]) -> PackedStrings:
        encoded = [s.encode("utf-8", "surrogateescape") for s in strings]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
        return cls(b"".join(encoded), offsets)

    @classmethod
    def concatenate(cls, parts: Sequence[PackedStrings]) -> PackedStrings:
        lengths = [np.diff(p.offsets) for p in parts]
        flat = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(flat) + 1, np.int64)
        np.cumsum(flat, out=offsets[1:])
        return cls(b"".join(p.blob for p in parts), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def take(self, start: int, stop: int) -> PackedStrings:
        """Strings *start* to *stop* (not included) as packed strings of their own."""
        offsets = self.offsets[start:stop + 1]
        return PackedStrings(bytes(self.blob[int(offsets[0]):int(offsets[-1])]), offsets - offsets[0])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = operator.index(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"string {i} of {n}")
        return str(self.blob[self.offsets[j] : self.offsets[j + 1]], "utf-8", "surrogateescape")

    def __iter__(self) -> Iterator[str]:
        blob = self.blob
        for start in range(0, len(self), self._ITER_CHUNK):  # Python ints for one chunk at a time
            offsets = self.offsets[start : start + self._ITER_CHUNK + 1].tolist()
            yield from (str(blob[a:b], "utf-8", "surrogateescape") for a, b in zip(offsets, offsets[1:]))

    _ITER_CHUNK = 1 << 13

    def __reduce__(self):
        # A memory-mapped blob travels as bytes (a memoryview cannot be pickled).
        blob = bytes(self.blob) if isinstance(self.blob, memoryview) else self.blob
        return PackedStrings, (blob, self.offsets)

    def nbytes(self) -> int:
        return len(self.blob) + self.offsets.nbytes


class Listing:
    """The items of one local copy, in the kind's listing order, as arrays.

    ``names[i]`` is what the id rules read (a folder's relative path, a tar
    sample's key, a parquet row's ``image.path``); item i's bytes are
    ``read(i)``: in ``sources[source[i]]`` at ``offset[i]`` (a tar member's
    data offset, a parquet row number; 0 for a file) with ``size[i]`` bytes
    (-1 where unknown before reading). ``signature`` lists ``(name, size,
    mtime_ns)`` of every file the listing came from: a cached resolution stays
    valid while it is unchanged. Handles open lazily, again after a fork.
    """

    def __init__(self, kind: type[Kind], root: str, sources: list[str], names: PackedStrings,
                 source: np.ndarray, offset: np.ndarray, size: np.ndarray,
                 signature: list[tuple[str, int, int]], extra: dict[str, Any] | None = None) -> None:
        self.kind, self.root, self.sources, self.names = kind, root, sources, names
        self.source = np.asarray(source, np.int32)
        self.offset = np.asarray(offset, np.int64)
        self.size = np.asarray(size, np.int64)
        self.signature = signature
        self.extra = extra or {}
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def handles(self) -> dict[int, Any]:
        """This process's open handles (a forked worker gets its own)."""
        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        return self._handles

    def read(self, i: int) -> bytes:
        """The bytes of item *i* (an image file's or member's bytes)."""
        return self.kind.read(self, int(i))

    def digest(self, i: int) -> str:
        """hex(SHA-256) of item *i*'s content (what a catalog's ``sha256`` field holds)."""
        return self.kind.digest(self, int(i))

    def where(self, i: int) -> str:
        """Where item *i* is held, for messages."""
        return self.kind.where(self, int(i))

    # -- the one cache format: a tar set's index, the listing the ranks of one machine
    # share, a catalog's resolution (the listing plus its own arrays). An uncompressed .npz,
    # memory-mapped on load, so processes that open one cache share its pages.
    _CACHE_VERSION = 1
    _CACHE_ARRAYS = frozenset(["meta", "sources_blob", "sources_offsets", "names_blob", "names_offsets", "source",
                               "offset", "size", "signature_blob", "signature_offsets", "signature_numbers"])

    def save(self, path: PathLike, attached: dict[str, np.ndarray] | None = None,
             note: dict[str, Any] | None = None) -> None:
        """Write this listing to *path* atomically (an uncompressed ``.npz``), with the
        user's *attached* arrays and JSON *note* (a resolution's map and its facts). Extras
        that are not arrays, packed strings or JSON values are left to ``Kind.restore``."""
        arrays: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        for key, value in self.extra.items():
            if isinstance(value, PackedStrings):
                arrays[f"x.{key}.blob"], arrays[f"x.{key}.offsets"] = _blob_array(value), value.offsets
            elif isinstance(value, np.ndarray) and not value.dtype.hasobject:
                arrays[f"x.{key}"] = value
            elif _is_json(value):
                plain[key] = value
        for key, value in (attached or {}).items():
            if key in self._CACHE_ARRAYS or key.startswith("x."):
                raise ValueError(f"attached array name {key!r} is one of the listing's own")
            arrays[key] = value
        meta = {"version": self._CACHE_VERSION, "kind": self.kind.name, "root": self.root, "extra": plain,
                "note": note or {}}
        sources = PackedStrings.pack(self.sources)
        signature = PackedStrings.pack(name for name, _, _ in self.signature)

        def write(fh: Any) -> None:
            np.savez(fh, meta=np.frombuffer(json.dumps(meta).encode("utf-8", "surrogateescape"), np.uint8),
                     sources_blob=_blob_array(sources), sources_offsets=sources.offsets,
                     names_blob=_blob_array(self.names), names_offsets=self.names.offsets,
                     source=self.source, offset=self.offset, size=self.size,
                     signature_blob=_blob_array(signature), signature_offsets=signature.offsets,
                     signature_numbers=np.array([(n, t) for _, n, t in self.signature], np.int64).reshape(-1, 2),
                     **arrays)

        write_atomically(Path(path), write)

    @classmethod
    def open_cache(cls, path: PathLike, kind: type[Kind] | None = None) -> CachedListing | None:
        """The listing saved at *path* with its attached arrays and note, memory-mapped, as
        saved (stale or not: compare ``listing.signature`` with the kind's now); None (a
        miss) when it is absent, not a regular file or a link, of another version or *kind*,
        or holds any value that does not check out: an item past its file, a source past the
        listing, arrays of unequal lengths. A cache is never trusted with an index."""
        arrays = map_npz_cache(Path(path))
        if arrays is None:
            return None
        try:
            meta = json.loads(_plain(arrays["meta"], "u").tobytes().decode("utf-8", "surrogateescape"))
            if not isinstance(meta, dict) or meta.get("version") != cls._CACHE_VERSION:
                return None
            found = _KINDS_BY_NAME.get(meta.get("kind"))  # type: ignore[arg-type]
            if found is None or (kind is not None and found is not kind) or not isinstance(meta.get("root"), str) \
                    or not isinstance(meta.get("extra"), dict) or not isinstance(meta.get("note"), dict):
                return None
            sources = list(PackedStrings(_plain(arrays["sources_blob"], "u"), _plain(arrays["sources_offsets"])))
            names = PackedStrings(_plain(arrays["names_blob"], "u"), _plain(arrays["names_offsets"]))
            numbers = arrays["signature_numbers"]
            sig_names = list(PackedStrings(_plain(arrays["signature_blob"], "u"), _plain(arrays["signature_offsets"])))
            if numbers.shape != (len(sig_names), 2) or numbers.dtype.kind != "i":
                return None
            signature = [(name, int(n), int(t)) for name, (n, t) in zip(sig_names, numbers.tolist())]
            n = len(names)
            source, offset, size = (_plain(arrays[k], length=n) for k in ("source", "offset", "size"))
            # (a folder listing has no sources: its items are files under the root)
            if n and (int(source.min()) < 0 or (sources and int(source.max()) >= len(sources))
                      or int(offset.min()) < 0 or int(size.min()) < -1 or int(offset.max()) >= 1 << 62
                      or int(size.max()) >= 1 << 62):
                return None
            if sources and len(signature) == len(sources) and n:
                # An item cannot run past the file it is in (a tampered size would be read whole).
                file_size = np.array([row[1] for row in signature], np.int64)
                for start in range(0, n, 1 << 16):  # a slice at a time: no N-sized temporaries
                    part = slice(start, start + (1 << 16))
                    end = offset[part].astype(np.int64) + np.maximum(size[part], 0)
                    if np.any(end > file_size[source[part]]):
                        return None
            extra: dict[str, Any] = dict(meta["extra"])
            attached: dict[str, np.ndarray] = {}
            for key, value in arrays.items():
                if key.startswith("x.") and key.endswith(".blob"):
                    name = key[2:-5]
                    extra[name] = PackedStrings(_plain(value, "u"), _plain(arrays[f"x.{name}.offsets"]))
                    if len(extra[name]) != n:
                        return None
                elif key.startswith("x.") and not key.endswith(".offsets"):
                    extra[key[2:]] = value
                elif key not in cls._CACHE_ARRAYS and not key.startswith("x."):
                    attached[key] = value
        except (KeyError, ValueError, TypeError, OverflowError, UnicodeDecodeError):
            return None
        listing = cls(found, meta["root"], sources, names, source, offset, size, signature, extra)
        return CachedListing(listing, attached, meta["note"])

    @classmethod
    def load(cls, path: PathLike, kind: type[Kind] | None = None,
             signature: list[tuple[str, int, int]] | None = None) -> Listing | None:
        """The listing saved at *path* (:meth:`open_cache`), if it is still current: None when
        it is stale against *signature* (the kind's ``signature`` of the copy now) or misses."""
        cached = cls.open_cache(path, kind)
        if cached is None:
            return None
        listing = cached.listing
        if signature is not None and listing.signature != [tuple(row) for row in signature]:
            return None
        try:
            listing.kind.restore(listing)
        except ReferenceSetError:
            return None
        return listing

    def close(self) -> None:
        for handle in self._handles.values():
            if isinstance(handle, int):  # a descriptor of Kind._descriptor
                os.close(handle)
                continue
            close = getattr(handle, "close", None)
            if close is not None:
                close()
        self._handles = {}


class CachedListing(NamedTuple):
    """A listing read back from its cache, with what was saved beside it."""

    listing: Listing
    attached: dict[str, np.ndarray]
    note: dict[str, Any]


def _plain(array: np.ndarray, kinds: str = "iu", length: int | None = None) -> np.ndarray:
    """*array* if it is 1-d, of an integer type (``u``: bytes) and of *length*; ValueError otherwise."""
    if array.ndim != 1 or array.dtype.kind not in kinds or (kinds == "u" and array.dtype.itemsize != 1) \
            or (length is not None and len(array) != length):
        raise ValueError(f"cache array of {array.dtype} and shape {array.shape}")
    return array


# Every Kind subclass by its name, filled as each is defined: what a cache names, found
# without importing the registry (kinds/__init__.py's KINDS, the detection order) from here.
_KINDS_BY_NAME: dict[str, type[Kind]] = {}


class Kind:
    """One storage layout of a reference set. Subclasses are stateless."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _KINDS_BY_NAME[cls.name] = cls

    name: ClassVar[str] = ""
    #: what the kind lists in parts ("shards"), for a progress bar; None: it lists at once
    parts: ClassVar[str | None] = None
    #: the id rules this kind supports, the first being its default
    id_rules: ClassVar[tuple[str, ...]] = ("stem", "key")

    @classmethod
    def detect(cls, path: Path) -> bool:
        raise NotImplementedError

    @classmethod
    def scan(cls, path: str, workers: int | None = None, progress: Callable[[int], None] | None = None,
             previous: Listing | None = None) -> Listing:
        """Every item of the copy at *path*. A kind that lists in parts may use *workers*
        processes, call *progress* with the parts listed so far, and take what did not change
        from *previous* (an earlier listing of the copy); the others ignore them."""
        raise NotImplementedError

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        raise NotImplementedError

    @classmethod
    def signature(cls, path: str) -> list[tuple[str, int, int]]:
        """What a listing's ``signature`` would be now, as cheaply as the
        layout allows (a stat per shard; a folder tree is walked again)."""
        return cls.scan(path).signature

    @classmethod
    def restore(cls, listing: Listing) -> None:
        """Rebuild what a cached listing does not store (nothing, by default)."""

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        return f"{listing.sources[listing.source[i]]}"

    @classmethod
    def extent(cls, listing: Listing, i: int) -> tuple[str, int, int] | None:
        """``(file, offset, size)`` holding item *i*'s bytes as one range, or None where
        they are not one (a parquet row, an array item)."""
        return None

    @classmethod
    def digest(cls, listing: Listing, i: int) -> str:
        """hex(SHA-256) of item *i*'s content: of its bytes, for files and members.
        An item held as a file range is hashed a MiB at a time, never held whole."""
        extent = cls.extent(listing, i)
        if extent is None:
            return hashlib.sha256(cls.read(listing, i)).hexdigest()
        file, offset, size = extent
        where = cls.where(listing, i)
        # A member of a listed source (a tar shard) is read through the source's one descriptor:
        # a catalog's digests of 14M members are 14M reads, not 14M opens.
        number = int(listing.source[i]) if listing.sources else -1
        shared = 0 <= number < len(listing.sources) and listing.sources[number] == file
        fd = cls._descriptor(listing, number) if shared else open_regular(file, where)
        digest = hashlib.sha256()
        try:
            for start in range(offset, offset + size, _DIGEST_CHUNK):
                digest.update(read_exactly(fd, start, min(_DIGEST_CHUNK, offset + size - start), where))
        finally:
            if not shared:
                os.close(fd)
        return digest.hexdigest()

    @classmethod
    def _descriptor(cls, listing: Listing, number: int) -> int:
        """This process's descriptor of ``listing.sources[number]``, opened once. Reads
        through it are positional (os.pread), so threads sharing a listing never move
        one another's file position."""
        handles = listing.handles()
        fd = handles.get(number)
        if fd is None:
            fd = open_regular(listing.sources[number], listing.sources[number])
            kept = handles.setdefault(number, fd)
            if kept != fd:  # another thread opened it first
                os.close(fd)
                fd = kept
        return fd

    @classmethod
    def item_names(cls, listing: Listing, rule: str) -> Iterator[str]:
        """Each item's id under *rule* (``stem``, ``key`` or ``column:NAME``)."""
        if rule == "stem":
            return map(stem_of, listing.names)
        if rule == "key":
            return map(key_of, listing.names)
        raise ReferenceSetError(
            f"id rule {rule!r} does not apply to a {cls.name} reference; use one of {', '.join(cls.id_rules)}"
        )


class RowsKind(Kind):
    """A layout of table rows with an image column (parquet, a ``datasets`` copy): names are
    ``image.path``, and ``column:NAME`` takes ids from another column (``_column``)."""

    image_column: ClassVar[str] = "image"
    id_rules = ("stem", "key", "column:NAME")

    @classmethod
    def item_names(cls, listing: Listing, rule: str) -> Iterator[str]:
        if rule.startswith("column:"):
            return cls._column(listing, rule.partition(":")[2])
        if rule in ("stem", "key") and len(listing) and not listing.names[0]:
            raise ReferenceSetError(
                f"{listing.sources[0]}: rows have no {cls.image_column}.path to take a {rule} from; "
                "name the id column with --id column:NAME"
            )
        return super().item_names(listing, rule)

    @classmethod
    def _column(cls, listing: Listing, column: str) -> Iterator[str]:
        raise NotImplementedError


def _blob_array(strings: PackedStrings) -> np.ndarray:
    return np.frombuffer(strings.blob, np.uint8) if len(strings.blob) else np.zeros(0, np.uint8)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def holds_only(path: Path, suffix: str) -> bool:
    """Whether the folder *path* holds at least one visible regular ``*suffix`` file and nothing
    else visible (how a folder of tar shards or of parquet files is told from a folder tree)."""
    if not path.is_dir():
        return False
    try:
        visible = [e for e in os.scandir(path) if not e.name.startswith(".")]
    except OSError as exc:
        raise ReferenceSetError(f"{path}: cannot list ({exc.strerror or exc})") from exc
    files = [e for e in visible if e.name.endswith(suffix) and e.is_file(follow_symlinks=False)]
    return bool(files) and len(files) == len(visible)


def file_signature(files: Sequence[str]) -> list[tuple[str, int, int]]:
    """(file name, size, mtime_ns) of each file."""
    rows = []
    for file in files:
        try:
            st = os.stat(file)
        except OSError as exc:
            raise ReferenceSetError(f"{file}: cannot stat ({exc.strerror or exc})") from None
        rows.append((os.path.basename(file), st.st_size, st.st_mtime_ns))
    return rows


_DIGEST_CHUNK = 1 << 20


def open_regular(path: str, where: str) -> int:
    """A read-only descriptor of the regular file *path*, or ReferenceSetError naming *where*.
    Opened without blocking and checked before any read (``open_for_reading``), so a FIFO, a
    device or a link to one planted where a file was listed is refused, never waited on or read
    without end."""
    try:
        return open_for_reading(path)
    except NotARegularFileError:
        raise ReferenceSetError(f"{where}: not a regular file; the copy changed since it was listed") from None
    except OSError as exc:
        raise ReferenceSetError(f"{where}: cannot be read ({exc.strerror or exc}); "
                                "the copy changed since it was listed") from None


def read_exactly(fd: int, offset: int, size: int, where: str) -> bytes:
    """*size* bytes at *offset* of the descriptor *fd* (positional reads: no shared file
    position), or ReferenceSetError naming *where* when the file is shorter."""
    if size < 0 or offset < 0:
        raise ReferenceSetError(f"{where}: no item at offset {offset} of {size} bytes")
    parts = []
    done = 0
    while done < size:
        try:
            # Linux returns at most 0x7ffff000 bytes a call: a large member takes several.
            part = os.pread(fd, min(size - done, 1 << 30), offset + done)
        except OSError as exc:
            raise ReferenceSetError(f"{where}: cannot be read ({exc.strerror or exc})") from None
        if not part:
            raise ReferenceSetError(f"{where}: truncated ({done} of {size} bytes at offset {offset}); "
                                    "the file changed since it was listed")
        parts.append(part)
        done += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)
