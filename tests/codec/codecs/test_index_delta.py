"""Index codec 0, delta (FORMAT.md 6.2): the codec battery (battery.py) on index inputs,
and the spec's worked example (Appendix A) by hand."""

import numpy as np
import pytest

from plada_codec import PayloadFormatError
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("index", "delta")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.index_cases()


# -- by hand ---------------------------------------------------------------------------------------

APPENDIX_A = battery.selection([0, 1, 2, 10, 11, 200, 4095], [3, 3, 0, 1, 2, 2, 4], 5000, 5)
# Width 12 (largest gap 3894), then gaps 0 0 0 7 0 188 3894 at 12 bits LSB-first (FORMAT.md Appendix A).
APPENDIX_A_BODY = bytes.fromhex("0c 00000000 700000c0 0b360f")


def test_appendix_a(kernels):
    assert CODEC.encode(APPENDIX_A, kernels) == APPENDIX_A_BODY
    decoded = CODEC.decode(APPENDIX_A_BODY, battery.context(APPENDIX_A, 0), kernels, "appendix A")
    assert decoded["indices"].tolist() == [0, 1, 2, 10, 11, 200, 4095]


def test_a_wider_width_decodes_to_the_same_indices(kernels):
    # 6.2: decoders accept any width that holds the block's gaps. Indices 1, 3 (gaps 1, 1) at
    # width 4 instead of 1: 0x11, padding 0.
    sel = battery.selection([1, 3], [0, 0], 10, 1)
    assert CODEC.encode(sel, kernels) == b"\x01\x03"  # minimal: width 1, bits 1 1
    assert CODEC.decode(b"\x04\x11", battery.context(sel, 0), kernels, "wide")["indices"].tolist() == [1, 3]


@pytest.mark.parametrize("body, why", [
    (b"\x41", "width 65 > 64"),
    (b"\x01\x07", "padding bit set"),
    (b"\x01\x03\x00", "a byte after the blocks"),
])
def test_rules_of_6_2(kernels, body, why):
    sel = battery.selection([1, 3], [0, 0], 10, 1)
    with pytest.raises(PayloadFormatError):
        CODEC.decode(body, battery.context(sel, 0), kernels, why)


def test_gap_beyond_n(kernels):
    # 6.2: the first entry whose gap is >= N is rejected: gap 10 at N = 10 (width 4, 0x0a).
    sel = battery.selection([1], [0], 10, 1)
    with pytest.raises(PayloadFormatError):
        CODEC.decode(b"\x04\x0a", battery.context(sel, 0), kernels, "gap 10")
    assert np.array_equal(CODEC.decode(b"\x04\x09", battery.context(sel, 0), kernels, "gap 9")["indices"], [9])
