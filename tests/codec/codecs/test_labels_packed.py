"""Label codec 0, packed (FORMAT.md 7.1, bit packing 6.1): the codec battery (battery.py) on
label inputs of every width, and the spec's packing examples by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("labels", "packed")
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
    ([5, 1, 6], 7, b"\x8d\x01"),  # 6.1's example: stream bits 101 100 011 at w = 3
    ([3, 3, 0, 1, 2, 2, 4], 5, b"\x1b\x22\x11"),  # Appendix A: 21 bits, 3 padding bits 0
    ([0, 0, 0], 1, b""),  # C = 1: w = 0, the body is empty
    ([1, 0, 1, 1, 0, 0, 0, 0, 1], 2, b"\x0d\x01"),  # w = 1: one bit a label
    ([255, 1], 256, b"\xff\x01"),  # w = 8
    ([256, 1], 257, b"\x00\x03\x00"),  # w = 9, 18 bits: 256 sets stream bit 8, 1 sets bit 9
])
def test_packing_by_hand(kernels, labels, n_classes, body):
    sel = _labels(labels, n_classes)
    assert CODEC.encode(sel, kernels) == body
    assert CODEC.decode(body, battery.context(sel, 0), kernels, "by hand")["labels"].tolist() == labels


@pytest.mark.parametrize("body, why", [
    (b"\x1f\x22\x11", "label 7 >= C = 5 at entry 0"),
    (b"\x1b\x22\x31", "padding bit 21 set"),
    (b"\x1b\x22", "a byte short"),
])
def test_rules_of_7_1(kernels, body, why):
    sel = _labels([3, 3, 0, 1, 2, 2, 4], 5)
    with pytest.raises(PayloadFormatError):
        CODEC.decode(body, battery.context(sel, 0), kernels, why)
