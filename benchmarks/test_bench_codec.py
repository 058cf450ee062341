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


# Format 1.0 = the 1.0 codecs only; 1.1 = the default encoder, which picks the
# context model (FORMAT.md 15) on these clustered selections.
FORMATS = ["1.0", "1.1"]
WRITER_VERSION = {"1.0": "1.0", "1.1": None}  # None: every registered codec


def _slow_pure_cm(contender, fmt, name):
    """The pure-Python context coder takes seconds per 100k pairs: skip 10% of IN-21K."""
    return contender == "python" and fmt == "1.1" and name == "in21k-10pct"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("contender", CONTENDERS + ["zstd-bitmap"])
def test_decode(benchmark, contender, fmt, selection):
    name, n_ref, indices, labels = selection
    benchmark.group = f"decode {name} format {fmt}"
    benchmark.extra_info.update(count=int(indices.size), n_ref=n_ref)
    if contender == "zstd-bitmap":
        if fmt != "1.0":
            pytest.skip("one baseline row per selection")
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
    if _slow_pure_cm(contender, fmt, name):
        pytest.skip("pure-Python context model on 1.4M pairs: minutes")
    data = plada_codec.PayloadEncoder(zstd_level=3, format_version=WRITER_VERSION[fmt]).encode(
        indices, labels, n_ref=n_ref, n_classes=200)
    benchmark.extra_info["payload_bytes"] = len(data)
    benchmark.extra_info["index_codec"] = plada_codec.inspect(data).sections[0].codec_name
    if contender == "python" and fmt == "1.1":
        payload = benchmark.pedantic(plada_codec.decode, args=(data,), kwargs=dict(backend=contender),
                                     rounds=3, iterations=1)
    else:
        payload = benchmark(plada_codec.decode, data, backend=contender)
    np.testing.assert_array_equal(payload.indices, indices)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("level", [3, 19])
@pytest.mark.parametrize("contender", CONTENDERS)
def test_encode(benchmark, contender, level, fmt, selection):
    """Whole-payload encode with codec choice; format 1.1 at level 19 is the default."""
    name, n_ref, indices, labels = selection
    if level == 19 and name == "in21k-10pct" and fmt == "1.0":
        pytest.skip("level 19 on 10% of IN-21K takes seconds per round")
    if _slow_pure_cm(contender, fmt, name):
        pytest.skip("pure-Python context model on 1.4M pairs: minutes")
    benchmark.group = f"encode {name} zstd-{level} format {fmt}"
    benchmark.extra_info.update(count=int(indices.size), n_ref=n_ref, zstd_level=level)
    encoder = plada_codec.PayloadEncoder(zstd_level=level, format_version=WRITER_VERSION[fmt], backend=contender)
    data = benchmark.pedantic(encoder.encode, args=(indices, labels), kwargs=dict(n_ref=n_ref, n_classes=200),
                              rounds=3 if level == 19 or contender == "python" else 10, iterations=1)
    benchmark.extra_info["payload_bytes"] = len(data)


@pytest.mark.parametrize("effort", [2, 3])
@pytest.mark.parametrize("contender", CONTENDERS)
def test_encode_effort(benchmark, contender, effort, selection):
    """The default encode (effort 2) next to the previous default (effort 3); every shape:
    benchmarks/bench_encode.py."""
    name, n_ref, indices, labels = selection
    if _slow_pure_cm(contender, "1.1", name):
        pytest.skip("pure-Python context model on 1.4M pairs: minutes")
    benchmark.group = f"encode {name} effort {effort}" + (" (default)" if effort == 2 else " (previous default)")
    benchmark.extra_info.update(count=int(indices.size), n_ref=n_ref, effort=effort)
    encoder = plada_codec.PayloadEncoder(effort=effort, backend=contender)
    data = benchmark.pedantic(encoder.encode, args=(indices, labels), kwargs=dict(n_ref=n_ref, n_classes=200),
                              rounds=3, iterations=1)
    benchmark.extra_info["payload_bytes"] = len(data)
