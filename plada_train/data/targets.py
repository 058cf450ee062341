"""Target sets, item -> (input tensor, label): ``builtin:mnist``, an ``.npz``
(x_train, y_train, optional x_test, y_test) or an ImageFolder-style folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from plada_codec import PackedStrings

from ..preprocess import Preprocess
from .checks import DataError, _apply, _checked_transform, _decode, _first_info, default_preprocess
from .npz import _npz_array

__all__ = ["LabelledImages", "ArrayLabelled", "FolderLabelled", "TargetData", "open_target"]

_SPLIT_NAMES = ("test", "val")


class LabelledImages(Dataset):
    """A labelled split; item -> (input tensor, label)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._transform = None

    def raw(self, index: int):
        raise NotImplementedError

    def label(self, index: int) -> int:
        raise NotImplementedError

    @property
    def labels(self) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:
            self.set_preprocess(default_preprocess(self))
        return _apply(self._transform, self.raw(index), self, index), self.label(index)

    def content_digest(self, progress: bool = False) -> str:
        """SHA-256 over the labels and every image's bytes, in order: identifies
        what a saved teacher was trained on (a path names a file, not its content).
        *progress*: a bar in images on standard error (a terminal only)."""
        h = hashlib.sha256(b"plada-labelled-v1\0")
        h.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        self._hash_images(h, progress)
        return h.hexdigest()

    def _hash_images(self, h, progress: bool = False) -> None:
        raise NotImplementedError

    def set_preprocess(self, preprocess: Preprocess, train: bool = False) -> LabelledImages:
        self._transform = _checked_transform(preprocess, train, self)
        return self


