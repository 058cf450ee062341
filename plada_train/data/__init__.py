"""The data layer: reference and target data as torch Datasets read lazily.

One file per concern, one registry of reference kinds (:mod:`.registry`):

- :mod:`.builtin` — the offline built-in sources (MNIST, Fashion-MNIST,
  Animal-MNIST, the miniature of the paper's setting) as in-memory arrays;
- :mod:`.reference` — the base class; item i -> (input tensor, i), in the
  order the reference fingerprint is computed over;
- one file per reference kind: :mod:`.reference_array` (``builtin:pool``,
  ``builtin:pool-far``, an ``.npz`` with an ``x`` array, memory-mapped when
  uncompressed), :mod:`.reference_folder` (every visible regular file below a
  folder, each an image: a stray file is an error because it would shift every
  index after it), :mod:`.reference_tar` (WebDataset-style shards read by
  member offset) and :mod:`.reference_catalog` (a local copy of any layout,
  parquet included, resolved against a catalog: positions are catalog
  positions, missing items are reported);
- :mod:`.targets` — labelled targets: ``builtin:mnist``, an ``.npz``
  (x_train, y_train, optional x_test, y_test) or an ImageFolder-style folder;
- :mod:`.subset` — the client's k selected items with the payload's labels;
- :mod:`.checks` — :class:`DataError` (one line with a fix hint), the
  up-front input checks and :func:`uint8_view` (items as uint8 tensors, normalised
  later per batch on the device).

The layout rules themselves (what a folder, a tar sample or a parquet row is,
the image extensions, item ids) belong to ``plada_codec.kinds``: this package
uses them and never re-derives them. Why not the ``webdataset`` package: its
``WebDataset`` streams whole shards (no item i, no read of k chosen items); the
member offsets the codec computes for the fingerprint make an exact indexed
reader of a few lines over plain file reads. Per-item storage is compact (ids
in one bytes blob + offsets, numbers in numpy arrays), so memory stays flat as
N grows and forked DataLoader workers share it.
"""

from __future__ import annotations

from .builtin import (
    FASHION_DIR,
    ImageSet,
    Miniature,
    load_animal_mnist,
    load_fashion_mnist,
    load_folder,
    load_miniature,
    load_mnist,
    load_npz,
)
from .checks import IMAGE_EXTENSIONS, DataError, check_inputs, default_preprocess, uint8_view
from .reference import ReferenceImages
from .reference_array import ArrayImages
from .reference_catalog import CatalogImages
from .reference_folder import FolderImages
from .reference_tar import TarImages
from .registry import REFERENCE_KINDS, open_reference
from .subset import LabelledSubset
from .targets import ArrayLabelled, FolderLabelled, LabelledImages, TargetData, open_target

__all__ = [
    "DataError", "IMAGE_EXTENSIONS", "ReferenceImages", "ArrayImages", "FolderImages", "TarImages", "CatalogImages",
    "LabelledImages", "ArrayLabelled", "FolderLabelled", "TargetData", "LabelledSubset", "open_reference",
    "open_target", "check_inputs", "default_preprocess", "uint8_view", "REFERENCE_KINDS",
    "ImageSet", "Miniature", "FASHION_DIR", "load_miniature", "load_mnist", "load_fashion_mnist",
    "load_animal_mnist", "load_npz", "load_folder",
]
