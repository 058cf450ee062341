"""The spec is complete enough for a second decoder: spec/educational_decoder.py,
written from FORMAT.md alone (stdlib only, its own CRC32C, no plada_codec),
is the oracle: it decodes every valid vector to every field its JSON records,
rejects every invalid vector with the spec error class named there, and
agrees with plada_codec outcome for outcome on damaged payloads."""

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parent.parent / "spec"
VECTORS = SPEC / "vectors" / "v1.0"
_spec = importlib.util.spec_from_file_location("educational_decoder", SPEC / "educational_decoder.py")
educational = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(educational)

# FORMAT.md 9.1: error class -> plada_codec class name
KINDS = {
    "FormatError": "PayloadFormatError", "Truncated": "TruncatedPayloadError",
    "TrailingData": "TrailingDataError", "Checksum": "ChecksumError",
    "UnsupportedVersion": "UnsupportedVersionError", "UnsupportedFeature": "UnsupportedFeatureError",
    "LimitExceeded": "LimitExceededError", "ReferenceMismatch": "ReferenceMismatchError",
}


CONTENT_KEYS = ("format_version", "n_ref", "n_classes", "count", "fingerprint", "indices", "labels",
                "class_names", "task_name", "metadata")


def test_crc32c_check_value():
    assert educational.crc32c(b"123456789") == 0xE3069283  # FORMAT.md section 1


@pytest.mark.parametrize("path", sorted(VECTORS.glob("*.bin")), ids=lambda p: p.stem)
def test_valid_vectors(path):
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    decoded = educational.decode(path.read_bytes())
    # Every field FORMAT.md 12 lists, from the expected side: a decoder that
    # returns {} or leaves a field out fails here.
    assert {key: decoded.get(key, "<missing>") for key in CONTENT_KEYS} == {key: expected[key] for key in CONTENT_KEYS}


@pytest.mark.parametrize("path", sorted((VECTORS / "invalid").glob("*.bin")), ids=lambda p: p.stem)
def test_invalid_vectors(path):
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    reference = None
    if "reference" in meta:
        reference = (meta["reference"]["n_ref"], bytes.fromhex(meta["reference"]["fingerprint"]))
    with pytest.raises(educational.DecodeError) as info:
        educational.decode(path.read_bytes(), reference=reference, **meta.get("limits", {}))
    assert info.value.kind == meta["error"], str(info.value)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import plada_codec  # noqa: E402

from .strategies import mutations, small_payloads, structural_mutations  # noqa: E402


def _outcome_plada(data, backend):
    try:
        return plada_codec.decode(data, backend=backend).to_dict()
    except plada_codec.PayloadError as exc:
        return type(exc).__name__


def _outcome_spec(data):
    try:
        return educational.decode(data)
    except educational.DecodeError as exc:
        return KINDS[exc.kind]


@given(small_payloads(), st.data())
def test_differential_on_damaged_payloads(backend, data, draw):
    """Outcome-for-outcome agreement on mutated payloads: same content or same error class."""
    damaged = draw.draw(mutations(data))
    assert _outcome_plada(damaged, backend) == _outcome_spec(damaged)


@given(small_payloads(), st.data())
def test_differential_behind_valid_crcs(backend, data, draw):
    damaged = draw.draw(structural_mutations(data))
    assert _outcome_plada(damaged, backend) == _outcome_spec(damaged)
