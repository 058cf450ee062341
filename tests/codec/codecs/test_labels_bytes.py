"""Label codec 1, bytes (FORMAT.md 7.2): the codec battery (battery.py) on label inputs of
every byte width, and bodies by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("labels", "bytes")
CASES = battery.label_cases()
SMALL = battery.small_cases(CODEC, CASES)


def test_registry_entry():
    battery.check_registry_entry(CODEC)


def test_decoder_bounds():
    battery.check_decoder_bounds(CODEC)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_round_trip(kernels, case):
    battery.check_round_trip(CODEC, kernels, case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_backends_agree(backend, case):
    battery.check_backends_agree(CODEC, backend, case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_size_bound(kernels, case):
    battery.check_size_bound(CODEC, kernels, case)


def test_spec_vectors(backend):
    battery.check_spec_vectors(CODEC, backend)


@pytest.mark.parametrize("case", SMALL, ids=str)
def test_hostile_bodies(backend, case):
    battery.check_hostile_bodies(CODEC, backend, case)


def test_round_trip_property(kernels):
    battery.check_round_trip_property(CODEC, kernels)


# -- by hand ---------------------------------------------------------------------------------------


def _labels(labels, n_classes):
    return battery.selection(range(len(labels)), labels, max(len(labels), 1), n_classes)


@pytest.mark.parametrize("labels, n_classes, body", [
    ([0, 0], 1, b"\x00\x00"),  # C = 1: w = 0 <= 8, so b = 1 (7.2), unlike packed's empty body
    ([255, 7], 256, b"\xff\x07"),  # w = 8: one byte
    ([1, 258], 300, b"\x01\x00\x02\x01"),  # w = 9: uint16le
    ([65535], 65536, b"\xff\xff"),  # w = 16: still 2 bytes
    ([65536], 65537, b"\x00\x00\x01\x00"),  # w = 17: uint32le
    ([2**24 - 1], 2**24, b"\xff\xff\xff\x00"),  # the largest label
])
def test_bytes_by_hand(kernels, labels, n_classes, body):
    sel = _labels(labels, n_classes)
    assert CODEC.encode(sel, kernels) == body
    assert CODEC.decode(body, battery.context(sel, 0), kernels, "by hand")["labels"].tolist() == labels


@pytest.mark.parametrize("body, why", [
    (b"\x01\x00\x2c\x01", "label 300 >= C = 300"),
    (b"\x01\x00\xff\xff", "label 65535 >= C"),
    (b"\x01\x00\x02", "a byte short"),
])
def test_rules_of_7_2(kernels, body, why):
    with pytest.raises(PayloadFormatError):
        CODEC.decode(body, battery.context(_labels([1, 258], 300), 0), kernels, why)
