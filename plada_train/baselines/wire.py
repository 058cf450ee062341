"""What each baseline sends, byte for byte (hand-checkable): the pixel
baselines' JPEG-30 + Zstd-19 stream and the weight baselines' INT8 tensors."""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

import numpy as np
import torch
import zstandard

__all__ = ["JPEG_QUALITY", "ZSTD_LEVEL", "pack_images", "unpack_images", "jpeg_encode", "jpeg_decode",
           "jpeg_zstd_bytes", "quantize_int8", "int8_state_bytes"]

JPEG_QUALITY = 30
ZSTD_LEVEL = 19


def _label_width(n_classes: int) -> int:
    return 1 if n_classes <= 256 else 2


def pack_images(jpegs: Sequence[bytes], labels: Sequence[int], n_classes: int) -> bytes:
    """The pixel baselines' stream before compression:
    ``u32 count | (u32 length, JPEG bytes) per image | labels`` (little-endian;
    1 byte a label, 2 above 256 classes)."""
    width = _label_width(n_classes)
    parts = [struct.pack("<I", len(jpegs))]
    for data in jpegs:
        parts += [struct.pack("<I", len(data)), data]
    parts.append(np.asarray(labels, dtype="<u1" if width == 1 else "<u2").tobytes())
    return b"".join(parts)


def unpack_images(stream: bytes, n_classes: int) -> tuple[list[bytes], np.ndarray]:
    (count,) = struct.unpack_from("<I", stream, 0)
    offset, jpegs = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<I", stream, offset)
        jpegs.append(stream[offset + 4:offset + 4 + length])
        offset += 4 + length
    width = _label_width(n_classes)
    labels = np.frombuffer(stream, dtype="<u1" if width == 1 else "<u2", count=count, offset=offset)
    return jpegs, labels.astype(np.int64)


def jpeg_encode(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """One uint8 image (C, H, W), C = 1 or 3, as a baseline JPEG at *quality*."""
    from PIL import Image

    array = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def jpeg_decode(data: bytes, channels: int) -> np.ndarray:
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def jpeg_zstd_bytes(images: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[bytes, np.ndarray]:
    """The pixel payload of *images* and what the client decodes from it."""
    jpegs = [jpeg_encode(image) for image in images]
    stream = pack_images(jpegs, labels, n_classes)
    wire = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(stream)
    decoded, _ = unpack_images(zstandard.ZstdDecompressor().decompress(wire), n_classes)
    return wire, np.stack([jpeg_decode(d, images.shape[1]) for d in decoded])


def quantize_int8(tensor: torch.Tensor) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor INT8: ``q = round(t / s)``, ``s = max|t| / 127`` (1 when all zero)."""
    values = tensor.detach().float().cpu().numpy()
    peak = float(np.abs(values).max()) if values.size else 0.0
    scale = peak / 127 if peak > 0 else 1.0
    return np.clip(np.round(values / scale), -127, 127).astype(np.int8), scale


def int8_state_bytes(tensors: dict[str, torch.Tensor], keep_float: Sequence[str] = ()) -> tuple[bytes, dict]:
    """Zstd-19 of each float tensor in order as INT8 bytes + a float32 scale
    (tensors named in *keep_float* go as float32); integer buffers are not
    sent. Returns the bytes and the dequantized tensors the client would use."""
    parts, restored = [], {}
    for name, tensor in tensors.items():
        if not torch.is_floating_point(tensor):
            restored[name] = tensor
            continue
        if name in keep_float:
            data = tensor.detach().float().cpu().numpy().astype("<f4")
            parts.append(data.tobytes())
            restored[name] = torch.from_numpy(data.copy()).reshape(tensor.shape)
            continue
        q, scale = quantize_int8(tensor)
        parts += [q.tobytes(), struct.pack("<f", scale)]
        restored[name] = torch.from_numpy(q.astype(np.float32) * np.float32(scale)).reshape(tensor.shape)
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(b"".join(parts)), restored
