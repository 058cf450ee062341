"""Tests plada_train.data.builtin: the built-in reference pool."""

from pathlib import Path

import pytest

pytest.importorskip("PIL")

from plada_train.data import open_reference  # noqa: E402


def test_builtin_pool_keeps_its_fingerprint_source():
    pytest.importorskip("mnist")
    if not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("Fashion-MNIST not installed")
    from plada_train.data import load_miniature

    reference = open_reference("builtin:pool-far")
    assert reference.images is load_miniature(include_in_domain=False).pool.images
    assert reference.describe() == {"source": "builtin:pool-far", "kind": "array", "n": 80000, "channels": 1,
                                    "image_size": [28, 28], "uniform": True}