class ArrayLabelled(LabelledImages):
    def __init__(self, images: np.ndarray, labels: np.ndarray, name: str) -> None:
        super().__init__(name)
        if images.ndim == 3:
            images = images[:, None]
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise DataError(f"{name}: {len(labels)} labels for {len(images)} images; give one label per image")
        if len(images) == 0:
            raise DataError(f"{name}: no images")
        if labels.dtype.kind not in "iu" or labels.min() < 0:
            raise DataError(f"{name}: labels must be integers >= 0 (class indices), got {labels.dtype}")
        self.images, self._labels = images, labels.astype(np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def raw(self, index: int) -> np.ndarray:
        return np.asarray(self.images[index])

    def label(self, index: int) -> int:
        return int(self._labels[index])

    def _hash_images(self, h, progress: bool = False) -> None:  # an array: a fraction of a second
        h.update(f"{self.images.dtype.str}{tuple(self.images.shape)}".encode())
        step = max(1, (64 << 20) // max(1, self.images[:1].nbytes))  # ~64 MiB at a time (memory-mapped .npz)
        for start in range(0, len(self.images), step):
            h.update(np.ascontiguousarray(self.images[start:start + step]).tobytes())

    @property
    def labels(self) -> np.ndarray:
        return self._labels


class FolderLabelled(LabelledImages):
    """torchvision's ImageFolder (PIL loader, class sub-folders); classes fixed by the training split."""

    def __init__(self, root: Path, classes: list[str] | None = None) -> None:
        super().__init__(str(root))
        from .._compat import import_timm

        import_timm()  # makes torchvision importable on a CPU-only torch
        from torchvision.datasets import ImageFolder

        class _Folder(ImageFolder):
            def find_classes(self, directory):
                if classes is not None:
                    return classes, {c: i for i, c in enumerate(classes)}
                names = sorted(e.name for e in os.scandir(directory) if e.is_dir() and e.name not in
                               (*_SPLIT_NAMES, "train") and not e.name.startswith("."))
                if not names:
                    raise DataError(f"{directory}: no class folders; put each class's images in "
                                    f"{directory}/CLASS_NAME/")
                return names, {c: i for i, c in enumerate(names)}

        try:
            folder = _Folder(str(root), loader=_load_image, allow_empty=classes is not None)
        except FileNotFoundError as exc:
            raise DataError(f"{root}: {exc}; every class folder needs at least one image") from None
        self.classes = folder.classes
        self.loader = folder.loader
        self._paths = PackedStrings.pack(p for p, _ in folder.samples)
        self._labels = np.fromiter((c for _, c in folder.samples), np.int64, len(folder.samples))
        if not len(self._labels):
            raise DataError(f"{root}: no images in the class folders")

    def __len__(self) -> int:
        return len(self._labels)

    def raw(self, index: int):
        return self.loader(self._paths[index])

    def _hash_images(self, h, progress: bool = False) -> None:
        from tqdm.auto import tqdm

        for path in tqdm(self._paths, total=len(self._paths), desc=f"hashing {self.name}", unit=" images",
                         disable=None if progress else True, leave=False):
            relative = os.path.relpath(path, self.name).encode("utf-8", "surrogateescape")
            with open(path, "rb") as fh:
                data = fh.read()
            h.update(len(relative).to_bytes(4, "little") + relative + len(data).to_bytes(8, "little"))
            h.update(data)

    def label(self, index: int) -> int:
        return int(self._labels[index])

    @property
    def labels(self) -> np.ndarray:
        return self._labels


def _load_image(path: str):
    """ImageFolder's loader: a loaded PIL image in its own mode (channels are the Preprocess's job)."""
    with open(path, "rb") as fh:
        return _decode(fh.read(), path)


class TargetData:
    """A labelled target task: ``train`` and ``test`` (or None) splits."""

    def __init__(self, train: LabelledImages, test: LabelledImages | None, n_classes: int,
                 class_names: list[str] | None, source: str) -> None:
        self.train, self.test, self.source = train, test, source
        self.n_classes, self.class_names = n_classes, class_names
        self.channels, self.image_size, _ = _first_info(train)

    def set_preprocess(self, preprocess: Preprocess, augment: bool = False) -> TargetData:
        """*preprocess* for both splits; *augment* adds training augmentation to ``train``."""
        self.train.set_preprocess(preprocess, train=augment)
        if self.test is not None:
            self.test.set_preprocess(preprocess)
        return self

    def require_test(self) -> LabelledImages:
        if self.test is None:
            raise DataError(f"{self.source}: no test split; add x_test/y_test to the .npz or a test/ "
                            f"(or val/) folder of class folders")
        return self.test


def open_target(spec: str | os.PathLike, *, preprocess: Preprocess | None = None,
                augment: bool = False) -> TargetData:
    """A labelled target by spec: builtin:mnist, a .npz, or an ImageFolder-style folder;
    with *preprocess*, both splits use it (``TargetData.set_preprocess``)."""
    target = _open_target(spec)
    return target.set_preprocess(preprocess, augment) if preprocess is not None else target


def _open_target(spec: str | os.PathLike) -> TargetData:
    spec_s = str(spec)
    if spec_s == "builtin:mnist":
        from .builtin import load_miniature

        mini = load_miniature()
        train = ArrayLabelled(mini.target_train.images, mini.target_train.labels, "mnist-train")
        test = ArrayLabelled(mini.target_test.images, mini.target_test.labels, "mnist-test")
        return TargetData(train, test, 10, list(mini.class_names), spec_s)
    if spec_s.startswith("builtin:"):
        raise DataError(f"unknown built-in target {spec_s!r}; use builtin:mnist")
    path = Path(spec)
    if not path.exists():
        raise DataError(f"target {spec_s!r} not found: give builtin:mnist, a .npz file (x_train, y_train, "
                        f"x_test, y_test) or a folder of class folders")
    if path.is_dir():
        train_root = path / "train" if (path / "train").is_dir() else path
        train = FolderLabelled(train_root)
        test = None
        for name in _SPLIT_NAMES:
            if (path / name).is_dir():
                test = FolderLabelled(path / name, train.classes)
                break
        return TargetData(train, test, len(train.classes), list(train.classes), str(path))
    if path.suffix != ".npz":
        raise DataError(f"{path}: not a target; use a .npz (x_train, y_train, x_test, y_test), "
                        f"a folder of class folders, or builtin:mnist")
    x_train, y_train = _npz_array(path, "x_train", "target"), _npz_array(path, "y_train", "target")
    x_test, y_test = _npz_array(path, "x_test", "target", False), _npz_array(path, "y_test", "target", False)
    if (x_test is None) != (y_test is None):
        raise DataError(f"{path}: has {'x_test' if y_test is None else 'y_test'} without its partner; "
                        f"save both x_test and y_test")
    train = ArrayLabelled(x_train, y_train, f"{path}:train")
    test = ArrayLabelled(x_test, y_test, f"{path}:test") if x_test is not None else None
    n_classes = int(max(train.labels.max(), test.labels.max() if test is not None else 0)) + 1
    return TargetData(train, test, n_classes, None, str(path))
