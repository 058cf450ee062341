"""How an image becomes a model input, recorded so a client can rebuild it.

Two recipes:

- ``smallcnn``, ``smallcnn_w32`` (the built-in CNNs): no resize unless asked, uint8 -> float by
  ``x * (2/255) - 1`` (the numerics the demo's figures were measured with);
- a timm model: timm's own ``resolve_data_config`` / ``create_transform``, so a
  pretrained checkpoint sees the inputs it was trained on (resize to
  ``input_size / crop_pct``, centre crop, mean/std normalisation).

Every image is first converted to the model's channel count: a file through
PIL's ``convert("L")`` (ITU-R 601-2 luma) or ``convert("RGB")``, an array item
with one channel by repetition to three, with three channels through the same
PIL luma formula. For a timm model with one input channel, mean and std are the
averages of the pretrained three-channel values (timm sums a pretrained first
convolution over RGB for ``in_chans=1``, which expects exactly that).

``Preprocess.to_metadata()`` is what goes into the payload's metadata under
``preprocess``; ``Preprocess.from_metadata`` rebuilds it on the client.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

__all__ = ["Preprocess", "ImageSizeError", "preprocess_for", "to_channels"]


class ImageSizeError(ValueError):
    """An image's size differs from the one a non-resizing recipe expects."""

_KINDS = ("smallcnn", "timm")
# The SmallCNN's normalisation, x / 255 * 2 - 1, written as a mean and std on the [0, 1] scale.
_SMALLCNN_MEAN, _SMALLCNN_STD = 0.5, 0.5


