"""Tests plada_train.data.subset: the client's k selected items (LabelledSubset), read alone."""

import tarfile

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")

from torch.utils.data import DataLoader  # noqa: E402

from plada_train.data import DataError, LabelledSubset, open_reference  # noqa: E402
from tests.train.data.images import N_IMAGES, OpenCounter  # noqa: E402


def test_subset_reads_exactly_the_k_selected_files(image_folder, monkeypatch):
    root, _ = image_folder
    reference = open_reference(root)
    picks = np.array([3, 17, 18, 120, 239])
    labels = np.array([1, 0, 4, 4, 2])
    subset = LabelledSubset(reference, picks, labels)
    counter = OpenCounter(monkeypatch)
    got = list(DataLoader(subset, batch_size=2))
    assert sorted(counter.paths) == sorted(str(root / reference.item_id(int(i))) for i in picks)
    assert counter.bytes == sum((root / reference.item_id(int(i))).stat().st_size for i in picks)
    assert torch.cat([y for _, y in got]).tolist() == labels.tolist()


def test_tar_subset_reads_only_the_selected_members(tar_set, monkeypatch):
    root, written = tar_set
    reference = open_reference(root)
    reference.close()  # count the shard opens too
    picks = np.array([2, 90, 91, 200])  # shards 0, 1, 1, 2 (80 items each)
    member_bytes = 0
    for i in picks:
        with tarfile.open(root / written[i][0]) as tar:
            member_bytes += tar.getmember(written[i][2]).size
    subset = LabelledSubset(reference, picks, np.zeros(len(picks)))
    counter = OpenCounter(monkeypatch)
    for j in range(len(subset)):
        x, _ = subset[j]
        assert np.array_equal(((x[0].numpy() + 1) * 127.5).round().astype(np.uint8), written[picks[j]][3])
    assert counter.paths == [str(root / f"shard-{s:03d}.tar") for s in range(3)]  # each touched shard once
    assert counter.bytes == member_bytes  # the selected image members and nothing else


def test_subset_rejects_indices_outside_the_reference(tar_set):
    reference = open_reference(tar_set[0])
    with pytest.raises(DataError, match="outside the reference"):
        LabelledSubset(reference, [0, N_IMAGES], [1, 1])
