"""Format 1.1's joint context-model codec is specified completely: a second
decoder written from FORMAT.md section 15 alone (spec/educational_cm.py,
stdlib only, hooked into spec/educational_decoder.py) reproduces Appendix B
decision by decision and agrees with plada_codec outcome for outcome on
encoded and on damaged payloads. (Its run over the 1.1 vectors is in
tests/spec/test_vectors.py, with every other decoder and version.)"""

import random

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from plada_codec import codecs, wire
from plada_codec.synthetic import clustered_selection
from tests.spec import educational as edu

SPEC = edu.SPEC
VECTORS = SPEC / "vectors" / "v1.1"

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


educational, cm = edu.decoder, edu.cm

HAS_CM = "context-model" in codecs.names("index")
needs_cm = pytest.mark.skipif(not HAS_CM, reason="plada_codec has no context-model codec registered")


# -- the spec's own examples, typed in from FORMAT.md ------------------------------------------


def test_rate_table_values_quoted_in_15_3():
    assert (cm.RATE[0], cm.RATE[1], cm.RATE[2], cm.RATE[60], cm.RATE[255]) == (43690, 26214, 18724, 1065, 255)


# Appendix B: (decision, bit, model index, bound), line by line.
APPENDIX_B = [
    ("L < 3?", 1, 588, 0x7FFF8000), ("L < 2?", 0, 590, 0x40000000), ("mantissa", 1, 9, 0x20000000),
    ("slot 0?", 0, 25, 0x10000000), ("slot 1?", 0, 175, 0x08000000), ("slot 2?", 0, 325, 0x04000000),
    ("slot 3?", 0, 475, 0x02000000), ("tree", 1, 1, 0x01000000), ("tree", 0, 3, 0x00800000),
    ("tree", 0, 6, 0x40000000),
    ("L < 3?", 1, 490, 0x20000000), ("L < 2?", 1, 492, 0x10000000), ("slot 0?", 1, 6, 0x08000000),
    ("L < 2?", 0, 392, 0x04000000), ("L > 2?", 1, 443, 0x02000000), ("L > 3?", 1, 444, 0x01000000),
    ("L > 4?", 0, 445, 0x00800000), ("mantissa", 0, 17, 0x40000000), ("mantissa", 0, 18, 0x20000000),
    ("slot 0?", 0, 87, 0x08000000), ("slot 1?", 0, 235, 0x04000000), ("slot 2?", 1, 385, 0x02000000),
]


def test_appendix_b_decision_by_decision():
    trace = []
    assert cm.decode_cm_body(bytes.fromhex("00A13A82"), 3, 20, 5, trace=trace) == ([2, 3, 11], [4, 4, 1])
    assert trace == APPENDIX_B


def test_appendix_b_encoder_bytes():
    """15.8's encoder, written from the spec, gives the worked example's body."""
    assert cm.encode_cm_body([2, 3, 11], [4, 4, 1], 20, 5, preset=0) == bytes.fromhex("00A13A82")


@pytest.mark.parametrize("stream, error", [
    ("", "FormatError"),                  # 15.2: empty body
    ("02", "UnsupportedFeature"),         # 15.2: unknown preset
    ("00FFFFFFFF", "FormatError"),        # 15.4: code >= range at the start
    ("00A13A8200", "FormatError"),        # 15.7: a trailing zero byte
    ("00A13A82000001", "FormatError"),    # 15.7: bytes never read
    ("00A13A83", "FormatError"),          # 15.7: decodes the same, but not the smallest stream
])
def test_appendix_b_stream_damaged(stream, error):
    with pytest.raises(cm.DecodeError) as info:
        cm.decode_cm_body(bytes.fromhex(stream), 3, 20, 5)
    assert info.value.kind == error


def test_empty_selection_is_the_preset_byte_alone():
    """15.7: with k = 0 nothing is coded; the canonical stream is empty."""
    for preset in (0, 1):
        assert cm.decode_cm_body(bytes([preset]), 0, 10, 3) == ([], [])
        with pytest.raises(cm.DecodeError):
            cm.decode_cm_body(bytes([preset, 1]), 0, 10, 3)


# -- differential: the educational decoder against plada_codec --------------------------------


def _same(data, backend):
    mine, theirs = edu.outcome_spec(data), edu.outcome_plada(data, backend)
    if isinstance(mine, dict) and isinstance(theirs, dict):
        mine = {key: mine[key] for key in edu.CONTENT_KEYS}
        theirs = {key: theirs[key] for key in edu.CONTENT_KEYS}
    assert mine == theirs


N_REFS = [1, 2, 3, 7, 20, 255, 256, 1000, 5000, 65537, 2**32 + 3, 2**48]
CLASS_COUNTS = [1, 2, 3, 4, 5, 7, 100, 256, 257, 1000, 65536, 65539, 2**24]


