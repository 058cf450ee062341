"""The spec is complete enough for a second decoder: spec/educational_decoder.py,
written from FORMAT.md alone (stdlib only, its own CRC32C, no plada_codec),
is the oracle: it agrees with plada_codec outcome for outcome on damaged
payloads, and on what the spec text once left to guess (pinned by vectors: FORMAT.md 5.3,
5.7). (Its run over every vector of every version is in tests/spec/test_vectors.py.)"""

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from tests.helpers import REPO
from tests.spec import educational as edu
from tests.strategies import mutations, small_payloads, structural_mutations

SPEC = REPO / "spec"
educational = edu.decoder


CONTENT_KEYS = edu.CONTENT_KEYS

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def test_crc32c_check_value():
    assert educational.crc32c(b"123456789") == 0xE3069283  # FORMAT.md section 1


@given(small_payloads(), st.data())
def test_differential_on_damaged_payloads(backend, data, draw):
    """Outcome-for-outcome agreement on mutated payloads: same content or same error class."""
    damaged = draw.draw(mutations(data))
    assert edu.outcome_plada(damaged, backend) == edu.outcome_spec(damaged)


@given(small_payloads(), st.data())
def test_differential_behind_valid_crcs(backend, data, draw):
    damaged = draw.draw(structural_mutations(data))
    assert edu.outcome_plada(damaged, backend) == edu.outcome_spec(damaged)


# -- what the spec text left to guess (issue 17), pinned by the 1.0 vectors ---------------------

VECTORS = SPEC / "vectors" / "v1.0"


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
