"""Bad input: the encoder names the problem, the decoder raises only documented errors."""

import os
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from plada_codec import wire
from tests.helpers import check_rejects_only_documented
from tests.strategies import mutations, small_payloads, structural_mutations

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def test_exception_tree():
    assert issubclass(plada_codec.PayloadFormatError, ValueError)
    assert issubclass(plada_codec.TruncatedPayloadError, EOFError)
    for cls in (plada_codec.TruncatedPayloadError, plada_codec.TrailingDataError, plada_codec.ChecksumError,
                plada_codec.UnsupportedVersionError, plada_codec.UnsupportedFeatureError):
        assert issubclass(cls, plada_codec.PayloadFormatError)
    for cls in (plada_codec.LimitExceededError, plada_codec.ReferenceMismatchError, plada_codec.EncodeError):
        assert issubclass(cls, plada_codec.PayloadError)


def _deep(depth):
    value = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _cyclic():
    value = {}
    value["self"] = value
    return value


@pytest.mark.parametrize(
    "indices, labels, kwargs, message",
    [
        ([3, 1], [0, 0], {}, r"indices\[1\] = 1 is not greater than indices\[0\] = 3"),
        ([1, 1], [0, 0], {}, "sorted and distinct"),
        ([-1], [0], {}, "negative"),
        ([10], [0], {}, "not below n_ref = 10"),
        ([1], [2], {}, r"labels\[0\] = 2 outside 0..1"),
        ([1], [-1], {}, "outside"),
        ([1, 2], [0], {}, "2 indices but 1 labels"),
        ([1.0], [0], {}, "must be integers"),
        ([[1]], [[0]], {}, "one-dimensional"),
        ([1], [0], {"n_classes": 0}, "n_classes must be"),
        ([1], [0], {"n_ref": 0}, "n_ref must be"),
        ([1], [0], {"n_ref": 2**48 + 1}, "n_ref must be"),
        ([1], [0], {"zstd_level": 30}, "zstd_level"),
        ([1], [0], {"index_codec": "roaring"}, "index_codec must be"),
        ([1], [0], {"class_names": ["a"]}, "class_names has 1 names"),
        ([1], [0], {"class_names": "ab"}, "not one str"),
        ([1], [0], {"metadata": {"x": float("nan")}}, "not a finite number"),
        ([1], [0], {"metadata": {"x": float("inf")}}, "not a finite number"),
        ([1], [0], {"metadata": {"x": object()}}, "not JSON-serialisable"),
        ([1], [0], {"metadata": {"x": 2**53}}, r"outside \+-\(2\*\*53 - 1\)"),
        ([1], [0], {"metadata": {"x": -(2**53)}}, r"outside \+-\(2\*\*53 - 1\)"),
        ([1], [0], {"metadata": {"x": 10**5000}}, "integer of 16610 bits"),  # str() of it raises ValueError
        ([1], [0], {"metadata": {"x": "\ud800"}}, "lone surrogate"),
        ([1], [0], {"metadata": {"\udfff": 1}}, "lone surrogate"),
        ([1], [0], {"metadata": {1: "a", "1": "b"}}, "JSON keys are str"),  # json.dumps would write "1" twice
        ([1], [0], {"metadata": _deep(5000)}, "nested deeper than 64"),
        ([1], [0], {"metadata": _cyclic()}, "nested deeper than 64"),
        ([1], [0], {"metadata": {"x": list(range(70_000))}}, "JSON items"),
        ([1], [0], {"metadata": {"x": "a" * (1 << 22)}}, "bytes as JSON"),
        ([1], [0], {"metadata": [("a", 1)]}, "must be a mapping"),
        ([[1], [2, 3]], [0, 0], {}, "one-dimensional array of integers"),  # ragged
        ([1], [0], {"n_classes": True}, "n_classes must be"),
        ([1], [0], {"n_ref": True}, "n_ref must be"),
        ([1], [0], {"n_ref": 10**5000}, "n_ref must be an int in 1..2\\*\\*48, got an integer of 16610 bits"),
        ([1], [0], {"n_classes": 2.0}, "n_classes must be"),
        ([1], [0], {"zstd_level": True}, "zstd_level"),
        ([1], [0], {"compression": ["zstd"]}, "compression must be"),
        ([1], [0], {"class_names": ["a" * (1 << 21), "b" * (1 << 21)]}, "decoders accept by default"),
        ([1], [0], {"task_name": "\ud800"}, "not valid Unicode"),
        ([1], [0], {"reference": b"short"}, "reference must be"),
        ([1], [0], {"n_ref": 2**48, "index_codec": "bitmap"}, "use index_codec='delta'"),
    ],
)
def test_encoder_rejects_bad_selection(backend, indices, labels, kwargs, message):
    options = {"n_ref": 10, "n_classes": 2, **kwargs}
    with pytest.raises(plada_codec.EncodeError, match=message):
        plada_codec.encode(indices, labels, backend=backend, **options)


