"""Index codec 2, the format 1.1 joint context-model codec (plada_codec/codecs/index_context_model.py,
spec/FORMAT.md section 15): first on its own, then in a payload.

On its own: expected bytes come from hand calculations with the spec's rules (worked
through in the comments), round trips and twin equality (C == pure Python,
byte for byte and error for error) from Hypothesis.

In a payload: when the encoder picks it, and how a 1.0 reader treats it. The 1.1 vectors
themselves run in tests/spec/test_vectors.py, with every other version's, on every backend and
the educational decoder.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plada_codec
from plada_codec import PayloadFormatError, UnsupportedFeatureError, _cm_py
from plada_codec.synthetic import clustered_selection
from tests.conftest import BACKENDS
from tests.helpers import REPO

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def _module(backend):
    """The backend's kernel object (plada_codec._kernels.Kernels): its cm_encode / cm_decode."""
    from plada_codec._backend import get_kernels

    return get_kernels(backend)


@pytest.fixture(params=BACKENDS, scope="module")
def cm(request):
    return _module(request.param)


@st.composite
def selections(draw, max_count=40):
    n_ref = draw(st.one_of(st.integers(1, 64), st.integers(1, 5000), st.integers(1, 2**48)))
    n_classes = draw(st.one_of(st.integers(1, 6), st.integers(1, 300), st.sampled_from([256, 21841, 2**24])))
    count = draw(st.integers(0, min(max_count, n_ref)))
    if n_ref <= 5000 and draw(st.booleans()):
        start = draw(st.integers(0, n_ref - count))
        indices = np.arange(start, start + count)  # one run of consecutive indices
    else:
        indices = np.array(sorted(draw(st.sets(st.integers(0, n_ref - 1), min_size=count, max_size=count))))
    if n_classes > 1 and draw(st.booleans()):
        few = draw(st.lists(st.integers(0, n_classes - 1), min_size=1, max_size=5))
        labels = [draw(st.sampled_from(few)) for _ in range(count)]
    else:
        labels = draw(st.lists(st.integers(0, n_classes - 1), min_size=count, max_size=count))
    return indices.astype(np.int64), np.array(labels, dtype=np.int64), n_ref, n_classes


presets = st.sampled_from(sorted(_cm_py.PRESETS))


# -- hand-computed streams --------------------------------------------------


def test_nothing_to_code_is_the_preset_byte_alone(cm):
    # N = 1, k = 1, C = 1: L = 1 = bit_length(N) needs no unary bit, no mantissa,
    # one label needs no flag. The interval stays [0, 2**32 - 1); its canonical
    # value is 0, whose bytes are all stripped.
    assert cm.cm_encode([0], [0], 1, 1, 0) == b"\x00"
    indices, labels = cm.cm_decode(b"\x00", 1, 1, 1)
    assert indices.tolist() == [0] and labels.tolist() == [0]


def test_one_length_decision_by_hand(cm):
    # N = 2, k = 1, C = 1: the average starts at bit_length(2 // 1) * 16 = 32, so
    # the predicted length is (32 + 8) >> 4 = 2 = max_length and the only length
    # decision is "L < 2?" at p0 = 32768: bound = (0xFFFFFFFF >> 16) * 32768 = 0x7FFF8000.
    # Index 0 (v = 1, L = 1): bit 1, interval [0x7FFF8000, 0xFFFFFFFF); no multiple
    #   of 2**32 in it, the smallest multiple of 2**24 is 0x80000000 -> bytes 80.
    # Index 1 (v = 2, L = 2): bit 0, range 0x7FFF8000, then the mantissa bit below
    #   the leading 1 (0) at p0 = 32768 leaves [0, 0x3FFF8000): value 0, no bytes.
    assert cm.cm_encode([0], [0], 2, 1, 0) == b"\x00\x80"
    assert cm.cm_encode([1], [0], 2, 1, 0) == b"\x00"
    assert cm.cm_decode(b"\x00\x80", 1, 2, 1)[0].tolist() == [0]
    assert cm.cm_decode(b"\x00", 1, 2, 1)[0].tolist() == [1]
    # Other values in the same intervals decode to the same index but are not canonical.
    for body in (b"\x00\x81", b"\x00\xff", b"\x00\x80\x00", b"\x00\x01", b"\x00\x3f\xff"):
        with pytest.raises(PayloadFormatError, match="canonical"):
            cm.cm_decode(body, 1, 2, 1)
    with pytest.raises(PayloadFormatError, match="holds 5 bytes but decoding all 1 pairs reads only 4"):
        cm.cm_decode(b"\x00\x80\x00\x00\x00\x01", 1, 2, 1)


