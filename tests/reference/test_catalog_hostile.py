"""Catalogs and their resolution caches trusted with hostile and careless files
(spec/REFERENCE.md security considerations): memory follows the text's size,
the .zst limit holds before anything is decompressed, a cache that is not a
regular file or whose values do not check out is a miss, and the API refuses
arguments it cannot mean."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import tarfile
import threading
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import zstandard

from plada_codec import Catalog, ReferenceSetError
from plada_codec.cli import main
from tests.refsets import make_items as _make_items
from tests.refsets import write_folder


def make_items(*args, **kwargs):
    pytest.importorskip("PIL")  # refsets writes real PNG files; the codec's own env has no Pillow
    return _make_items(*args, **kwargs)

HEADER = b"plada-catalog 1\nfields id\n"


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when the body blocks, as on a FIFO."""

    def expired(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def peak_of(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def text_of(ids) -> bytes:
    return HEADER + b"".join(i.encode() + b"\n" for i in sorted(ids, key=str.encode))


# -- one long id does not multiply memory -------------------------------------------------------


def test_one_long_id_costs_its_own_bytes_not_n_times_them(tmp_path):
    ids = [f"n{i:07d}" for i in range(20_000)] + ["z" * 16384]
    text = text_of(ids)
    path = tmp_path / "long.plcat.zst"
    path.write_bytes(zstandard.ZstdCompressor(level=3, write_content_size=True).compress(text))
    holder = {}
    peak = peak_of(lambda: holder.update(catalog=Catalog.open(path)))
    catalog = holder["catalog"]
    # Held as a fixed-width array this was 20,001 x 16 KiB = 328 MB; the text is 196 KB.
    assert peak < 4 * len(text) + 200 * len(ids)
    assert catalog._ids.nbytes() <= len(text) + 8 * (len(ids) + 1)
    assert catalog.index_of("z" * 16384) == len(ids) - 1
    assert catalog.positions_of(["n0000003", "z" * 16383, "z" * 16384]).tolist() == [3, -1, len(ids) - 1]


def random_ids(rng: random.Random, n: int) -> list[str]:
    """Ids that share long prefixes (8, 16, 40 bytes and more), so lookups compare many words,
    with non-ASCII ones among them (UTF-8 byte order is not code point order for surrogates'
    neighbours, and must be bytes here)."""
    stems = ["", "n01440764_", "a" * 16, "prefix-" * 6, "é" * 5, "\U0001f600" * 3, "z" * 300]
    ids = set()
    while len(ids) < n:
        ids.add(rng.choice(stems) + rng.choice(stems) + str(rng.randrange(10 ** rng.randrange(1, 7))))
    return list(ids)


@pytest.mark.parametrize("n", [5, 300, 3000])
@pytest.mark.parametrize("rounds", ["as shipped", "numpy only, small slices"])
def test_order_and_lookup_agree_with_python_bytes_order(n, rounds, monkeypatch):
    import plada_codec._catalog as implementation

    if rounds != "as shipped":  # every tie settled by numpy rounds, a few strings a call
        monkeypatch.setattr(implementation, "_FEW", 0)
        monkeypatch.setattr(implementation, "_SLICE", 7)
    rng = random.Random(n)
    ids = random_ids(rng, n)
    catalog = Catalog.from_items(ids)
    expected = sorted(ids, key=lambda i: i.encode("utf-8"))
    assert list(catalog.ids) == expected
    assert Catalog.from_bytes(catalog.to_bytes()).to_bytes() == text_of(ids)
    where = {item_id: p for p, item_id in enumerate(expected)}
    absent = [i + "x" for i in ids[: n // 2]] + [i[:-1] for i in ids[: n // 3] if len(i) > 1]
    for queries in (ids[:3], ids + absent, list(reversed(ids)) + absent):  # a binary search each, one sort
        assert catalog.positions_of(queries).tolist() == [where.get(q, -1) for q in queries]


@pytest.mark.parametrize("n", [40, 2000])
def test_groups_order_and_lookup_agree_with_python(n):
    rng = random.Random(n)
    ids = random_ids(rng, n)
    groups = [rng.choice(["", "g", "g" * 9 + "a", "g" * 9 + "b"]) for _ in ids]
    catalog = Catalog.from_items(ids, groups=groups)
    expected = sorted(zip(groups, ids), key=lambda r: (r[0].encode(), r[1].encode()))
    assert [(catalog.group_of(p), catalog.ids[p]) for p in range(n)] == expected
    reopened = Catalog.from_bytes(catalog.to_bytes())
    where = {item_id: p for p, (_, item_id) in enumerate(expected)}
    assert reopened.positions_of(ids + ["nope"]).tolist() == [where[i] for i in ids] + [-1]
    assert reopened.index_of(ids[0]) == where[ids[0]]


def test_a_repeat_far_down_a_long_shared_prefix_is_found():
    long = "p" * 5000
    with pytest.raises(ReferenceSetError, match="appears twice"):
        Catalog.from_items([long + "a", long + "b", long + "a"] + [f"x{i}" for i in range(600)])
    text = HEADER.replace(b"id\n", b"id group\n") + f"{long}a\tg\n{long}b\tg\n{long}a\th\nx\th\n".encode()
    with pytest.raises(ReferenceSetError, match="appears twice"):
        Catalog.from_bytes(text)


def test_order_is_checked_past_a_long_shared_prefix():
    long = "p" * 5000
    with pytest.raises(ReferenceSetError, match=r":4: lines must be sorted"):
        Catalog.from_bytes(HEADER + f"{long}b\n{long}a\n".encode())


# -- the .zst limit ---------------------------------------------------------------------------------


def test_zst_declared_size_over_the_limit_is_refused_before_decompressing(tmp_path, monkeypatch):
    text = HEADER + b"a" * 100_000 + b"\n"
    path = tmp_path / "big.plcat.zst"
    path.write_bytes(zstandard.ZstdCompressor(write_content_size=True).compress(text))

    def no_decompressing(*args, **kwargs):
        raise AssertionError("decompressed a frame that declares more than the limit")

    monkeypatch.setattr(zstandard.ZstdDecompressor, "decompressobj", no_decompressing)
    with pytest.raises(ReferenceSetError, match=f"declares {len(text)} bytes, over the limit of 50000"):
        Catalog.open(path, max_bytes=50_000)


def test_zst_without_a_declared_size_streams_against_the_limit(tmp_path):
    # 64 MiB that compress to a few KiB, with no content size in the header.
    compressor = zstandard.ZstdCompressor(write_content_size=False)
    path = tmp_path / "bomb.plcat.zst"
    with open(path, "wb") as fh, compressor.stream_writer(fh) as writer:
        writer.write(HEADER)
        for _ in range(64):
            writer.write(b"a" * (1 << 20))
    assert path.stat().st_size < 1 << 16

    def open_it():
        with pytest.raises(ReferenceSetError, match="more than the limit of 1048576"):
            Catalog.open(path, max_bytes=1 << 20)

    assert peak_of(open_it) < 8 << 20  # 4 KiB of input at a time expanded to 64 MiB at once


def test_zst_frame_that_lies_about_its_size_is_refused(tmp_path):
    frame = bytearray(zstandard.ZstdCompressor(write_content_size=True).compress(HEADER + b"a\n"))
    # The content size field is the last byte of this frame header (single segment, 1-byte size).
    params = zstandard.get_frame_parameters(bytes(frame))
    assert params.content_size == len(HEADER) + 2
    assert frame[5] == len(HEADER) + 2
    frame[5] = len(HEADER) + 1
    path = tmp_path / "lies.plcat.zst"
    path.write_bytes(bytes(frame))
    with pytest.raises(ReferenceSetError, match="Zstandard"):
        Catalog.open(path)


def test_skippable_frame_before_the_catalog_frame_is_refused(tmp_path):
    frame = zstandard.ZstdCompressor(write_content_size=True).compress(HEADER + b"a\n")
    skippable = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"meta"
    path = tmp_path / "skip.plcat.zst"
    path.write_bytes(skippable + frame)
    with pytest.raises(ReferenceSetError, match="skippable Zstandard frame"):
        Catalog.open(path)
    path.write_bytes(frame + skippable)
    with pytest.raises(ReferenceSetError, match="bytes after"):
        Catalog.open(path)


# -- files that are not regular files ---------------------------------------------------------------


def test_catalog_open_refuses_a_fifo_a_device_and_a_folder(tmp_path):
    fifo = tmp_path / "catalog.fifo"
    os.mkfifo(fifo)
    with deadline(20):
        for path in (fifo, "/dev/zero", tmp_path):
            with pytest.raises(ReferenceSetError, match="not a regular file"):
                Catalog.open(path, max_bytes=1 << 20)


def test_catalog_over_the_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "c.plcat"
    path.write_bytes(HEADER + b"a\n" * 10)
    with pytest.raises(ReferenceSetError, match="over the limit of 20"):
        Catalog.open(path, max_bytes=20)


def small_copy(tmp_path, n=12):
    items = make_items(n, n_synsets=2)
    folder = write_folder(items, tmp_path / "copy")
    catalog_path = tmp_path / "ref.plcat"
    Catalog.build(folder, catalog_path, content=True)
    return items, folder, Catalog.open(catalog_path)


def default_cache(catalog):
    """The one cache a resolve wrote beside the catalog (its name is the implementation's)."""
    (cache,) = Path(catalog.path).parent.glob(Path(catalog.path).name + ".*.resolved.npz")
    return cache


@pytest.mark.parametrize("plant", ["fifo", "dev-zero-link", "folder", "dangling-link"])
def test_a_cache_path_that_is_not_a_regular_file_is_a_miss_never_a_hang(tmp_path, plant):
    items, folder, catalog = small_copy(tmp_path)
    catalog.resolve(folder, content=False)
    cache = default_cache(catalog)
    cache.unlink()
    if plant == "fifo":
        os.mkfifo(cache)
    elif plant == "dev-zero-link":
        os.symlink("/dev/zero", cache)
    elif plant == "folder":
        cache.mkdir()
    else:
        os.symlink(tmp_path / "nowhere", cache)
    with deadline(30):
        for _ in range(2):
            resolution = catalog.resolve(folder, content=False)
            assert resolution.present == len(items) and not resolution.from_cache
        assert main(["catalog", "resolve", str(folder), "--catalog", catalog.path, "--no-content"]) == 0
    assert os.path.lexists(cache)  # left as it was: never replaced, never read


def test_an_explicit_index_that_is_a_fifo_is_refused(tmp_path):
    items, folder, catalog = small_copy(tmp_path)
    fifo = tmp_path / "index.fifo"
    os.mkfifo(fifo)
    with deadline(30), pytest.raises(ReferenceSetError, match="not a resolution cache"):
        catalog.resolve(folder, index=fifo)


# -- a cache's values are checked ------------------------------------------------------------------


def write_shards(items, root):
    root.mkdir()
    for shard in range(2):
        with tarfile.open(root / f"s{shard}.tar", "w", format=tarfile.USTAR_FORMAT) as archive:
            for item in items[shard::2]:
                info = tarfile.TarInfo(f"{item.item_id}.png")
                info.size = len(item.png)
                archive.addfile(info, io.BytesIO(item.png))
    return root


def tamper(cache, **changes):
    """Rewrite the cache with some arrays replaced (meta kept, so only the values are wrong)."""
    with np.load(cache) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(changes)
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("change", [
    "local_of past the listing", "local_of below -1", "local_of as floats", "local_of of the wrong length",
    "local_of 2-d", "size 2**40", "offset past the shard", "source past the shards", "names_offsets falling",
    "differ past the catalog", "differ unsorted", "meta not json", "meta a list",
])
def test_a_cache_whose_values_do_not_check_out_is_a_miss(tmp_path, change):
    items = make_items(16, n_synsets=2)
    shards = write_shards(items, tmp_path / "shards")
    catalog = Catalog.build(shards, tmp_path / "ref.plcat")
    first = catalog.resolve(shards)
    assert first.differ == 0 and not first.from_cache
    cache = default_cache(catalog)
    assert catalog.resolve(shards).from_cache  # an honest cache is a hit
    with np.load(cache) as data:
        local_of, size, offset = data["local_of"], data["size"], data["offset"]
    n = len(local_of)
    bad = {
        "local_of past the listing": {"local_of": np.where(np.arange(n) == 3, len(items) + 5, local_of)},
        "local_of below -1": {"local_of": np.where(np.arange(n) == 3, -7, local_of)},
        "local_of as floats": {"local_of": local_of.astype(np.float64)},
        "local_of of the wrong length": {"local_of": local_of[:-1]},
        "local_of 2-d": {"local_of": local_of.reshape(1, -1)},
        "size 2**40": {"size": np.where(np.arange(len(size)) == 0, 2**40, size)},
        "offset past the shard": {"offset": offset + (1 << 30)},
        "source past the shards": {"source": np.full(len(size), 7, np.int32)},
        "names_offsets falling": {"names_offsets": np.zeros(len(size) + 1, np.int64)[::-1] - 1},
        "differ past the catalog": {"differ": np.array([n + 1])},
        "differ unsorted": {"differ": np.array([3, 1])},
        "meta not json": {"meta": np.frombuffer(b"{not json", np.uint8)},
        "meta a list": {"meta": np.frombuffer(b"[1, 2]", np.uint8)},
    }[change]
    tamper(cache, **bad)
    again = catalog.resolve(shards)
    assert not again.from_cache  # a miss, listed again
    assert again.present == len(items) and again.differ == 0
    for position in range(len(catalog)):
        assert again.read(position) == next(i.png for i in items if i.item_id == catalog.ids[position])
    assert catalog.resolve(shards).from_cache  # rewritten


def test_verify_with_a_tampered_cache_resolves_again(tmp_path, capsys):
    import plada_codec

    items = make_items(16, n_synsets=2)
    shards = write_shards(items, tmp_path / "shards")
    catalog = Catalog.build(shards, tmp_path / "ref.plcat")
    catalog.resolve(shards, content=False)
    cache = default_cache(catalog)
    with np.load(cache) as data:
        tamper(cache, local_of=data["local_of"] + 100)
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode([0, 3], [1, 0], n_classes=2, reference=catalog.reference))
    assert main(["verify", str(payload), "--catalog", catalog.path, "--reference", str(shards)]) == 0
    assert "all 2 selected items are present" in capsys.readouterr().out


# -- threads -------------------------------------------------------------------------------------------


def test_threads_sharing_a_tar_resolution_read_their_own_bytes(tmp_path):
    items = make_items(60, n_synsets=3)
    shards = write_shards(items, tmp_path / "shards")
    catalog = Catalog.build(shards, content=False)
    resolution = catalog.resolve(shards)
    truth = {p: next(i.png for i in items if i.item_id == catalog.ids[p]) for p in range(len(catalog))}
    wrong: list[int] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(3000):
            p = rng.randrange(len(catalog))
            if resolution.read(p) != truth[p]:
                wrong.append(p)

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong, f"{len(wrong)} of 12000 reads returned another item's bytes"


# -- API sharp edges ------------------------------------------------------------------------------------


def test_positions_of_takes_str_ids_in_any_sequence_and_refuses_the_rest():
    catalog = Catalog.from_items(["a", "b", "c"])
    assert catalog.positions_of(np.array(["c", "x", "a"])).tolist() == [2, -1, 0]
    assert catalog.positions_of(np.array(["c", "a"], dtype=object)).tolist() == [2, 0]
    assert catalog.positions_of(("b",)).tolist() == [1]
    assert catalog.positions_of([]).tolist() == []
    for wrong in (np.array([0, 1]), np.array([b"a"]), [0, 1], "abc", b"a", [None], 3):
        with pytest.raises(ReferenceSetError, match="looked up as"):
            catalog.positions_of(wrong)


def test_resolution_positions_are_checked(tmp_path):
    items, folder, catalog = small_copy(tmp_path)
    resolution = catalog.resolve(folder, content=False)
    for outside in (-1, len(catalog), 10**20):
        for method in (resolution.read, resolution.holds, resolution.where):
            with pytest.raises(ReferenceSetError, match="outside the catalog"):
                method(outside)
        with pytest.raises(ReferenceSetError, match="outside the catalog"):
            resolution.missing_positions([0, outside])
    for wrong in (1.5, "1", None):
        with pytest.raises(TypeError):
            resolution.read(wrong)
    with pytest.raises(TypeError):
        resolution.missing_positions(np.array([0.5]))
    assert resolution.read(np.int64(0)) == next(i.png for i in items if i.item_id == catalog.ids[0])


def test_groups_rules_and_workers_of_the_wrong_kind_are_refused(tmp_path):
    items, folder, catalog = small_copy(tmp_path)
    with pytest.raises(ReferenceSetError, match="a group must be a str"):
        Catalog.from_items(["a", "b"], groups=[None, "g"])
    with pytest.raises(ReferenceSetError, match="group rule must be a str"):
        Catalog.build(folder, group=None)
    with pytest.raises(ReferenceSetError, match="id rule must be a str"):
        Catalog.build(folder, id=None)
    for workers in (-1, 0, 2.5, True, "4"):
        with pytest.raises(ReferenceSetError, match="workers must be a positive int"):
            Catalog.build(folder, workers=workers)
        with pytest.raises(ReferenceSetError, match="workers must be a positive int"):
            catalog.resolve(folder, workers=workers)
    with pytest.raises(ReferenceSetError, match="digests must be"):
        Catalog.from_items(["a"], digests=[None])
    with pytest.raises(ReferenceSetError, match="content must be"):
        catalog.resolve(folder, content="yes")


# -- one resolution serves every tool -----------------------------------------------------------


def test_cli_resolve_warms_the_cache_a_default_resolve_reads(tmp_path, capsys):
    items, folder, catalog = small_copy(tmp_path)
    assert main(["catalog", "resolve", str(folder), "--catalog", catalog.path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["differ"] == 0 and not report["from_cache"]
    # what plada-train consume and `plada decode --catalog --reference` ask for: positions, no hashing
    listed = catalog.resolve(folder, content=False)
    assert listed.from_cache and listed.differ is None and listed.present == len(items)
    assert catalog.resolve(folder).from_cache


def test_a_names_only_resolution_is_hashed_once_when_content_is_asked(tmp_path, monkeypatch):
    from plada_codec.kinds import KINDS

    items = make_items(16, n_synsets=2)
    shards = write_shards(items, tmp_path / "shards")
    catalog = Catalog.build(shards, tmp_path / "ref.plcat")
    assert catalog.resolve(shards, content=False).differ is None
    scans = []
    tar = KINDS["tar"]
    original = tar.scan
    monkeypatch.setattr(tar, "scan", classmethod(lambda cls, path, *a, **k: scans.append(path) or original(path)))
    checked = catalog.resolve(shards)
    assert checked.from_cache and checked.differ == 0 and not scans  # listed before: hashed, not listed again
    again = catalog.resolve(shards)
    assert again.from_cache and again.differ == 0 and not scans  # and the hashing was kept


def test_progress_bars_count_items(tmp_path, monkeypatch):
    import tqdm.auto

    bars = []
    real = tqdm.auto.tqdm

    def spy(*args, **kwargs):
        bars.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    items, folder, catalog = small_copy(tmp_path)
    bars.clear()
    assert main(["catalog", "build", str(folder), "-o", str(tmp_path / "again.plcat")]) == 0
    assert [(b["total"], b["unit"], b["disable"]) for b in bars] == [(len(items), " items", None)]
    bars.clear()
    assert main(["catalog", "resolve", str(folder), "--catalog", catalog.path, "--rebuild"]) == 0
    assert [(b["total"], b["unit"], b["disable"]) for b in bars] == [(len(items), " items", None)]
    shards = write_shards(items, tmp_path / "shards")
    bars.clear()
    assert main(["catalog", "resolve", str(shards), "--catalog", catalog.path]) == 0
    assert [(b.get("total"), b["unit"], b["disable"]) for b in bars] == [(None, " shards", None),
                                                                       (len(items), " items", None)]


# -- which names a catalog checks (spec/REFERENCE.md 8.2): its ids, not the paths around them ---------


def test_a_folder_name_that_is_not_utf8_is_refused_only_where_it_is_part_of_an_id(tmp_path):
    copy = tmp_path / "copy"
    os.makedirs(os.fsencode(copy) + b"/caf\xe9")
    with open(os.fsencode(copy) + b"/caf\xe9/n1_1.png", "wb") as fh:
        fh.write(b"A")
    (copy / "n2_1.png").write_bytes(b"B")
    assert list(Catalog.build(copy, content=False).ids) == ["n1_1", "n2_1"]  # stem: the folder is no part of it
    with pytest.raises(ReferenceSetError, match="not valid UTF-8"):
        Catalog.build(copy, id="key", content=False)


def test_shard_names_are_no_part_of_a_catalog_id(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for name in (b"caf\xe9.tar", b"a\x01b.tar"):
        with tarfile.open(os.fsdecode(os.fsencode(shards) + b"/" + name), "w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo(f"n{len(name)}_1.png")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    assert list(Catalog.build(shards, content=False).ids) == ["n7_1", "n8_1"]  # len(b"a\x01b.tar") == 7


def test_a_touched_shard_is_listed_again_alone(tmp_path, monkeypatch):
    import plada_codec.kinds.tar as tar

    items = make_items(16, n_synsets=2)
    shards = write_shards(items, tmp_path / "shards")
    catalog = Catalog.build(shards, tmp_path / "ref.plcat", content=False)
    first = catalog.resolve(shards)
    assert "s0.tar:" in first.where(0) or "s1.tar:" in first.where(0)
    cached = catalog.resolve(shards)
    assert cached.from_cache and cached.where(0) == first.where(0)  # member names kept in the cache
    listed = []
    original = tar.list_shard
    monkeypatch.setattr(tar, "list_shard", lambda shard, *a, **k: listed.append(os.path.basename(shard))
                        or original(shard, *a, **k))
    with tarfile.open(shards / "s1.tar", "w", format=tarfile.USTAR_FORMAT) as archive:  # s1 rewritten, one short
        for item in items[1::2][:-1]:
            info = tarfile.TarInfo(f"{item.item_id}.png")
            info.size = len(item.png)
            archive.addfile(info, io.BytesIO(item.png))
    again = catalog.resolve(shards)
    assert listed == ["s1.tar"] and not again.from_cache
    assert again.missing_positions().tolist() == [catalog.index_of(items[-1].item_id)]
    for position in again.present_positions().tolist():
        assert again.read(position) == next(i.png for i in items if i.item_id == catalog.ids[position])
