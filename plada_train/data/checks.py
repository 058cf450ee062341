"""What every data set shares: the one-line :class:`DataError`, image
decoding, the first-item probe and the up-front input checks."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import torch
from torch.utils.data import Dataset, Subset

from plada_codec.kinds import IMAGE_EXTENSIONS

from ..errors import DataError
from ..preprocess import ImageSizeError, ImageTransform, Preprocess

__all__ = ["DataError", "IMAGE_EXTENSIONS", "check_inputs", "default_preprocess", "uint8_view"]


def _decode(data: bytes, where: str):
    """Bytes of an image file -> a loaded PIL image, or DataError naming *where*."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError:  # PIL's text names the BytesIO object, not the file
        raise DataError(f"{where}: not a readable image (no image format recognised); remove the file or "
                        f"replace it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: not a readable image ({exc}); remove the file or replace it") from None
    return image

def _channels_and_size(image) -> tuple[int, tuple[int, int]]:
    """(channels, (height, width)) of a PIL image or a (C, H, W) array."""
    if hasattr(image, "mode"):
        return (1 if image.mode in ("1", "L", "I", "F", "I;16") else 3), (image.height, image.width)
    return int(image.shape[0]), (int(image.shape[1]), int(image.shape[2]))


def _first_info(data) -> tuple[int, tuple[int, int], bool]:
    """(channels, (height, width), is a file image) of a data set's first item, read once."""
    info = getattr(data, "_first", None)
    if info is None:
        image = data.raw(0)
        info = (*_channels_and_size(image), hasattr(image, "mode"))
        data._first = info
    return info


def default_preprocess(data) -> Preprocess:
    """The SmallCNN's recipe at the data's own channels (RGB for any other count)."""
    channels = _first_info(data)[0]
    channels = channels if channels in (1, 3) else 3
    return Preprocess("smallcnn", "smallcnn", channels, mean=(0.5,) * channels, std=(0.5,) * channels)

def _name_of(data) -> str:
    return getattr(data, "source", None) or getattr(data, "name", None) or type(data).__name__


def _item_name(data, index: int) -> str:
    item_id = getattr(data, "item_id", None)
    if item_id is not None:
        return f"{_name_of(data)}: {item_id(index)}"
    paths = getattr(data, "_paths", None)
    return paths[index] if paths is not None else f"{_name_of(data)}: item {index}"


def _apply(transform, image, data, index: int) -> torch.Tensor:
    try:
        return transform(image)
    except ImageSizeError as exc:
        raise DataError(f"{_item_name(data, index)}: {exc}; pass --image-size to resize every image") from None


def uint8_view(data: Dataset) -> tuple[Dataset, Callable[[torch.Tensor], torch.Tensor] | None]:
    """*data* as uint8 items, and the function that makes a batch of them model inputs.

    For a plada data set (or a ``torch.utils.data.Subset`` of one) whose transform
    is a :class:`Preprocess`'s: a shallow copy whose items carry uint8 tensors
    (C, H, W), decoded, resized and cropped but not normalised, and
    ``Preprocess.normalize``, which converts a batch on whatever device it is
    on (the same numbers as the float items). DataLoader workers then ship a
    quarter of the bytes and do no per-image float work. Any other data set
    comes back as it is, with None. *data* itself is not changed."""
    if isinstance(data, Subset):
        inner, normalise = uint8_view(data.dataset)
        return (Subset(inner, data.indices), normalise) if normalise is not None else (data, None)
    if not hasattr(data, "_transform") or not hasattr(data, "set_preprocess"):
        return data, None
    if data._transform is None and len(data):
        data.set_preprocess(default_preprocess(data))  # what __getitem__ would do on the first item
    transform = data._transform
    if not isinstance(transform, ImageTransform):
        return data, None
    view = copy.copy(data)  # through __getstate__: a tar set's view opens its own file handles
    view._transform = transform if transform.uint8 else transform.as_uint8()
    return view, transform.preprocess.normalize


def _checked_transform(preprocess: Preprocess, train: bool, data):
    check_inputs(preprocess, data)
    return preprocess.transform(train, expect_size=_first_info(data)[1])


def check_inputs(preprocess: Preprocess, *datasets) -> None:
    """Cheap up-front checks of *datasets* against *preprocess* (decodes one item
    of each): channel counts convertible, and the same image size everywhere when
    the recipe does not resize. A later item of another size fails when read."""
    sizes = {}
    for data in datasets:
        name = _name_of(data)
        channels, size, is_file = _first_info(data)
        if not is_file and channels != preprocess.channels and channels not in (1, 3):
            raise DataError(f"{name}: images have {channels} channels, the model takes {preprocess.channels}; "
                            f"use grayscale (1) or RGB (3) images")
        sizes[name] = size
    if not preprocess.resize:
        wanted = preprocess.input_size
        distinct = set(sizes.values()) | ({tuple(wanted)} if wanted else set())
        if len(distinct) > 1:
            listing = ", ".join([f"{n}: {h}x{w}" for n, (h, w) in sizes.items()] +
                                ([f"the model's input: {wanted[0]}x{wanted[1]}"] if wanted else []))
            raise DataError(f"image sizes differ ({listing}) and {preprocess.model} does not resize; "
                            f"pass --image-size to resize every image to one size")
