"""plada_codec.paper_layouts against byte streams and limits worked out by hand."""

import math

import numpy as np
import pytest
import zstandard

from plada_codec import paper_layouts


def test_layout_bytes_by_hand():
    streams = paper_layouts.layout_bytes([3, 17, 90], [1, 0, 1], n_ref=100, n_classes=2)
    assert streams["delta"] == bytes([3, 14, 73])
    assert streams["labels"] == bytes([1, 0, 1])
    # 100 bits -> 13 bytes, most significant bit first: 3 -> byte 0 bit 4, 17 -> byte 2 bit 6, 90 -> byte 11 bit 5.
    expected = bytearray(13)
    expected[0], expected[2], expected[11] = 0x10, 0x40, 0x20
    assert streams["bitmap"] == bytes(expected)


def test_layout_widths_follow_largest_gap_and_class_count():
    streams = paper_layouts.layout_bytes([0, 300], [299, 0], n_ref=70_000, n_classes=300)
    assert streams["delta"] == b"\x00\x00\x2c\x01"  # gap 300 needs 2 bytes
    assert streams["labels"] == b"\x2b\x01\x00\x00"  # C = 300 needs 2 bytes
    streams = paper_layouts.layout_bytes([65_536], [0], n_ref=70_000, n_classes=256)
    assert streams["delta"] == (65_536).to_bytes(4, "little") and streams["labels"] == b"\x00"


def test_paper_layout_sizes_are_zstd19_of_those_streams():
    z = zstandard.ZstdCompressor(level=19)
    delta, labels = bytes([3, 14, 73]), bytes([1, 0, 1])
    bitmap = bytes([0x10, 0, 0x40] + [0] * 8 + [0x20, 0])
    sizes = paper_layouts.paper_layout_sizes([3, 17, 90], [1, 0, 1], n_ref=100, n_classes=2)
    assert sizes == {
        "index-delta separate": len(z.compress(delta)) + len(z.compress(labels)),
        "index-delta concatenated": len(z.compress(delta + labels)),
        "bitmap separate": len(z.compress(bitmap)) + len(z.compress(labels)),
        "bitmap concatenated": len(z.compress(bitmap + labels)),
    }


def test_information_limit_by_hand():
    # C(10, 3) = 120 subsets; labels 0,0,1 have entropy log2(3) - 2/3 bits each:
    # log2(120) + 3 log2(3) - 2 = log2(120 * 27 / 4) = log2(810).
    assert paper_layouts.information_limit_bits(10, [0, 0, 1]) == pytest.approx(math.log2(810), rel=1e-12)
    assert paper_layouts.information_limit_bits(4, [5, 5]) == pytest.approx(math.log2(6), rel=1e-12)
    assert paper_layouts.information_limit_bits(7, []) == 0.0
    # Uniform labels over 4 classes cost 2 bits each; choosing all N items costs nothing.
    assert paper_layouts.information_limit_bits(8, np.arange(8) % 4) == pytest.approx(16.0, rel=1e-12)


def test_rejects_bad_selections():
    with pytest.raises(ValueError, match="sorted"):
        paper_layouts.layout_bytes([5, 3], [0, 0], n_ref=10, n_classes=2)
    with pytest.raises(ValueError, match="same length"):
        paper_layouts.layout_bytes([1, 2], [0], n_ref=10, n_classes=2)


def test_bitmap_layouts_skipped_beyond_the_memory_cap():
    sizes = paper_layouts.paper_layout_sizes([5, 2**40], [0, 1], n_ref=2**41, n_classes=2)
    assert sizes["bitmap separate"] is None and sizes["bitmap concatenated"] is None
    assert sizes["index-delta separate"] > 0
    streams = paper_layouts.layout_bytes([0, 9], [0, 0], n_ref=16, n_classes=2, max_bitmap_bytes=2)
    assert streams["bitmap"] == b"\x80\x40"
    assert paper_layouts.layout_bytes([0, 9], [0, 0], n_ref=17, n_classes=2, max_bitmap_bytes=2)["bitmap"] is None
