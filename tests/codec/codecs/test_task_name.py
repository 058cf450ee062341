"""Task-name codec 0, plain (FORMAT.md 5.6): the codec battery (battery.py) on texts, and
bodies by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("task-name", "plain")
CASES = battery.task_name_cases()
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

SEL = battery.selection([], [], 1, 1, task_name="é🍎")


def test_the_body_is_the_utf8(kernels):
    body = b"\xc3\xa9\xf0\x9f\x8d\x8e"  # U+00E9, U+1F34E
    assert CODEC.encode(SEL, kernels) == body
    assert CODEC.decode(body, battery.context(SEL, 0), kernels, "by hand") == {"task_name": "é🍎"}


@pytest.mark.parametrize("body", [b"\xff", b"a\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"],
                         ids=["invalid-byte", "cut-sequence", "overlong", "surrogate", "above-u10ffff"])
def test_rfc_3629_is_enforced(kernels, body):
    with pytest.raises(PayloadFormatError):
        CODEC.decode(body, battery.context(SEL, 0), kernels, "bad")
