"""What a selection costs to send: the paper's Zstd-19 layouts and the information limit.

The PLADA paper ("A Dataset is Worth 1 MB", section 3.4) sends a selection in one of two index
layouts, each compressed with Zstandard level 19:

- **index-delta**: the gaps ``indices[0], indices[1] - indices[0], ...`` as
  little-endian integers of the smallest of 1, 2 or 4 bytes that holds the
  largest gap (8 bytes beyond 2^32, which the paper's sets never reach);
- **bitmap**: one bit per reference item, set for selected items, packed most
  significant bit first (``numpy.packbits``), ``ceil(N / 8)`` bytes;

and the labels as little-endian integers of the smallest of 1, 2 or 4 bytes
that holds ``C - 1`` (uint8 up to 256 classes, as in the paper). The paper
does not say whether index and label bytes are compressed together or apart,
so both are given: *separate* (two frames, sizes added) and *concatenated*
(one frame over index bytes then label bytes).

The **information limit** of a selection is ``log2 C(N, k) + k * H(labels)``
bits, where ``H`` is the empirical entropy of the label histogram: what any
code must spend on a selection drawn uniformly among the ``C(N, k)`` subsets,
with labels coded at their empirical entropy. Real selections are clustered,
so a good codec can beat it; it is a yardstick, not a bound.

**Like for like.** The paper's layouts carry only the (index, label) pairs. A
payload also carries an 80-byte header, 28 bytes of framing a section (24 of
section header, a 4-byte CRC) and maybe ancillary sections (class names, task
name, metadata). :class:`PayloadParts` splits a payload into its *pairs* (the
header and the index and label sections, framing included: exactly the payload
that the same pairs make without ancillary sections) and its *ancillary*
sections, so that pairs are compared with pairs, and the whole payload is shown
with its ancillary sections named as such.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LAYOUTS", "layout_bytes", "paper_layout_sizes", "information_limit_bits", "PayloadParts",
           "BandwidthReport", "report"]

ZSTD_LEVEL = 19
# A bitmap layout needs ceil(N / 8) bytes in memory; beyond this it is not computed.
MAX_BITMAP_BYTES = 1 << 29
LAYOUTS = ("index-delta separate", "index-delta concatenated", "bitmap separate", "bitmap concatenated")


def _smallest_unsigned(max_value: int) -> str:
    if max_value < 1 << 8:
        return "<u1"
    if max_value < 1 << 16:
        return "<u2"
    if max_value < 1 << 32:
        return "<u4"
    return "<u8"  # beyond the paper's sets (N < 2^32); the natural extension


def layout_bytes(indices, labels, n_ref: int, n_classes: int,
                 *, max_bitmap_bytes: int = MAX_BITMAP_BYTES) -> dict[str, bytes | None]:
    """The uncompressed byte streams of the paper's layouts.

    Returns ``{"delta": ..., "bitmap": ..., "labels": ...}``; ``bitmap`` is
    None when it would exceed *max_bitmap_bytes*.
    """
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if indices.ndim != 1 or labels.shape != indices.shape:
        raise ValueError("indices and labels must be one-dimensional and of the same length")
    if indices.size and (indices[0] < 0 or indices[-1] >= n_ref or np.any(np.diff(indices) <= 0)):
        raise ValueError("indices must be sorted, distinct and in [0, n_ref)")
    gaps = np.diff(indices, prepend=0)
    delta = gaps.astype(_smallest_unsigned(int(gaps.max()) if gaps.size else 0)).tobytes()
    bitmap = None
    if (n_ref + 7) // 8 <= max_bitmap_bytes:
        packed = np.zeros((n_ref + 7) // 8, dtype=np.uint8)  # N/8 bytes, never one byte per item
        np.bitwise_or.at(packed, indices >> 3, (0x80 >> (indices & 7)).astype(np.uint8))
        bitmap = packed.tobytes()
    return {
        "delta": delta,
        "bitmap": bitmap,
        "labels": labels.astype(_smallest_unsigned(max(n_classes - 1, 0))).tobytes(),
    }


def paper_layout_sizes(indices, labels, n_ref: int, n_classes: int, *, level: int = ZSTD_LEVEL,
                       max_bitmap_bytes: int = MAX_BITMAP_BYTES) -> dict[str, int | None]:
    """Bytes of each of :data:`LAYOUTS` after Zstandard at *level* (19 in the paper).

    A frame is what ``zstandard.ZstdCompressor(level).compress`` writes (content
    size in the frame header, no checksum). Bitmap layouts are None when the
    bitmap would exceed *max_bitmap_bytes*.
    """
    import zstandard

    streams = layout_bytes(indices, labels, n_ref, n_classes, max_bitmap_bytes=max_bitmap_bytes)
    compressor = zstandard.ZstdCompressor(level=level)

    def size(data: bytes) -> int:
        return len(compressor.compress(data))

    delta, bitmap, labels_bytes = streams["delta"], streams["bitmap"], streams["labels"]
    assert delta is not None and labels_bytes is not None
    label_size = size(labels_bytes)
    return {
        "index-delta separate": size(delta) + label_size,
        "index-delta concatenated": size(delta + labels_bytes),
        "bitmap separate": None if bitmap is None else size(bitmap) + label_size,
        "bitmap concatenated": None if bitmap is None else size(bitmap + labels_bytes),
    }


def information_limit_bits(n_ref: int, labels) -> float:
    """``log2 C(N, k) + k * H(labels)`` in bits, with ``k = len(labels)`` and
    ``H`` the entropy of the labels' empirical distribution."""
    labels = np.asarray(labels)
    count = int(labels.size)
    if not 0 <= count <= n_ref:
        raise ValueError(f"k = {count} is not in [0, N = {n_ref}]")
    log2_choose = (math.lgamma(n_ref + 1) - math.lgamma(count + 1) - math.lgamma(n_ref - count + 1)) / math.log(2)
    if count == 0:
        return max(log2_choose, 0.0)
    _, counts = np.unique(labels, return_counts=True)
    p = counts / count
    entropy = float(-(p * np.log2(p)).sum())
    return max(log2_choose, 0.0) + count * entropy


