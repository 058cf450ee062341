import numpy as np
import pytest
from hypothesis import given

import plada_codec
from plada_codec import _cm_py
from plada_codec.synthetic import clustered_selection, uniform_selection
from tests.helpers import check_roundtrip
from tests.strategies import codec_pairs, encode_options, selections

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def _context_model_refused(indices, labels, n_ref, n_classes, options) -> bool:
    """Spec 15.1: a context-model body is stored uncompressed and holds at least
    ceil(k / 8) bytes, so naming it (or its partner) under compression="zstd",
    or for a selection whose stream is shorter, must be refused."""
    if options["index_codec"] != "context-model" and options["label_codec"] != "joint":
        return False
    if options["compression"] == "zstd":
        return True
    longest = max(len(_cm_py.encode(indices, labels, n_ref, n_classes, preset)) for preset in _cm_py.PRESETS)
    return longest < max(1, -(-len(indices) // 8))  # no preset meets the bound


@given(selections(), encode_options())
def test_roundtrip_any_codec(backend, selection, options):
    indices, labels, n_ref, n_classes = selection
    if options["index_codec"] == "bitmap" and n_ref > 1 << 20:
        options["index_codec"] = "delta"  # keep forced bitmaps small
    if _context_model_refused(indices, labels, n_ref, n_classes, options):
        with pytest.raises(plada_codec.EncodeError, match="spec 15.1"):
            plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=n_classes, backend=backend, **options)
        return
    check_roundtrip(indices, labels, n_ref=n_ref, n_classes=n_classes, backend=backend, **options)


@pytest.mark.parametrize(
    "indices, labels, n_ref, n_classes",
    [
        ([], [], 1, 1),  # k = 0, N = 1, C = 1
        ([0], [0], 1, 1),  # k = N = 1
        (list(range(1000)), [i % 7 for i in range(1000)], 1000, 7),  # k = N, zero gaps
        ([2**48 - 1], [2**24 - 1], 2**48, 2**24),  # largest index, label and widths
        ([0, 2**32, 2**40, 2**47], [0, 1, 2, 3], 2**48, 4),  # beyond 2**32
        (list(range(0, 128 * 5, 5)), [1] * 128, 10**6, 2),  # exactly one full block
    ],
)
@pytest.mark.parametrize("index_codec", ["delta", "bitmap"])
@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_edge_cases(backend, indices, labels, n_ref, n_classes, index_codec, compression):
    if index_codec == "bitmap" and n_ref > 1 << 24:
        pytest.skip("bitmap over 2**48 items is not materialisable")
    check_roundtrip(indices, labels, n_ref=n_ref, n_classes=n_classes, backend=backend,
                    index_codec=index_codec, compression=compression)


@pytest.mark.parametrize("keep", [0.01, 0.10])
@pytest.mark.parametrize("make", [clustered_selection, uniform_selection], ids=["clustered", "uniform"])
def test_imagenet21k_scale(backend, keep, make):
    n_ref = 14_197_122
    indices, labels = make(n_ref, int(n_ref * keep), 1000, seed=3)
    # Model-based codecs of later minor versions run one Python call per coded bit on the numpy
    # path: at this scale that path is held to the 1.0 codecs (their own tests cover them).
    version = "1.0" if backend == "python" else None
    data, _ = check_roundtrip(indices, labels, n_ref=n_ref, n_classes=1000, backend=backend, zstd_level=3,
                              format_version=version)
    assert len(data) < len(indices) * 3  # far below Raw Idx's 6 bytes per entry


def test_ancillary_roundtrip(backend):
    names = ["airplane", "", "Äpfel 🍎"]
    meta = {"mode": "low-energy", "keep_fraction": 0.01, "nested": {"a": [1, 2, None]}}
    data = plada_codec.encode([1, 4], [2, 0], n_ref=5, n_classes=3, class_names=names,
                              task_name="tâche", metadata=meta, backend=backend)
    payload = plada_codec.decode(data, backend=backend)
    assert payload.class_names == tuple(names)
    assert payload.task_name == "tâche" and payload.metadata == meta


@pytest.mark.parametrize("form", ["one-shot", "class"])
def test_options_take_effect(backend, form):
    """Each option changes what goes on the wire, in both the one-shot and the class form
    (the one-shot form once only forwarded its options to the class, untested)."""
    args = ([1, 2, 3, 40], [0, 1, 0, 2])
    sizes = dict(n_ref=64, n_classes=3)

    def encode(task_name=None, metadata=None, **options):
        content = dict(sizes, task_name=task_name, metadata=metadata)
        if form == "one-shot":
            return plada_codec.encode(*args, **content, backend=backend, **options)
        return plada_codec.PayloadEncoder(backend=backend, **options).encode(*args, **content)

    def codecs_of(data):
        return [(s.codec_name, s.compression_name) for s in plada_codec.inspect(data).sections]

    assert codecs_of(encode(index_codec="bitmap", label_codec="bytes", compression="none")) == [
        ("bitmap", "none"), ("bytes", "none")]
    assert codecs_of(encode(index_codec="delta", label_codec="packed", compression="zstd")) == [
        ("delta", "zstd"), ("packed", "zstd")]
    fast, slow = (encode(index_codec="delta", label_codec="bytes", compression="zstd", zstd_level=level)
                  for level in (1, 19))
    assert plada_codec.decode(fast) == plada_codec.decode(slow)

    data = encode()
    decode = (plada_codec.decode if form == "one-shot"
              else lambda d, **kw: plada_codec.PayloadDecoder(**kw).decode(d))
    assert decode(data, backend=backend).indices.tolist() == args[0]
    with pytest.raises(plada_codec.LimitExceededError, match="max_count = 3"):
        decode(data, backend=backend, max_count=3)
    with pytest.raises(plada_codec.LimitExceededError, match="max_section_bytes = 1"):
        decode(data, backend=backend, max_section_bytes=1)
    named = encode(task_name="t" * 100)
    with pytest.raises(plada_codec.LimitExceededError, match="max_ancillary_bytes = 99"):
        decode(named, backend=backend, max_ancillary_bytes=99)
    meta = encode(metadata={"a": [1, 2, 3]})
    with pytest.raises(plada_codec.LimitExceededError, match="max_metadata_items = 4"):
        decode(meta, backend=backend, max_metadata_items=4)
    assert decode(meta, backend=backend, max_metadata_items=5).metadata == {"a": [1, 2, 3]}


def test_auto_picks_smallest_candidate(backend):
    indices, labels = clustered_selection(200_000, 20_000, 10, seed=1)
    auto = plada_codec.encode(indices, labels, n_ref=200_000, n_classes=10, backend=backend, zstd_level=3)
    for index_codec, label_codec in codec_pairs():
        if "auto" not in (index_codec, label_codec):
            for compression in ("none", "zstd"):
                if compression == "zstd" and label_codec == "joint":
                    continue  # the context model is stored uncompressed (spec 15.1)
                forced = plada_codec.encode(indices, labels, n_ref=200_000, n_classes=10, backend=backend,
                                            zstd_level=3, index_codec=index_codec,
                                            label_codec=label_codec, compression=compression)
                assert len(auto) <= len(forced)


def test_inspect_reports_sections():
    data = plada_codec.encode([1, 2], [0, 1], n_ref=4, n_classes=2, task_name="t", compression="none")
    info = plada_codec.inspect(data)
    assert (info.n_ref, info.n_classes, info.count, info.total_length) == (4, 2, 2, len(data))
    assert [s.name for s in info.sections] == ["index", "labels", "task-name"]
    assert info.sections[0].offset == 80 and info.sections[0].codec_name == "bitmap"  # 1 byte beats 2
    assert plada_codec.verify(data) == info


def test_accepts_uint64_and_python_ints(backend):
    data = plada_codec.encode(np.array([1, 2**40], dtype=np.uint64), np.array([1, 0], dtype=np.uint8),
                              n_ref=2**41, n_classes=2, backend=backend)
    assert plada_codec.decode(data).indices.tolist() == [1, 2**40]


def _empty_payload_with_zstd_section(section_type: int, raw: bytes, *, n_classes: int) -> bytes:
    """A payload with k = 0 and one ancillary section: *raw* as a Zstandard frame
    (a small payload that declares a large section, as a fuzzer builds one)."""
    import zstandard

    from plada_codec import wire

    frame = zstandard.ZstdCompressor(write_content_size=True).compress(raw)
    payload = wire.split(plada_codec.encode([], [], n_ref=1, n_classes=n_classes, compression="none"))
    payload.sections.append(wire.RawSection(section_type, 0, 1, frame, raw_length=len(raw)))
    data = wire.join(payload)
    assert len(data) < 1024
    return data


def _decode_traced(data: bytes, backend: str, **limits):
    """decode() and its tracemalloc peak in bytes."""
    import tracemalloc

    tracemalloc.start()
    try:
        decoded = plada_codec.decode(data, backend=backend, **limits)
        return decoded, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_most_class_names_a_payload_may_carry_decode_within_their_own_size(backend):
    # Fuzz finding memory-python-class-names0 (fuzz/findings/README.md): 2**20 empty
    # names, a 4 MiB raw section (max_ancillary_bytes) from a ~300-byte payload. The
    # names tuple holds 8 bytes a name (the empty str is shared), so the peak is the
    # raw body + 8 MiB + working memory; a list built beside the tuple made it 20 MiB.
    # The default limits now count 64 bytes a name (FORMAT.md 5.5), so 2**20 names
    # need max_ancillary_bytes raised to 64 MiB to be decoded at all.
    count = 1 << 20
    raw = bytes(4 * count)
    data = _empty_payload_with_zstd_section(0x8001, raw, n_classes=count)
    decoded, peak = _decode_traced(data, backend, max_ancillary_bytes=64 * count)
    names = decoded.class_names
    assert len(names) == count and names[0] == names[-1] == ""
    assert peak <= len(raw) + 8 * count + (1 << 20), f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    "value_text, bytes_per_value",
    [
        (b"0", 8),  # a list slot; small ints are shared objects
        (b"{}", 8 + 64),  # a list slot and an empty dict (sys.getsizeof({}) == 64)
    ],
)
def test_metadata_at_the_item_limit_decodes_within_the_parsed_value(backend, value_text, bytes_per_value):
    # Fuzz finding metadata-62k-zeros (fuzz/findings/README.md): 124,771 bytes of
    # {"a":[0,0,...]} in a 276-byte payload peaked at 9-11 MiB, ~150 bytes a value,
    # because the 5.7 check built a path string and a work-list entry per value.
    # The parsed list itself costs `bytes_per_value` per value (hand count above),
    # so the peak may be that, the raw text twice (bytes and str) and 1 MiB.
    count = 32000  # 2 counted items per "{}," so 64,000 <= max_metadata_items = 65,536
    raw = b'{"a":[' + b",".join([value_text] * count) + b"]}"
    data = _empty_payload_with_zstd_section(0x8003, raw, n_classes=1)
    decoded, peak = _decode_traced(data, backend)
    metadata = decoded.metadata
    assert len(metadata["a"]) == count
    assert peak <= bytes_per_value * count + 2 * len(raw) + (1 << 20), f"peak {peak / 2**20:.2f} MiB"
