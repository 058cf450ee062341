"""Index codec 1, bitmap (FORMAT.md 6.3): the codec battery (battery.py) on index inputs over
reference sets of at most 2**21 + 2**13 + 5 items (a bitmap is ceil(N / 8) bytes: 263 KiB, more
than one read of the decoder), and bodies by hand."""

import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("index", "bitmap")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.index_cases(top=battery.MULTI_CHUNK_N)  # N mod 8 = 5: the last byte has 3 padding bits


# -- by hand ---------------------------------------------------------------------------------------

TEN = battery.selection([0, 3, 9], [0, 0, 0], 10, 1)


def test_bits_lsb_first(kernels):
    # 6.3 with 6.1's numbering: item i is bit i mod 8 of byte i // 8. Items 0 and 3: 0b00001001;
    # item 9: bit 1 of byte 1.
    assert CODEC.encode(TEN, kernels) == b"\x09\x02"
    assert CODEC.decode(b"\x09\x02", battery.context(TEN, 0), kernels, "by hand")["indices"].tolist() == [0, 3, 9]


@pytest.mark.parametrize("body, why", [
    (b"\x09\x06", "padding bit 10 set (N = 10)"),
    (b"\x09\x00", "2 set bits, k = 3"),
    (b"\x0b\x02", "4 set bits, k = 3"),
])
def test_rules_of_6_3(kernels, body, why):
    with pytest.raises(PayloadFormatError):
        CODEC.decode(body, battery.context(TEN, 0), kernels, why)


def test_every_item(kernels):
    sel = battery.selection(range(16), [0] * 16, 16, 1)
    assert CODEC.encode(sel, kernels) == b"\xff\xff"
