"""What each baseline sends (plada_train.baselines.wire), byte for byte by hand: the pixel
baselines' JPEG-30 + Zstd-19 stream and the weight baselines' INT8 tensors."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
zstandard = pytest.importorskip("zstandard")

from plada_train import baselines  # noqa: E402


def _pil_jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image[0]).save(out, format="JPEG", quality=30)
    return out.getvalue()


def test_pixel_bytes_by_hand():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 1, 12, 12), dtype=np.uint8)
    labels = np.array([2, 0, 7])
    jpegs = [_pil_jpeg(image) for image in images]
    stream = (struct.pack("<I", 3) + b"".join(struct.pack("<I", len(j)) + j for j in jpegs) + bytes([2, 0, 7]))
    assert len(stream) == 4 + sum(4 + len(j) for j in jpegs) + 3
    wire, decoded = baselines.jpeg_zstd_bytes(images, labels, n_classes=10)
    assert wire == zstandard.ZstdCompressor(level=19).compress(stream)
    assert decoded.shape == images.shape and decoded.dtype == np.uint8
    jpegs_back, labels_back = baselines.unpack_images(zstandard.ZstdDecompressor().decompress(wire), 10)
    assert jpegs_back == jpegs and labels_back.tolist() == [2, 0, 7]
    assert baselines.pack_images(jpegs, labels, 300).endswith(struct.pack("<3H", 2, 0, 7))  # 2 B labels > 256


def test_int8_bytes_by_hand():
    weight = torch.tensor([[-1.27, 0.5], [1.27, 0.0]])
    bias = torch.tensor([0.25, -0.5])
    wire, restored = baselines.int8_state_bytes({"w": weight, "b": bias, "n": torch.tensor(3)}, keep_float=("b",))
    scale = 1.27 / 127
    expected = np.array([-127, 50, 127, 0], np.int8).tobytes() + struct.pack("<f", scale) + \
        np.array([0.25, -0.5], "<f4").tobytes()
    assert wire == zstandard.ZstdCompressor(level=19).compress(expected)
    assert torch.allclose(restored["w"], torch.tensor([[-127, 50], [127, 0]]) * np.float32(scale))
    assert torch.equal(restored["b"], bias) and torch.equal(restored["n"], torch.tensor(3))
    q, s = baselines.quantize_int8(torch.zeros(4))
    assert s == 1.0 and q.tolist() == [0, 0, 0, 0]


def test_probe_bytes_carry_weights_bias_and_standardisation():
    weight, bias = torch.tensor([[1.27, -0.635]]), torch.tensor([0.5])
    mean, std = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 4.0])
    wire, _ = baselines.int8_state_bytes({"weight": weight, "bias": bias, "mean": mean, "std": std},
                                         keep_float=("bias", "mean", "std"))
    raw = np.array([127, -64], np.int8).tobytes() + struct.pack("<f", 0.01) + \
        np.array([0.5, 1.0, 2.0, 0.5, 4.0], "<f4").tobytes()
    assert wire == zstandard.ZstdCompressor(level=19).compress(raw)
