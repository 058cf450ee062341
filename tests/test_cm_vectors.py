"""The payload-level behaviour of the format 1.1 context-model codec and how a
1.0 reader treats it. The 1.1 vectors themselves run in tests/test_vectors.py,
with every other version's, on every backend and the educational decoder."""

from pathlib import Path

import numpy as np
import pytest

import plada_codec
from plada_codec.synthetic import clustered_selection

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "v1.1"

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def test_a_1_0_reader_rejects_1_1_payloads_cleanly(backend):
    """FORMAT.md 15.1: unknown critical codec -> UnsupportedFeature, never a wrong decode."""
    data = (VECTORS / "002-cm-worked-example.bin").read_bytes()
    with pytest.raises(plada_codec.UnsupportedFeatureError, match="codec"):
        plada_codec.PayloadDecoder(format_version="1.0", backend=backend).decode(data)


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
    """One contiguous run with periodic labels: Zstandard over the 1.0 layout wins."""
    indices = np.arange(5_000)
    labels = np.arange(5_000) % 17
    data = plada_codec.encode(indices, labels, n_ref=5_000, n_classes=17, zstd_level=3, backend=backend)
    assert plada_codec.inspect(data).sections[0].codec_name != "context-model"
