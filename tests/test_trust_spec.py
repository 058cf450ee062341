"""What issue 17 found the spec text left to guess, pinned by vectors (FORMAT.md 5.3, 5.7, 9.1, 13)."""

import importlib.util
import math
import struct
from pathlib import Path

import pytest

import plada_codec
from plada_codec import wire

SPEC = Path(__file__).resolve().parent.parent / "spec"
VECTORS = SPEC / "vectors" / "v1.0"
_spec = importlib.util.spec_from_file_location("educational_decoder_trust", SPEC / "educational_decoder.py")
educational = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(educational)


def test_a_first_section_of_type_zero_is_a_format_error_for_every_decoder(backend):
    data = (VECTORS / "invalid" / "103-first-section-type-zero.bin").read_bytes()
    assert struct.unpack_from("<H", data, 80)[0] == 0  # the first section's type
    with pytest.raises(plada_codec.PayloadFormatError, match="not greater than the previous type 0x0000") as info:
        plada_codec.decode(data, backend=backend)
    assert not isinstance(info.value, plada_codec.UnsupportedFeatureError)
    with pytest.raises(educational.DecodeError) as edu:
        educational.decode(data)
    assert edu.value.kind == "FormatError"


def _signed_zeros(metadata):
    assert list(metadata) == ["minus_zero", "underflow", "negative_zero"]
    assert type(metadata["minus_zero"]) is int and metadata["minus_zero"] == 0
    assert type(metadata["underflow"]) is float and math.copysign(1, metadata["underflow"]) == 1.0
    assert metadata["underflow"] == 0.0
    assert type(metadata["negative_zero"]) is float and math.copysign(1, metadata["negative_zero"]) == -1.0


def test_metadata_minus_zero_underflow_and_negative_zero(backend):
    data = (VECTORS / "017-metadata-signed-zeros.bin").read_bytes()
    assert b'{"minus_zero":-0,"underflow":1e-400,"negative_zero":-0.0}' in data
    _signed_zeros(plada_codec.decode(data, backend=backend).metadata)
    _signed_zeros(educational.decode(data)["metadata"])


def test_a_stream_reader_reads_total_length_minus_80_more_bytes():
    data = plada_codec.encode([1, 2], [0, 1], n_ref=4, n_classes=2)

    class Counting:
        def __init__(self, raw):
            self.raw, self.asked = raw, []

        def read(self, n):
            self.asked.append(n)
            out, self.raw = self.raw[:n], self.raw[n:]
            return out

    source = Counting(data + b"x")
    with pytest.raises(plada_codec.TrailingDataError):
        plada_codec.read_payload(source)
    assert source.asked[:2] == [80, len(data) - 80]
    with pytest.raises(plada_codec.LimitExceededError, match="max_total_length"):
        plada_codec.read_payload(Counting(data), max_total_length=len(data) - 1)


def test_the_decoder_docstring_counts_metadata_items_as_the_spec_does():
    doc = plada_codec.PayloadDecoder.__doc__
    assert "outside strings" not in doc and "inside strings or not" in doc
    # ... and the code does: a ',' inside a string counts (2 items here, 1 value).
    raw = wire.split(plada_codec.encode([1], [0], n_ref=4, n_classes=2, metadata={"a": ",,,"}))
    with pytest.raises(plada_codec.LimitExceededError, match="max_metadata_items"):
        plada_codec.decode(wire.join(raw), max_metadata_items=3)
