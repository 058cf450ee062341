"""Class-names codec 0, plain (FORMAT.md 5.6): the codec battery (battery.py) on class-name
lists (names holding LF included), and bodies by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("class-names", "plain")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.class_name_cases(with_lf=True)


# -- by hand ---------------------------------------------------------------------------------------


def _names(names):
    return battery.selection([], [], 1, len(names), class_names=names)


@pytest.mark.parametrize("names, body", [
    (["ab", ""], b"\x02\x00\x00\x00ab\x00\x00\x00\x00"),
    (["é\n"], b"\x03\x00\x00\x00\xc3\xa9\x0a"),  # a uint32le byte length, then the UTF-8
    ([""], b"\x00\x00\x00\x00"),
])
def test_bodies_by_hand(kernels, names, body):
    sel = _names(names)
    assert CODEC.encode(sel, kernels) == body
    assert CODEC.decode(body, battery.context(sel, 0), kernels, "by hand")["class_names"] == tuple(names)


@pytest.mark.parametrize("body, why", [
    (b"\x02\x00\x00\x00ab\x00\x00\x00", "the second length runs past the section"),
    (b"\x03\x00\x00\x00ab\x00\x00\x00\x00", "the first name runs into the second length"),
    (b"\x02\x00\x00\x00ab\x00\x00\x00\x00x", "a byte after the last entry"),
    (b"\x02\x00\x00\x00a\xff\x00\x00\x00\x00", "not UTF-8"),
    (b"\x02\x00\x00\x00\xc0\xaf\x00\x00\x00\x00", "an overlong form"),
    (b"\x03\x00\x00\x00\xed\xa0\x80\x00\x00\x00\x00", "a surrogate"),
])
def test_rules_of_5_6(kernels, body, why):
    with pytest.raises(PayloadFormatError):
        CODEC.decode(body, battery.context(_names(["ab", ""]), 0), kernels, why)
