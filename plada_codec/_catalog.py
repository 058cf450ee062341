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

Ids and groups are held packed (one blob plus offsets, :class:`PackedStrings`),
so memory follows the text's size, never N times the longest id; they are
ordered and looked up by comparing 8 bytes at a time with numpy.
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import io
import operator
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import NotARegularFileError, open_for_reading
from ._errors import ReferenceSetError
from ._ids import check_ids, is_within, path_argument
from ._npz import regular_descriptor
from ._reference import ReferenceSet
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
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_NOT_HEX = re.compile(rb"[^0-9a-f]")
_SHOWN = 5  # ids shown in a report of missing / extra / differing items
_RESOLUTION_VERSION = 1
_UTF8_STEP = 1 << 20  # bytes decoded at a time when checking a catalog is UTF-8


def _shown(ids: Iterable[str]) -> str:
    return ", ".join(repr(i) for i in ids)


def _is_skippable_frame(head: bytes) -> bool:
    """Zstandard skippable frames have the magic numbers 0x184D2A50..0x184D2A5F (RFC 8878 3.1.2)."""
    return len(head) >= 4 and 0x184D2A50 <= int.from_bytes(head[:4], "little") <= 0x184D2A5F


# -- strings held packed, ordered 8 bytes at a time ------------------------------------

_ALL_ONES = (1 << 64) - 1
# _KEEP[k] keeps the first k bytes of a big-endian 8-byte word (the rest is past the string's end).
_KEEP = np.array([0] + [(_ALL_ONES << (64 - 8 * k)) & _ALL_ONES for k in range(1, 9)], np.uint64)
# Below this many strings still undecided, Python's bytes comparison finishes the job: a round of
# numpy calls costs a fixed overhead, and two ids sharing a long prefix would otherwise take one
# round per 8 bytes of it.
_FEW = 512
_SLICE = 1 << 18  # strings handled in one numpy call at most (whole runs when sorting): bounds the temporaries


class _Words:
    """Packed strings read as big-endian 8-byte words, zero past each string's end.

    Strings here hold no NUL (ids and groups hold no control character), so
    comparing word by word is comparing bytes, and strings whose words all
    match are equal. Nothing per string is stored beyond the offsets."""

    def __init__(self, strings: PackedStrings) -> None:
        raw = np.frombuffer(strings.blob, np.uint8)
        if len(raw) < 8:
            raw = np.concatenate([raw, np.zeros(8 - len(raw), np.uint8)])
        self.raw = raw
        # One unaligned 8-byte view starting at every byte: no copy of the blob.
        self.words = np.ndarray((len(raw) - 7,), ">u8", raw, 0, (1,))
        self.last = len(raw) - 8
        self.offsets = strings.offsets
        self.n = len(strings)

    def length(self, items: np.ndarray) -> np.ndarray:
        return self.offsets[items + 1] - self.offsets[items]

    def word(self, items: np.ndarray, k: int) -> np.ndarray:
        """Word *k* (bytes 8k..8k+7) of each string in *items*, as uint64."""
        if len(items) <= _SLICE:
            return self._word(items, k)
        out = np.empty(len(items), np.uint64)
        for a in range(0, len(items), _SLICE):  # the temporaries of a slice at a time
            out[a:a + _SLICE] = self._word(items[a:a + _SLICE], k)
        return out

    def _word(self, items: np.ndarray, k: int) -> np.ndarray:
        starts = self.offsets[items]
        pos = starts + 8 * k
        keep = np.clip(self.offsets[items + 1] - pos, 0, 8)
        at = np.minimum(pos, self.last)  # the last word of the blob, shifted, near its end
        shift = np.minimum(pos - at, 7).astype(np.uint64) * np.uint64(8)
        return (self.words[at].astype(np.uint64) << shift) & _KEEP[keep]

    def tail(self, item: int, k: int) -> bytes:
        """String *item* from byte 8k on."""
        return self.raw[int(self.offsets[item]) + 8 * k:int(self.offsets[item + 1])].tobytes()


class _Pair:
    """Two sets of packed strings seen as one: items ``0..n-1`` are the first's."""

    def __init__(self, first: _Words, second: _Words) -> None:
        self.first, self.second, self.n = first, second, first.n

    def _split(self, method: str, items: np.ndarray, *args: Any) -> np.ndarray:
        if len(items) > _SLICE:  # the temporaries of a slice at a time
            out = np.empty(len(items), np.uint64 if method == "word" else np.int64)
            for a in range(0, len(items), _SLICE):
                out[a:a + _SLICE] = self._split(method, items[a:a + _SLICE], *args)
            return out
        mine = items < self.n
        head = getattr(self.first, method)(items[mine], *args)
        out = np.empty(len(items), head.dtype)
        out[mine] = head
        out[~mine] = getattr(self.second, method)(items[~mine] - self.n, *args)
        return out

    def length(self, items: np.ndarray) -> np.ndarray:
        return self._split("length", items)

    def word(self, items: np.ndarray, k: int) -> np.ndarray:
        return self._split("word", items, k)

    def tail(self, item: int, k: int) -> bytes:
        return self.first.tail(item, k) if item < self.n else self.second.tail(item - self.n, k)


def _tied(first: np.ndarray) -> np.ndarray:
    """Which places of a sorted run equal a neighbour (``first`` marks a new value)."""
    same = ~first
    tied = same.copy()
    tied[:-1] |= same[1:]
    return tied


