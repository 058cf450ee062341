"""A payload's virtual dataset as a torch ``Dataset``: the selected items of
the client's own copy, each with its pseudo-label, for the client's own
training code.

>>> ds = virtual_dataset("payload.plada", "imagenet/", catalog="imagenet.plcat")  # doctest: +SKIP
>>> image, label = ds[0]                       # a PIL image (RGB, as ImageFolder) and an int  # doctest: +SKIP

It has what torchvision's ``ImageFolder`` has (``classes``, ``class_to_idx``,
``targets``, ``samples``, ``transform``, ``target_transform``, ``loader``),
plus ``ids``, ``missing`` and the payload's ``metadata``. ``preprocess`` is
the teacher's input recipe from the payload (None if it recorded none):
available, not imposed; ``transform="payload"`` applies it. The selection
itself (positions, missing items, class names) is ``plada_codec.export``'s,
the one the ``plada export`` formats are written from.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from torch.utils.data import Dataset

from plada_codec import export

from .errors import DataError

__all__ = ["virtual_dataset", "VirtualDataset", "Missing", "pil_loader"]


class Missing(NamedTuple):
    """Selected items the local copy lacks (left out, within ``max_missing``)."""

    count: int
    ids: list[str]


def pil_loader(data: bytes, where: str = "image"):
    """Image bytes -> an RGB PIL image (torchvision's ``ImageFolder`` default)."""
    return _decode(data, where).convert("RGB")


def _decode(data: bytes, where: str):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: not a readable image ({exc}); replace the item in the local copy") from None
    return image


class VirtualDataset(Dataset):
    """Item j -> ``(transform(loader(bytes of item j)), target_transform(label j))``.

    ``targets[j]`` is item j's label, ``samples[j]`` ``(where it is held, label)``
    (a file path, ``shard:key`` or ``file row N``), ``ids[j]`` its reference id;
    ``classes`` the payload's class names in label order, made unique
    (``class_to_idx`` maps them back); ``selection`` the
    :class:`plada_codec.export.VirtualSet` it reads from. :meth:`read` gives an
    item's bytes, :meth:`raw` its image as stored (no conversion)."""

    def __init__(self, selection: export.VirtualSet, transform: Callable | str | None = None,
                 target_transform: Callable | None = None, loader: Callable | None = None) -> None:
        self.selection = selection
        self.classes: list[str] = list(selection.classes)
        self.class_to_idx = {name: label for label, name in enumerate(self.classes)}
        self.targets: list[int] = selection.labels.tolist()
        self.ids = selection.ids
        self.missing = Missing(len(selection.missing_positions), selection.missing_ids)
        self.metadata: dict[str, Any] = selection.metadata
        self.preprocess = _payload_preprocess(self.metadata)
        # The payload's recipe converts channels itself, as the teacher saw them: it gets images as stored.
        self._as_stored = transform == "payload"
        if isinstance(transform, str):
            if transform != "payload":
                raise DataError(f"transform must be a callable, None or 'payload', got {transform!r}")
            if self.preprocess is None:
                raise DataError("transform='payload': the payload records no preprocess; pass a transform")
            transform = self.preprocess.transform()
        self.transform = transform
        self.target_transform = target_transform
        self.loader = loader
        self._samples: list[tuple[str, int]] | None = None

    def __len__(self) -> int:
        return len(self.selection)

    def __repr__(self) -> str:
        return (f"VirtualDataset({len(self)} items, {len(self.classes)} classes, from {self.selection.kind} "
                f"{self.selection.listing.root!r}, missing={self.missing.count})")

    @property
    def samples(self) -> list[tuple[str, int]]:
        if self._samples is None:
            self._samples = [(self.selection.where(j), label) for j, label in enumerate(self.targets)]
        return self._samples

    imgs = samples  # ImageFolder's older name

    @property
    def positions(self) -> np.ndarray:
        """The payload index of each item (a catalog position with a catalog)."""
        return self.selection.positions

    def read(self, j: int) -> bytes:
        return self.selection.read(j)

    def raw(self, j: int):
        """Item *j*'s image as stored (PIL, its own mode)."""
        return _decode(self.read(j), self.selection.where(j))

    def __getitem__(self, j: int):
        if not -len(self) <= j < len(self):
            raise IndexError(f"item {j} of {len(self)}")
        j = j % len(self)
        data = self.read(j)
        if self._as_stored:
            image = _decode(data, self.selection.where(j))
        elif self.loader is not None:
            image = self.loader(data)
        else:
            image = pil_loader(data, self.selection.where(j))
        if self.transform is not None:
            image = self.transform(image)
        label = self.targets[j]
        return image, (self.target_transform(label) if self.target_transform is not None else label)


def _payload_preprocess(metadata: dict):
    from .preprocess import Preprocess

    record = metadata.get("preprocess")
    if not isinstance(record, dict):
        return None
    try:
        return Preprocess.from_metadata(record)
    except ValueError:
        return None  # unreadable: the recipe is available only when it can be rebuilt


def virtual_dataset(payload, reference: str | os.PathLike, catalog=None, transform: Callable | str | None = None,
                    *, target_transform: Callable | None = None, loader: Callable | None = None,
                    max_missing: float = export.DEFAULT_MAX_MISSING, manifest=None, id_rule: str = "stem",
                    kind: str = "auto") -> VirtualDataset:
    """The virtual dataset of *payload* (a path, bytes or a decoded payload) over the
    local copy *reference*, as a ``torch.utils.data.Dataset`` of (image, label).

    With *catalog* (a file or a :class:`plada_codec.Catalog`) the copy may be of any
    layout and payload indices are catalog positions; selected items the copy lacks
    are left out up to *max_missing* (a fraction of the selection, as ``plada-train
    consume --max-missing``) and listed in ``missing``. Without one, the copy is the
    reference set itself (a folder of images or tar shards), checked against the
    payload's fingerprint first (*manifest* spares the hashing). Images are loaded
    as torchvision's ``ImageFolder`` loads them (RGB PIL images; *loader* takes the
    bytes instead); *transform* is applied to each, ``"payload"`` meaning the
    teacher's recipe recorded in the payload (``ds.preprocess``)."""
    try:
        selection = export.virtual_set(payload, reference, catalog, max_missing=max_missing, manifest=manifest,
                                       id_rule=id_rule, kind=kind)
    except export.ExportError as exc:
        raise DataError(str(exc)) from None
    return VirtualDataset(selection, transform, target_transform, loader)
