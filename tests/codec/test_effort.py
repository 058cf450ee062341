"""The encoder's effort knob (issue 17 section 1): which Zstandard level each
effort writes, checked against frames made with zstandard directly, and the
per-process cache of ancillary frames. Speed itself is a benchmark
(benchmarks/bench_encode.py), never a timed test."""

import struct

import numpy as np
import pytest
import zstandard

import plada_codec
from plada_codec import _compression, wire
from plada_codec.cli import EXIT_OK, EXIT_USAGE, main

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def _frame(raw: bytes, level: int) -> bytes:
    """The frame FORMAT.md 5.4 asks for: content size, no checksum, no dictionary id."""
    return zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False,
                                    write_dict_id=False).compress(raw)


def _names_body(names):
    return b"".join(struct.pack("<I", len(n.encode())) + n.encode() for n in names)  # FORMAT.md 5.6, codec 0


def _names_text(names):
    return "\n".join(names).encode()  # FORMAT.md 5.6, codec 1: joined by LF


# 3,000 consecutive items with labels 0, 1, ..., 9, 0, ...: gaps 0 (one block width byte of 0 per 128
# gaps, 6.2), labels bytes 0..9 repeating (7.2). The context model needs >= 375 bytes here (15.1), the
# 1.0 layouts compress to a few dozen: the encoder keeps index delta + label bytes under Zstandard.
RUN = np.arange(100, 3100)
LABELS = np.arange(3000) % 10

