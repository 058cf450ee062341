"""The decoder (plada_codec._decode): its cost bounded by what a payload holds (FORMAT.md 5.5,
9 step 8b, 13), and its metadata item count as the spec counts it.

Cost is measured by what the decoder does, never by a clock: tracemalloc's
peak (numpy's buffers included), the entries the kernels decode and the raw
bytes read from the section bodies.
"""

import contextlib
import tracemalloc

import numpy as np
import pytest
import zstandard

import plada_codec
from plada_codec import _compression, wire
from plada_codec._backend import get_kernels
from plada_codec.codecs._entries import CHUNK

MiB = 1 << 20
# Beyond the output arrays: the chunk's buffers (an index-delta chunk is at most
# 512 KiB of body and 512 KiB of indices), the width table (k / 128 bytes) and
# Python's own objects. 4 MiB is the bound the spec states (section 13).
WORKING_SET = 4 * MiB
ZSTD = zstandard.ZstdCompressor(level=19, write_content_size=True)

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def _payload(count, n_ref, n_classes, index_raw, label_raw, *, index_codec=0, label_codec=0, compress=True):
    def section(stype, codec, raw):
        if compress and raw:
            return wire.RawSection(stype, codec, 1, ZSTD.compress(raw), raw_length=len(raw))
        return wire.RawSection(stype, codec, 0, raw)

    return wire.join(wire.RawPayload(n_classes=n_classes, n_ref=n_ref, count=count, sections=[
        section(1, index_codec, index_raw), section(2, label_codec, label_raw)]))


