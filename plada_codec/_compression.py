"""Section compression (spec/FORMAT.md section 5.4): none, or one Zstandard frame."""

from __future__ import annotations

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

__all__ = ["COMPRESSION_NAMES", "stored_to_raw", "Compressor"]


def stored_to_raw(section: Section) -> bytes | memoryview:
    """The raw body of a section whose compression is known; its raw_length
    was checked against the codec's bounds and the local limits before."""
    if section.compression == COMPRESSION_NONE:
        return section.body  # stored_length == raw_length was checked while framing
    return _zstd_decompress(section)


def _zstd_decompress(section: Section) -> bytes:
    body = bytes(section.body)
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
    if section.raw_length == 0:
        # python-zstandard cannot size an output for an empty frame; decode by stream.
        out = zstandard.ZstdDecompressor().decompressobj()
        try:
            data = out.decompress(body)
        except zstandard.ZstdError as exc:
            raise PayloadFormatError(f"{where}: corrupt zstd frame ({exc})") from None
        if data or not out.eof or out.unused_data:
            raise PayloadFormatError(f"{where}: zstd frame is not one empty frame")
        return b""
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    try:
        data = decompressor.decompress(
            body, max_output_size=section.raw_length, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise PayloadFormatError(f"{where}: corrupt zstd frame ({exc})") from None
    if len(data) != section.raw_length:
        raise PayloadFormatError(
            f"{where}: zstd frame holds {len(data)} bytes, raw_length says {section.raw_length}"
        )
    return data


class Compressor:
    """The encoder's side: every allowed (compression id, stored body) of a raw body."""

    def __init__(self, allowed: list[int], level: int) -> None:
        self.allowed = allowed
        self._zstd = zstandard.ZstdCompressor(
            level=level, write_content_size=True, write_checksum=False, write_dict_id=False
        )

    def candidates(self, raw: bytes, try_compression: bool = True) -> list[tuple[int, bytes]]:
        out = []
        if COMPRESSION_NONE in self.allowed:
            out.append((COMPRESSION_NONE, raw))
        if COMPRESSION_ZSTD in self.allowed and (try_compression or COMPRESSION_NONE not in self.allowed):
            out.append((COMPRESSION_ZSTD, self._zstd.compress(raw)))
        return out
