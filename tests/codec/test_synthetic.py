"""The synthetic selections the benchmarks and vectors are made from: their stated structure."""

import numpy as np

from plada_codec.synthetic import clustered_selection, synset_bounds


def test_synset_bounds_cut_the_set_evenly():
    assert synset_bounds(1300, 650).tolist() == [0, 650, 1300]
    assert synset_bounds(1000, 300).tolist() == [0, 333, 666, 1000]  # linspace(0, 1000, 4), floored
    assert synset_bounds(10, 650).tolist() == [0, 10]  # fewer items than one synset: one synset


def test_clustered_labels_follow_their_synset_and_scatter_lies_low():
    n_ref, count = 65_000, 5_000
    indices, labels = clustered_selection(n_ref, count, 20, 3, related_share=0.5, label_purity=1.0)
    assert indices.size == count and np.all(np.diff(indices) > 0)
    synset = np.searchsorted(synset_bounds(n_ref), indices, side="right") - 1
    # purity 1: every kept item of a synset carries that synset's one class
    first = np.r_[True, synset[1:] != synset[:-1]]
    assert np.array_equal(labels, np.repeat(labels[first], np.diff(np.r_[np.flatnonzero(first), count])))
    # with no related share every item is scattered: over the lower part of the set only (the
    # smallest of twice as many uniform draws, about its lower half), as the docstring says
    scattered, _ = clustered_selection(n_ref, count, 20, 3, related_share=0.0)
    assert 0.4 * n_ref < scattered.max() < 0.65 * n_ref
