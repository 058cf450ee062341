"""The score table (plada_train.uncertainty): each new formula by hand, and the rule every
score keeps (lower = more confident), which a score added to the table is checked against."""

import numpy as np
import pytest
import torch

from plada_train.cli import build_parser
from plada_train.scoring import score_batch
from plada_train.uncertainty import SCORE_NAMES, SCORES


def test_margin_by_hand():
    # Probabilities 0.6, 0.3, 0.1: margin -(0.6 - 0.3). A tie between the first two: 0.
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.4, 0.4, 0.2]]))
    np.testing.assert_allclose(score_batch(logits)["margin"], [-0.3, 0.0], atol=1e-6)


def test_margin_reads_the_temperature():
    # z / T = (ln 3, 0, 0) at T = 2: probabilities 3/5, 1/5, 1/5, so the margin is -(3/5 - 1/5).
    logits = torch.tensor([[2 * np.log(3.0), 0.0, 0.0]])
    np.testing.assert_allclose(score_batch(logits, temperature=2.0)["margin"], [-0.4], rtol=1e-6)


def test_margin_of_a_single_class_is_full_confidence():
    assert score_batch(torch.tensor([[3.0], [-1.0]]))["margin"].tolist() == [-1.0, -1.0]


@pytest.mark.parametrize("name", SCORE_NAMES)
def test_every_score_ranks_a_sure_row_below_an_unsure_one(name):
    # One float32 an image, lower = more confident: what --mode low and high rely on.
    logits = torch.tensor([[8.0, 0.0, 0.0, 0.0], [1.0, 0.9, 0.8, 0.7]])
    values = score_batch(logits)[SCORES[name].array]
    assert values.dtype == np.float32 and values.shape == (2,)
    assert values[0] < values[1]


def test_score_arrays_are_distinct_and_the_cli_offers_every_score():
    arrays = [score.array for score in SCORES.values()]
    assert len(set(arrays)) == len(arrays) and "labels" not in arrays
    assert arrays[:3] == ["energy", "entropy", "neg_max_softmax"]  # the names files have always used
    for name in SCORE_NAMES:
        assert build_parser().parse_args(["produce", "--out", "o", "--score", name]).score == name