@dataclass(frozen=True)
class Preprocess:
    """A model's input recipe.

    Attributes
    ----------
    kind: ``"smallcnn"`` or ``"timm"``.
    model: the model name it was resolved for (informative).
    channels: input channels; every image is converted to this many.
    input_size: (height, width) the model sees, or None for the images' own size
        (smallcnn without ``image_size``: all images must then share one size).
    resize: whether images are resized (False only for smallcnn at native size).
    mean, std: per-channel normalisation on the [0, 1] scale.
    interpolation: resize filter name (timm's vocabulary: bilinear, bicubic, ...).
    crop_pct, crop_mode: timm's centre-crop recipe (resize to size / crop_pct, crop).
    hflip, train_scale: timm training augmentation (``transform(train=True)`` only).
    """

    kind: str
    model: str
    channels: int
    input_size: tuple[int, int] | None = None
    resize: bool = False
    mean: tuple[float, ...] = (_SMALLCNN_MEAN,)
    std: tuple[float, ...] = (_SMALLCNN_STD,)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    crop_mode: str = "center"
    hflip: float = field(default=0.5, compare=False)
    train_scale: tuple[float, float] = field(default=(0.08, 1.0), compare=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"preprocess kind must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"models take 1 (grayscale) or 3 (RGB) input channels, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std need {self.channels} values, got {self.mean} / {self.std}")
        if self.input_size is None and (self.resize or self.kind == "timm"):
            raise ValueError("a resizing preprocess needs an input_size")

    # -- metadata --------------------------------------------------------------

    def to_metadata(self) -> dict[str, Any]:
        """What a client needs to rebuild the same inputs (JSON-ready; goes into
        the payload's metadata under ``preprocess``)."""
        meta = asdict(self)
        for key in ("hflip", "train_scale"):
            meta.pop(key)
        meta["input_size"] = list(self.input_size) if self.input_size else None
        meta["mean"], meta["std"] = list(self.mean), list(self.std)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Preprocess:
        """Inverse of :meth:`to_metadata`; unknown keys are ignored (newer writers)."""
        try:
            size = meta.get("input_size")
            return cls(kind=str(meta["kind"]), model=str(meta.get("model", "")), channels=int(meta["channels"]),
                       input_size=tuple(int(v) for v in size) if size else None,
                       resize=bool(meta.get("resize", False)),
                       mean=tuple(float(v) for v in meta["mean"]), std=tuple(float(v) for v in meta["std"]),
                       interpolation=str(meta.get("interpolation", "bilinear")),
                       crop_pct=float(meta.get("crop_pct", 1.0)), crop_mode=str(meta.get("crop_mode", "center")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"preprocess metadata is incomplete or malformed: {exc}") from exc

    def differences(self, other: Preprocess) -> list[str]:
        """Human-readable differences in what the model sees (for the client's check)."""
        mine, theirs = self.to_metadata(), other.to_metadata()
        return [f"{key}: {mine[key]!r} vs {theirs[key]!r}" for key in mine
                if key != "model" and mine[key] != theirs.get(key)]

    def with_channels(self, channels: int) -> Preprocess:
        return replace(self, channels=channels, mean=_fit(self.mean, channels), std=_fit(self.std, channels))

    # -- transforms ------------------------------------------------------------

    def transform(self, train: bool = False, expect_size: tuple[int, int] | None = None,
                  uint8: bool = False) -> ImageTransform:
        """A picklable callable: image (PIL image, or uint8 array/tensor (C, H, W))
        -> float tensor (channels, H, W). ``train=True`` adds timm's training
        augmentation for timm models; the smallcnn recipe is the same either way
        (its augmentation, a random shift, is applied per batch by the engine).
        Without resizing, an image whose size is not ``input_size`` (or
        *expect_size* when that is None) raises :class:`ImageSizeError`.

        ``uint8=True``: the same geometry (resize, crop, augmentation) but the
        result stays a uint8 tensor (channels, H, W); :meth:`normalize` of a
        batch of them gives the float inputs, on the batch's device (DataLoader
        workers decode, the GPU converts: FFCV/DALI practice)."""
        return ImageTransform(self, train, expect_size, uint8=uint8)

    def normalize(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 images (..., C, H, W) -> float32 model inputs, on *x*'s device.

        The numbers of :meth:`transform`'s float path, op for op (bit for bit on
        CPU): smallcnn ``x * (2/255) - 1``; timm ``(x / 255 - mean) / std``
        (torchvision's ``ToTensor`` then ``Normalize``). A float tensor is
        returned unchanged (it is already normalised). *out*: a float32 tensor
        of *x*'s shape and device to write into (on CPU a reused buffer spares
        the page faults of a fresh allocation per batch: ~9x faster conversion)."""
        if x.dtype != torch.uint8:
            return x
        x = out.copy_(x) if out is not None else x.to(torch.float32)
        if self.kind == "smallcnn":
            return x.mul_(2.0 / 255.0).sub_(1.0)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(-1, 1, 1)
        return x.div_(255).sub_(mean).div_(std)


def _fit(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    if len(values) == channels:
        return tuple(float(v) for v in values)
    if channels == 1:
        return (float(np.mean(values)),)
    return tuple(float(values[0]) for _ in range(channels))


def to_channels(image, channels: int):
    """Convert one image to *channels*: a PIL image stays PIL, an array (C, H, W) stays an array."""
    from PIL import Image

    if isinstance(image, Image.Image):
        mode = "L" if channels == 1 else "RGB"
        return image if image.mode == mode else image.convert(mode)
    array = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 2:
        array = array[None]
    have = array.shape[0]
    if have == channels:
        return array
    if have == 1 and channels == 3:
        return np.repeat(array, 3, axis=0)
    if have == 3 and channels == 1:
        # the same luma formula as a file's convert("L"), so arrays and files agree
        return np.asarray(Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0))).convert("L"))[None]
    raise ValueError(f"an image with {have} channels cannot be converted to {channels}")


def _to_pil(image, channels: int):
    from PIL import Image

    image = to_channels(image, channels)
    if isinstance(image, Image.Image):
        return image
    return Image.fromarray(image[0] if channels == 1 else np.ascontiguousarray(image.transpose(1, 2, 0)))


class ImageTransform:
    """``Preprocess.transform(train)``: a picklable callable (DataLoader workers)."""

    def __init__(self, preprocess: Preprocess, train: bool, expect_size: tuple[int, int] | None = None,
                 uint8: bool = False) -> None:
        self.preprocess = preprocess
        self.train = train
        self.expect_size = tuple(preprocess.input_size or expect_size or ()) or None
        self.uint8 = uint8
        self._timm = None

    def as_uint8(self) -> ImageTransform:
        """This transform with uint8 output (``Preprocess.transform(uint8=True)``)."""
        return ImageTransform(self.preprocess, self.train, self.expect_size, uint8=True)

    def __getstate__(self):
        return {**self.__dict__, "_timm": None}

    def __call__(self, image) -> torch.Tensor:
        p = self.preprocess
        if p.kind == "smallcnn":
            return self._smallcnn(image)
        if self._timm is None:
            self._timm = _timm_transform(p, self.train, self.uint8)
        return self._timm(_to_pil(image, p.channels))

    def _smallcnn(self, image) -> torch.Tensor:
        from PIL import Image

        p = self.preprocess
        image = to_channels(image, p.channels)
        if p.resize:
            pil = _to_pil(image, p.channels)
            if pil.size != (p.input_size[1], p.input_size[0]):
                pil = pil.resize((p.input_size[1], p.input_size[0]), _pil_filter(p.interpolation))
            image = pil
        if isinstance(image, Image.Image):
            array = np.asarray(image)
            array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        else:
            array = image
        if not p.resize and self.expect_size and array.shape[1:] != self.expect_size:
            h, w = self.expect_size
            raise ImageSizeError(f"image is {array.shape[1]}x{array.shape[2]}, the model's input is {h}x{w}")
        if self.uint8:
            return torch.from_numpy(np.array(array, dtype=np.uint8))  # a copy: file and memmap arrays are read-only
        x = torch.from_numpy(array.astype(np.float32))  # a copy: file and memmap arrays are read-only
        return x.mul_(2.0 / 255.0).sub_(1.0)  # the engine's uint8 -> [-1, 1], op for op


def _pil_filter(name: str):
    from PIL import Image

    filters = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
               "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
               "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}
    if name not in filters:
        raise ValueError(f"interpolation must be one of {', '.join(filters)}, got {name!r}")
    return filters[name]


def _timm_transform(p: Preprocess, train: bool, uint8: bool = False):
    from ._compat import import_timm

    import_timm()
    from timm.data import create_transform

    return create_transform(input_size=(p.channels, *p.input_size), is_training=train,
                            interpolation=p.interpolation, mean=p.mean, std=p.std,
                            crop_pct=p.crop_pct, crop_mode=p.crop_mode,
                            hflip=p.hflip, scale=p.train_scale,
                            use_prefetcher=uint8)  # timm's uint8 output (MaybePILToTensor), no ToTensor/Normalize


def preprocess_for(model: torch.nn.Module | None, model_name: str, in_chans: int,
                   image_size: int | None = None, native_size: tuple[int, int] | None = None) -> Preprocess:
    """The input recipe for *model* (``smallcnn`` or a timm model).

    smallcnn: the images' own size unless *image_size* is given (then resized,
    bicubic: PIL's default, which ``data.load_folder`` has always used). Pass
    the target's size as *native_size* so it is recorded in the metadata and
    every data set given this recipe must have it (``TargetData.image_size``).
    timm: ``timm.data.resolve_data_config`` of the model (its
    pretrained config: size, interpolation, mean/std, crop), with *image_size*
    overriding the input size. *model* may be None for timm (the config is
    then resolved from a fresh model of that name without weights).
    """
    if in_chans not in (1, 3):
        raise ValueError(f"models take 1 (grayscale) or 3 (RGB) input channels, got {in_chans}")
    if image_size is not None and image_size < 1:
        raise ValueError(f"image size must be positive, got {image_size}")
    from .models import BUILTIN

    if model_name in BUILTIN:
        size = (image_size, image_size) if image_size else (tuple(native_size) if native_size else None)
        return Preprocess("smallcnn", model_name, in_chans, size, resize=bool(image_size),
                          mean=(_SMALLCNN_MEAN,) * in_chans, std=(_SMALLCNN_STD,) * in_chans,
                          interpolation="bicubic")
    from ._compat import import_timm

    timm = import_timm()
    from timm.data import resolve_data_config

    if model is None:
        model = timm.create_model(model_name, pretrained=False, in_chans=in_chans)
    args = {"input_size": (in_chans, image_size, image_size)} if image_size else {}
    config = resolve_data_config(args, model=model)
    return Preprocess("timm", model_name, in_chans, tuple(int(v) for v in config["input_size"][1:]), resize=True,
                      mean=_fit(tuple(config["mean"]), in_chans), std=_fit(tuple(config["std"]), in_chans),
                      interpolation=str(config["interpolation"]), crop_pct=float(config["crop_pct"]),
                      crop_mode=str(config.get("crop_mode") or "center"))
