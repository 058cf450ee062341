"""Label codec 1, bytes (FORMAT.md 7.2): the codec battery (battery.py) on label inputs of
every byte width, and bodies by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("labels", "bytes")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.label_cases()


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
