"""The spec is complete enough for a second decoder: spec/educational_decoder.py,
written from FORMAT.md alone (stdlib only, its own CRC32C, no plada_codec),
is the oracle: it agrees with plada_codec outcome for outcome on damaged
payloads. (Its run over every vector of every version is in
tests/test_vectors.py.)"""

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from plada_codec._errors import SPEC_ERRORS

from .strategies import mutations, small_payloads, structural_mutations

SPEC = Path(__file__).resolve().parent.parent / "spec"
_spec = importlib.util.spec_from_file_location("educational_decoder", SPEC / "educational_decoder.py")
educational = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(educational)


CONTENT_KEYS = ("format_version", "n_ref", "n_classes", "count", "fingerprint", "indices", "labels",
                "class_names", "task_name", "metadata")

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def test_crc32c_check_value():
    assert educational.crc32c(b"123456789") == 0xE3069283  # FORMAT.md section 1


def _outcome_plada(data, backend):
    try:
        return plada_codec.decode(data, backend=backend).to_dict()
    except plada_codec.PayloadError as exc:
        return type(exc).__name__


def _outcome_spec(data):
    try:
        return educational.decode(data)
    except educational.DecodeError as exc:
        return SPEC_ERRORS[exc.kind].__name__


@given(small_payloads(), st.data())
def test_differential_on_damaged_payloads(backend, data, draw):
    """Outcome-for-outcome agreement on mutated payloads: same content or same error class."""
    damaged = draw.draw(mutations(data))
    assert _outcome_plada(damaged, backend) == _outcome_spec(damaged)


@given(small_payloads(), st.data())
def test_differential_behind_valid_crcs(backend, data, draw):
    damaged = draw.draw(structural_mutations(data))
    assert _outcome_plada(damaged, backend) == _outcome_spec(damaged)
