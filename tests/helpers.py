"""Shared checks that keep each test file short."""

import numpy as np

import plada_codec


def check_roundtrip(indices, labels, *, backend, **kwargs):
    data = plada_codec.encode(indices, labels, backend=backend, **kwargs)
    payload = plada_codec.decode(data, backend=backend)
    assert payload.indices.dtype == np.int64 and payload.labels.dtype == np.int32
    np.testing.assert_array_equal(payload.indices, np.asarray(indices, dtype=np.int64))
    np.testing.assert_array_equal(payload.labels, np.asarray(labels, dtype=np.int64))
    assert payload.n_classes == kwargs["n_classes"]
    # Deterministic: the same input and options give the same bytes.
    assert plada_codec.encode(indices, labels, backend=backend, **kwargs) == data
    return data, payload


def check_rejects_only_documented(data, *, backend, **kwargs):
    """Decoding *data* either succeeds or raises a PayloadError, nothing else."""
    try:
        return plada_codec.decode(data, backend=backend, **kwargs)
    except plada_codec.PayloadError:
        return None
