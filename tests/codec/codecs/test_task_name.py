"""Task-name codec 0, plain (FORMAT.md 5.6): the codec battery (battery.py) on texts, and
bodies by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("task-name", "plain")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.task_name_cases()


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
