"""Label codec 0, packed (FORMAT.md 7.1, bit packing 6.1): the codec battery (battery.py) on
label inputs of every width, and the spec's packing examples by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("labels", "packed")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.label_cases()


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
