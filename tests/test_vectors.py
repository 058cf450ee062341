"""plada_codec against the normative vectors, on every backend.

The valid vectors' JSON was written from plada_codec's own decode output
(spec/vectors/make_vectors.py), so for valid vectors this file is a
regression test: it catches a change in what plada_codec decodes, not an
error that was there when the vectors were made. The independent oracle is
spec/educational_decoder.py, written from FORMAT.md alone, which must decode
the same vectors to the same JSON (tests/test_spec_decoder.py). The invalid
vectors' expected errors are the spec's own classes (FORMAT.md 9.1).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import plada_codec

ROOT = Path(__file__).resolve().parent.parent / "spec" / "vectors"
VECTORS = ROOT / "v1.0"
VALID = sorted(VECTORS.glob("*.bin"))
INVALID = sorted((VECTORS / "invalid").glob("*.bin"))
ZSTD_VERSION = ".".join(map(str, zstandard.ZSTD_VERSION))
# FORMAT.md 12: the decoded content every valid vector's JSON records
CONTENT_KEYS = ("format_version", "n_ref", "n_classes", "count", "fingerprint", "indices", "labels",
                "class_names", "task_name", "metadata")


# FORMAT.md 9.1: the spec's error class -> plada_codec's exception class
SPEC_ERRORS = {
    "FormatError": "PayloadFormatError", "Truncated": "TruncatedPayloadError",
    "TrailingData": "TrailingDataError", "Checksum": "ChecksumError",
    "UnsupportedVersion": "UnsupportedVersionError", "UnsupportedFeature": "UnsupportedFeatureError",
    "LimitExceeded": "LimitExceededError", "ReferenceMismatch": "ReferenceMismatchError",
}


def _meta(path):
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_decodes(backend, path):
    meta = _meta(path)
    content = plada_codec.decode(path.read_bytes(), backend=backend).to_dict()
    assert content == {key: meta[key] for key in CONTENT_KEYS}


@pytest.mark.parametrize("path", [p for p in VALID if _meta(p)["reencode"]], ids=lambda p: p.stem)
def test_valid_vector_reencodes(backend, path):
    meta = _meta(path)
    options = dict(meta["encode_options"])
    if "reference" in options:
        options["reference"] = bytes.fromhex(options["reference"])
    data = plada_codec.encode(
        meta["indices"], meta["labels"], class_names=meta["class_names"], task_name=meta["task_name"],
        metadata=meta["metadata"], backend=backend, **options,
    )
    uses_zstd = any(s.compression for s in plada_codec.inspect(path.read_bytes()).sections)
    if uses_zstd and meta["zstd_version"] != ZSTD_VERSION:
        pytest.skip(f"vector made with libzstd {meta['zstd_version']}, this is {ZSTD_VERSION}")
    assert data == path.read_bytes()


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_rejected(backend, path):
    meta = _meta(path)
    reference = None
    if "reference" in meta:
        reference = plada_codec.ReferenceSet(meta["reference"]["n_ref"], bytes.fromhex(meta["reference"]["fingerprint"]))
    expected = getattr(plada_codec, SPEC_ERRORS[meta["error"]])
    with pytest.raises(expected) as info:
        plada_codec.decode(path.read_bytes(), backend=backend, reference=reference, **meta.get("limits", {}))
    assert type(info.value) is expected


def test_every_error_class_has_an_invalid_vector():
    named = {_meta(p)["error"] for p in INVALID}
    assert named == set(SPEC_ERRORS)


def test_vectors_are_up_to_date():
    """spec/vectors matches what make_vectors.py writes (regenerating is explicit, never done here)."""
    if any(_meta(p)["zstd_version"] != ZSTD_VERSION for p in VALID):
        pytest.skip("vectors were made with another libzstd")
    result = subprocess.run([sys.executable, str(ROOT / "make_vectors.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