def _selection(seed):
    """A random or clustered selection; small k (the educational decoder is slow)."""
    rng = random.Random(seed)
    n_ref, n_classes = rng.choice(N_REFS), rng.choice(CLASS_COUNTS)
    count = rng.randint(0, min(n_ref, 48))
    if count and 1000 <= n_ref <= 65537 and rng.random() < 0.5:
        indices, labels = clustered_selection(n_ref, count, n_classes, seed=seed)
        return [int(i) for i in indices], [int(x) for x in labels], n_ref, n_classes
    if rng.random() < 0.3:  # runs of consecutive indices with runs of equal labels
        start = rng.randrange(n_ref - count + 1)
        indices = list(range(start, start + count))
        labels = [min(j // 5, n_classes - 1) for j in range(count)]
    else:
        indices = sorted(rng.sample(range(n_ref), count))
        labels = [rng.randrange(n_classes) if rng.random() < 0.6 else 0 for _ in indices]
    return indices, labels, n_ref, n_classes


def _cm_payload(seed):
    indices, labels, n_ref, n_classes = _selection(seed)
    return plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=n_classes,
                              index_codec="context-model", compression="none")


@needs_cm
def test_encoded_payloads_agree(backend):
    presets = set()
    for seed in range(120):
        data = _cm_payload(seed)
        presets.add(wire.split(data).sections[0].body[:1])
        _same(data, backend)
    assert presets == {b"\x00", b"\x01"}, "both presets exercised"


@needs_cm
@pytest.mark.parametrize("n_ref, count, n_classes", [(5000, 400, 10), (60000, 1500, 100), (2**20, 300, 2**24)])
def test_long_selections_agree(backend, n_ref, count, n_classes):
    """Enough pairs that models reach their rate_limit (60 and 255 updates, 15.3)."""
    indices, labels = clustered_selection(n_ref, count, n_classes, seed=count)
    rng = random.Random(count)
    presets = set()
    for data in (plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=n_classes,
                                    index_codec="context-model", compression="none"),
                 plada_codec.encode(sorted(rng.sample(range(n_ref), count)),
                                    [rng.randrange(n_classes) for _ in range(count)],
                                    n_ref=n_ref, n_classes=n_classes, index_codec="context-model",
                                    compression="none")):
        presets.add(wire.split(data).sections[0].body[0])
        _same(data, backend)
    assert presets == {0, 1}, "the clustered selection takes preset 0, the uniform one preset 1"


