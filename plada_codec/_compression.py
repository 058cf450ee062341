"""Section compression (spec/FORMAT.md section 5.4): none, or one Zstandard frame.

A critical section's raw body is read front to back in pieces
(:func:`open_raw`), so a decoder that finds a bad entry early stops without
decompressing, or holding, the rest of a body that may declare 2**28 bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import zstandard

from ._constants import (
    COMPRESSION_NAMES,
    COMPRESSION_NONE,
    COMPRESSION_ZSTD,
    ZSTD_FRAME_MAGIC,
    ZSTD_MAX_WINDOW,
)
from ._container import Section
from ._errors import PayloadFormatError

__all__ = ["COMPRESSION_NAMES", "RawSource", "open_raw", "memory_source", "stored_to_raw", "Compressor"]


class RawSource:
    """A section's raw body, read front to back: ``read(n)`` gives exactly the
    next *n* bytes, ``finish()`` checks that nothing follows what was read."""

    def __init__(self, size: int, where: str) -> None:
        self.size = size  # raw_length
        self.where = where
        self.position = 0

    def read(self, n: int):
        raise NotImplementedError

    def finish(self) -> None:
        if self.position != self.size:
            raise PayloadFormatError(f"{self.where}: {self.size - self.position} bytes of the body were not read")


class _Uncompressed(RawSource):
    """The stored body is the raw body: reads are views into the payload."""

    def __init__(self, body: memoryview, where: str) -> None:
        super().__init__(len(body), where)
        self._body = body

    def read(self, n: int) -> memoryview:
        start = self.position
        if start + n > self.size:
            raise PayloadFormatError(f"{self.where}: body ends at byte {self.size}, {n} bytes read at {start}")
        self.position = start + n
        return self._body[start : start + n]


class _Zstd(RawSource):
    """One Zstandard frame, decompressed as it is read: at most one read's
    bytes (and libzstd's window) are held, whatever raw_length declares."""

    def __init__(self, section: Section) -> None:
        super().__init__(section.raw_length, section.where)
        body = bytes(section.body)
        _check_frame(body, section)
        self._reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            body, read_across_frames=False)

    def _pull(self, n: int) -> bytes:
        try:
            return self._reader.read(n)
        except zstandard.ZstdError as exc:
            raise PayloadFormatError(f"{self.where}: corrupt zstd frame ({exc})") from None

    def read(self, n: int) -> bytes:
        if self.position + n > self.size:
            raise PayloadFormatError(
                f"{self.where}: body ends at byte {self.size}, {n} bytes read at {self.position}")
        data = self._pull(n) if n else b""
        if len(data) < n:  # the reader may return less than asked: ask again until the frame ends
            parts = [data]
            have = len(data)
            while have < n:
                more = self._pull(n - have)
                if not more:
                    raise PayloadFormatError(
                        f"{self.where}: zstd frame holds {self.position + have} bytes, "
                        f"raw_length says {self.size}")
                parts.append(more)
                have += len(more)
            data = b"".join(parts)
        self.position += n
        return data

    def finish(self) -> None:
        super().finish()
        # Decoding the frame's end verifies its content size and checksum (RFC 8878 3.1.1).
        if self._pull(1):
            raise PayloadFormatError(f"{self.where}: zstd frame holds more than raw_length = {self.size} bytes")


def open_raw(section: Section) -> RawSource:
    """The raw body of a section whose compression is known, to read in pieces.
    Its raw_length was checked against the codec's bounds and the local limits
    before; the frame header (5.4) is checked here, before any byte is decoded."""
    if section.compression == COMPRESSION_NONE:
        return _Uncompressed(section.body, section.where)  # stored_length == raw_length was checked while framing
    return _Zstd(section)


def memory_source(raw, where: str) -> RawSource:
    """A RawSource over a raw body already in memory."""
    return _Uncompressed(memoryview(raw).cast("B") if memoryview(raw).ndim != 1 else memoryview(raw), where)


def stored_to_raw(section: Section) -> bytes | memoryview:
    """The whole raw body of a section (for the codecs that decode it at once)."""
    source = open_raw(section)
    raw = source.read(section.raw_length)
    source.finish()
    return raw


def _check_frame(body: bytes, section: Section) -> None:
    """Every rule of 5.4 that the frame header and block headers show."""
    where = section.where
    if body[:4] != ZSTD_FRAME_MAGIC:
        raise PayloadFormatError(f"{where}: body does not start with a zstd frame magic")
    try:
        declared = zstandard.frame_content_size(body)
        params = zstandard.get_frame_parameters(body)
    except zstandard.ZstdError as exc:
        raise PayloadFormatError(f"{where}: not a zstd frame ({exc})") from None
    if declared < 0:
        raise PayloadFormatError(f"{where}: zstd frame does not declare its content size")
    if declared != section.raw_length:
        raise PayloadFormatError(
            f"{where}: zstd frame declares {declared} bytes, raw_length says {section.raw_length}"
        )
    if params.window_size > ZSTD_MAX_WINDOW:
        raise PayloadFormatError(
            f"{where}: zstd window {params.window_size} bytes exceeds the format's 2**27"
        )
    if params.dict_id:
        raise PayloadFormatError(f"{where}: zstd frame needs dictionary {params.dict_id}")
    end = frame_size(body, params.has_checksum)
    if end is None:
        raise PayloadFormatError(f"{where}: zstd frame is cut short (its last block is missing)")
    if end != len(body):
        raise PayloadFormatError(
            f"{where}: zstd frame ends at byte {end} of the {len(body)}-byte body (one frame, nothing after it)"
        )


