"""Format 1.1 vectors (spec/vectors/v1.1) on every backend, the payload-level
behaviour of the context-model codec, and how a 1.0 reader treats it.

The valid vectors' JSON was written from plada_codec's own decode output, so
for them this is a regression test; the independent checks are the hand-made
streams in test_cm.py and spec/educational_decoder.py (test_spec_decoder.py).
The invalid vectors name the spec's error class (FORMAT.md 9.1, 15).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import plada_codec
from plada_codec.synthetic import clustered_selection

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "v1.1"
VALID = sorted(VECTORS.glob("*.bin"))
INVALID = sorted((VECTORS / "invalid").glob("*.bin"))
CONTENT_KEYS = ("format_version", "n_ref", "n_classes", "count", "fingerprint", "indices", "labels",
                "class_names", "task_name", "metadata")
SPEC_ERRORS = {"FormatError": plada_codec.PayloadFormatError,
               "UnsupportedFeature": plada_codec.UnsupportedFeatureError}


def _meta(path):
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def test_there_are_vectors():
    assert len(VALID) >= 8 and len(INVALID) >= 12


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_decodes(backend, path):
    meta = _meta(path)
    content = plada_codec.decode(path.read_bytes(), backend=backend).to_dict()
    assert content == {key: meta[key] for key in CONTENT_KEYS}
    assert content["format_version"] == "1.1"


@pytest.mark.parametrize("path", [p for p in VALID if p.stat().st_size < 4096], ids=lambda p: p.stem)
def test_valid_vector_reencodes(backend, path):
    meta = _meta(path)
    data = plada_codec.encode(meta["indices"], meta["labels"], n_ref=meta["n_ref"], n_classes=meta["n_classes"],
                              backend=backend, **{k: v for k, v in meta["encode_options"].items()
                                                  if k not in ("n_ref", "n_classes")})
    assert data == path.read_bytes()


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_rejected(backend, path):
    meta = _meta(path)
    assert meta["codec"] in ("index/context-model", "labels/joint")
    expected = SPEC_ERRORS[meta["error"]]
    with pytest.raises(expected) as info:
        plada_codec.decode(path.read_bytes(), backend=backend)
    assert type(info.value) is expected


def test_a_1_0_reader_rejects_1_1_payloads_cleanly(backend):
    """FORMAT.md 15.1: unknown critical codec -> UnsupportedFeature, never a wrong decode."""
    data = (VECTORS / "002-cm-worked-example.bin").read_bytes()
    with pytest.raises(plada_codec.UnsupportedFeatureError, match="codec"):
        plada_codec.PayloadDecoder(format_version="1.0", backend=backend).decode(data)


def test_a_1_1_reader_reads_1_0_payloads(backend):
    for path in sorted((VECTORS.parent / "v1.0").glob("*.bin")):
        plada_codec.decode(path.read_bytes(), backend=backend)


def test_encoder_picks_the_context_model_on_clustered_selections(backend):
    indices, labels = clustered_selection(200_000, 2_000, 20, seed=1)
    data = plada_codec.encode(indices, labels, n_ref=200_000, n_classes=20, zstd_level=3, backend=backend)
    sections = plada_codec.inspect(data).sections
    assert [(s.codec_name, s.compression) for s in sections] == [("context-model", 0), ("joint", 0)]
    plain = plada_codec.encode(indices, labels, n_ref=200_000, n_classes=20, zstd_level=3,
                               index_codec="delta", label_codec="packed", backend=backend)
    assert len(data) < 0.85 * len(plain)
    payload = plada_codec.decode(data, backend=backend)
    np.testing.assert_array_equal(payload.indices, indices)
    np.testing.assert_array_equal(payload.labels, labels)


def test_encoder_keeps_the_1_0_escape_for_a_periodic_selection(backend):
    """One contiguous run with periodic labels: Zstandard over the 1.0 layout wins (CODING-NOTES)."""
    indices = np.arange(5_000)
    labels = np.arange(5_000) % 17
    data = plada_codec.encode(indices, labels, n_ref=5_000, n_classes=17, zstd_level=3, backend=backend)
    assert plada_codec.inspect(data).sections[0].codec_name != "context-model"


def test_vectors_are_up_to_date():
    result = subprocess.run([sys.executable, str(VECTORS / "make_vectors.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