@given(small_payloads(), st.data())
def test_mutations_raise_only_documented_errors(backend, data, draw):
    damaged = draw.draw(mutations(data))
    check_rejects_only_documented(damaged, backend=backend)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_documented_errors(backend, data):
    check_rejects_only_documented(data, backend=backend)
    check_rejects_only_documented(plada_codec.encode([0], [0], n_ref=1, n_classes=1)[:10] + data,
                                  backend=backend)


def test_ten_thousand_mutations(backend):
    """The 'done when' count: 10,000 seeded random mutations of valid payloads."""
    rng = random.Random(20261122)
    np_rng = np.random.default_rng(1)
    seeds = []
    for n_ref, k, c, opts in [(1000, 50, 5, {}), (300, 300, 3, {"index_codec": "bitmap"}),
                              (2**40, 20, 2**20, {"compression": "none"}), (5000, 400, 10, {"label_codec": "bytes"})]:
        idx = np.sort(np_rng.choice(min(n_ref, 10**6), k, replace=False))
        seeds.append(plada_codec.encode(idx, np_rng.integers(0, c, k), n_ref=n_ref, n_classes=c, zstd_level=1,
                                        metadata={"m": 1}, task_name="t", **opts))
    total = int(os.environ.get("PLADA_MUTATIONS", "10000"))
    outcomes = {"ok": 0}
    for _ in range(total):
        buf = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            at = rng.randrange(len(buf))
            if op < 0.5:
                buf[at] ^= 1 << rng.randrange(8)
            elif op < 0.7:
                buf[at] = rng.randrange(256)
            elif op < 0.85:
                del buf[at:]
                if not buf:
                    break
            else:
                buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        try:
            plada_codec.decode(bytes(buf), backend=backend)
            outcomes["ok"] += 1
        except plada_codec.PayloadError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    assert sum(outcomes.values()) == total
    assert outcomes["ok"] < total // 100  # CRCs catch nearly every change


@given(small_payloads(), st.data())
def test_structural_mutations_with_valid_crcs(backend, data, draw):
    """Lying length fields and bad field values behind correct CRCs."""
    damaged = draw.draw(structural_mutations(data))
    check_rejects_only_documented(damaged, backend=backend, max_count=10**6, max_section_bytes=2**24)


def test_huge_declared_sizes_are_refused_before_allocation(backend):
    """k = 2**40 in a 150-byte payload: LimitExceeded, not a 12 TB allocation."""
    raw = wire.RawPayload(n_classes=2, n_ref=2**48, count=2**40,
                          sections=[wire.RawSection(1, 0, 0, b""), wire.RawSection(2, 0, 0, b"")])
    with pytest.raises(plada_codec.LimitExceededError, match="max_count"):
        plada_codec.decode(wire.join(raw), backend=backend)
    raw.count = 2**20  # within limits: the raw_length bound rejects the empty body
    with pytest.raises(plada_codec.PayloadFormatError, match="raw_length 0 outside"):
        plada_codec.decode(wire.join(raw), backend=backend)


def test_bitmap_over_section_limit(backend):
    data = plada_codec.encode([5], [0], n_ref=2**20, n_classes=1, index_codec="bitmap")
    with pytest.raises(plada_codec.LimitExceededError, match="max_section_bytes"):
        plada_codec.decode(data, backend=backend, max_section_bytes=1000)


def test_not_bytes_is_type_error():
    with pytest.raises(TypeError, match="bytes-like"):
        plada_codec.decode("not bytes")


# -- decoding cost bounded by a real payload's needs (FORMAT.md 5.5, 5.7) -----------------


def _with_ancillary(stype, body, n_classes=2):
    """A valid payload plus one ancillary section holding *body* (zstd-compressed)."""
    import zstandard

    raw = wire.split(plada_codec.encode([1], [0], n_ref=4, n_classes=n_classes, compression="none"))
    stored = zstandard.ZstdCompressor(level=1).compress(body)
    raw.sections.append(wire.RawSection(stype, 0, 1, stored, raw_length=len(body)))
    return wire.join(raw)