def _delta_body():
    # gap[0] = 100 (7 bits) in block 0, every other gap 0: widths [7, 0, ..., 0] (24 blocks: 23 full + 56)
    blocks = -(-3000 // 128)
    packed = bytes([100]) + bytes((128 * 7) // 8 - 1)  # 100 at 7 bits (LSB-first, 6.1), then 127 zeros
    return bytes([7] + [0] * (blocks - 1)) + packed


def _sections(data):
    return {s.type: s for s in wire.split(data).sections}


@pytest.mark.parametrize("effort, level", [(1, 1), (2, 3), (3, 19), (4, 19)])
def test_each_effort_writes_the_1_0_bodies_at_its_level(backend, effort, level):
    data = plada_codec.encode(RUN, LABELS, n_ref=4000, n_classes=10, effort=effort, backend=backend,
                              index_codec="delta", label_codec="bytes", compression="zstd")
    sections = _sections(data)
    assert bytes(sections[1].body) == _frame(_delta_body(), level)
    assert bytes(sections[2].body) == _frame(bytes(LABELS.astype(np.uint8)), level)


@pytest.mark.parametrize("effort, level", [(1, 3), (2, 7), (3, 19), (4, 19)])
def test_each_effort_writes_the_class_names_at_its_level(backend, effort, level):
    """Efforts 1-2 write the 1.2 text codec at its fast level (3 at effort 1, whose
    ancillary level is lower); 3-4 try both codecs at 19 and the text body is smaller."""
    names = [f"n{i:08d} class number {i}" for i in range(10)]  # C = 10
    data = plada_codec.encode(RUN, LABELS, n_ref=4000, n_classes=10, class_names=names, effort=effort,
                              backend=backend, compression="zstd", index_codec="delta", label_codec="bytes")
    section = _sections(data)[0x8001]
    assert (section.codec, bytes(section.body)) == (1, _frame(_names_text(names), level))
    assert data[9] == 2  # version_minor: codec 1 is a 1.2 codec (FORMAT.md 4, 5.2)


@pytest.mark.parametrize("effort, level", [(1, 3), (2, 19), (3, 19), (4, 19)])
def test_a_1_1_writer_keeps_the_plain_class_names_at_the_ancillary_level(backend, effort, level):
    names = [f"n{i:08d} class number {i}" for i in range(10)]
    data = plada_codec.encode(RUN, LABELS, n_ref=4000, n_classes=10, class_names=names, effort=effort,
                              backend=backend, compression="zstd", index_codec="delta", label_codec="bytes",
                              format_version="1.1")
    section = _sections(data)[0x8001]
    assert (section.codec, bytes(section.body)) == (0, _frame(_names_body(names), level))
    assert data[9] == 0  # only 1.0 codecs used: the header says 1.0


def test_names_holding_lf_take_the_plain_codec(backend):
    names = ["one", "two\nlines", ""]
    data = plada_codec.encode(RUN, LABELS, n_ref=4000, n_classes=10, class_names=names + ["x"] * 7,
                              backend=backend, compression="none", index_codec="delta", label_codec="bytes")
    section = _sections(data)[0x8001]
    assert (section.codec, bytes(section.body)) == (0, _names_body(names + ["x"] * 7))
    assert data[9] == 0
    assert plada_codec.decode(data).class_names == tuple(names + ["x"] * 7)


def test_an_explicit_level_tries_both_class_names_codecs(backend):
    names = [f"n{i:08d} class number {i}" for i in range(10)]
    data = plada_codec.encode(RUN, LABELS, n_ref=4000, n_classes=10, class_names=names, zstd_level=5,
                              backend=backend, compression="zstd", index_codec="delta", label_codec="bytes")
    section = _sections(data)[0x8001]
    text, plain = _frame(_names_text(names), 5), _frame(_names_body(names), 5)
    assert len(text) < len(plain) and (section.codec, bytes(section.body)) == (1, text)


def test_an_explicit_level_is_every_frame_level_at_every_effort(backend):
    for effort in (1, 2, 4):
        data = plada_codec.encode(RUN, LABELS, n_ref=4000, n_classes=10, effort=effort, zstd_level=7,
                                  backend=backend, index_codec="delta", label_codec="bytes", compression="zstd")
        assert bytes(_sections(data)[1].body) == _frame(_delta_body(), 7)


def test_the_default_is_effort_2_and_keeps_the_1_0_escape(backend):
    data = plada_codec.encode(RUN, LABELS, n_ref=4000, n_classes=10, backend=backend)
    assert plada_codec.DEFAULT_EFFORT == 2
    sections = _sections(data)
    assert (sections[1].codec, sections[1].compression) == (0, 1)  # delta, zstd: the run costs nothing
    assert bytes(sections[1].body) == _frame(_delta_body(), 3)
    assert len(data) < 375  # under the context model's smallest body for k = 3000 alone (15.1)


@pytest.mark.parametrize("effort", [0, 5, True, 2.0, "2"])
def test_effort_outside_1_to_4_is_an_encode_error(effort):
    with pytest.raises(plada_codec.EncodeError, match="effort must be an int in 1..4"):
        plada_codec.encode([1], [0], n_ref=4, n_classes=2, effort=effort)


def test_a_cached_ancillary_frame_is_reused(backend, monkeypatch):
    """A body met before takes its frame from the cache: planting another valid frame
    under the key shows the encoder writes what the cache holds."""
    monkeypatch.setattr(_compression, "_cache", type(_compression._cache)())
    monkeypatch.setattr(_compression, "_cache_bytes", 0)
    names = [f"class {i:05d} " + "x" * 40 for i in range(100)]  # 5.4 KB: above the 4 KiB the cache needs
    raw = _names_text(names)  # the default writes codec 1 at level 7
    first = plada_codec.encode([1], [0], n_ref=4, n_classes=100, class_names=names, backend=backend)
    assert bytes(_sections(first)[0x8001].body) == _frame(raw, 7)
    assert _compression._cache[(7, raw)] == _frame(raw, 7)
    _compression._cache[(7, raw)] = _frame(raw, 1)
    second = plada_codec.encode([1], [0], n_ref=4, n_classes=100, class_names=names, backend=backend)
    assert bytes(_sections(second)[0x8001].body) == _frame(raw, 1)
    assert plada_codec.decode(second).class_names == tuple(names)


def test_cli_effort(tmp_path, capsys):
    selection = tmp_path / "sel.npz"
    np.savez(selection, indices=RUN, labels=LABELS, n_ref=4000, n_classes=10)
    out = tmp_path / "p.plada"
    assert main(["encode", str(selection), "-o", str(out), "--effort", "1", "--index-codec", "delta",
                 "--label-codec", "bytes", "--compression", "zstd"]) == EXIT_OK
    assert bytes(_sections(out.read_bytes())[1].body) == _frame(_delta_body(), 1)
    with pytest.raises(SystemExit) as exc:
        main(["encode", str(selection), "-o", str(out), "--effort", "9"])
    assert exc.value.code == EXIT_USAGE