def _zero_gaps(count):
    """An index-delta body of `count` consecutive indices from 0: every block width 0."""
    return bytes(-(-count // 128))


def _labels(count, width, first=b""):
    body = bytearray((count * width + 7) // 8)
    body[: len(first)] = first
    return bytes(body)


@contextlib.contextmanager
def _cost(backend, monkeypatch):
    """{"peak": bytes, "entries": entries the kernels decoded, "raw": raw bytes read}."""
    kernels = get_kernels(backend)
    cost = {"entries": 0, "raw": 0, "peak": 0}

    def counting(function):
        def wrapper(raw, count, *args, **kwargs):
            cost["entries"] += count
            return function(raw, count, *args, **kwargs)
        return wrapper

    for name in ("delta_decode", "labels_decode", "bitmap_decode"):
        monkeypatch.setattr(kernels, name, counting(getattr(kernels, name)))
    for source in (_compression._Zstd, _compression._Uncompressed):
        def read(self, n, _read=source.read):
            cost["raw"] += n
            return _read(self, n)
        monkeypatch.setattr(source, "read", read)
    tracemalloc.start()
    try:
        yield cost
    finally:
        cost["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


# -- 1a: the first bad entry stops the decode -------------------------------------------


def test_the_issue_bomb_is_refused_within_one_chunk(backend, monkeypatch):
    """1,227 bytes of zstd bodies declaring k = 2**27 with a bad label at entry 0:
    refused after 3.3 s and +1.06 GiB once; now one chunk of each body."""
    k = 1 << 27
    data = _payload(k, k, 3, _zero_gaps(k), _labels(k, 2, b"\x03"))
    assert len(data) < 1300
    with _cost(backend, monkeypatch) as cost, \
            pytest.raises(plada_codec.PayloadFormatError, match="entry 0 has label 3, allowed 0..2"):
        plada_codec.decode(data, backend=backend, max_count=k)
    assert cost["entries"] <= 2 * CHUNK  # one chunk of indices, one of labels
    # The width table (k / 128 = 1 MiB) and one chunk of labels (16 KiB): nothing sized by k.
    assert cost["raw"] <= k // 128 + CHUNK // 4
    assert cost["peak"] < k // 128 + WORKING_SET


def test_a_bad_label_at_entry_0_under_the_default_limits(backend, monkeypatch):
    k = 1 << 24  # the default max_count
    data = _payload(k, k, 3, _zero_gaps(k), _labels(k, 2, b"\x03"))
    with _cost(backend, monkeypatch) as cost, pytest.raises(plada_codec.PayloadFormatError, match="entry 0"):
        plada_codec.decode(data, backend=backend)
    assert cost["entries"] <= 2 * CHUNK
    assert cost["peak"] < WORKING_SET


def test_a_bad_index_at_entry_0_stops_the_decode(backend, monkeypatch):
    """Block 0 at width 64 with all gaps 2**64 - 1 (>= N), then 2**24 - 128 zero gaps."""
    k = 1 << 24
    widths = bytearray(_zero_gaps(k))
    widths[0] = 64
    index_raw = bytes(widths) + b"\xff" * (16 * 64)
    data = _payload(k, k, 1, index_raw, b"")
    with _cost(backend, monkeypatch) as cost, \
            pytest.raises(plada_codec.PayloadFormatError, match="entry 0 decodes to an index outside"):
        plada_codec.decode(data, backend=backend)
    assert cost["entries"] <= CHUNK
    assert cost["peak"] < WORKING_SET


@pytest.mark.parametrize("label_codec, width", [(0, 2), (1, 8)])
def test_a_later_bad_entry_costs_in_proportion_to_its_position(backend, monkeypatch, label_codec, width):
    """Entry j = 3 * CHUNK + 5 is bad: the decoder holds the j entries before it (doubling
    growth: at most 2 x 12 bytes each) and one chunk more, not k = 2**24 of them."""
    k, bad = 1 << 24, 3 * CHUNK + 5
    labels = bytearray(_labels(k, width))
    if label_codec == 0:
        labels[bad * width // 8] = 3 << (bad * width % 8)  # label 3 >= C = 3
    else:
        labels[bad] = 3
    data = _payload(k, k, 3, _zero_gaps(k), bytes(labels), label_codec=label_codec)
    with _cost(backend, monkeypatch) as cost, \
            pytest.raises(plada_codec.PayloadFormatError, match=f"entry {bad} has label 3"):
        plada_codec.decode(data, backend=backend)
    assert cost["entries"] <= 2 * (bad // CHUNK + 1) * CHUNK
    assert cost["peak"] < 2 * 12 * (bad + CHUNK) + WORKING_SET


def test_a_bad_label_behind_a_bitmap_stops_the_decode(backend, monkeypatch):
    """k = N = 2**24 in a bitmap of all ones (2 MiB, a few hundred bytes of zstd)."""
    k = 1 << 24
    data = _payload(k, k, 3, b"\xff" * (k // 8), _labels(k, 2, b"\x03"), index_codec=1)
    with _cost(backend, monkeypatch) as cost, pytest.raises(plada_codec.PayloadFormatError, match="entry 0"):
        plada_codec.decode(data, backend=backend)
    assert cost["entries"] <= 2 * CHUNK + (1 << 16)  # one scan of 8 KiB of bitmap is 2**16 positions
    assert cost["peak"] < WORKING_SET


# -- 1c: a bitmap's work is the ceil(N / 8) bytes the spec requires, its memory a chunk ----


def test_an_empty_selection_in_a_256_mib_bitmap_costs_no_256_mib(backend, monkeypatch):
    """k = 0 over N = 2**31 (the default max_section_bytes): 8.3 KB on the wire,
    accepted after 0.33 s and 256 MiB once. The spec requires every one of the
    ceil(N / 8) bytes to be read (each could hold a set bit); nothing else is done."""
    n_ref = 1 << 31
    data = _payload(0, n_ref, 1, bytes(n_ref // 8), b"", index_codec=1)
    assert len(data) < 10_000
    with _cost(backend, monkeypatch) as cost:
        payload = plada_codec.decode(data, backend=backend)
    assert payload.indices.size == 0
    assert cost["raw"] == n_ref // 8  # the bound: ceil(N / 8) <= max_section_bytes bytes read
    assert cost["entries"] == 0  # no byte held a set bit, so no positions were made
    assert cost["peak"] < MiB  # one read of 256 KiB, not the 256 MiB body


def test_a_set_bit_at_the_end_of_an_empty_bitmap_is_counted_exactly(backend):
    n_ref = 1 << 24
    body = bytearray(n_ref // 8)
    body[-1] = 0x80
    body[12345] = 0x11
    with pytest.raises(plada_codec.PayloadFormatError, match="bitmap has 3 set bits but the header declares k = 0"):
        plada_codec.decode(_payload(0, n_ref, 1, bytes(body), b"", index_codec=1), backend=backend)
    # Fewer set bits than k: found when the body ends.
    with pytest.raises(plada_codec.PayloadFormatError, match="bitmap has 3 set bits but the header declares k = 4"):
        plada_codec.decode(_payload(4, n_ref, 1, bytes(body), b"", index_codec=1), backend=backend)


def test_bitmap_decode_in_chunks_matches_the_selection(backend):
    """Set bits on both sides of every read and scan boundary (1 MiB, 32 KiB) and the padding."""
    n_ref = 8 * (3 * MiB + 5) - 3
    positions = sorted({0, 7, 8, n_ref - 1, *(b * 8 * (1 << 15) + d for b in range(1, 97) for d in (-1, 0))})
    rng = np.random.default_rng(3)
    positions = np.unique(np.concatenate([positions, rng.choice(n_ref, 300_000, replace=False)]))
    labels = rng.integers(0, 5, positions.size)
    data = plada_codec.encode(positions, labels, n_ref=n_ref, n_classes=5, index_codec="bitmap", backend=backend)
    payload = plada_codec.decode(data, backend=backend)
    np.testing.assert_array_equal(payload.indices, positions)
    np.testing.assert_array_equal(payload.labels, labels)


@pytest.mark.parametrize("index_codec, label_codec, compression",
                         [("delta", "packed", "zstd"), ("delta", "bytes", "none"), ("bitmap", "packed", "none")])
def test_chunked_decode_across_many_chunks(backend, index_codec, label_codec, compression):
    """k = 5.5 chunks of a random selection: every chunk boundary of both sections."""
    rng = np.random.default_rng(11)
    k = 5 * CHUNK + CHUNK // 2 + 3
    n_ref = 40 * k
    indices = np.sort(rng.choice(n_ref, k, replace=False))
    labels = rng.integers(0, 300, k)
    data = plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=300, index_codec=index_codec,
                              label_codec=label_codec, compression=compression, zstd_level=1, backend=backend)
    payload = plada_codec.decode(data, backend=backend)
    np.testing.assert_array_equal(payload.indices, indices)
    np.testing.assert_array_equal(payload.labels, labels)
    assert payload.indices.dtype == np.int64 and payload.labels.dtype == np.int32


def test_a_range_error_in_a_later_chunk_names_its_entry(backend):
    """Gaps 0 but the very last one 1, over N = k: entry k - 1 (last chunk) decodes to k."""
    k = 3 * CHUNK + 7
    widths = bytearray(_zero_gaps(k))
    widths[-1] = 1
    body = bytes(widths) + bytes([1 << 6])  # the last block: 7 gaps of 1 bit, the 7th set
    with pytest.raises(plada_codec.PayloadFormatError, match=f"entry {k - 1} decodes to an index outside"):
        plada_codec.decode(_payload(k, k, 1, body, b"", compress=False), backend=backend)
    payload = plada_codec.decode(_payload(k, k + 1, 1, body, b"", compress=False), backend=backend)
    assert payload.indices[-2:].tolist() == [k - 2, k]


# -- the streamed Zstandard frame keeps every rule of 5.4 --------------------------------


def _one_section(raw, stored, raw_length=None):
    """k = len(raw) labels of C = 256 (bytes codec), the label body stored as *stored*."""
    k = len(raw)
    return wire.join(wire.RawPayload(n_classes=256, n_ref=k, count=k, sections=[
        wire.RawSection(1, 0, 0, _zero_gaps(k)),
        wire.RawSection(2, 1, 1, stored, raw_length=k if raw_length is None else raw_length)]))


@pytest.mark.parametrize("damage, message", [
    (lambda f: f + b"\x00", "zstd frame ends at byte"),  # a byte after the frame
    (lambda f: f + ZSTD.compress(b"x"), "zstd frame ends at byte"),  # a second frame
    (lambda f: f[:-1], "cut short"),
    (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "corrupt zstd frame"),  # the content checksum
])
def test_streamed_frames_keep_the_rules(backend, damage, message):
    raw = bytes(range(256)) * 4096
    frame = zstandard.ZstdCompressor(level=3, write_content_size=True, write_checksum=True).compress(raw)
    assert np.array_equal(plada_codec.decode(_one_section(raw, frame), backend=backend).labels,
                          np.frombuffer(raw, np.uint8))
    with pytest.raises(plada_codec.PayloadFormatError, match=message):
        plada_codec.decode(_one_section(raw, damage(frame)), backend=backend)


def test_a_frame_shorter_than_it_declares_is_refused(backend):
    """Frame_Content_Size = raw_length, but the blocks hold less (a hand-made frame)."""
    raw = bytes(1000)
    frame = bytearray(zstandard.ZstdCompressor(level=1, write_content_size=True).compress(raw))
    # Rewrite the single-segment frame's 2-byte content size (value - 256, after the
    # magic and the descriptor byte) from 1000 to 2000.
    assert zstandard.frame_content_size(bytes(frame)) == 1000 and frame[4] >> 6 == 1 and frame[4] & 0x20
    frame[5:7] = (2000 - 256).to_bytes(2, "little")
    assert zstandard.frame_content_size(bytes(frame)) == 2000
    with pytest.raises(plada_codec.PayloadFormatError, match="zstd"):
        plada_codec.decode(_one_section(bytes(2000), bytes(frame)), backend=backend)


def test_frame_walk_agrees_with_libzstd():
    """The block walk used where python-zstandard's cffi backend is missing."""
    rng = np.random.default_rng(2)
    for size in (0, 1, 1000, 200_000, 1 << 20):
        for checksum in (False, True):
            raw = rng.integers(0, 4, size, dtype=np.uint8).tobytes()
            frame = zstandard.ZstdCompressor(level=3, write_content_size=True, write_checksum=checksum).compress(raw)
            for body in (frame, frame + b"tail", frame[:-1], frame[: len(frame) // 2]):
                expected = _compression.frame_size(body, checksum)
                assert _compression.walk_frame(body, checksum) == expected
                assert expected == (len(frame) if body.startswith(frame) else None)


# -- 1b: the default max_count fits every real payload, and not 9x more ------------------


IMAGENET_21K = 14_197_122


def test_default_max_count_fits_imagenet_21k_and_not_9x_more():
    assert IMAGENET_21K <= plada_codec.DEFAULT_MAX_COUNT < 2 * IMAGENET_21K
    assert plada_codec.DEFAULT_MAX_COUNT == 1 << 24


def test_k_above_the_default_is_refused_before_allocation(backend):
    k = (1 << 24) + 1
    data = _payload(k, k, 1, _zero_gaps(k), b"")
    assert len(data) < 400
    tracemalloc.start()
    try:
        with pytest.raises(plada_codec.LimitExceededError, match="max_count = 16777216"):
            plada_codec.decode(data, backend=backend)
        assert tracemalloc.get_traced_memory()[1] < MiB
    finally:
        tracemalloc.stop()


def test_against_a_reference_k_and_indices_are_bounded_by_its_n(backend):
    """Decoding against a local set of N items: a payload for another N is refused before
    any body is read, and k <= N = the local N is a header rule (FORMAT.md 8, 9 step 3)."""
    reference = plada_codec.ReferenceSet.from_ids(str(i) for i in range(1000))
    k = 1 << 24
    claimed = wire.split(_payload(k, k, 1, _zero_gaps(k), b""))
    claimed.fingerprint = reference.fingerprint
    tracemalloc.start()
    try:
        with pytest.raises(plada_codec.ReferenceMismatchError, match=r"16777216 items; the local one \(ids\) has 1000"):
            plada_codec.decode(wire.join(claimed), backend=backend, reference=reference)
        assert tracemalloc.get_traced_memory()[1] < MiB
    finally:
        tracemalloc.stop()
    claimed.n_ref, claimed.count = 1000, 1001
    with pytest.raises(plada_codec.PayloadFormatError, match="count at offset 24 is 1001, more than n_ref = 1000"):
        plada_codec.decode(wire.join(claimed), backend=backend, reference=reference)


# -- 1c: class names bounded by C and a per-name floor ------------------------------------


def _with_class_names(n_classes, names_raw):
    raw = wire.split(plada_codec.encode([0], [0], n_ref=1, n_classes=n_classes, compression="none"))
    raw.sections.append(wire.RawSection(0x8001, 0, 1, ZSTD.compress(names_raw), raw_length=len(names_raw)))
    return wire.join(raw)


def test_a_million_empty_class_names_are_refused_before_decompressing(backend):
    """2**20 empty names in a 309-byte payload: 447 ms once; each name now counts as 64 bytes."""
    count = 1 << 20
    data = _with_class_names(count, bytes(4 * count))
    assert len(data) < 400
    tracemalloc.start()
    try:
        with pytest.raises(plada_codec.LimitExceededError,
                           match=r"counted as 67108864 bytes: at least 64 bytes a name\) is above max_ancillary"):
            plada_codec.decode(data, backend=backend)
        assert tracemalloc.get_traced_memory()[1] < MiB
    finally:
        tracemalloc.stop()
    # The caller may allow them: 64 bytes a name.
    assert len(plada_codec.decode(data, backend=backend, max_ancillary_bytes=64 * count).class_names) == count
    with pytest.raises(plada_codec.LimitExceededError):
        plada_codec.decode(data, backend=backend, max_ancillary_bytes=64 * count - 1)


def test_class_names_at_the_default_limit(backend):
    """65,536 names decode by default (2**22 / 64), 65,537 do not; ImageNet-21K's 21,841 fit."""
    assert len(plada_codec.decode(_with_class_names(1 << 16, bytes(4 << 16)), backend=backend).class_names) == 1 << 16
    with pytest.raises(plada_codec.LimitExceededError):
        plada_codec.decode(_with_class_names((1 << 16) + 1, bytes(4 * ((1 << 16) + 1))), backend=backend)
    names = [f"n{i:08d} some synset name" for i in range(21_841)]
    data = plada_codec.encode([0], [0], n_ref=1, n_classes=len(names), class_names=names, backend=backend)
    assert plada_codec.decode(data, backend=backend).class_names == tuple(names)


def test_the_encoder_refuses_class_names_its_decoder_would(backend):
    with pytest.raises(plada_codec.EncodeError, match=r"counted as 4194368 \(at least 64 bytes a name\)"):
        plada_codec.encode([0], [0], n_ref=1, n_classes=(1 << 16) + 1, class_names=[""] * ((1 << 16) + 1),
                           backend=backend)


# -- 1d: the worst decode memory at the default limits (FORMAT.md 13) ---------------------

# 12 bytes a pair (int64 index, int32 label), k <= max_count = 2**24: 192 MiB of output.
OUTPUT_BYTES_PER_PAIR = 12


def _worst_cases():
    k = 1 << 24
    return {
        # The smallest payload known to reach max_count: zero gaps in Zstandard, C = 1 (157 bytes).
        "zstd-delta": (_payload(k, k, 1, _zero_gaps(k), b""), k),
        "zstd-delta-4-byte-labels": (_payload(k, k, 1 << 24, _zero_gaps(k), bytes(4 * k), label_codec=1), k),
        # Uncompressed: one width byte carries 128 pairs, 1,536 bytes of output.
        "raw-delta": (_payload(k, k, 1, _zero_gaps(k), b"", compress=False), k),
        "raw-bitmap": (_payload(k, k, 1, b"\xff" * (k // 8), b"", index_codec=1, compress=False), k),
    }


@pytest.mark.parametrize("name", list(_worst_cases()))
def test_worst_case_memory_at_the_default_limits(backend, name):
    data, k = _worst_cases()[name]
    tracemalloc.start()
    try:
        payload = plada_codec.decode(data, backend=backend)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert payload.indices.size == k == plada_codec.DEFAULT_MAX_COUNT
    assert peak <= OUTPUT_BYTES_PER_PAIR * k + WORKING_SET, f"{name}: peak {peak / MiB:.1f} MiB"
    if name == "zstd-delta":  # the figure FORMAT.md 13 states: 196 MiB from 157 bytes
        assert len(data) == 157
    if name.startswith("raw"):  # uncompressed bodies: at most 1,536 bytes of output per byte
        assert peak <= 1536 * len(data) + WORKING_SET


def test_context_model_memory_is_bound_to_its_bytes(backend):
    """Context model (1.1): k <= 8 pairs per body byte, so at most 96 bytes of output per
    byte; a body of k / 8 zero bytes is refused having allocated just that."""
    k = 1 << 14
    data = wire.join(wire.RawPayload(n_classes=1, n_ref=k, count=k, minor=1, sections=[
        wire.RawSection(1, 2, 0, bytes(k // 8)), wire.RawSection(2, 2, 0, b"")]))
    tracemalloc.start()
    try:
        with pytest.raises(plada_codec.PayloadFormatError):
            plada_codec.decode(data, backend=backend)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 96 * (k // 8) + WORKING_SET


# -- the metadata item count limit, as the docstring and the code count it (issue 17) ---------------


def test_the_decoder_docstring_counts_metadata_items_as_the_spec_does():
    doc = plada_codec.PayloadDecoder.__doc__
    assert "outside strings" not in doc and "inside strings or not" in doc
    # ... and the code does: a ',' inside a string counts (2 items here, 1 value).
    raw = wire.split(plada_codec.encode([1], [0], n_ref=4, n_classes=2, metadata={"a": ",,,"}))
    with pytest.raises(plada_codec.LimitExceededError, match="max_metadata_items"):
        plada_codec.decode(wire.join(raw), max_metadata_items=3)
