"""Metadata codec 0, json (FORMAT.md 5.7): the codec battery (battery.py) on JSON objects at
the rules' edges, and bodies by hand: the form this implementation writes (5.7, last
paragraph) and every rule a decoder enforces."""

import pytest

from plada_codec import LimitExceededError, PayloadFormatError, codecs
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("metadata", "json")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.metadata_cases()


# -- by hand ---------------------------------------------------------------------------------------

SEL = battery.selection([], [], 1, 1, metadata={"b": 1, "a": [1.5, "é"]})


def _decode(body, kernels, limits=None):
    ctx = battery.context(SEL, 0)
    if limits is not None:
        ctx = codecs.DecodeContext(1, 1, 0, 0, limits)
    return CODEC.decode(body, ctx, kernels, "by hand")["metadata"]


def test_the_written_form(kernels):
    # Keys sorted by code point, no whitespace, non-ASCII as UTF-8 (not \u escapes).
    assert CODEC.encode(SEL, kernels) == b'{"a":[1.5,"\xc3\xa9"],"b":1}'


@pytest.mark.parametrize("body, value", [
    (b' {\n "b" : 1 ,\t"a" : [ 15e-1 , "\\u00e9" ] } ', {"b": 1, "a": [1.5, "é"]}),  # no canonical form
    (b'{"x":-0,"y":-0.0,"z":1e-400}', {"x": 0, "y": -0.0, "z": 0.0}),  # rule 5, rule 6
    (b'{"p":"\\ud83d\\ude00"}', {"p": "\U0001f600"}),  # rule 3: an escaped pair is one character
    (b'{"m":9007199254740991,"n":-9007199254740991,"f":1e308}', {"m": 2**53 - 1, "n": -(2**53 - 1), "f": 1e308}),
    (b'{"i":1,"d":1.0}', {"i": 1, "d": 1.0}),
])
def test_accepted_bodies(kernels, body, value):
    assert battery.same_json(_decode(body, kernels), value)


@pytest.mark.parametrize("body, rule", [
    (b"\xef\xbb\xbf{}", "1: byte-order mark"),
    (b'{"a":"\xff"}', "1: not UTF-8"),
    (b"[]", "2: not an object"),
    (b'{"a":NaN}', "2: NaN"),
    (b"{} x", "2: text after the value"),
    (b'{"a":"\\ud800"}', "3: a lone surrogate escape"),
    (b'{"a":1,"\\u0061":2}', "4: a duplicate key after unescaping"),
    (b'{"a":9007199254740992}', "5: 2**53"),
    (b'{"a":1e999}', "6: not finite"),
    (b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", "7: depth 65"),
])
def test_rules_of_5_7(kernels, body, rule):
    with pytest.raises(PayloadFormatError):
        _decode(body, kernels)


def test_the_item_count_limit(kernels):
    # 5.5: the bytes [ { , : of the body, strings included: {"a":"[,:"} counts 5.
    limits = codecs.Limits(max_metadata_items=4)
    with pytest.raises(LimitExceededError):
        _decode(b'{"a":"[,:"}', kernels, limits)
    assert _decode(b'{"a":"[,:"}', kernels, codecs.Limits(max_metadata_items=5)) == {"a": "[,:"}
