"""Each C kernel equals its numpy twin byte for byte, and both reject the
same malformed inputs with the same exception and message."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from plada_codec import _kernels_py as py_kernels
from plada_codec._kernels_py import BLOCK
from tests.strategies import selections, widths_and_values

c_kernels = pytest.importorskip("plada_codec._kernels_c") if "c" in plada_codec.available_backends() else None
needs_c = pytest.mark.skipif(c_kernels is None, reason="C core not built")

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def outcome(fn, *args):
    """The result of fn(*args), or (exception class, message)."""
    try:
        result = fn(*args)
    except plada_codec.PayloadError as exc:
        return type(exc), str(exc)
    return result.tobytes() if isinstance(result, np.ndarray) else result


@given(widths_and_values())
def test_pack_unpack_roundtrip(kernels, case):
    width, values = case
    packed = kernels.pack_bits(values, width)
    assert len(packed) == (values.size * width + 7) // 8
    np.testing.assert_array_equal(kernels.unpack_bits(packed, values.size, width), values)


@needs_c
@given(widths_and_values(), st.binary(max_size=12))
def test_pack_unpack_twins(case, tail):
    width, values = case
    assert c_kernels.pack_bits(values, width) == py_kernels.pack_bits(values, width)
    buf = py_kernels.pack_bits(values, width) + tail  # bytes after the values are ignored
    assert outcome(c_kernels.unpack_bits, buf, values.size, width) == outcome(
        py_kernels.unpack_bits, buf, values.size, width
    )


@needs_c
@pytest.mark.parametrize("width", [0, 1, 7, 8, 9, 16, 31, 32, 33, 48, 56, 57, 63, 64])
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 127, 128, 129, 1000])
def test_edges_every_width(width, count):
    rng = np.random.default_rng(width * 1000 + count)
    top = np.uint64((1 << width) - 1) if width < 64 else np.uint64(2**64 - 1)
    values = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False) & top
    values[: count // 3] = top  # values at the width's maximum
    packed = c_kernels.pack_bits(values, width)
    assert packed == py_kernels.pack_bits(values, width)
    np.testing.assert_array_equal(c_kernels.unpack_bits(packed, count, width), values)


def test_pack_rejects_value_too_wide(kernels):
    with pytest.raises(plada_codec.EncodeError, match="position 2 does not fit in 3 bits"):
        kernels.pack_bits(np.array([1, 7, 8], dtype=np.uint64), 3)


def test_unpack_short_buffer(kernels):
    with pytest.raises(plada_codec.PayloadFormatError, match="holds 1 bytes but its codec needs exactly 2"):
        kernels.unpack_bits(b"\x00", 3, 4)


@given(selections(max_count=700))
def test_delta_and_bitmap_roundtrip(kernels, selection):
    indices, labels, n_ref, n_classes = selection
    raw = kernels.delta_encode(indices)
    np.testing.assert_array_equal(kernels.delta_decode(raw, indices.size, n_ref), indices)
    if n_ref <= 1 << 20:
        bitmap = kernels.bitmap_encode(indices, n_ref)
        np.testing.assert_array_equal(kernels.bitmap_decode(bitmap, indices.size, n_ref), indices)
    width = (n_classes - 1).bit_length()
    packed = kernels.labels_encode(labels, width)
    np.testing.assert_array_equal(kernels.labels_decode(packed, labels.size, width, n_classes), labels)


@needs_c
@given(selections(max_count=700))
def test_encoders_twins(selection):
    indices, labels, n_ref, n_classes = selection
    assert c_kernels.delta_encode(indices) == py_kernels.delta_encode(indices)
    if n_ref <= 1 << 20:
        assert c_kernels.bitmap_encode(indices, n_ref) == py_kernels.bitmap_encode(indices, n_ref)
    width = (n_classes - 1).bit_length()
    assert c_kernels.labels_encode(labels, width) == py_kernels.labels_encode(labels, width)


@needs_c
@given(st.binary(max_size=300), st.integers(0, 600), st.integers(1, 2**48))
def test_delta_decode_twins_on_garbage(raw, count, n_ref):
    assert outcome(c_kernels.delta_decode, raw, count, n_ref) == outcome(
        py_kernels.delta_decode, raw, count, n_ref
    )


@needs_c
@given(st.data())
def test_delta_decode_twins_on_near_valid(data):
    """Valid width tables with random bodies reach the range and padding checks."""
    count = data.draw(st.integers(1, 3 * BLOCK))
    n_blocks = -(-count // BLOCK)
    widths = data.draw(st.lists(st.integers(0, 64), min_size=n_blocks, max_size=n_blocks))
    size = sum(16 * w for w in widths[:-1]) + (((count - BLOCK * (n_blocks - 1)) * widths[-1] + 7) // 8)
    body = data.draw(st.binary(min_size=size, max_size=size))
    raw = bytes(widths) + body
    n_ref = data.draw(st.integers(1, 2**48))
    assert outcome(c_kernels.delta_decode, raw, count, n_ref) == outcome(
        py_kernels.delta_decode, raw, count, n_ref
    )


@needs_c
@given(st.binary(max_size=40), st.integers(0, 320), st.integers(1, 320))
def test_bitmap_decode_twins_on_garbage(raw, count, n_ref):
    assert outcome(c_kernels.bitmap_decode, raw, count, n_ref) == outcome(
        py_kernels.bitmap_decode, raw, count, n_ref
    )


@needs_c
@given(st.binary(max_size=64), st.integers(0, 100), st.integers(1, 2**24))
def test_labels_decode_twins_on_garbage(raw, count, n_classes):
    width = (n_classes - 1).bit_length()
    if (count * width + 7) // 8 != len(raw) and count:
        count = len(raw) * 8 // width if width else count  # often reach the value checks
    assert outcome(c_kernels.labels_decode, raw, count, width, n_classes) == outcome(
        py_kernels.labels_decode, raw, count, width, n_classes
    )


def test_delta_range_error_reports_first_entry(kernels):
    # gaps 0, 0, 2**47: indices 0, 1, 2**47 + 2 >= N = 2**47
    raw = kernels.delta_encode(np.array([0, 1, 2**47 + 2], dtype=np.int64))
    with pytest.raises(plada_codec.PayloadFormatError, match="entry 2 decodes to an index outside"):
        kernels.delta_decode(raw, 3, 2**47)


def test_delta_decode_width_64_gaps_do_not_wrap(kernels):
    # Width-64 gaps near 2**64 must be reported as out of range, never wrap to small indices.
    values = np.array([2**64 - 1, 2**64 - 2, 5], dtype=np.uint64)
    raw = bytes([64]) + kernels.pack_bits(values, 64)
    with pytest.raises(plada_codec.PayloadFormatError, match="entry 0 decodes"):
        kernels.delta_decode(raw, 3, 2**48)


@needs_c
def test_delta_encode_extreme_indices_raw_api():
    """The C contract holds without the Python-side validation: int64 extremes."""
    top = np.array([0, 2**62, 2**63 - 1], dtype=np.int64)
    assert c_kernels.delta_encode(top) == py_kernels.delta_encode(top)
    with pytest.raises(AssertionError, match="kernel status 8"):
        c_kernels.delta_encode(np.array([5, 5], dtype=np.int64))  # ERR_ARG: caller bug, not a payload error


def test_bit_length_exact_for_all_uint64():
    from plada_codec._kernels_py import _bit_length

    values = [0, 1, 2, 3, 2**53 - 1, 2**53, 2**53 + 1, 2**62 - 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1]
    assert _bit_length(np.array(values, dtype=np.uint64)).tolist() == [v.bit_length() for v in values]


def _peak_bytes(fn, *args):
    """(result, peak bytes allocated while fn ran), as tracemalloc sees numpy's buffers."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


