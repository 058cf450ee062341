"""``plada_train.virtual.virtual_dataset``: a payload's selected items of the
local copy as a torch Dataset, compared with the image bytes written into the
fixture copies and the labels encoded into the payload."""

from __future__ import annotations

import collections
import io

import numpy as np
import pytest

import plada_codec
from plada_train.errors import DataError
from plada_train.virtual import VirtualDataset, virtual_dataset
from tests.codec.test_export import CLASS_NAMES, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("virtual"))


def _expected(world, copy: str) -> collections.Counter:
    removed = set(world["stored"].removed) if copy == "partial" else set()
    return collections.Counter((png, label) for item_id, (png, label) in world["expected"].items()
                               if item_id not in removed)


@pytest.mark.parametrize("copy", ["folder", "shards", "parquet", "partial"])
def test_items_are_the_selected_bytes_with_their_labels(world, copy):
    ds = virtual_dataset(world["payload"], getattr(world["stored"], copy), world["catalog"],
                         loader=lambda data: data)
    assert isinstance(ds, VirtualDataset)
    assert collections.Counter(ds[j] for j in range(len(ds))) == _expected(world, copy)
    assert [world["expected"][i][1] for i in ds.ids] == ds.targets
    removed = set(world["stored"].removed) & set(world["expected"]) if copy == "partial" else set()
    assert ds.missing.count == len(removed) and set(ds.missing.ids) == removed
    assert len(ds) == len(world["expected"]) - len(removed)


def test_imagefolder_attributes(world):
    ds = virtual_dataset(world["payload"], world["stored"].folder, world["catalog"])
    assert ds.classes == ["cat", "dog/wolf", "cat~2", "CON", "über fish", "nobody"]
    assert ds.class_to_idx == {name: label for label, name in enumerate(ds.classes)}
    assert [label for _, label in ds.samples] == ds.targets
    for (path, label), item_id in zip(ds.samples, ds.ids):
        with open(path, "rb") as fh:
            assert (fh.read(), label) == world["expected"][item_id]
    assert set(ds.targets) <= set(range(len(CLASS_NAMES)))


def test_images_load_as_imagefolder_loads_them_and_transforms_apply(world):
    from PIL import Image

    ds = virtual_dataset(world["payload"], world["stored"].shards, world["catalog"],
                         transform=lambda image: np.asarray(image), target_transform=lambda label: -label)
    array, target = ds[3]
    png, label = world["expected"][ds.ids[3]]
    assert target == -label
    assert np.array_equal(array, np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))
    assert ds[-1][1] == -world["expected"][ds.ids[len(ds) - 1]][1]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_the_payloads_preprocess_is_available_not_imposed(tmp_path, world):
    from plada_train.preprocess import Preprocess

    recipe = Preprocess("smallcnn", "smallcnn", 1, input_size=(8, 8), resize=True, mean=(0.5,), std=(0.5,))
    catalog = plada_codec.Catalog.open(world["catalog"])
    data = plada_codec.encode(world["positions"], world["labels"], n_classes=len(CLASS_NAMES),
                              reference=catalog.reference, metadata={"preprocess": recipe.to_metadata()})
    ds = virtual_dataset(data, world["stored"].folder, catalog)
    assert ds.preprocess == recipe
    assert ds[0][0].mode == "RGB"  # not imposed: images as ImageFolder gives them
    shaped = virtual_dataset(data, world["stored"].folder, catalog, transform="payload")
    tensor, label = shaped[0]
    assert tuple(tensor.shape) == (1, 8, 8) and label == ds[0][1]


def test_no_preprocess_recorded_means_none_and_payload_transform_is_refused(world):
    catalog = plada_codec.Catalog.open(world["catalog"])
    data = plada_codec.encode([0, 1], [0, 1], n_classes=2, reference=catalog.reference)
    assert virtual_dataset(data, world["stored"].folder, catalog).preprocess is None
    with pytest.raises(DataError, match="records no preprocess"):
        virtual_dataset(data, world["stored"].folder, catalog, transform="payload")


def test_too_many_missing_items_are_refused(world):
    with pytest.raises(plada_codec.ReferenceSetError, match="above max missing"):
        virtual_dataset(world["payload"], world["stored"].partial, world["catalog"], max_missing=0.0)


def _as_bytes(data: bytes) -> bytes:
    return data


def test_forked_workers_read_the_same_items(world):
    from torch.utils.data import DataLoader

    ds = virtual_dataset(world["payload"], world["stored"].shards, world["catalog"], loader=_as_bytes)
    ds[0]  # the parent opens a shard first: each worker must open its own
    loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="fork")
    assert collections.Counter((data, int(label)) for data, label in loader) == _expected(world, "shards")
