"""Shared inputs for the benchmarks: the paper's reference-set sizes."""

import pytest

import plada_codec
from plada_codec.synthetic import clustered_selection

SIZES = {
    "in21k-1pct": (14_197_122, 141_971),
    "in21k-10pct": (14_197_122, 1_419_712),
    "in1k-1pct": (1_281_167, 12_811),
}
CONTENDERS = ["c", "python"] if "c" in plada_codec.available_backends() else ["python"]


@pytest.fixture(scope="session", params=list(SIZES), ids=list(SIZES))
def selection(request):
    n_ref, count = SIZES[request.param]
    indices, labels = clustered_selection(n_ref, count, 200, seed=5)
    return request.param, n_ref, indices, labels