@needs_cm
def test_encoder_of_15_8_gives_plada_codec_bytes():
    """15.8: "an encoder MUST produce exactly these bytes"; 15.9: the smaller allowed preset is kept."""
    for seed in range(150):
        indices, labels, n_ref, n_classes = _selection(seed)
        body = wire.split(plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=n_classes,
                                             index_codec="context-model", compression="none")).sections[0].body
        mine = {preset: cm.encode_cm_body(indices, labels, n_ref, n_classes, preset) for preset in (0, 1)}
        assert body == mine[body[0]]
        # 15.9: the smaller of the presets that meet 15.1's lower bound, ceil(k / 8) bytes
        assert len(body) == min(len(b) for b in mine.values() if len(b) >= max(1, -(-len(indices) // 8)))
        for preset in (0, 1):
            assert cm.decode_cm_body(mine[preset], len(indices), n_ref, n_classes) == (indices, labels)


def _damage(raw, rng):
    """One change to a context-model payload; lengths and CRCs are recomputed by wire.join
    (raw_length too, so that a longer or shorter body reaches the codec)."""
    index, labels = raw.sections[0], raw.sections[1]
    body = bytearray(index.body)
    kind = rng.randrange(14)
    if kind == 0 and body:  # flip one bit
        bit = rng.randrange(8 * len(body))
        body[bit >> 3] ^= 1 << (bit & 7)
    elif kind == 1 and body:  # overwrite one byte
        body[rng.randrange(len(body))] = rng.randrange(256)
    elif kind == 2:  # cut the stream short
        del body[rng.randrange(len(body) + 1):]
    elif kind == 3:  # append bytes (zeros or not)
        body += bytes(rng.choice([0, rng.randrange(256)]) for _ in range(rng.randint(1, 3)))
    elif kind == 4 and body:  # another preset
        body[0] = rng.choice([0, 1, 2, 255])
    elif kind == 5:  # another k
        raw.count = max(0, raw.count + rng.choice([-1, 1]))
    elif kind == 6:  # another N
        raw.n_ref = max(1, raw.n_ref + rng.choice([-1, 1, -raw.n_ref // 2]))
    elif kind == 7:  # another C
        raw.n_classes = max(1, raw.n_classes + rng.choice([-1, 1]))
    elif kind == 8:  # the label section with a body
        labels.body, labels.raw_length = bytes(rng.randint(1, 3)), None
    elif kind == 9:  # a joint codec without its partner
        (index if rng.random() < 0.5 else labels).codec = 0
    elif kind == 10:  # a 1.0 header minor version
        raw.minor = 0
    elif kind == 11:  # the body compressed (allowed; encoders do not write it)
        index.body = zstandard.ZstdCompressor().compress(bytes(body))
        index.compression, index.raw_length = 1, len(body)
        return
    elif kind == 12:  # the empty label body compressed
        labels.body = zstandard.ZstdCompressor().compress(b"")
        labels.compression, labels.raw_length = 1, 0
    elif kind == 13 and len(body) > 1:  # last stream byte +-1 (canonical-form checks)
        body[-1] = (body[-1] + rng.choice([-1, 1])) % 256
    index.body, index.raw_length = bytes(body), None


@needs_cm
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 2))
def test_damaged_payloads_agree(backend, seed, damage_seed, changes):
    raw = wire.split(_cm_payload(seed % 400))
    rng = random.Random(damage_seed)
    for _ in range(changes):
        _damage(raw, rng)
    _same(wire.join(raw), backend)


def _set(section, **fields):
    def change(raw):
        for name, value in fields.items():
            setattr(raw.sections[section], name, value)
    return change


def _preset(value):
    def change(raw):
        raw.sections[0].body = bytes([value]) + raw.sections[0].body[1:]
    return change


def _header(**fields):
    def change(raw):
        for name, value in fields.items():
            setattr(raw, name, value)
    return change


# Where the rules of 15.1 and 15.10 sit in the order of section 9: each case
# pits two failing checks (or an unusual but valid form) against each other.
def _compress_index(raw):
    """The index body inside a Zstandard frame (compression 1, raw_length kept)."""
    index = raw.sections[0]
    index.raw_length = len(index.body)
    index.body = zstandard.ZstdCompressor(write_content_size=True).compress(index.body)
    index.compression = 1


ORDER_CASES = {
    # 15.1's compression rule is checked in step 8a, before any body and before the partner check.
    "index-compressed-and-unknown-preset": [_preset(7), _compress_index],
    "index-compressed-and-labels-compression-2": [_compress_index, _set(1, compression=2)],
    "index-compressed-and-count-beyond-8-per-byte": [_compress_index, _header(count=4000)],
    # 15.1's lower bound is a raw_length bound (8b), before the body's preset is read.
    "count-beyond-8-per-byte-and-unknown-preset": [_preset(7), _header(count=4000, n_ref=5000)],
    "labels-compression-2-and-no-partner": [_set(1, compression=2), _set(0, codec=0)],
    "index-compression-2-and-no-partner": [_set(0, compression=2), _set(1, codec=0)],
    "unknown-preset-and-labels-body": [_preset(7), _set(1, body=b"\x01", raw_length=None)],
    "unknown-preset-and-no-partner": [_preset(7), _set(1, codec=0)],
    "unknown-preset-and-minor-0": [_preset(7), _header(minor=0)],
    "minor-0": [_header(minor=0)],
    "minor-0-and-labels-compression-2": [_header(minor=0), _set(1, compression=2)],
    "minor-0-and-index-compression-2": [_header(minor=0), _set(0, compression=2)],
    "minor-0-and-labels-codec-9": [_header(minor=0), _set(1, codec=9)],
    "minor-2": [_header(minor=2)],
    "labels-bytes-codec": [_set(1, codec=1)],
    "index-delta-codec": [_set(0, codec=0)],
    "empty-index-body": [_set(0, body=b"", raw_length=None)],
    "labels-empty-zstd-frame": [_set(1, compression=1, body=zstandard.ZstdCompressor().compress(b""))],
    "labels-broken-zstd-frame": [_set(1, compression=1, body=b"\x28\xb5\x2f\xfdxx")],
    "count-one-more-than-coded": [_header(count=5)],
    "count-zero": [_header(count=0)],
    "body-above-5+136k": [lambda raw: _set(0, body=raw.sections[0].body + bytes(600), raw_length=None)(raw)],
    "unknown-preset-and-body-above-bound": [
        _preset(7), lambda raw: _set(0, body=raw.sections[0].body + bytes(600), raw_length=None)(raw)],
}


@needs_cm
@pytest.mark.parametrize("changes", ORDER_CASES.values(), ids=ORDER_CASES.keys())
def test_rule_order_agrees(backend, changes):
    raw = wire.split(plada_codec.encode([3, 4, 5, 40], [2, 2, 2, 0], n_ref=100, n_classes=3,
                                        index_codec="context-model", compression="none"))
    for change in changes:
        change(raw)
    _same(wire.join(raw), backend)


@needs_cm
def test_damaged_payloads_agree_exhaustively_on_one_body(backend):
    """Every single-byte value at every position of one body: the first error
    each reaches must be the same in both decoders."""
    data = plada_codec.encode([3, 4, 5, 40, 41, 90], [2, 2, 2, 0, 1, 1], n_ref=100, n_classes=3,
                              index_codec="context-model", compression="none")
    raw = wire.split(data)
    original = raw.sections[0].body
    for position in range(len(original)):
        for value in range(0, 256, 3):
            raw.sections[0].body = original[:position] + bytes([value]) + original[position + 1:]
            _same(wire.join(raw), backend)
