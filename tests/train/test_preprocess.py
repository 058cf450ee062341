"""Tests plada_train.preprocess: SmallCNN numerics, timm's transform, metadata round trip, resize."""

import json

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from plada_train.data import open_reference  # noqa: E402
from plada_train.preprocess import Preprocess, preprocess_for  # noqa: E402


def test_smallcnn_numerics_by_hand():
    image = np.array([[[0, 51, 255]]], np.uint8)
    x = preprocess_for(None, "smallcnn", 1).transform()(image)
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, torch.tensor([[[-1.0, -0.6, 1.0]]]), rtol=0, atol=1e-7)
    # the same float32 ops as the engine's batch conversion, bit for bit
    assert torch.equal(x, torch.from_numpy(image).float().mul_(2.0 / 255.0).sub_(1.0))


def test_timm_preprocess_follows_resolve_data_config(pixels):
    from plada_train._compat import import_timm

    timm = import_timm()
    from timm.data import create_transform, resolve_data_config

    model = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=3)
    config = resolve_data_config({}, model=model)
    p = preprocess_for(model, "mobilenetv3_small_050", 3)
    assert (3, *p.input_size) == tuple(config["input_size"])
    assert (p.mean, p.std, p.interpolation, p.crop_pct) == (
        tuple(config["mean"]), tuple(config["std"]), config["interpolation"], config["crop_pct"])
    image = Image.fromarray(np.kron(pixels[0], np.ones((20, 30), np.uint8))).convert("RGB")  # 160x240
    expected = create_transform(**config)(image)
    assert expected.shape == (3, 224, 224)
    assert torch.equal(p.transform()(image), expected)
    small = preprocess_for(model, "mobilenetv3_small_050", 1, image_size=32)
    assert small.input_size == (32, 32) and small.mean == (pytest.approx(np.mean(config["mean"])),)
    assert small.transform()(image).shape == (1, 32, 32)
    assert small.transform(train=True)(image).shape == (1, 32, 32)


def test_preprocess_metadata_roundtrip():
    for p in (preprocess_for(None, "smallcnn", 1), preprocess_for(None, "smallcnn", 3, image_size=32),
              Preprocess("timm", "resnet18", 3, (64, 64), True, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), "bicubic",
                         0.95, "center")):
        meta = json.loads(json.dumps(p.to_metadata()))
        assert Preprocess.from_metadata(meta) == p
    other = preprocess_for(None, "smallcnn", 1, image_size=32)
    assert preprocess_for(None, "smallcnn", 1).differences(other) == [
        "input_size: None vs [32, 32]", "resize: False vs True"]
    with pytest.raises(ValueError, match="malformed"):
        Preprocess.from_metadata({"kind": "smallcnn"})


def test_smallcnn_resize_matches_the_in_memory_loader(image_folder):
    from plada_train.data import load_folder

    root, _ = image_folder
    legacy = load_folder(root, size=5, grayscale=True)  # PIL's default resize filter
    reference = open_reference(root).set_preprocess(preprocess_for(None, "smallcnn", 1, image_size=5))
    for i in (0, 100):
        expected = torch.from_numpy(legacy.images[i]).float().mul_(2.0 / 255.0).sub_(1.0)
        assert torch.equal(reference[i][0], expected)