def test_worked_example_of_the_spec(cm):
    # spec/FORMAT.md appendix B traces this stream decision by decision.
    body = bytes.fromhex("00a13a82")
    assert cm.cm_encode([2, 3, 11], [4, 4, 1], 20, 5, 0) == body
    indices, labels = cm.cm_decode(body, 3, 20, 5)
    assert indices.tolist() == [2, 3, 11] and labels.tolist() == [4, 4, 1]


def test_flat_preset_label_tree_by_hand(cm):
    # N = 1, k = 1, C = 2, label 1, preset flat (no slots): the label tree codes
    # one bit, 1, at p0 = 32768: low = 0x7FFF8000, range = 0x80007FFF; the
    # canonical value is 0x80000000 -> bytes 80.
    assert cm.cm_encode([0], [1], 1, 2, 1) == b"\x01\x80"
    assert cm.cm_decode(b"\x01\x80", 1, 1, 2)[1].tolist() == [1]


# -- rejections -------------------------------------------------------------


def test_empty_body_and_unknown_preset(cm):
    with pytest.raises(PayloadFormatError, match="preset byte"):
        cm.cm_decode(b"", 0, 10, 10)
    with pytest.raises(UnsupportedFeatureError, match="preset 7"):
        cm.cm_decode(b"\x07", 0, 10, 10)


def test_k_zero_body_is_the_preset_byte(cm):
    assert cm.cm_encode([], [], 10, 10, 1) == b"\x01"
    assert cm.cm_decode(b"\x01", 0, 10, 10)[0].size == 0
    with pytest.raises(PayloadFormatError, match="reads only 4"):
        cm.cm_decode(b"\x01\x00\x00\x00\x00\x01", 0, 10, 10)


def test_start_beyond_the_initial_range(cm):
    with pytest.raises(PayloadFormatError, match=r"starts with code 0xffffffff, not below the initial range"):
        cm.cm_decode(b"\x00\xff\xff\xff\xff", 1, 1000, 10)


def test_trailing_bytes_and_extra_pairs(cm):
    indices, labels = np.arange(0, 300, 3), np.arange(100) % 7
    body = cm.cm_encode(indices, labels, 300, 7, 0)
    cm.cm_decode(body, 100, 300, 7)
    for bad in (body + b"\x01", body + b"\x00", body + b"\x00" * 6 + b"\x01"):
        with pytest.raises(PayloadFormatError, match="canonical|reads only"):
            cm.cm_decode(bad, 100, 300, 7)
    # A stream of 100 pairs read as 99: the last pair's bytes are left over.
    with pytest.raises(PayloadFormatError, match="canonical|reads only"):
        cm.cm_decode(body, 99, 300, 7)


def test_index_beyond_n(cm):
    # Same models for N = 1000 and 1023 (bit lengths 10 and N // k alike), so
    # a stream made for N = 1023 decodes for N = 1000 until index 1010.
    body = _cm_py.encode([5, 1010], [0, 0], 1023, 1, 0)
    assert cm.cm_decode(body, 2, 1023, 1)[0].tolist() == [5, 1010]
    with pytest.raises(PayloadFormatError, match="pair 1 decodes to index 1010, outside"):
        cm.cm_decode(body, 2, 1000, 1)


