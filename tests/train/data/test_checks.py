"""Tests plada_train.data.checks: everyday input mistakes, each a one-line DataError with its fix."""

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from torch.utils.data import DataLoader  # noqa: E402

from plada_train.data import ArrayImages, DataError, check_inputs, open_reference, open_target  # noqa: E402
from plada_train.preprocess import preprocess_for  # noqa: E402
from tests.train.data.images import SIDE, _one_line, _png  # noqa: E402


def test_missing_paths(tmp_path):
    with pytest.raises(DataError, match="reference '.*nope' not found: give builtin:pool") as exc:
        open_reference(tmp_path / "nope")
    _one_line(exc)
    with pytest.raises(DataError, match="target '.*nope.npz' not found: give builtin:mnist"):
        open_target(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="builtin:pool"):
        open_reference("builtin:imagenet")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="holds no files") as exc:
        open_reference(tmp_path)
    _one_line(exc)


def test_non_image_entry_is_refused_up_front(tmp_path, pixels):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(pixels[i]))
    (tmp_path / "README.txt").write_text("not an image")
    with pytest.raises(DataError, match="README.txt.*not an image file.*move that file out") as exc:
        open_reference(tmp_path)
    _one_line(exc)


def test_a_later_broken_image_names_itself(tmp_path, pixels):
    for i in range(4):
        (tmp_path / f"{i}.png").write_bytes(_png(pixels[i]))
    (tmp_path / "2.png").write_bytes(b"\x89PNG but not really")
    reference = open_reference(tmp_path)  # the first image decodes: accepted up front
    for workers in (0, 1):  # from a worker too, still one line
        with pytest.raises(DataError, match=r"2\.png: not a readable image") as exc:
            list(DataLoader(reference, batch_size=4, num_workers=workers))
        _one_line(exc)
        assert "BytesIO" not in str(exc.value)  # PIL's message names its buffer object, not the file


def test_mixed_sizes_without_resize(tmp_path, pixels):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(pixels[i]))
    (tmp_path / "1.png").write_bytes(_png(np.zeros((SIDE + 2, SIDE), np.uint8)))
    reference = open_reference(tmp_path)
    with pytest.raises(DataError, match=r"1\.png: image is 10x8, the model's input is 8x8.*--image-size"):
        [reference[i] for i in range(3)]
    resized = open_reference(tmp_path).set_preprocess(preprocess_for(None, "smallcnn", 1, image_size=SIDE))
    assert all(resized[i][0].shape == (1, SIDE, SIDE) for i in range(3))


def test_target_and_reference_sizes_must_agree(tmp_path, pixels):
    np.savez(tmp_path / "t.npz", x_train=np.zeros((4, 12, 12), np.uint8), y_train=np.arange(4))
    np.savez(tmp_path / "r.npz", x=pixels[:4])
    target, reference = open_target(tmp_path / "t.npz"), open_reference(tmp_path / "r.npz")
    with pytest.raises(DataError, match="image sizes differ.*12x12.*8x8.*--image-size"):
        check_inputs(preprocess_for(None, "smallcnn", 1), target.train, reference)
    check_inputs(preprocess_for(None, "smallcnn", 1, image_size=10), target.train, reference)
    pinned = preprocess_for(None, "smallcnn", 1, native_size=target.image_size)
    assert pinned.to_metadata()["input_size"] == [12, 12]
    target.set_preprocess(pinned)
    with pytest.raises(DataError, match="8x8.*12x12|12x12.*8x8"):
        reference.set_preprocess(pinned)


def test_grayscale_and_rgb(tmp_path, pixels):
    rgb = np.random.default_rng(1).integers(0, 256, (3, SIDE, SIDE, 3), dtype=np.uint8)
    for i in range(3):
        Image.fromarray(rgb[i]).save(tmp_path / f"{i}.png")
    reference = open_reference(tmp_path)
    assert reference.describe()["channels"] == 3
    x, _ = reference.set_preprocess(preprocess_for(None, "smallcnn", 1))[0]
    # ITU-R 601-2 luma, computed here: L = (299 R + 587 G + 114 B) / 1000, rounded by PIL's fixed point
    luma = (rgb[0] @ np.array([299, 587, 114])) / 1000
    assert np.abs((x[0].numpy() + 1) * 127.5 - luma).max() <= 1.0
    gray = ArrayImages(pixels[:2, None])
    x3, _ = gray.set_preprocess(preprocess_for(None, "smallcnn", 3))[1]
    assert x3.shape == (3, SIDE, SIDE) and torch.equal(x3[0], x3[2])
    with pytest.raises(DataError, match="4 channels.*grayscale \\(1\\) or RGB \\(3\\)"):
        ArrayImages(np.zeros((2, 4, SIDE, SIDE), np.uint8)).set_preprocess(preprocess_for(None, "smallcnn", 3))