WORKING_SET = 1 << 20  # the chunked loops' buffers: constant, whatever N and k are


@pytest.mark.parametrize(
    "name, n_ref, count",
    [("bitmap", 1 << 22, 1 << 18), ("bitmap", 1 << 26, 100), ("delta", 1 << 40, 1 << 18),
     ("delta", 1 << 20, 1 << 18), ("labels", 1000, 1 << 18)],
)
def test_pure_decode_peak_memory_is_within_twice_the_output(name, n_ref, count):
    """The numpy path allocates at most 2x its output (plus a fixed working set):
    it once took 9x the raw bitmap and 4.5 GB for k = 2**27."""
    rng = np.random.default_rng(5)
    indices = np.cumsum(rng.integers(1, max(n_ref // count, 1) + 1, count)) - 1  # sorted, distinct
    if name == "bitmap":
        bitmap = np.zeros((n_ref + 7) // 8, dtype=np.uint8)
        np.bitwise_or.at(bitmap, indices >> 3, (1 << (indices & 7)).astype(np.uint8))
        args = (bitmap.tobytes(), indices.size, n_ref)
    elif name == "delta":
        raw = py_kernels.delta_encode(indices)
        args = (raw, indices.size, n_ref)
    else:
        labels = rng.integers(0, n_ref, count)  # n_ref stands for C here
        raw = py_kernels.labels_encode(labels, 10)
        args = (raw, count, 10, n_ref)
    fn = getattr(py_kernels, f"{name}_decode")
    out, peak = _peak_bytes(fn, *args)
    assert out.size == args[1]
    assert peak <= 2 * out.nbytes + WORKING_SET, (peak, out.nbytes)
