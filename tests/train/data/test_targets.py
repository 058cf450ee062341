"""Tests plada_train.data.targets: .npz targets and ImageFolder-style folder targets."""

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from plada_train.data import DataError, open_reference, open_target  # noqa: E402
from plada_train.preprocess import preprocess_for  # noqa: E402
from tests.train.data.images import SIDE, _one_line, _png  # noqa: E402


def test_npz_targets_and_missing_test_split(tmp_path):
    np.savez(tmp_path / "no_test.npz", x_train=np.zeros((5, 6, 6), np.uint8), y_train=np.arange(5) % 3)
    target = open_target(tmp_path / "no_test.npz")
    assert target.test is None and target.n_classes == 3 and target.channels == 1
    with pytest.raises(DataError, match="no test split.*x_test/y_test") as exc:
        target.require_test()
    _one_line(exc)
    np.savez(tmp_path / "bad.npz", x=np.zeros((5, 6, 6), np.uint8))
    with pytest.raises(DataError, match="no 'x_train' array \\(found: x\\)"):
        open_target(tmp_path / "bad.npz")
    np.savez(tmp_path / "half.npz", x_train=np.zeros((5, 6, 6), np.uint8), y_train=np.arange(5),
             x_test=np.zeros((2, 6, 6), np.uint8))
    with pytest.raises(DataError, match="x_test without its partner"):
        open_target(tmp_path / "half.npz")
    (tmp_path / "junk.npz").write_bytes(b"nope")
    with pytest.raises(DataError, match="not a .npz file"):
        open_reference(tmp_path / "junk.npz")


def test_image_folder_target(tmp_path, pixels):
    for split, count in (("train", 4), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(pixels[i]).convert("RGB").save(tmp_path / split / cls / f"{i}.png")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("ignored by ImageFolder")
    target = open_target(tmp_path)
    assert target.class_names == ["cat", "dog"] and target.n_classes == 2
    assert len(target.train) == 8 and len(target.test) == 4
    assert target.train.labels.tolist() == [0] * 4 + [1] * 4
    x, y = target.set_preprocess(preprocess_for(None, "smallcnn", 1)).test[3]
    assert y == 1 and x.shape == (1, SIDE, SIDE)


def test_class_folder_target_without_classes(tmp_path, pixels):
    (tmp_path / "loose.png").write_bytes(_png(pixels[0]))
    with pytest.raises(DataError, match="no class folders.*CLASS_NAME") as exc:
        open_target(tmp_path)
    _one_line(exc)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="at least one image"):
        open_target(tmp_path)