def _byte_order(words: _Words | _Pair, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort *n* strings by their bytes, stably: ``(order, first)``, ``first[p]`` False
    where string ``order[p]`` equals string ``order[p - 1]``.

    Round k sorts, within each run still tied, by word k; only strings tied so far
    and at least 8k bytes long take part, so the work follows the text's size."""
    first = np.ones(n, bool)
    if n == 0:
        return np.zeros(0, np.int64), first
    w = np.empty(n, np.uint64)
    for a in range(0, n, _SLICE):  # no N-sized index array: a slice of one at a time
        w[a:a + _SLICE] = words.word(np.arange(a, min(n, a + _SLICE)), 0)
    order = np.argsort(w, kind="stable")
    del w
    w = words.word(order, 0)
    first[1:] = w[1:] != w[:-1]
    del w
    # A string of exactly 8k bytes stays in its run: the next word (zero) puts it first.
    active = np.flatnonzero(_tied(first) & (words.length(order) >= 8))
    k = 1
    while len(active):
        if len(active) <= _FEW:
            _finish_order(words, order, first, active, k)
            break
        run_starts = np.flatnonzero(first[active])
        kept = []
        a = 0
        while a < len(active):  # a slice of whole runs at a time
            cut = int(np.searchsorted(run_starts, a + _SLICE))
            b = int(run_starts[cut]) if cut < len(run_starts) else len(active)
            part = active[a:b]
            runs = np.cumsum(first[part])
            items = order[part]
            w = words.word(items, k)
            by = np.lexsort((w, runs))
            items, w, runs = items[by], w[by], runs[by]
            order[part] = items
            fresh = np.ones(len(part), bool)
            fresh[1:] = (runs[1:] != runs[:-1]) | (w[1:] != w[:-1])
            first[part] = fresh
            kept.append(part[_tied(fresh) & (words.length(items) >= 8 * (k + 1))])
            a = b
        del run_starts, part, runs, items, w, by, fresh
        k += 1
        active = np.concatenate(kept)
    return order, first


def _finish_order(words: _Words | _Pair, order: np.ndarray, first: np.ndarray, active: np.ndarray,
                  k: int) -> None:
    """Sort the few tied runs left at *active* by the rest of their bytes, in Python."""
    bounds = np.flatnonzero(first[active]).tolist() + [len(active)]
    for a, b in zip(bounds, bounds[1:]):
        span = active[a:b]
        ranked = sorted((words.tail(i, k), i) for i in order[span].tolist())
        order[span] = [i for _, i in ranked]
        first[span[1:]] = [x[0] != y[0] for x, y in zip(ranked, ranked[1:])]


def _ranks(strings: PackedStrings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rank, order, first)``: each string's rank in byte order (equal strings share one)
    and :func:`_byte_order`'s result."""
    order, first = _byte_order(_Words(strings), len(strings))
    rank = np.empty(len(strings), np.int64)
    rank[order] = np.cumsum(first) - 1
    return rank, order, first


def _compare(left: _Words, a: np.ndarray, right: _Words, b: np.ndarray) -> np.ndarray:
    """The sign of ``left[a[j]]`` against ``right[b[j]]`` in byte order, for each j."""
    out = np.zeros(len(a), np.int8)
    pending = np.arange(len(a))
    k = 0
    while len(pending):
        if len(pending) <= _FEW:
            for j in pending.tolist():
                x, y = left.tail(int(a[j]), k), right.tail(int(b[j]), k)
                out[j] = (x > y) - (x < y)
            break
        ia, ib = a[pending], b[pending]
        wa, wb = left.word(ia, k), right.word(ib, k)
        out[pending] = (wa > wb).astype(np.int8) - (wa < wb)
        k += 1
        la, lb = left.length(ia), right.length(ib)
        more = (wa == wb) & ((la > 8 * k) | (lb > 8 * k))
        ended = (wa == wb) & ~more  # equal to their ends: the shorter first
        out[pending[ended]] = np.sign(la[ended] - lb[ended])
        pending = pending[more]
    return out


def _take(strings: PackedStrings, order: np.ndarray) -> PackedStrings:
    """The strings in *order*, packed again (a few MiB of index at a time)."""
    lengths = np.diff(strings.offsets)[order]
    starts = strings.offsets[:-1][order]
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    source = np.frombuffer(strings.blob, np.uint8)
    out = np.empty(int(offsets[-1]), np.uint8)
    i, n = 0, len(order)
    while i < n:
        j = max(i + 1, int(np.searchsorted(offsets, offsets[i] + (1 << 22), "right")) - 1)
        j = min(j, n)
        if j == i + 1:
            s = int(starts[i])
            out[offsets[i]:offsets[i + 1]] = source[s:s + int(lengths[i])]
        else:
            shift = np.repeat(starts[i:j] - offsets[i:j], lengths[i:j])
            out[offsets[i]:offsets[j]] = source[np.arange(offsets[i], offsets[j]) + shift]
        i = j
    return PackedStrings(out.tobytes(), offsets)


def _raw(strings: PackedStrings, start: int, stop: int) -> list[memoryview]:
    """Strings *start*..*stop* as views of the blob, no decoding."""
    blob = memoryview(strings.blob)
    bounds = strings.offsets[start:stop + 1].tolist()
    return [blob[a:b] for a, b in zip(bounds, bounds[1:])]


def _extract(text: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> PackedStrings:
    """The fields ``text[starts[i]:ends[i]]`` (ascending, not overlapping) packed."""
    inside = np.zeros(len(text) + 1, np.int8)
    inside[starts] += 1
    inside[ends] -= 1
    np.cumsum(inside, dtype=np.int8, out=inside)  # in place: 1 inside a field, else 0
    offsets = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(ends - starts, out=offsets[1:])
    return PackedStrings(text[inside[:-1].view(bool)].tobytes(), offsets)


def _query_strings(ids: Any) -> PackedStrings:
    """Ids to look up, packed; ReferenceSetError for anything but str ids."""
    if isinstance(ids, PackedStrings):
        return ids
    if isinstance(ids, (str, bytes)):
        raise ReferenceSetError(f"catalog ids are looked up as a sequence of str, not one {type(ids).__name__} "
                                "(index_of looks up one id)")
    if isinstance(ids, np.ndarray) and ids.dtype.kind not in "UO":
        raise ReferenceSetError(f"catalog ids are looked up as a sequence of str, not {ids.dtype} values")
    try:
        values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    except TypeError:
        raise ReferenceSetError(f"catalog ids are looked up as a sequence of str, not {type(ids).__name__}") from None
    for value in values:
        if not isinstance(value, str):
            raise ReferenceSetError(f"catalog ids are looked up as a sequence of str, not of {type(value).__name__} "
                                    f"({value!r})")
    return _pack(values)


def _pack(strings: Sequence[str]) -> PackedStrings:
    """*strings* packed, encoded a slice at a time (not one bytes object per string at once)."""
    parts, lengths = [], np.zeros(len(strings) + 1, np.int64)
    for a in range(0, len(strings), 1 << 16):
        encoded = [s.encode("utf-8", "surrogateescape") for s in strings[a:a + (1 << 16)]]
        lengths[a + 1:a + 1 + len(encoded)] = [len(e) for e in encoded]
        parts.append(b"".join(encoded))
    return PackedStrings(b"".join(parts), np.cumsum(lengths))


class _Ids(Sequence):
    """The catalog's ids as a read-only sequence of str, in catalog order."""

    def __init__(self, strings: PackedStrings) -> None:
        self._strings = strings

    def __len__(self) -> int:
        return len(self._strings)

    def __getitem__(self, i):
        return self._strings[i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._strings)


def _check_workers(workers: Any) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ReferenceSetError(f"workers must be a positive int or None, got {workers!r}")


def _check_rule(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise ReferenceSetError(f"{what} must be a str, got {value!r}")


def _bar(progress: bool, desc: str, total: int):
    """A tqdm bar in items on standard error when *progress* (shown only on a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=" items", disable=None if progress else True, leave=False,
                dynamic_ncols=True)


class Catalog:
    """An ordered, storage-independent list of item ids (spec/REFERENCE.md 8).

    ``len(catalog)`` is N; ``catalog.ids`` the ids in catalog order;
    ``catalog.index_of(id)`` an id's position, the index a payload uses;
    ``catalog.reference`` the :class:`ReferenceSet` (N, fingerprint) to pass to
    :func:`~plada_codec.encode` / :func:`~plada_codec.decode`. Build one from a
    local copy with :meth:`build`, read one with :meth:`open`, and map a local
    copy of any layout onto it with :meth:`resolve`.
    """

    def __init__(self, ids: PackedStrings, groups: PackedStrings | None, digests: np.ndarray | None,
                 fingerprint: bytes, path: str = "") -> None:
        self._ids, self._groups, self._digests = ids, groups, digests
        self.fingerprint = fingerprint
        self.path = path
        self._by_id: np.ndarray | None = None
        self._words: _Words | None = None

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
        return None if self._groups is None else self._groups[position]

    def digest_of(self, position: int) -> str | None:
        return None if self._digests is None else self._digests[position].tobytes().hex()

    @property
    def reference(self) -> ReferenceSet:
        """N and fingerprint, the binding a payload made against this catalog carries."""
        return ReferenceSet(len(self), self.fingerprint, source=f"catalog {self.path or '(in memory)'}")

    def _id_words(self) -> _Words:
        if self._words is None:
            self._words = _Words(self._ids)
        return self._words

    def _id_order(self) -> np.ndarray | None:
        """Catalog positions in id order; None when that is catalog order (no group field)."""
        if self._groups is None:
            return None
        if self._by_id is None:
            self._by_id = _byte_order(self._id_words(), len(self))[0]
        return self._by_id

    def positions_of(self, ids: np.ndarray | Sequence[str]) -> np.ndarray:
        """Catalog positions of many ids at once (``-1`` for an id not in the catalog).
        *ids* is a sequence (or numpy array) of str; anything else raises
        :class:`~plada_codec.ReferenceSetError`."""
        return self._lookup(_query_strings(ids))[0]

    def _lookup(self, queries: PackedStrings, duplicates: bool = False) -> tuple[np.ndarray, tuple[int, int] | None]:
        """Positions of *queries*, and (with *duplicates*) two indices of queries that are equal."""
        m, n = len(queries), len(self)
        positions = np.full(m, -1, np.int64)
        if not m:
            return positions, None
        # An id with a control character is in no catalog, and the word order assumes none.
        clean = np.ones(m, bool)
        for bad in _CONTROL.finditer(queries.blob):
            clean[int(np.searchsorted(queries.offsets, bad.start(), "right")) - 1] = False
        if not clean.all():
            keep = np.flatnonzero(clean)
            found, pair = self._lookup(_take(queries, keep), duplicates)
            positions[keep] = found
            return positions, None if pair is None else (int(keep[pair[0]]), int(keep[pair[1]]))
        if m <= 64 or m * 64 <= n:  # a few ids: a binary search each beats sorting the catalog
            return self._bisect(queries, duplicates)
        order, first = _byte_order(_Pair(self._id_words(), _Words(queries)), n + m)
        # The sort is stable and catalog ids come first, so an id the catalog holds heads its run.
        head = np.where(first, np.arange(n + m), 0)
        np.maximum.accumulate(head, out=head)
        head = order[head]
        query = order >= n
        hit = np.flatnonzero(query & (head < n))
        positions[order[hit] - n] = head[hit]
        pair = None
        if duplicates:
            twice = np.flatnonzero(~first[1:] & query[1:] & query[:-1])
            if len(twice):
                pair = (int(order[twice[0]]) - n, int(order[twice[0] + 1]) - n)
        return positions, pair

    def _bisect(self, queries: PackedStrings, duplicates: bool) -> tuple[np.ndarray, tuple[int, int] | None]:
        blob, offsets, order = memoryview(self._ids.blob), self._ids.offsets, self._id_order()
        n = len(self)

        def at(i: int) -> bytes:
            p = i if order is None else int(order[i])
            return bytes(blob[offsets[p]:offsets[p + 1]])

        positions = np.full(len(queries), -1, np.int64)
        seen: dict[bytes, int] = {}
        pair = None
        for j, query in enumerate(_raw(queries, 0, len(queries))):
            q = bytes(query)
            if duplicates and pair is None:
                if q in seen:
                    pair = (seen[q], j)
                seen[q] = j
            lo, hi = 0, n
            while lo < hi:
                mid = (lo + hi) // 2
                if at(mid) < q:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < n and at(lo) == q:
                positions[j] = lo if order is None else int(order[lo])
        return positions, pair

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
        """Write the text to *out* a few rows at a time (*out* has ``write`` or, a hash, ``update``)."""
        write = getattr(out, "write", None) or out.update
        write(CATALOG_HEADER)
        write(("fields " + " ".join(self.fields) + "\n").encode("ascii"))
        step = 1 << 16
        for start in range(0, len(self), step):
            stop = min(len(self), start + step)
            columns: list[Any] = [_raw(self._ids, start, stop)]
            if self._groups is not None:
                columns.append(_raw(self._groups, start, stop))
            if self._digests is not None:
                hexes = binascii.hexlify(self._digests[start:stop].tobytes())
                columns.append([hexes[i:i + 64] for i in range(0, len(hexes), 64)])
            write(b"".join(b"\t".join(row) + b"\n" for row in zip(*columns)))

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
        problem (line number) for a file that breaks spec/REFERENCE.md 8, for
        anything but a regular file (a FIFO or a device is never waited on),
        and for text over *max_bytes* (checked before it is read or
        decompressed)."""
        path = Path(path_argument(path, "catalog"))
        try:
            fd = open_for_reading(path)  # a FIFO is never waited on, a device never read
        except NotARegularFileError:
            raise ReferenceSetError(f"{path}: not a regular file (a folder, FIFO or device); "
                                    "a catalog is read from a file") from None
        except OSError as exc:
            raise ReferenceSetError(f"{path}: cannot read the catalog ({exc.strerror or exc})") from None
        try:
            st = os.fstat(fd)
            with os.fdopen(fd, "rb") as fh:
                head = fh.read(len(_ZSTD_MAGIC))
                fh.seek(0)
                data: bytes | bytearray
                if head == _ZSTD_MAGIC:
                    data = _read_zstd(fh, max_bytes, path)
                elif _is_skippable_frame(head):
                    raise ReferenceSetError(f"{path}: starts with a skippable Zstandard frame; a catalog file is "
                                            "its text or exactly one Zstandard frame (spec/REFERENCE.md 8.1)")
                else:
                    if st.st_size > max_bytes:
                        raise ReferenceSetError(f"{path}: catalog of {st.st_size} bytes is over the limit of "
                                                f"{max_bytes}")
                    data = fh.read(max_bytes + 1)  # the file may have grown since fstat
                    if len(data) > max_bytes:
                        raise ReferenceSetError(f"{path}: catalog is over the limit of {max_bytes} bytes")
        except OSError as exc:
            raise ReferenceSetError(f"{path}: cannot read the catalog ({exc.strerror or exc})") from None
        return cls._parse(data, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "catalog") -> Catalog:
        """Parse canonical catalog text (see :meth:`open`)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ReferenceSetError(f"{where}: catalog text must be bytes, not {type(data).__name__}")
        return cls._parse(bytes(data) if isinstance(data, memoryview) else data, where)

    @classmethod
    def _parse(cls, data: bytes | bytearray, where: str) -> Catalog:
        if not data.startswith(CATALOG_HEADER):
            if data.startswith(b"plada-reference-manifest"):
                raise ReferenceSetError(f"{where}: a reference manifest, not a catalog; use it with --manifest")
            raise ReferenceSetError(f"{where}: not a plada catalog (first line must be 'plada-catalog 1')")
        fields_end = data.find(b"\n", len(CATALOG_HEADER))
        fields_line = bytes(data[len(CATALOG_HEADER):fields_end]) if fields_end >= 0 else b""
        fields = tuple(fields_line.split(b" "))
        if not fields_line.startswith(b"fields ") or tuple(f.decode("ascii", "replace") for f in fields[1:]) \
                not in _FIELD_SETS:
            raise ReferenceSetError(f"{where}: line 2 must be 'fields id', 'fields id group', 'fields id sha256' "
                                    f"or 'fields id group sha256', got {fields_line[:80]!r}")
        names = [f.decode("ascii") for f in fields[1:]]
        body = np.frombuffer(data, np.uint8)[fields_end + 1:]

        def line_of(offset: int) -> int:  # the line number of a byte of the body
            return int(np.count_nonzero(body[:offset] == 0x0A)) + 3

        if not len(body):
            raise ReferenceSetError(f"{where}: the catalog lists no items (a reference set holds at least one)")
        if body[-1] != 0x0A:
            raise ReferenceSetError(f"{where}: the last line does not end in LF")
        bad = _FORBIDDEN.search(data, fields_end + 1)
        if bad:
            raise ReferenceSetError(f"{where}:{line_of(bad.start() - fields_end - 1)}: control character "
                                    f"0x{data[bad.start()]:02x} (ids and groups hold no U+0000-U+001F or U+007F; "
                                    "no CR, no blank line)")
        _check_utf8(memoryview(data)[fields_end + 1:], where, line_of)
        ends = np.flatnonzero(body == 0x0A)
        n = len(ends)
        starts = np.empty(n, np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        if len(names) == 1:
            tab = data.find(b"\t", fields_end + 1)
            if tab >= 0:
                raise ReferenceSetError(f"{where}:{line_of(tab - fields_end - 1)}: a TAB in a catalog whose only "
                                        "field is id")
            bounds = [(starts, ends)]
        else:
            tabs = np.flatnonzero(body == 0x09)
            per_line = np.bincount(np.searchsorted(ends, tabs), minlength=n)
            wrong = np.flatnonzero(per_line != len(names) - 1)
            if len(wrong):
                line = int(wrong[0])
                raise ReferenceSetError(f"{where}:{line + 3}: {int(per_line[line]) + 1} fields, the header names "
                                        f"{len(names)}")
            by_line = tabs.reshape(n, len(names) - 1)
            field_starts = [starts, *(by_line[:, i] + 1 for i in range(len(names) - 1))]
            field_ends = [*(by_line[:, i] for i in range(len(names) - 1)), ends]
            bounds = list(zip(field_starts, field_ends))
            del tabs, by_line, per_line, field_starts, field_ends
        empty = np.flatnonzero(bounds[0][1] == bounds[0][0])
        if len(empty):
            raise ReferenceSetError(f"{where}:{int(empty[0]) + 3}: empty id")
        digests = None
        if "sha256" in names:
            digest_starts, digest_ends = bounds[names.index("sha256")]
            wrong = np.flatnonzero(digest_ends - digest_starts != 64)
            if len(wrong):
                raise ReferenceSetError(f"{where}:{int(wrong[0]) + 3}: a digest must be 64 lowercase hex digits")
            hexes = _extract(body, digest_starts, digest_ends).blob
            bad = _NOT_HEX.search(hexes)
            if bad:
                raise ReferenceSetError(f"{where}:{bad.start() // 64 + 3}: a digest must be 64 lowercase hex digits")
            digests = np.frombuffer(binascii.unhexlify(hexes), np.uint8).reshape(-1, 32)
            del hexes
        ids = _extract(body, *bounds[0]) if len(names) > 1 else \
            PackedStrings(body[body != 0x0A].tobytes(), np.concatenate([[0], np.cumsum(ends - starts)]))
        groups = _extract(body, *bounds[names.index("group")]) if "group" in names else None
        del bounds, starts, ends
        _check_order(ids, groups, where)
        catalog = cls(ids, groups, digests, hashlib.sha256(data).digest(), where)
        if groups is not None:
            _check_unique(catalog, where)
        return catalog

    # -- building -----------------------------------------------------------------

    @classmethod
    def from_items(cls, ids: Sequence[str], *, groups: Sequence[str] | None = None,
                   digests: Sequence[str] | None = None, where: str = "items") -> Catalog:
        """The catalog of these items, in canonical order (any order given)."""
        if isinstance(ids, (str, bytes)):
            raise ReferenceSetError(f"{where}: ids must be a sequence of str, not one {type(ids).__name__}")
        ids = list(ids)
        if not ids:
            raise ReferenceSetError(f"{where}: no items; a catalog holds at least one")
        for item_id in ids:
            if not isinstance(item_id, str) or not item_id:
                raise ReferenceSetError(f"{where}: item id must be a non-empty str, got {item_id!r}")
        check_ids(ids, where)
        packed = _pack(ids)
        del ids
        n = len(packed)
        group_strings = None
        if groups is not None:
            groups = list(groups)
            if len(groups) != n:
                raise ReferenceSetError(f"{where}: {len(groups)} groups for {n} ids")
            for group in groups:
                if not isinstance(group, str):
                    raise ReferenceSetError(f"{where}: a group must be a str (empty for none), got {group!r}")
            if any(groups):
                check_ids([g for g in groups if g], f"{where} (groups)")
            group_strings = _pack(groups)
            del groups
        digest_array = None
        if digests is not None:
            digests = list(digests)
            if len(digests) != n:
                raise ReferenceSetError(f"{where}: {len(digests)} digests for {n} ids")
            if not all(isinstance(d, str) and len(d) == 64 for d in digests) \
                    or _NOT_HEX.search("".join(digests).encode("ascii", "replace")):
                raise ReferenceSetError(f"{where}: digests must be 64 lowercase hex digits")
            digest_array = np.frombuffer(bytes.fromhex("".join(digests)), np.uint8).reshape(-1, 32)
        id_rank, by_id, first = _ranks(packed)
        twice = np.flatnonzero(~first)
        if len(twice):
            raise ReferenceSetError(f"{where}: item id {packed[int(by_id[twice[0]])]!r} appears twice; ids must "
                                    "be unique (choose another --id rule)")
        if group_strings is None:
            order = by_id
        else:
            order = np.lexsort((id_rank, _ranks(group_strings)[0]))
        del id_rank, by_id, first
        catalog = cls(_take(packed, order), None if group_strings is None else _take(group_strings, order),
                      None if digest_array is None else digest_array[order], b"", "")
        digest = hashlib.sha256()
        catalog._write_text(digest)
        catalog.fingerprint = digest.digest()
        return catalog

    @classmethod
    def build(cls, path: PathLike, output: PathLike | None = None, *, id: str = "stem", group: str = "none",
              content: bool = True, kind: str = "auto", workers: int | None = None,
              progress: bool = False) -> Catalog:
        """The catalog of the copy at *path* (a folder tree, ``.tar`` shards,
        parquet files or an ``.npz``), written to *output* when given.

        *id* is the id rule (``stem``: a file's or member's base name up to its
        first ``.``; ``key``: the same with its folders kept; ``column:NAME``
        for parquet); *group* ``none``, ``parent`` (the item's folder name) or
        ``prefix:SEP`` (the id up to its first SEP); *content* adds each item's
        SHA-256, hashed by up to *workers* threads (a positive int; default up
        to 8); *progress* shows bars (on a terminal) of shards listed and
        items hashed.
        Duplicate and empty ids are refused naming the items.
        """
        _check_rule(id, "the id rule")
        _check_rule(group, "the group rule")
        _check_workers(workers)
        if output is not None and Path(path).is_dir() and not Path(output).name.startswith(".") \
                and is_within(Path(output).parent, Path(path)):
            # It would become an item of the copy it lists (a folder's fingerprint and manifests
            # change with every visible file) the next time that copy is listed.
            raise ReferenceSetError(f"{output}: a catalog inside the folder it lists ({path}) would become one of "
                                    "its items; write it elsewhere (or give it a name starting with '.')")
        listing = _scan(detect_kind(path, kind), os.fspath(path), progress=progress)
        ids = item_ids(listing, id)
        groups = _groups(listing, ids, group)
        digests = _digests(listing, range(len(listing)), workers, progress) if content else None
        catalog = cls.from_items(ids, groups=groups, digests=digests, where=os.fspath(path))
        if output is not None:
            catalog.write(output)
        return catalog

    # -- resolving a local copy -------------------------------------------------

    def resolve(self, local: PathLike, *, kind: str = "auto", id: str = "stem", content: bool | None = None,
                index: PathLike | None = None, workers: int | None = None, rebuild: bool = False,
                progress: bool = False) -> Resolution:
        """Map the local copy at *local* (any layout) onto this catalog.

        Every catalog item is found where the copy holds it (file; shard and
        member offset; parquet file and row) or reported missing; local items
        the catalog lacks are extra. With *content* (default: when the catalog
        has digests) each present item is hashed once and items whose bytes
        differ are reported (a re-encoded copy differs everywhere: its ids
        still resolve). The map is cached in *index* (default: beside the
        catalog, one file per copy, kind and id rule, whatever *content*),
        valid while the copy's files keep their sizes and mtimes, so a later
        resolve reads no image; when only some shards changed, only those
        are listed again. *progress* shows bars (on a terminal) of shards
        listed and items hashed.
        """
        local = os.fspath(path_argument(local, "local copy"))
        _check_rule(id, "the id rule")
        _check_workers(workers)
        if content is not None and not isinstance(content, bool):
            raise ReferenceSetError(f"content must be True, False or None, got {content!r}")
        kind_class = detect_kind(local, kind)
        if content is None:
            content = self.has_digests
        if content and not self.has_digests:
            raise ReferenceSetError(f"{self.path}: the catalog has no digests to check content against")
        cache = Path(index) if index is not None else self._default_index(local, kind_class.name, id)
        if index is not None and cache is not None and os.path.lexists(cache) and not _is_resolution_cache(cache):
            # the cache is rewritten whenever it is stale: never over a file given by mistake that
            # is not one (the catalog itself, a payload); a damaged one of ours is rewritten
            raise ReferenceSetError(f"{cache}: exists and is not a resolution cache; refusing to overwrite it "
                                    f"(give another --index path, or remove the file)")
        stale = None
        if cache is not None and not rebuild:
            cached, stale = Resolution._load(cache, self, local, kind_class, id)
            if cached is not None:
                if not content:
                    cached.differ_positions = None  # not asked for: reported as not checked
                elif cached.differ_positions is None:  # listed before, hashed only now
                    cached.differ_positions = cached._differing(workers, progress)
                    cached._save(cache, local, id)
                return cached
        listing = _scan(kind_class, local, stale, progress)
        resolution = Resolution._make(self, listing, id, content, workers, progress)
        if cache is not None:
            resolution._save(cache, local, id)
        return resolution

    def _default_index(self, local: str, kind: str, rule: str) -> Path | None:
        """One cache per (copy, kind, id rule): a resolve with or without content, from any
        tool, finds what another wrote (content checks are kept in it when made)."""
        if not self.path or self.path == "(in memory)":
            return None
        tag = hashlib.sha256(f"{os.path.abspath(local)}\0{kind}\0{rule}".encode(
            "utf-8", "surrogateescape")).hexdigest()[:16]
        return Path(f"{self.path}.{tag}.resolved.npz")


def _scan(kind: Any, local: str, previous: Listing | None = None, progress: bool = False) -> Listing:
    """List the copy; a kind that lists in parts (tar) takes what did not change from
    *previous* and reports its progress (in shards) to a bar."""
    if progress and kind.parts:
        from tqdm.auto import tqdm

        with tqdm(desc=f"listing {local}", unit=f" {kind.parts}", disable=None, leave=False, dynamic_ncols=True) as bar:
            return kind.scan(local, progress=lambda done: bar.update(done - bar.n), previous=previous)
    return kind.scan(local, previous=previous)


def _check_utf8(text: memoryview, where: str, line_of: Any) -> None:
    """Refuse text that is not UTF-8, naming the line; decoded a slice at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, len(text), _UTF8_STEP):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(text[start:start + _UTF8_STEP], final=start + _UTF8_STEP >= len(text))
        except UnicodeDecodeError as exc:
            raise ReferenceSetError(f"{where}:{line_of(start - pending + exc.start)}: not valid UTF-8") from None


def _is_resolution_cache(path: Path) -> bool:
    """Whether *path* is an ``.npz`` that a resolution wrote (a stale one, or a damaged one
    under the default name, included). Anything but a regular file is not one."""
    fd = regular_descriptor(path, follow=False)
    if fd is None:
        return False
    os.close(fd)
    if path.name.endswith(".resolved.npz"):
        return True
    cached = Listing.open_cache(path)
    return cached is not None and "resolution" in cached.note


def _read_zstd(fh: Any, max_bytes: int, path: Path) -> bytearray:
    """One Zstandard frame's content, refused past *max_bytes*: at once when the frame
    header declares more, else while it streams. Input goes in slices small enough that
    one call cannot expand past the limit (a 4-byte block can stand for 128 KiB)."""
    import zstandard

    try:
        declared = zstandard.get_frame_parameters(fh.read(18)).content_size  # 18: a frame header's most
    except zstandard.ZstdError as exc:
        raise ReferenceSetError(f"{path}: damaged Zstandard frame header ({exc})") from None
    fh.seek(0)
    if declared != zstandard.CONTENTSIZE_UNKNOWN and declared > max_bytes:
        raise ReferenceSetError(f"{path}: the catalog's Zstandard frame declares {declared} bytes, over the limit "
                                f"of {max_bytes}")
    # Grown as it streams, never allocated from the declared size: a small frame may lie.
    out = bytearray()
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        while not decompressor.eof:
            budget = max_bytes - len(out)
            chunk = fh.read(max(64, min(1 << 20, budget >> 15)))
            if not chunk:
                raise ReferenceSetError(f"{path}: the catalog's Zstandard frame is truncated")
            out += decompressor.decompress(chunk)
            if len(out) > max_bytes:
                raise ReferenceSetError(f"{path}: catalog decompresses to more than the limit of {max_bytes} bytes")
    except zstandard.ZstdError as exc:
        raise ReferenceSetError(f"{path}: damaged Zstandard frame ({exc})") from None
    if declared != zstandard.CONTENTSIZE_UNKNOWN and len(out) != declared:
        raise ReferenceSetError(f"{path}: the Zstandard frame holds {len(out)} bytes, not the {declared} it declares")
    if decompressor.unused_data or fh.read(1):
        raise ReferenceSetError(f"{path}: bytes after the catalog's Zstandard frame")
    return out


def _check_order(ids: PackedStrings, groups: PackedStrings | None, where: str) -> None:
    n = len(ids)
    words = _Words(ids)
    group_words = None if groups is None else _Words(groups)
    step = 1 << 16  # pairs compared at a time: the temporaries stay a few MiB at any N
    for start in range(0, n - 1, step):
        before = np.arange(start, min(n - 1, start + step))
        after = before + 1
        if group_words is None:
            ascending = _compare(words, after, words, before) > 0
        else:
            by_group = _compare(group_words, after, group_words, before)
            same_group = np.flatnonzero(by_group == 0)
            ascending = by_group > 0
            ascending[same_group] = _compare(words, after[same_group], words, before[same_group]) > 0
        bad = np.flatnonzero(~ascending)
        if len(bad):
            i = start + int(bad[0])
            what = "(group, id)" if groups is not None else "id"
            raise ReferenceSetError(f"{where}:{i + 4}: lines must be sorted by {what} as UTF-8 bytes, without "
                                    f"repeats; {ids[i + 1]!r} follows {ids[i]!r}")


def _check_unique(catalog: Catalog, where: str) -> None:
    """Refuse a repeated id (ids sorted within groups can repeat across them)."""
    order, first = _byte_order(catalog._id_words(), len(catalog))
    catalog._by_id = order  # kept for index_of
    twice = np.flatnonzero(~first)
    if len(twice):
        raise ReferenceSetError(f"{where}: item id {catalog._ids[int(order[twice[0]])]!r} appears twice")


def item_ids(listing: Listing, rule: str) -> list[str]:
    """Each listed item's id under *rule*, refusing empty ids naming the item."""
    ids = list(listing.kind.item_names(listing, rule))
    for i, item_id in enumerate(ids):
        if not item_id:
            raise ReferenceSetError(f"{listing.where(i)}: empty id under the {rule!r} rule; choose another --id")
    check_ids(ids, listing.root)
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


def _digests(listing: Listing, items: Iterable[int], workers: int | None, progress: bool = False) -> list[str]:
    """hex SHA-256 of each item; files are hashed by threads (hashlib and file
    reads release the GIL), shards and parquet row groups in order."""
    items = list(items)
    with _bar(progress, f"hashing {listing.root}", len(items)) as bar:
        if listing.kind.name == "folder" and len(items) > 64:
            hashed: list[str] = []
            with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
                for start in range(0, len(items), 4096):  # a batch of futures at a time, not one per item
                    hashed.extend(pool.map(listing.digest, items[start:start + 4096]))
                    bar.update(len(hashed) - bar.n)
            return hashed
        out: list[str] = []
        for i in items:
            out.append(listing.digest(i))
            bar.update(1)
        return out


# -- resolutions ----------------------------------------------------------------------


class Resolution:
    """A local copy mapped onto a catalog.

    ``local_of[p]`` is the local item holding catalog position p (``-1`` when
    the copy lacks it); :meth:`read` gives position p's bytes. ``present``,
    ``missing`` and ``extra`` count catalog items held, catalog items not
    held, and local items the catalog does not list; ``differ`` (None when
    content was not checked) counts held items whose bytes differ from the
    catalog's digest. Positions are ints in ``0..N-1``: anything else raises
    :class:`~plada_codec.ReferenceSetError` (``TypeError`` for a non-integer).
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

    def _position(self, position: Any) -> int:
        p = operator.index(position)  # TypeError for a float, a str, None
        if not 0 <= p < self.n:
            raise ReferenceSetError(f"position {p} is outside the catalog's 0..{self.n - 1}")
        return p

    def _positions(self, positions: Any) -> np.ndarray:
        positions = np.asarray(positions)
        if positions.dtype == object:  # Python ints too large for int64, or not ints at all
            for p in positions.reshape(-1).tolist():
                self._position(p)
        if positions.dtype.kind not in "iu" and not (positions.dtype.kind == "f" and not positions.size):
            raise TypeError(f"catalog positions are integers, not {positions.dtype}")
        positions = positions.astype(np.int64, copy=False).reshape(-1)
        outside = np.flatnonzero((positions < 0) | (positions >= self.n))
        if len(outside):
            raise ReferenceSetError(f"position {int(positions[outside[0]])} is outside the catalog's "
                                    f"0..{self.n - 1}")
        return positions

    def present_positions(self) -> np.ndarray:
        """The catalog positions this copy holds, ascending."""
        return np.flatnonzero(self.local_of >= 0)

    def missing_positions(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Which of *positions* (default: all) the copy lacks."""
        positions = np.arange(self.n) if positions is None else self._positions(positions)
        return positions[self.local_of[positions] < 0]

    def differing_positions(self, positions: np.ndarray, workers: int | None = None) -> np.ndarray:
        """Which of *positions* the copy holds with bytes other than the catalog's
        (each such item is read and hashed; a re-encoded copy differs everywhere)."""
        digests_of = self.catalog._digests
        if digests_of is None:
            raise ReferenceSetError(f"{self.catalog.path}: the catalog has no digests to check content against")
        _check_workers(workers)
        positions = self._positions(positions)
        held = positions[self.local_of[positions] >= 0]
        digests = _digests(self.listing, self.local_of[held].tolist(), workers)
        want = digests_of[held]  # (n, 32) uint8
        got = np.frombuffer(bytes.fromhex("".join(digests)), np.uint8).reshape(-1, 32)
        return held[np.any(got != want, axis=1)]

    def _differing(self, workers: int | None, progress: bool = False) -> np.ndarray:
        """Every held catalog position whose bytes differ from the catalog's digest, ascending."""
        digests_of = self.catalog._digests
        assert digests_of is not None
        held = self.present_positions()
        digests = _digests(self.listing, self.local_of[held].tolist(), workers, progress)
        got = np.frombuffer(bytes.fromhex("".join(digests)), np.uint8).reshape(-1, 32)
        return held[np.any(got != digests_of[held], axis=1)]

    def holds(self, position: int) -> bool:
        return bool(self.local_of[self._position(position)] >= 0)

    def _local(self, position: int) -> int:
        position = self._position(position)
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
    def _make(cls, catalog: Catalog, listing: Listing, rule: str, content: bool, workers: int | None,
              progress: bool = False) -> Resolution:
        ids = _pack(item_ids(listing, rule))
        positions, twice = catalog._lookup(ids, duplicates=True)
        if twice is not None:
            a, b = twice
            raise ReferenceSetError(f"{listing.where(a)} and {listing.where(b)} have the same id {ids[a]!r}; "
                                    "a copy holds each item once")
        local_of = np.full(len(catalog), -1, np.int64)
        held = np.flatnonzero(positions >= 0)
        local_of[positions[held]] = held
        extra = np.flatnonzero(positions < 0)
        extra_ids = [ids[int(i)] for i in extra[:_SHOWN]]
        del ids, positions, held
        local_of = local_of.astype(np.int32) if len(listing) < 2**31 else local_of
        resolution = cls(catalog, listing, local_of, extra_ids, len(extra), None)
        if content:
            resolution.differ_positions = resolution._differing(workers, progress)
        return resolution

    def _save(self, path: Path, local: str, rule: str) -> None:
        """The resolution in the one cache format (``Listing.save``): the listing, with the
        map (``local_of``; ``differ`` where content was checked) and its facts attached."""
        note = {"resolution": _RESOLUTION_VERSION, "catalog": self.catalog.hex, "local": os.path.abspath(local),
                "id": rule, "content": self.differ_positions is not None, "extra": self.extra,
                "extra_ids": self.extra_ids}
        attached = {"local_of": self.local_of}
        if self.differ_positions is not None:
            attached["differ"] = self.differ_positions
        try:
            self.listing.save(path, attached, note)
        except (OSError, ReferenceSetError):
            pass  # a cache that cannot be written costs time, not correctness

    @classmethod
    def _load(cls, path: Path, catalog: Catalog, local: str, kind: Any,
              rule: str) -> tuple[Resolution | None, Listing | None]:
        """``(resolution, None)`` from the cache at *path* when it is a regular file written
        for this catalog, copy, kind and id rule, the copy's files are unchanged, and every
        value checks out against the catalog and the listing; ``(None, listing)`` when only
        the copy's files changed since (the stale listing, whose unchanged shards a tar
        lister takes as they are); ``(None, None)`` otherwise: resolve again."""
        cached = Listing.open_cache(path, kind)
        if cached is None:
            return None, None
        found = cls._from_cache(cached, catalog, local, kind, rule)
        return found if found is not None else (None, None)

    @classmethod
    def _from_cache(cls, cached: Any, catalog: Catalog, local: str, kind: Any,
                    rule: str) -> tuple[Resolution | None, Listing | None] | None:
        listing, attached, note = cached
        try:
            if (note.get("resolution") != _RESOLUTION_VERSION or note.get("catalog") != catalog.hex
                    or note.get("local") != os.path.abspath(local) or note.get("id") != rule):
                return None
            n_local = len(listing)
            local_of = _array(attached, "local_of", "iu", len(catalog))
            if not _in_range(local_of, -1, n_local - 1):
                return None
            differ = None
            if note.get("content"):
                differ = _array(attached, "differ", "iu")
                if not _in_range(differ, 0, len(catalog) - 1) or np.any(differ[1:] <= differ[:-1]):
                    return None
            extra, extra_ids = note["extra"], note["extra_ids"]
            if not isinstance(extra, int) or not 0 <= extra <= n_local \
                    or not isinstance(extra_ids, list) or not all(isinstance(i, str) for i in extra_ids):
                return None
            listing.root = local
            if listing.signature != [tuple(row) for row in kind.signature(local)]:
                return None, listing
            kind.restore(listing)
            resolution = cls(catalog, listing, local_of, list(extra_ids), extra, differ)
        except (KeyError, ValueError, TypeError, OverflowError, ReferenceSetError):
            return None
        resolution.from_cache = True
        return resolution, None


def _array(arrays: dict[str, np.ndarray], name: str, kinds: str, length: int | None = None) -> np.ndarray:
    """The 1-d array *name* of a cache, of an integer (``iu``) or byte (``u1``) type;
    ValueError (a miss) otherwise."""
    array = arrays[name]
    if array.ndim != 1 or (array.dtype != np.uint8 if kinds == "u1" else array.dtype.kind not in kinds) \
            or (length is not None and len(array) != length):
        raise ValueError(f"cache array {name} is {array.dtype} of shape {array.shape}")
    return array


def _in_range(values: np.ndarray, low: int, high: int) -> bool:
    return not len(values) or (int(values.min()) >= low and int(values.max()) <= high)