HEADER_BYTES = 80  # spec/FORMAT.md 4
SECTION_FRAMING_BYTES = 28  # 24-byte section header + 4-byte CRC (5.1)


@dataclass(frozen=True)
class PayloadParts:
    """A payload's bytes by what they carry: the pairs, and each ancillary section.

    *critical* and *ancillary* map a section name to its stored body bytes,
    in payload order; framing is added by the properties below.
    """

    critical: dict[str, int]
    ancillary: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_sections(cls, sections: Iterable) -> PayloadParts:
        """From :func:`plada_codec.inspect`'s ``sections`` (``name``, ``critical``, ``stored_length``)."""
        critical: dict[str, int] = {}
        ancillary: dict[str, int] = {}
        for section in sections:
            (critical if section.critical else ancillary)[section.name] = section.stored_length
        return cls(critical, ancillary)

    @property
    def pairs_body_bytes(self) -> int:
        """The index and label section bodies alone."""
        return sum(self.critical.values())

    @property
    def pairs_framing_bytes(self) -> int:
        """The header and the index and label sections' framing."""
        return HEADER_BYTES + SECTION_FRAMING_BYTES * len(self.critical)

    @property
    def pairs_bytes(self) -> int:
        """What the pairs cost: the payload these sections make without any ancillary section."""
        return self.pairs_body_bytes + self.pairs_framing_bytes

    def ancillary_framed(self) -> dict[str, int]:
        """Each ancillary section's bytes on the wire, framing included."""
        return {name: size + SECTION_FRAMING_BYTES for name, size in self.ancillary.items()}

    @property
    def ancillary_bytes(self) -> int:
        return sum(self.ancillary_framed().values())

    @property
    def total_bytes(self) -> int:
        return self.pairs_bytes + self.ancillary_bytes


@dataclass(frozen=True)
class BandwidthReport:
    """A payload's size next to the paper's layouts and the information limit."""

    count: int
    n_ref: int
    n_classes: int
    payload_bytes: int
    layouts: dict[str, int | None]
    information_limit_bits: float
    parts: PayloadParts | None = None

    @property
    def pairs_bytes(self) -> int:
        """The payload's bytes for the pairs alone (the whole payload when its parts are unknown)."""
        return self.payload_bytes if self.parts is None else self.parts.pairs_bytes

    def bits_per_pair(self, nbytes: float) -> float | None:
        return None if self.count == 0 else 8 * nbytes / self.count

    def to_dict(self) -> dict:
        out = {
            "count": self.count, "n_ref": self.n_ref, "n_classes": self.n_classes,
            "payload_bytes": self.payload_bytes, "zstd_level": ZSTD_LEVEL,
            "paper_layouts_bytes": dict(self.layouts),
            "information_limit_bits": self.information_limit_bits,
            "information_limit_bytes": self.information_limit_bits / 8,
        }
        if self.parts is not None:
            parts = self.parts
            out.update({
                "compared": "pairs: the paper's layouts count only the (index, label) pairs, so they are "
                            "compared with pairs_bytes (the header and the index and label sections, framing "
                            "included); payload_bytes is the whole payload, ancillary sections included",
                "pairs_bytes": parts.pairs_bytes,
                "pairs_body_bytes": parts.pairs_body_bytes,
                "pairs_framing_bytes": parts.pairs_framing_bytes,
                "pair_sections_bytes": dict(parts.critical),
                "ancillary_bytes": parts.ancillary_bytes,
                "ancillary_sections_bytes": parts.ancillary_framed(),
                "pairs_over_paper_layouts": {name: None if size in (None, 0) else parts.pairs_bytes / size
                                             for name, size in self.layouts.items()},
            })
        return out


def report(indices, labels, n_ref: int, n_classes: int, payload_bytes: int,
           parts: PayloadParts | None = None) -> BandwidthReport:
    """Everything ``plada compare`` prints, for one selection and its payload
    size; *parts* (from :meth:`PayloadParts.from_sections`) splits that size
    into pairs and ancillary sections."""
    if parts is not None and parts.total_bytes != payload_bytes:
        raise ValueError(f"the parts add up to {parts.total_bytes} bytes, the payload has {payload_bytes}")
    return BandwidthReport(
        count=int(np.asarray(indices).size), n_ref=n_ref, n_classes=n_classes, payload_bytes=payload_bytes,
        layouts=paper_layout_sizes(indices, labels, n_ref, n_classes),
        information_limit_bits=information_limit_bits(n_ref, labels), parts=parts,
    )