def _libzstd_frame_size():
    """libzstd's ZSTD_findFrameCompressedSize through python-zstandard's cffi
    backend, or None where that backend is not built."""
    try:
        from zstandard import backend_cffi
    except ImportError:
        return None
    lib, ffi = backend_cffi.lib, backend_cffi.ffi
    find = getattr(lib, "ZSTD_findFrameCompressedSize", None)
    is_error = getattr(lib, "ZSTD_isError", None)
    if find is None or is_error is None:
        return None

    def size(body: bytes) -> int | None:
        found = find(ffi.from_buffer(body), len(body))
        return None if is_error(found) else int(found)

    return size


_UNSET = object()
_find_frame_size = _UNSET


def frame_size(body: bytes, has_checksum: bool) -> int | None:
    """Bytes taken by the Zstandard frame at the start of *body* (its header,
    its blocks up to the one marked Last_Block, and the checksum when the
    header announces one), or None when *body* ends before that."""
    global _find_frame_size
    if _find_frame_size is _UNSET:
        _find_frame_size = _libzstd_frame_size()
    if _find_frame_size is not None:
        return _find_frame_size(body)  # type: ignore[operator]
    return walk_frame(body, has_checksum)


def walk_frame(body: bytes, has_checksum: bool) -> int | None:
    """:func:`frame_size` by reading the block headers (RFC 8878 3.1.1.2), where
    libzstd's own function is not reachable: one step per block."""
    try:
        pos = zstandard.frame_header_size(body)
    except zstandard.ZstdError:
        return None
    size = len(body)
    while True:
        if pos + 3 > size:
            return None
        header = body[pos] | body[pos + 1] << 8 | body[pos + 2] << 16
        kind = (header >> 1) & 3
        if kind == 3:  # reserved block type: not a frame
            return None
        pos += 3 + (1 if kind == 1 else header >> 3)  # an RLE block stores one byte
        if pos > size:
            return None
        if header & 1:
            break
    pos += 4 if has_checksum else 0
    return pos if pos <= size else None


# Zstandard frames of bodies met before, by (level, raw body): a server encodes one
# payload per task and keep rate, each with the same class names, whose level-19
# frame costs hundreds of ms (21,841 ImageNet-21K names). A frame depends only on
# (level, raw), so a hit gives the bytes a fresh compression would.
_CACHE_MIN_BYTES = 1 << 12  # smaller bodies compress in microseconds
_CACHE_MAX_BYTES = 1 << 25  # raw bytes held as keys, all entries together
_cache: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()
_cache_bytes = 0
_cache_lock = threading.Lock()


def _cached_frame(compressor, level: int, raw: bytes) -> bytes:
    global _cache_bytes
    key = (level, bytes(raw))
    with _cache_lock:
        frame = _cache.get(key)
        if frame is not None:
            _cache.move_to_end(key)
            return frame
    frame = compressor.compress(raw)
    if len(raw) <= _CACHE_MAX_BYTES:
        with _cache_lock:
            if key not in _cache:
                _cache[key] = frame
                _cache_bytes += len(raw)
            while _cache_bytes > _CACHE_MAX_BYTES:
                (_, old_raw), _ = _cache.popitem(last=False)
                _cache_bytes -= len(old_raw)
    return frame


class Compressor:
    """The encoder's side: every allowed (compression id, stored body) of a raw body.

    With *cache*, frames of bodies of 4 KiB or more are kept per process
    (bounded; see ``_cached_frame``): for ancillary sections, which repeat
    from payload to payload of one task.

    One Compressor may serve several threads (a shared ``PayloadEncoder``):
    a ``zstandard.ZstdCompressor`` must not be used by two threads at once
    (python-zstandard's documented rule; sharing one corrupts frames or the
    heap), so each thread gets its own, made on its first use."""

    def __init__(self, allowed: list[int], level: int, cache: bool = False) -> None:
        self.allowed = allowed
        self.level = level
        self._cache = cache
        self._local = threading.local()

    @property
    def _zstd(self) -> zstandard.ZstdCompressor:
        zstd = getattr(self._local, "zstd", None)
        if zstd is None:
            zstd = self._local.zstd = zstandard.ZstdCompressor(
                level=self.level, write_content_size=True, write_checksum=False, write_dict_id=False
            )
        return zstd

    def compress(self, raw: bytes) -> bytes:
        if self._cache and len(raw) >= _CACHE_MIN_BYTES:
            return _cached_frame(self._zstd, self.level, raw)
        return self._zstd.compress(raw)

    def candidates(self, raw: bytes, try_compression: bool = True) -> list[tuple[int, bytes]]:
        out = []
        if COMPRESSION_NONE in self.allowed:
            out.append((COMPRESSION_NONE, raw))
        if COMPRESSION_ZSTD in self.allowed and (try_compression or COMPRESSION_NONE not in self.allowed):
            out.append((COMPRESSION_ZSTD, self.compress(raw)))
        return out
