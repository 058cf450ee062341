"""Label codec 2, joint (FORMAT.md 15.1, format 1.1): an empty body whose labels travel in the
index section's context-model stream. The codec battery (battery.py) runs it with its partner
on label inputs; by hand, the rules of 15.1 that name it."""

import pytest

import plada_codec
from plada_codec import wire
from tests.codec.codecs import battery

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

CODEC = battery.codec_named("labels", "joint")


class TestBattery(battery.Battery):
    codec = CODEC
    cases = battery.label_cases(multi_chunk=False)


# -- by hand ---------------------------------------------------------------------------------------

# Appendix B: N = 20, C = 5, indices 2 3 11, labels 4 4 1, index body 00 A1 3A 82.
APPENDIX_B = battery.selection([2, 3, 11], [4, 4, 1], 20, 5)
APPENDIX_B_BODY = bytes.fromhex("00a13a82")


def _payload(label_codec, label_body, index_codec=2, index_body=APPENDIX_B_BODY):
    return wire.join(wire.RawPayload(n_classes=5, n_ref=20, count=3, minor=1, sections=[
        wire.RawSection(0x0001, index_codec, 0, index_body), wire.RawSection(0x0002, label_codec, 0, label_body)]))


def test_the_body_is_empty_and_carries_nothing(kernels):
    assert CODEC.encode(APPENDIX_B, kernels) == b""
    assert CODEC.decode(b"", battery.context(APPENDIX_B, 1), kernels, "joint") == {}
    payload = plada_codec.decode(_payload(2, b""), backend=kernels.name)
    assert payload.labels.tolist() == [4, 4, 1] and payload.indices.tolist() == [2, 3, 11]


def test_rules_of_15_1(backend):
    with pytest.raises(plada_codec.PayloadFormatError):  # raw_length exactly 0
        plada_codec.decode(_payload(2, b"\x00"), backend=backend)
    # The index section as delta (gaps 2 0 7 at width 3), the labels packed (4 4 1 at 3 bits): each
    # body is right for its own codec, but either codec 2 without the other is refused.
    with pytest.raises(plada_codec.PayloadFormatError):
        plada_codec.decode(_payload(2, b"", index_codec=0, index_body=bytes.fromhex("03 c2 01")), backend=backend)
    with pytest.raises(plada_codec.PayloadFormatError):
        plada_codec.decode(_payload(0, bytes.fromhex("64 00")), backend=backend)
