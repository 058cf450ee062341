"""Scoring the reference set (plada_train.scoring): Scores keep labels in the smallest integer type;
files written with int64 labels still load."""

import json

import numpy as np
import pytest
import torch

from plada_train.distributed import Context
from plada_train.errors import DataError
from plada_train.scoring import Scores, score_reference


def _scores(labels) -> Scores:
    n = len(labels)
    return Scores(np.asarray(labels), np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32))


@pytest.mark.parametrize("largest, dtype", [(0, np.uint8), (255, np.uint8), (256, np.uint16),
                                            (21_840, np.uint16), (65_535, np.uint16), (65_536, np.int32),
                                            ((1 << 24) - 1, np.int32)])
def test_labels_take_the_smallest_type(tmp_path, largest, dtype):
    labels = np.array([0, largest, 1], dtype=np.int64)
    scores = _scores(labels)
    assert scores.labels.dtype == dtype and scores.labels.tolist() == [0, largest, 1]
    scores.save(tmp_path / "scores.npz")
    with np.load(tmp_path / "scores.npz") as stored:
        assert stored["labels"].dtype == dtype  # on disk too: 2 bytes an image at 21,841 classes
    loaded = Scores.load(tmp_path / "scores.npz")
    assert loaded.labels.dtype == dtype and loaded.labels.tolist() == [0, largest, 1]


def test_a_scores_file_with_int64_labels_still_loads(tmp_path):
    # Written as the release before this one did: np.savez with int64 labels.
    path = tmp_path / "old.npz"
    energy = np.array([-3.0, -1.0, -2.0], np.float32)
    np.savez(path, labels=np.array([2, 0, 300], dtype=np.int64), energy=energy, entropy=energy,
             neg_max_softmax=energy, temperature=np.float64(1.5),
             provenance=np.array(json.dumps({"teacher": "t"}, sort_keys=True)))
    loaded = Scores.load(path)
    assert loaded.labels.tolist() == [2, 0, 300] and loaded.labels.dtype == np.uint16
    assert loaded.temperature == 1.5 and loaded.provenance == {"teacher": "t"}
    np.testing.assert_array_equal(loaded.energy, energy)


def test_empty_and_unusual_labels_are_kept():
    assert _scores(np.zeros(0, np.int64)).labels.dtype == np.uint8
    negative = _scores(np.array([-1, 3]))  # never narrowed into a type that cannot hold it
    assert negative.labels.tolist() == [-1, 3]


class _Items(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.x = torch.linspace(-1, 1, n * 4).reshape(n, 4)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i


@pytest.mark.parametrize("n_classes, dtype", [(10, np.uint8), (300, np.uint16)])
def test_scoring_writes_small_labels(tmp_path, n_classes, dtype):
    model = torch.nn.Linear(4, n_classes)
    with torch.no_grad():  # the first input decides: below 0 class 0, above it the last class
        model.weight.zero_()
        model.bias.zero_()
        model.weight[0, 0], model.weight[-1, 0] = -1.0, 1.0
    scores = score_reference(model, _Items(40), Context(), batch_size=8, shard_size=16, parts_dir=tmp_path / "parts")
    with torch.no_grad():
        expected = model(_Items(40).x).argmax(1).numpy()
    assert expected.max() == n_classes - 1 and expected.min() < n_classes - 1
    assert scores.labels.dtype == dtype and scores.labels.tolist() == expected.tolist()
    for shard in sorted((tmp_path / "parts").glob("shard-*.npz")):
        with np.load(shard) as d:
            assert d["labels"].dtype == dtype


def test_a_file_without_margin_loads_and_asks_for_rescoring(tmp_path):
    # As the release before the margin score wrote it: the paper's three arrays only.
    path = tmp_path / "old.npz"
    energy = np.array([-3.0, -1.0, -2.0], np.float32)
    np.savez(path, labels=np.array([2, 0, 1]), energy=energy, entropy=energy, neg_max_softmax=energy,
             temperature=np.float64(1.0), provenance=np.array("{}"))
    loaded = Scores.load(path)
    np.testing.assert_array_equal(loaded.get("energy"), energy)
    with pytest.raises(DataError, match="no margin.*--rescore"):
        loaded.get("margin")


def test_every_score_is_saved_and_loaded(tmp_path):
    from plada_train.uncertainty import SCORES

    arrays = {score.array: np.arange(3, dtype=np.float32) + i for i, score in enumerate(SCORES.values())}
    Scores(np.array([0, 1, 2]), temperature=0.5, **arrays).save(tmp_path / "scores.npz")
    with np.load(tmp_path / "scores.npz") as stored:
        assert set(stored.files) == {"labels", "temperature", "provenance", *arrays}
    loaded = Scores.load(tmp_path / "scores.npz")
    assert loaded.temperature == 0.5
    for name, score in SCORES.items():
        np.testing.assert_array_equal(loaded.get(name), arrays[score.array])


def test_unknown_or_misaligned_score_arrays_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown score arrays"):
        Scores(np.zeros(2, np.int64), typo=np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="3 scores for 2 labels"):
        Scores(np.zeros(2, np.int64), np.zeros(3, np.float32))
    np.savez(tmp_path / "bad.npz", labels=np.zeros(2, np.int64), energy=np.zeros(3, np.float32),
             temperature=np.float64(1.0))
    with pytest.raises(DataError, match="not a plada-train scores file"):
        Scores.load(tmp_path / "bad.npz")


def test_scoring_writes_the_margin_of_each_image(tmp_path):
    model = torch.nn.Linear(4, 3)
    scores = score_reference(model, _Items(20), Context(), batch_size=8, shard_size=16, parts_dir=tmp_path / "parts")
    with torch.no_grad():
        probs = torch.softmax(model(_Items(20).x), dim=1).numpy().astype(np.float64)
    top = np.sort(probs, axis=1)[:, ::-1]
    np.testing.assert_allclose(scores.get("margin"), top[:, 1] - top[:, 0], atol=1e-6)  # -(p1 - p2), by numpy
    for shard in sorted((tmp_path / "parts").glob("shard-*.npz")):
        with np.load(shard) as d:
            assert "margin" in d.files


def test_partial_scores_of_an_older_plada_are_refused(tmp_path):
    import json

    parts = tmp_path / "parts"
    model = torch.nn.Linear(4, 3)
    score_reference(model, _Items(20), Context(), batch_size=8, shard_size=16, parts_dir=parts)
    request = json.loads((parts / "request.json").read_text())
    del request["scorer"]["scores"]  # what an older plada wrote: no list of the scores computed
    (parts / "request.json").write_text(json.dumps(request, sort_keys=True))
    with pytest.raises(DataError, match=r"another request \(written by an older plada.*--rescore"):
        score_reference(model, _Items(20), Context(), batch_size=8, shard_size=16, parts_dir=parts)
    from plada_train.scoring import ARRAYS

    request["scorer"]["scores"] = list(ARRAYS[1:])  # this release's list again: the request matches
    (parts / "request.json").write_text(json.dumps(request, sort_keys=True))
    shard = parts / "shard-00000000.npz"  # a shard that lost an array
    with np.load(shard) as d:
        kept = {k: d[k] for k in d.files if k != "margin"}
    np.savez(shard, **kept)
    with pytest.raises(DataError, match="lacks margin"):
        score_reference(model, _Items(20), Context(), batch_size=8, shard_size=16, parts_dir=parts)