def test_label_beyond_c(cm):
    # C = 200 and C = 256 share the tree width (8 bits), so a stream for 256 classes
    # decodes for 200 until the first label >= 200.
    body = _cm_py.encode([1, 2, 3], [3, 250, 4], 10, 256, 1)
    with pytest.raises(PayloadFormatError, match="entry 1 has label 250, allowed 0..199"):
        cm.cm_decode(body, 3, 10, 200)


def test_raw_value_overflowing_its_range(cm):
    body = _forge_raw_overflow()
    with pytest.raises(PayloadFormatError, match="pair [0-9]+: a raw value decodes to"):
        cm.cm_decode(body, 20, 2**40, 1)


def test_tree_label_already_in_the_list(cm):
    # Clustered preset, C = 10: label 2 is in the initial list (0, 1, 2, 3), so
    # the only canonical code for it is a flag; code it through the tree instead.
    body = _forge_label_in_list()
    with pytest.raises(PayloadFormatError, match="label 2 is coded in full"):
        cm.cm_decode(body, 1, 1, 10)


class _OverflowingEncoder(_cm_py.RangeEncoder):
    """Codes the first raw chunk whose interval does not split evenly in the
    slice past n * share, which no value in [0, n) maps to."""

    forged_at = None

    def uniform(self, value, n):
        share = self.range // n
        if self.forged_at is None and self.range - n * share > 0:
            self.forged_at = n
            self.low += n * share
            self.range -= n * share
            self._normalize()
            return
        super().uniform(value, n)


def _forge_raw_overflow() -> bytes:
    rng = np.random.default_rng(3)
    indices = np.sort(rng.choice(2**40, 20, replace=False))
    original = _cm_py.RangeEncoder
    _cm_py.RangeEncoder = _OverflowingEncoder
    try:
        return _cm_py.encode(indices, np.zeros(20, np.int64), 2**40, 1, 1)
    finally:
        _cm_py.RangeEncoder = original


def _forge_label_in_list() -> bytes:
    enc = _cm_py.RangeEncoder()
    model = _cm_py._PairModel(_cm_py.PRESETS[0], 1, 1, 10)
    for slot in range(4):
        enc.bit(model.flags, model.flag_context(slot, 1), 0)
    node = 1
    for b in (3, 2, 1, 0):  # label 2 = 0b0010 over the 4-bit tree
        bit = (2 >> b) & 1
        enc.bit(model.tree, node, bit)
        node = 2 * node + bit
    return b"\x00" + enc.finish()


# -- properties ---------------------------------------------------------------


@given(selections(), presets)
def test_roundtrip(cm, selection, preset):
    indices, labels, n_ref, n_classes = selection
    body = cm.cm_encode(indices, labels, n_ref, n_classes, preset)
    assert body[0] == preset
    assert body[-1] != 0 or len(body) == 1  # canonical: no trailing zero byte
    got_indices, got_labels = cm.cm_decode(body, indices.size, n_ref, n_classes)
    assert got_indices.dtype == np.int64 and got_labels.dtype == np.int32
    np.testing.assert_array_equal(got_indices, indices)
    np.testing.assert_array_equal(got_labels, labels)


needs_c = pytest.mark.skipif("c" not in BACKENDS, reason="C core not built")


@needs_c
@given(selections(), presets)
def test_twins_encode_byte_equal(selection, preset):
    indices, labels, n_ref, n_classes = selection
    assert _module("c").cm_encode(indices, labels, n_ref, n_classes, preset) == _cm_py.encode(
        indices, labels, n_ref, n_classes, preset
    )


def _outcome(module, body, count, n_ref, n_classes):
    try:
        indices, labels = module.cm_decode(body, count, n_ref, n_classes)
    except Exception as exc:  # compared, never swallowed: both twins must agree
        return type(exc), str(exc)
    return indices.tolist(), labels.tolist()


