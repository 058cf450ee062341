"""Speed of the kernels and of whole-payload encode/decode, C vs numpy vs baselines.

    pytest benchmarks --benchmark-json=benchmarks/latest.json
    python benchmarks/summarize.py benchmarks/latest.json   # the README table
"""

import numpy as np
import pytest
import zstandard

import plada_codec
from plada_codec._backend import get_kernels

from .conftest import CONTENDERS

UNPACK_COUNT = 1_000_000


@pytest.mark.parametrize("width", [1, 4, 8, 12, 16, 32])
@pytest.mark.parametrize("contender", CONTENDERS + ["np.unpackbits"])
def test_unpack(benchmark, contender, width):
    rng = np.random.default_rng(width)
    values = rng.integers(0, 2**width, UNPACK_COUNT, dtype=np.uint64)
    packed = get_kernels("python").pack_bits(values, width)
    benchmark.group = f"unpack w={width}"
    benchmark.extra_info.update(values=UNPACK_COUNT, width=width)
    if contender == "np.unpackbits":
        if width != 1:
            pytest.skip("np.unpackbits only unpacks width 1")
        out = benchmark(np.unpackbits, np.frombuffer(packed, np.uint8), bitorder="little")
        assert out.size == UNPACK_COUNT
        return
    kernels = get_kernels(contender)
    out = np.empty(UNPACK_COUNT, np.uint64)
    result = benchmark(kernels.unpack_bits, packed, UNPACK_COUNT, width, out)
    np.testing.assert_array_equal(result, values)


@pytest.mark.parametrize("width", [1, 8, 16])
@pytest.mark.parametrize("contender", CONTENDERS + ["np.packbits"])
def test_pack(benchmark, contender, width):
    rng = np.random.default_rng(width)
    values = rng.integers(0, 2**width, UNPACK_COUNT, dtype=np.uint64)
    benchmark.group = f"pack w={width}"
    benchmark.extra_info.update(values=UNPACK_COUNT, width=width)
    if contender == "np.packbits":
        if width != 1:
            pytest.skip("np.packbits only packs width 1")
        bits = values.astype(np.uint8)
        benchmark(np.packbits, bits, bitorder="little")
        return
    benchmark(get_kernels(contender).pack_bits, values, width)


@pytest.mark.parametrize("contender", CONTENDERS + ["zstd-bitmap"])
def test_decode(benchmark, contender, selection):
    name, n_ref, indices, labels = selection
    benchmark.group = f"decode {name}"
    benchmark.extra_info.update(count=int(indices.size), n_ref=n_ref)
    if contender == "zstd-bitmap":
        # The paper's Bmp layout: packed mask + uint8 labels, each Zstd-19; decode = decompress + unpackbits.
        mask = np.zeros(n_ref, bool)
        mask[indices] = True
        cctx = zstandard.ZstdCompressor(level=19)
        blob_mask = cctx.compress(np.packbits(mask).tobytes())
        blob_labels = cctx.compress(labels.astype(np.uint8).tobytes())
        dctx = zstandard.ZstdDecompressor()

        def paper_decode():
            bits = np.frombuffer(dctx.decompress(blob_mask), np.uint8)
            idx = np.flatnonzero(np.unpackbits(bits, count=n_ref))
            return idx, np.frombuffer(dctx.decompress(blob_labels), np.uint8)

        idx, _ = benchmark(paper_decode)
        np.testing.assert_array_equal(idx, indices)
        return
    data = plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=200, zstd_level=3)
    benchmark.extra_info["payload_bytes"] = len(data)
    payload = benchmark(plada_codec.decode, data, backend=contender)
    np.testing.assert_array_equal(payload.indices, indices)


@pytest.mark.parametrize("level", [3, 19])
@pytest.mark.parametrize("contender", CONTENDERS)
def test_encode(benchmark, contender, level, selection):
    name, n_ref, indices, labels = selection
    if level == 19 and name == "in21k-10pct":
        pytest.skip("level 19 on 10% of IN-21K takes seconds per round")
    benchmark.group = f"encode {name} zstd-{level}"
    benchmark.extra_info.update(count=int(indices.size), n_ref=n_ref, zstd_level=level)
    data = benchmark.pedantic(plada_codec.encode, args=(indices, labels),
                              kwargs=dict(n_ref=n_ref, n_classes=200, zstd_level=level, backend=contender),
                              rounds=3 if level == 19 else 10, iterations=1)
    benchmark.extra_info["payload_bytes"] = len(data)
