"""PackedStrings (plada_codec.kinds._base): N strings as one blob plus offsets, with Python's sequence rules."""

import pickle

import numpy as np
import pytest

from plada_codec import PackedStrings


def test_indexing_follows_the_sequence_rules():
    names = PackedStrings.pack(["alpha", "beta", "", "gamma"])
    assert len(names) == 4
    assert [names[0], names[1], names[2], names[3]] == ["alpha", "beta", "", "gamma"]
    assert [names[-1], names[-2], names[-4]] == ["gamma", "", "alpha"]
    assert names[np.int64(1)] == "beta"
    assert names[1:3] == ["beta", ""] and names[::-2] == ["gamma", "beta"]
    for outside in (4, -5, 10**20):
        with pytest.raises(IndexError):
            names[outside]
    with pytest.raises(TypeError):
        names["a"]
    assert list(names) == ["alpha", "beta", "", "gamma"]
    assert list(pickle.loads(pickle.dumps(names))) == list(names)


def test_offsets_outside_the_blob_or_falling_are_refused():
    assert list(PackedStrings(b"abcde", [0, 2, 5])) == ["ab", "cde"]
    assert list(PackedStrings(np.frombuffer(b"abcde", np.uint8), np.array([1, 3], np.uint32))) == ["bc"]
    for offsets in ([0, 10, 2], [0, 3, 2], [-1, 2], [], [[0, 1]], np.array([0.0, 1.0])):
        with pytest.raises(ValueError):
            PackedStrings(b"abcde", offsets)