@needs_c
@settings(max_examples=300)
@given(
    selections(max_count=25),
    presets,
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
    st.integers(-3, 3),
    st.integers(-2, 2),
)
def test_twins_agree_on_damaged_bodies(selection, preset, edits, cut, count_delta):
    """Bit damage, truncation, extension and a lying k: identical outcome."""
    indices, labels, n_ref, n_classes = selection
    body = bytearray(_cm_py.encode(indices, labels, n_ref, n_classes, preset))
    for position, value in edits:
        body[position % len(body)] = value
    if cut < 0:
        body = body[: max(0, len(body) + cut)]
    else:
        body += bytes(range(1, cut + 1))
    count = max(0, min(n_ref, indices.size + count_delta))
    c_result = _outcome(_module("c"), bytes(body), count, n_ref, n_classes)
    py_result = _outcome(_module("python"), bytes(body), count, n_ref, n_classes)
    assert c_result == py_result
    if isinstance(c_result[0], type):
        assert issubclass(c_result[0], PayloadFormatError)


@needs_c
@settings(max_examples=100)
@given(st.binary(max_size=64), st.integers(0, 200), st.sampled_from([1, 2, 7, 200, 2**24]))
def test_twins_agree_on_random_bodies(body, count, n_classes):
    n_ref = 1000
    count = min(count, n_ref)
    assert _outcome(_module("c"), body, count, n_ref, n_classes) == _outcome(
        _module("python"), body, count, n_ref, n_classes
    )


# -- 15.1: at most 8 pairs per body byte, body stored uncompressed ---------------------------


def test_dense_selection_falls_back_to_format_1_0(backend):
    # k = N = 100,000 items of one class: a canonical context-model stream is the
    # preset byte alone (1 byte), under the ceil(100000 / 8) = 12,500 bytes 15.1
    # requires, so "auto" must write 1.0 codecs and a 1.0 header.
    import plada_codec

    indices, labels = np.arange(100_000), np.zeros(100_000, np.int64)
    assert _cm_py.encode(indices, labels, 100_000, 1, 0) == b"\x00"
    data = plada_codec.encode(indices, labels, n_ref=100_000, n_classes=1, backend=backend)
    info = plada_codec.inspect(data)
    assert info.version == (1, 0)
    assert [s.codec_name for s in info.sections] != ["context-model", "joint"]
    assert plada_codec.decode(data, backend=backend).indices.size == 100_000
    with pytest.raises(plada_codec.EncodeError, match=r"12500 bytes, spec 15.1"):
        plada_codec.encode(indices, labels, n_ref=100_000, n_classes=1, backend=backend,
                           index_codec="context-model")
    with pytest.raises(plada_codec.EncodeError, match=r"\(which label_codec='joint' implies\) stores its body "
                                                      r"uncompressed \(spec 15.1\)"):
        plada_codec.encode(indices[:5], labels[:5], n_ref=100_000, n_classes=1, backend=backend,
                           label_codec="joint", compression="zstd")


@pytest.mark.parametrize("count, accepted", [(8, True), (9, False), (2**20, False)])
def test_decoder_refuses_more_than_8_pairs_per_byte(backend, count, accepted):
    # The 1-byte body decodes to k = N items of class 0 for any k (15.4: bytes past
    # the end read as zeros); 15.1 allows it for k <= 8 only, before any pair is decoded.
    import plada_codec
    from plada_codec import wire

    data = wire.join(wire.RawPayload(n_classes=1, n_ref=count, count=count, minor=1, sections=[
        wire.RawSection(0x0001, 2, 0, b"\x00"), wire.RawSection(0x0002, 2, 0, b"")]))
    if accepted:
        assert plada_codec.decode(data, backend=backend).indices.tolist() == list(range(count))
    else:
        with pytest.raises(PayloadFormatError, match=rf"raw_length 1 outside the {-(-count // 8)}\.\."):
            plada_codec.decode(data, backend=backend)


