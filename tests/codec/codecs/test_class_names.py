"""Class-names codec 0, plain (FORMAT.md 5.6): the codec battery (battery.py) on class-name
lists (names holding LF included), and bodies by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("class-names", "plain")
CASES = battery.class_name_cases(with_lf=True)
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
