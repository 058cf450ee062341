"""The normative vectors: every valid one decodes to its JSON on every backend
and re-encodes to the same bytes; every invalid one raises its named error."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import plada_codec
from plada_codec import _format

ROOT = Path(__file__).resolve().parent.parent / "spec" / "vectors"
VECTORS = ROOT / "v1.0"
VALID = sorted(VECTORS.glob("*.bin"))
INVALID = sorted((VECTORS / "invalid").glob("*.bin"))
ZSTD_VERSION = ".".join(map(str, zstandard.ZSTD_VERSION))


def _meta(path):
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_decodes(backend, path):
    meta = _meta(path)
    content = plada_codec.decode(path.read_bytes(), backend=backend).to_dict()
    for key, value in content.items():
        assert meta[key] == value, key


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
    expected = getattr(plada_codec, meta["error"])
    with pytest.raises(expected) as info:
        plada_codec.decode(path.read_bytes(), backend=backend, reference=reference, **meta.get("limits", {}))
    assert type(info.value) is expected


def test_every_codec_and_compression_has_a_valid_vector():
    """Meta-test: a codec added to the format without a vector fails here."""
    seen = set()
    for path in VALID:
        for section in plada_codec.inspect(path.read_bytes()).sections:
            seen.add((section.type, section.codec))
            seen.add(("compression", section.compression))
    for stype, codecs in _format.CODEC_NAMES.items():
        for codec in codecs:
            assert (stype, codec) in seen, (hex(stype), codec)
    for compression in _format.COMPRESSION_NAMES:
        assert ("compression", compression) in seen


def test_every_error_class_has_an_invalid_vector():
    named = {_meta(p)["error"] for p in INVALID}
    for name in ("PayloadFormatError", "TruncatedPayloadError", "TrailingDataError", "ChecksumError",
                 "UnsupportedVersionError", "UnsupportedFeatureError", "LimitExceededError",
                 "ReferenceMismatchError"):
        assert name in named


def test_vectors_are_up_to_date():
    """spec/vectors matches what make_vectors.py writes (regenerating is explicit, never done here)."""
    if any(_meta(p)["zstd_version"] != ZSTD_VERSION for p in VALID):
        pytest.skip("vectors were made with another libzstd")
    result = subprocess.run([sys.executable, str(ROOT / "make_vectors.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