def test_compression_rule_is_checked_before_the_partner_and_the_bounds(backend):
    # Step 8a (spec 9): a compressed context-model body is refused by name before
    # the partner check (labels codec 0 here) and before 8b's raw_length bounds
    # (k = 4000 needs 500 bytes; the body holds a few).
    import zstandard

    import plada_codec
    from plada_codec import wire

    raw = wire.split(plada_codec.encode([3, 4, 5, 40], [2, 2, 2, 0], n_ref=5000, n_classes=3,
                                        index_codec="context-model", compression="none"))
    index = raw.sections[0]
    index.raw_length, index.compression = len(index.body), 1
    index.body = zstandard.ZstdCompressor(write_content_size=True).compress(index.body)
    raw.sections[1].codec = 0
    raw.count = 4000
    with pytest.raises(PayloadFormatError, match="uses codec 'context-model' with compression 'zstd'"):
        plada_codec.decode(wire.join(raw), backend=backend)


def test_encoder_keeps_the_smaller_preset_that_meets_the_bound(backend):
    # N = 286, k = 232, C = 2 (helper-found): preset 1 codes in 28 bytes, under
    # ceil(232 / 8) = 29; preset 0 in 30. 15.9: keep preset 0, not the 1.0 codecs.
    import plada_codec

    rng = np.random.default_rng(0)
    for _ in range(400):
        n_ref = int(rng.integers(50, 400))
        k = int(rng.integers(n_ref // 2, n_ref + 1))
        indices = np.sort(rng.choice(n_ref, k, replace=False))
        labels = (rng.random(k) < 0.05).astype(np.int64)
        sizes = {p: len(_cm_py.encode(indices, labels, n_ref, 2, p)) for p in _cm_py.PRESETS}
        low = -(-k // 8)
        if min(sizes.values()) < low <= max(sizes.values()):
            break
    else:
        pytest.skip("no selection with one preset on each side of the bound")
    data = plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=2, backend=backend,
                              index_codec="context-model", compression="none")
    body = plada_codec.wire.split(data).sections[0].body
    assert len(body) == min(size for size in sizes.values() if size >= low)


# -- in a payload: which codec the encoder picks, and a 1.0 reader -------------------------------

VECTORS = REPO / "spec" / "vectors" / "v1.1"


def test_a_1_0_reader_rejects_1_1_payloads_cleanly(backend):
    """FORMAT.md 15.1: unknown critical codec -> UnsupportedFeature, never a wrong decode."""
    data = (VECTORS / "002-cm-worked-example.bin").read_bytes()
    with pytest.raises(plada_codec.UnsupportedFeatureError, match="codec"):
        plada_codec.PayloadDecoder(format_version="1.0", backend=backend).decode(data)


def test_encoder_picks_the_context_model_on_clustered_selections(backend):
    indices, labels = clustered_selection(200_000, 2_000, 20, seed=1)
    data = plada_codec.encode(indices, labels, n_ref=200_000, n_classes=20, zstd_level=3, backend=backend)
    sections = plada_codec.inspect(data).sections
    assert [(s.codec_name, s.compression) for s in sections] == [("context-model", 0), ("joint", 0)]
    plain = plada_codec.encode(indices, labels, n_ref=200_000, n_classes=20, zstd_level=3,
                               index_codec="delta", label_codec="packed", backend=backend)
    assert len(data) < 0.85 * len(plain)
    payload = plada_codec.decode(data, backend=backend)
    np.testing.assert_array_equal(payload.indices, indices)
    np.testing.assert_array_equal(payload.labels, labels)


def test_encoder_keeps_the_1_0_escape_for_a_periodic_selection(backend):
    """One contiguous run with periodic labels: Zstandard over the 1.0 layout wins."""
    indices = np.arange(5_000)
    labels = np.arange(5_000) % 17
    data = plada_codec.encode(indices, labels, n_ref=5_000, n_classes=17, zstd_level=3, backend=backend)
    assert plada_codec.inspect(data).sections[0].codec_name != "context-model"


# == The codec battery =============================================================================
# The shared checks of tests/codec/codecs/battery.py that every codec's test file runs, here on
# index inputs with their labels (the body carries both). Appended to this file's own tests,
# which it leaves as they are.

from tests.codec.codecs import battery  # noqa: E402


class TestBattery(battery.Battery):
    codec = battery.codec_named("index", "context-model")
    cases = battery.index_cases(multi_chunk=False)