def _decode_peak(data, backend, **limits):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(plada_codec.LimitExceededError) as info:
            plada_codec.decode(data, backend=backend, **limits)
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def blowups():
    """The issue's blowups: once 39-57 s and 3.1 GB, 27 s and 2.7 GB, 5-7 s and 320 MB."""
    nested = b'{"a":[' + b"{}," * ((2**26 - 16) // 3) + b"{}]}"
    return {
        "nested": _with_ancillary(0x8003, nested),
        "zeros": _with_ancillary(0x8003, b'{"a":[' + b"0," * 2_000_000 + b"0]}"),
        "class-names": _with_ancillary(0x8001, bytes(4 * 2**24), n_classes=2**24),
    }


def test_metadata_blowup_refused_before_decompressing(backend, blowups):
    assert len(blowups["nested"]) < 10_000  # a few KB on the wire, 64 MiB of JSON inside
    error, peak = _decode_peak(blowups["nested"], backend)
    assert "max_ancillary_bytes" in str(error)
    assert peak < 1 << 20  # nothing of the 64 MiB was allocated


def test_metadata_items_refused_before_parsing(backend, blowups):
    error, peak = _decode_peak(blowups["zeros"], backend)
    assert "max_metadata_items" in str(error)
    assert peak < 16 << 20  # the 4 MB body and a copy, not 2 million Python objects


def test_class_names_blowup_refused(backend, blowups):
    error, peak = _decode_peak(blowups["class-names"], backend)
    assert "max_ancillary_bytes" in str(error)
    assert peak < 1 << 20
    # Raising the limit is the caller's choice and then the names decode.
    small = _with_ancillary(0x8001, bytes(4 * 1000), n_classes=1000)
    assert plada_codec.decode(small, backend=backend).class_names == ("",) * 1000
    with pytest.raises(plada_codec.LimitExceededError):
        plada_codec.decode(small, backend=backend, max_ancillary_bytes=3999)


REFUSED_METADATA = [
    (b'{"a":' + b"1" * 5000 + b"}", "outside"),  # Python's int limit once raised a bare ValueError
    (b'{"a":9007199254740992}', "outside"),
    (b'{"a":-9007199254740992}', "outside"),
    (b'{"a":1e999}', "range of a double"),
    (b'{"a":-1e400}', "range of a double"),
    (b'{"a":"\\ud800"}', "lone surrogate"),
    (b'{"\\udfff":1}', "lone surrogate"),
    (b'{"a":["x\\ud83dy"]}', "lone surrogate"),
    (b'\xef\xbb\xbf{"a":1}', "byte-order mark"),
    (b'{"a":1,"\\u0061":2}', "duplicate key"),
    (b'{"a":{"b":1,"b":1}}', "duplicate key"),
]


@pytest.mark.parametrize("body, message", REFUSED_METADATA)
def test_decoder_refuses_what_the_encoder_refuses(backend, body, message):
    with pytest.raises(plada_codec.PayloadFormatError, match=message):
        plada_codec.decode(_with_ancillary(0x8003, body), backend=backend)


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"a":9007199254740991,"b":-9007199254740991}', {"a": 2**53 - 1, "b": -(2**53 - 1)}),
        (b'{"a":"\\ud83d\\ude00"}', {"a": "\U0001F600"}),  # an escaped surrogate pair is one character
        (b'{"a":1.0,"b":1,"c":1e308}', {"a": 1.0, "b": 1, "c": 1e308}),
    ],
)
def test_decoder_accepts_the_edges(backend, body, expected):
    metadata = plada_codec.decode(_with_ancillary(0x8003, body), backend=backend).metadata
    assert metadata == expected
    assert [type(v) for v in metadata.values()] == [type(v) for v in expected.values()]
    # ... and the encoder writes them back (no lone surrogates, no out-of-range numbers)
    again = plada_codec.encode([1], [0], n_ref=4, n_classes=2, metadata=metadata)
    assert plada_codec.decode(again).metadata == expected


# Lone surrogates, but only high ones: two of them never form a pair.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)) | st.just("\ud800"), max_size=4)
_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats() | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(_TEXT, _JSON_LIKE, max_size=4))
def test_one_metadata_rule_for_both_sides(backend, metadata):
    """Whatever the encoder refuses, the decoder refuses as JSON text, and the reverse (FORMAT.md 5.7)."""
    import json

    text = json.dumps(metadata, ensure_ascii=True, allow_nan=True)  # NaN, Infinity, \ud800 escapes kept
    try:
        written = plada_codec.encode([1], [0], n_ref=4, n_classes=2, metadata=metadata, backend=backend)
    except plada_codec.EncodeError:
        written = None
    foreign = _with_ancillary(0x8003, text.encode("ascii"))
    if written is None:
        with pytest.raises(plada_codec.PayloadFormatError):
            plada_codec.decode(foreign, backend=backend)
    else:
        assert plada_codec.decode(written, backend=backend).metadata == metadata
        assert plada_codec.decode(foreign, backend=backend).metadata == metadata


@pytest.mark.parametrize("version", ["banana", "2.0", "1.99", (0, 9)])
def test_invalid_decoder_format_version_is_a_payload_error(version):
    data = plada_codec.encode([1], [0], n_ref=4, n_classes=2)
    with pytest.raises(plada_codec.InvalidOptionError) as info:
        plada_codec.decode(data, format_version=version)
    assert isinstance(info.value, plada_codec.PayloadError) and isinstance(info.value, ValueError)
