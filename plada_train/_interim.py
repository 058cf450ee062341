"""Array-backed stand-ins for t1-data's lazy Datasets and timm preprocessing.

Same interface as plada_train.datasets / plada_train.preprocess (see
plada_train/sources.py, which prefers those); removed once they land.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .data import ImageSet, load_folder, load_miniature, load_npz
from .errors import DataError


@dataclass(frozen=True)
class Preprocess:
    channels: int = 1
    input_size: int = 28
    mean: tuple = (0.5,)
    std: tuple = (0.5,)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    def to_metadata(self) -> dict:
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_metadata(cls, meta: dict) -> Preprocess:
        return cls(int(meta["channels"]), int(meta["input_size"]), tuple(meta["mean"]), tuple(meta["std"]),
                   str(meta.get("interpolation", "bilinear")), float(meta.get("crop_pct", 1.0)))

    def transform(self, train: bool = False):
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)

        def apply(image: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(image)).float().div_(255.0)
            if x.shape[0] != self.channels:
                x = x.mean(0, keepdim=True) if self.channels == 1 else x.expand(self.channels, -1, -1)
            if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
                x = F.interpolate(x[None], size=(self.input_size, self.input_size), mode="bilinear",
                                  align_corners=False)[0]
            return (x - mean) / std

        return apply


def preprocess_for(model, model_name: str, in_chans: int, image_size: int | None = None) -> Preprocess:
    size = image_size or 28
    return Preprocess(in_chans, size, (0.5,) * in_chans, (0.5,) * in_chans)


class _ArrayImages(Dataset):
    def __init__(self, images: ImageSet, labels=None) -> None:
        self.set = images
        self.labels = labels
        self._transform = Preprocess(images.images.shape[1], images.images.shape[2]).transform()

    def __len__(self) -> int:
        return len(self.set)

    def set_preprocess(self, preprocess: Preprocess) -> None:
        self._transform = preprocess.transform(False)

    def __getitem__(self, i: int):
        x = self._transform(self.set.images[i])
        return x, (i if self.labels is None else int(self.labels[i]))


class ReferenceImages(_ArrayImages):
    def reference_set(self):
        return self.set.reference_set()

    def describe(self) -> dict:
        _, c, h, w = self.set.images.shape
        return {"n": len(self.set), "channels": int(c), "image_size": [int(h), int(w)]}


class LabelledSubset(Dataset):
    def __init__(self, reference: ReferenceImages, indices, labels) -> None:
        self.reference = reference
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x, _ = self.reference[int(self.indices[i])]
        return x, int(self.labels[i])


@dataclass
class TargetData:
    train: _ArrayImages
    test: _ArrayImages | None
    n_classes: int
    class_names: list[str] | None
    channels: int

    def set_preprocess(self, preprocess: Preprocess) -> None:
        for part in (self.train, self.test):
            if part is not None:
                part.set_preprocess(preprocess)


def open_reference(spec: str, *, manifest=None, rehash: bool = False) -> ReferenceImages:
    if spec in ("builtin:pool", "builtin:pool-far"):
        return ReferenceImages(load_miniature(include_in_domain=spec == "builtin:pool").pool)
    path = Path(spec)
    if path.is_dir():
        return ReferenceImages(load_folder(path))
    if path.suffix == ".npz" and path.is_file():
        return ReferenceImages(load_npz(path, "x"))
    raise DataError(f"reference {spec!r} not found: give builtin:pool, builtin:pool-far, a folder or an .npz file")


def open_target(spec: str) -> TargetData:
    if spec == "builtin:mnist":
        mini = load_miniature()
        train, test = mini.target_train, mini.target_test
        names = [str(d) for d in range(10)]
    else:
        path = Path(spec)
        if path.suffix != ".npz" or not path.is_file():
            raise DataError(f"target {spec!r} not found: give builtin:mnist or an .npz file (x_train, y_train, ...)")
        train = load_npz(path, "x_train", "y_train")
        if train.labels is None:
            raise DataError(f"{path}: no y_train array: save the training labels as y_train")
        with np.load(path) as data:
            test = ImageSet(data["x_test"], data["y_test"], name=f"{path}:test") if "x_test" in data else None
        names = None
    n_classes = int(train.labels.max()) + 1
    return TargetData(_ArrayImages(train, train.labels), None if test is None else _ArrayImages(test, test.labels),
                      n_classes, names, int(train.images.shape[1]))
