"""Catalogs (spec/REFERENCE.md section 8): the text format and its vectors,
building from every layout, resolving copies, and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile

import numpy as np
import pytest
import zstandard

import plada_codec
from plada_codec import Catalog, ReferenceSetError
from plada_codec.cli import main
from tests.helpers import REPO
from tests.refsets import make_items, store


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the text and its vectors (fingerprints from `printf ... | sha256sum`, spec 8.4) ----------------

C1 = b"plada-catalog 1\nfields id\na\nb\n"
C2 = b"plada-catalog 1\nfields id\nn01440764_10026\nn01440764_10027\nn01443537_10007\n"
C3 = (b"plada-catalog 1\nfields id group sha256\n"
      b"n01_2\tn01\t4a133ae5a64fc9bf9a446d23baabb699a11bdf45e3f95537153d6ddff20eb3b9\n"
      b"n02_1\tn02\tba6317018fa48d8cc1bcac21483693bcf8e8b89618cfe8c05d3ef2d0290b8260\n")


@pytest.mark.parametrize("text, fingerprint", [
    (C1, "0f513153f4213278050b222bfc236398ac12b953dd75194fab34cf2833c7ffa7"),
    (C2, "7e5f1d9521e703e5364f0d82721c661903c03e3b5aa7fea09dd2027dd0e640ba"),
    (C3, "182bbc2ceaf04d57e18cf68d18af23b0a140bd272a4e3c7441b149eaed4577c7"),
])
def test_vectors_parse_and_rebuild(text, fingerprint):
    catalog = Catalog.from_bytes(text)
    assert catalog.hex == fingerprint
    rebuilt = Catalog.from_items(list(reversed(list(catalog.ids))),
                                 groups=None if "group" not in catalog.fields else
                                 [catalog.group_of(i) for i in reversed(range(len(catalog)))],
                                 digests=None if not catalog.has_digests else
                                 [catalog.digest_of(i) for i in reversed(range(len(catalog)))])
    assert rebuilt.to_bytes() == text


def test_group_decides_the_order():
    catalog = Catalog.from_items(["b_1", "a_2"], groups=["z", "y"])
    assert list(catalog.ids) == ["a_2", "b_1"]
    assert Catalog.from_items(["b_1", "a_2"], groups=["a", "b"]).ids[0] == "b_1"
    digests = [sha(b"IMG-2"), sha(b"IMG-1")]
    assert Catalog.from_items(["n02_1", "n01_2"], groups=["n02", "n01"], digests=digests[::-1]).to_bytes() == C3


def test_index_of_and_reference():
    catalog = Catalog.from_bytes(C2)
    assert len(catalog) == 3
    assert catalog.index_of("n01443537_10007") == 2
    assert "n01440764_10027" in catalog and "n9" not in catalog
    with pytest.raises(KeyError):
        catalog.index_of("n01440764_1")
    assert catalog.positions_of(["n01440764_10027", "zzz", "n01440764_10026"]).tolist() == [1, -1, 0]
    assert catalog.reference == plada_codec.ReferenceSet(3, hashlib.sha256(C2).digest())


@pytest.mark.parametrize("text, message", [
    (b"plada-catalog 1\nfields id\nb\na\n", "sorted"),
    (b"plada-catalog 1\nfields id\na\na\n", "sorted"),
    (b"plada-catalog 1\nfields id group\na\tg\na\th\n", "appears twice"),
    (b"plada-catalog 1\nfields id\n\nb\n", "control character|empty id"),
    (b"plada-catalog 1\nfields id\na\tx\n", "TAB"),
    (b"plada-catalog 1\nfields sha256 id\n", "line 2"),
    (b"plada-catalog 1\nfields id sha256\na\t" + b"A" * 64 + b"\n", "lowercase hex"),
    (b"plada-catalog 1\nfields id\r\na\r\n", "line 2|control"),
    (b"plada-catalog 1\nfields id\na\r\n", "control character 0x0d"),
    (b"plada-catalog 1\nfields id\n", "no items"),
    (b"plada-catalog 1\nfields id\na", "LF"),
    (b"plada-catalog 1\nfields id\n\xff\n", "UTF-8"),
    (b"plada-reference-manifest 1\na\n", "manifest, not a catalog"),
    (b"\xef\xbb\xbfplada-catalog 1\nfields id\na\n", "not a plada catalog"),
])
def test_invalid_catalogs_are_refused(text, message):
    with pytest.raises(ReferenceSetError, match=message):
        Catalog.from_bytes(text)


def test_zstd_transport_and_trailing_bytes(tmp_path):
    frame = zstandard.ZstdCompressor().compress(C2)
    (tmp_path / "c.zst").write_bytes(frame)
    assert Catalog.open(tmp_path / "c.zst").hex == sha(C2)
    (tmp_path / "bad.zst").write_bytes(frame + b"x")
    with pytest.raises(ReferenceSetError, match="after the catalog"):
        Catalog.open(tmp_path / "bad.zst")
    (tmp_path / "big.zst").write_bytes(frame)
    with pytest.raises(ReferenceSetError, match="limit"):
        Catalog.open(tmp_path / "big.zst", max_bytes=len(C2) - 1)


# -- one set stored five ways -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    pytest.importorskip("PIL")
    base = tmp_path_factory.mktemp("refsets")
    return store(make_items(20_000, n_synsets=40), base)


@pytest.fixture(scope="module")
def catalog(stored, tmp_path_factory):
    path = tmp_path_factory.mktemp("cat") / "ref.plcat.zst"
    return Catalog.build(stored.folder, path)


def test_every_layout_gives_the_same_catalog(stored, catalog):
    expected = sorted(item.item_id for item in stored.items)  # ids in UTF-8 byte order (ASCII here)
    assert list(catalog.ids) == expected
    by_id = {item.item_id: item for item in stored.items}
    assert [catalog.digest_of(i) for i in (0, 17, 19_999)] == [sha(by_id[expected[i]].png) for i in (0, 17, 19_999)]
    assert Catalog.build(stored.shards).to_bytes() == catalog.to_bytes()
    if stored.parquet is not None:
        assert Catalog.build(stored.parquet).to_bytes() == catalog.to_bytes()
    assert Catalog.build(stored.reencoded, content=False).to_bytes() == Catalog.build(stored.folder,
                                                                                       content=False).to_bytes()


@pytest.mark.parametrize("layout", ["folder", "shards", "parquet", "partial", "reencoded"])
def test_resolve_every_layout(stored, catalog, layout):
    local = getattr(stored, layout)
    if local is None:
        pytest.skip("pyarrow is not installed")
    resolution = catalog.resolve(local)
    removed = set(stored.removed) if layout == "partial" else set()
    assert resolution.present == 20_000 - len(removed)
    assert resolution.missing == len(removed)
    assert resolution.extra == 0
    assert {catalog.ids[int(p)] for p in resolution.missing_positions()} == removed
    assert resolution.differ == (20_000 if layout == "reencoded" else 0)
    by_id = {item.item_id: item for item in stored.items}
    for position in (0, 1234, 19_999):
        item_id = catalog.ids[position]
        if item_id in removed:
            continue
        data = resolution.read(position)
        assert (sha(data) == sha(by_id[item_id].png)) == (layout != "reencoded")
    again = catalog.resolve(local)
    assert again.from_cache and again.present == resolution.present
    assert np.array_equal(np.asarray(again.local_of), np.asarray(resolution.local_of))


def test_cache_goes_stale_and_corrupt_cache_is_ignored(stored, tmp_path):
    items = stored.items[:50]
    from tests.refsets import write_folder

    root = write_folder(items, tmp_path / "copy")
    catalog = Catalog.build(root, tmp_path / "c.plcat")
    first = catalog.resolve(root)
    assert not first.from_cache and catalog.resolve(root).from_cache
    victim = root / "train" / items[3].synset / f"{items[3].item_id}.png"
    victim.unlink()
    after = catalog.resolve(root)
    assert not after.from_cache and after.missing == 1 and catalog.ids[int(after.missing_positions()[0])] == \
        items[3].item_id
    for cache in tmp_path.glob("c.plcat.*.resolved.npz"):
        cache.write_bytes(b"PK\x03\x04 not a zip")
    assert not catalog.resolve(root).from_cache


def test_a_catalog_is_not_written_inside_the_folder_it_lists(stored, tmp_path):
    from tests.refsets import write_folder

    root = write_folder(stored.items[:5], tmp_path / "copy")
    for inside in (root / "c.plcat", root / "train" / "c.plcat"):
        with pytest.raises(ReferenceSetError, match="inside the folder it lists"):
            Catalog.build(root, inside)
        assert not inside.exists()
    assert len(Catalog.build(root, root / ".c.plcat")) == 5  # hidden: not an item


def test_an_index_path_that_is_not_a_cache_is_never_overwritten(stored, tmp_path):
    from tests.refsets import write_folder

    root = write_folder(stored.items[:20], tmp_path / "copy")
    catalog = Catalog.build(root, tmp_path / "c.plcat")
    before = (tmp_path / "c.plcat").read_bytes()
    with pytest.raises(ReferenceSetError, match="not a resolution cache; refusing to overwrite"):
        catalog.resolve(root, index=tmp_path / "c.plcat")
    assert (tmp_path / "c.plcat").read_bytes() == before
    mine = tmp_path / "mine.npz"
    assert not catalog.resolve(root, index=mine).from_cache and catalog.resolve(root, index=mine).from_cache
    assert main(["catalog", "resolve", str(root), "--catalog", str(tmp_path / "c.plcat"),
                 "--index", str(tmp_path / "c.plcat")]) != 0
    assert (tmp_path / "c.plcat").read_bytes() == before


def test_bad_inputs_get_one_line(stored, tmp_path):
    from tests.refsets import write_folder

    items = stored.items[:5]
    root = write_folder(items, tmp_path / "dup")
    (root / "train" / "other").mkdir()
    shutil.copy(root / "train" / items[0].synset / f"{items[0].item_id}.png", root / "train" / "other"
                / f"{items[0].item_id}.png")
    with pytest.raises(ReferenceSetError, match="appears twice"):
        Catalog.build(root)
    assert len(Catalog.build(root, id="key", content=False)) == 6  # folders kept: ids differ again
    other = Catalog.build(write_folder(stored.items[5:9], tmp_path / "other"))
    with pytest.raises(plada_codec.ReferenceMismatchError):
        payload = plada_codec.encode([0], [0], n_classes=1, reference=other.reference)
        plada_codec.decode(payload, reference=Catalog.build(write_folder(items, tmp_path / "x")).reference)


def test_parquet_without_image_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"pixels": [b"x"], "label": [0]}), tmp_path / "t.parquet")
    with pytest.raises(ReferenceSetError, match="no 'image' column"):
        Catalog.build(tmp_path / "t.parquet")
    pq.write_table(pa.table({"image": [b"IMG"], "name": ["n01_7"]}), tmp_path / "b.parquet")
    with pytest.raises(ReferenceSetError, match="column:NAME"):
        Catalog.build(tmp_path / "b.parquet")
    catalog = Catalog.build(tmp_path / "b.parquet", id="column:name")
    assert list(catalog.ids) == ["n01_7"] and catalog.digest_of(0) == sha(b"IMG")


def test_tar_siblings_ignored_and_keys(tmp_path):
    with tarfile.open(tmp_path / "s.tar", "w") as archive:
        for name, data in [("d/n01_1.cls", b"3"), ("d/n01_1.jpg", b"IMG-1"), ("d/n01_1.json", b"{}")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    assert list(Catalog.build(tmp_path / "s.tar").ids) == ["n01_1"]
    assert list(Catalog.build(tmp_path / "s.tar", id="key").ids) == ["d/n01_1"]


def test_clustered_order_keeps_payloads_small(stored, catalog):
    """A selection clustered by synset is as small under the catalog order as
    under the folder tree's order, and much smaller than under the shuffled
    shards' own order (what a manifest of those shards would give)."""
    chosen = {s for s in sorted({i.synset for i in stored.items})[:4]}
    selected = sorted(item.item_id for item in stored.items if item.synset in chosen)
    labels_of = {s: n for n, s in enumerate(sorted(chosen))}
    positions = catalog.positions_of(selected)
    catalog_size = len(plada_codec.encode(positions, [labels_of[i.split("_")[0]] for i in selected],
                                          n_classes=4, reference=catalog.reference))
    listing = plada_codec.kinds.list_items(stored.shards)
    shard_order = {name.partition(".")[0]: n for n, name in enumerate(listing.names)}
    shard_positions = sorted(shard_order[i] for i in selected)
    shard_labels = [labels_of[listing.names[p].split("_")[0]] for p in shard_positions]
    shard_size = len(plada_codec.encode(shard_positions, shard_labels, n_classes=4, n_ref=len(listing)))
    assert catalog_size * 2 < shard_size


# -- the CLI ----------------------------------------------------------------------------------------------


def test_cli_build_resolve_and_payload_commands(stored, tmp_path, capsys):
    items = stored.items[:300]
    from tests.refsets import write_folder, write_shards

    folder = write_folder(items, tmp_path / "folder")
    shards = write_shards(items, tmp_path / "shards")
    cat = tmp_path / "ref.plcat.zst"
    assert main(["catalog", "build", str(folder), "-o", str(cat), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["n"] == 300 and built["fields"] == ["id", "sha256"]
    assert main(["catalog", "resolve", str(shards), "--catalog", str(cat), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["present"], report["missing"], report["extra"]) == (300, 0, 0)
    catalog = Catalog.open(cat)
    np.savez(tmp_path / "sel.npz", indices=np.array([1, 2, 250]), labels=np.array([0, 1, 0]))
    payload = tmp_path / "p.plada"
    assert main(["encode", str(tmp_path / "sel.npz"), "-o", str(payload), "--n-classes", "2",
                 "--catalog", str(cat)]) == 0
    capsys.readouterr()
    assert plada_codec.inspect(payload.read_bytes()).fingerprint == catalog.fingerprint
    assert main(["verify", str(payload), "--catalog", str(cat), "--reference", str(shards)]) == 0
    out = capsys.readouterr().out
    assert "all 3 selected items are present" in out and "the 3 selected items" in out and "catalog's bytes" in out
    # a copy holding one selected item with other bytes: verify says which (the fingerprint binds the
    # payload to the catalog, not to the copy)
    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    victim = next(p for p in changed.rglob("*") if p.is_file() and p.stem == catalog.ids[250])
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert main(["verify", str(payload), "--catalog", str(cat), "--reference", str(changed)]) == 0
    out = capsys.readouterr().out
    assert f"1 of the 3 selected items {changed} holds differ in content" in out and repr(catalog.ids[250]) in out
    assert main(["verify", str(payload), "--catalog", str(cat), "--reference", str(changed), "--strict"]) == 1
    assert "of the 3 selected items, 0 are missing" in capsys.readouterr().err
    assert main(["verify", str(payload), "--catalog", str(cat), "--reference", str(shards), "--strict"]) == 0
    capsys.readouterr()
    assert main(["decode", str(payload), "--catalog", str(cat), "-o", str(tmp_path / "o.csv")]) == 0
    assert (tmp_path / "o.csv").read_text() == "index,label\n1,0\n2,1\n250,0\n"
    other = tmp_path / "other.plcat"
    other.write_bytes(C1)
    assert main(["verify", str(payload), "--catalog", str(other)]) == 1
    assert "ReferenceMismatchError" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a negative --head sliced from the end: all but the last ids
        main(["catalog", "show", str(cat), "--head", "-1"])
    assert "--head: must be an integer >= 0, got -1" in capsys.readouterr().err
    assert main(["catalog", "resolve", str(shards), "--catalog", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such catalog" in err


# -- the vector files (spec/vectors/catalog, written from hand-made bytes) ---------------------------------

VECTORS = REPO / "spec" / "vectors" / "catalog"


@pytest.mark.parametrize("path", sorted(VECTORS.glob("*.plcat")), ids=lambda p: p.stem)
def test_valid_vector_files(path):
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    catalog = Catalog.open(path)
    assert catalog.hex == expected["fingerprint"] == sha(path.read_bytes())
    assert len(catalog) == expected["n"] and list(catalog.ids) == expected["id"]
    if "group" in expected:
        assert [catalog.group_of(i) for i in range(len(catalog))] == expected["group"]
    if "sha256" in expected:
        assert [catalog.digest_of(i) for i in range(len(catalog))] == expected["sha256"]
    assert catalog.to_bytes() == path.read_bytes()


@pytest.mark.parametrize("path", sorted(p for p in (VECTORS / "invalid").iterdir() if p.suffix != ".json"),
                         ids=lambda p: p.name.split(".")[0])
def test_invalid_vector_files(path):
    assert json.loads((VECTORS / "invalid" / (path.name.split(".")[0] + ".json")).read_text())["error"] == \
        "ReferenceSetError"
    with pytest.raises(ReferenceSetError):
        Catalog.open(path)


def test_cli_verify_from_standard_input_with_a_local_copy(stored, tmp_path, monkeypatch, capsys):
    import sys
    import types

    from tests.refsets import write_folder

    folder = write_folder(stored.items[:20], tmp_path / "folder")
    cat = tmp_path / "c.plcat"
    catalog = Catalog.build(folder, cat, content=False)
    payload = plada_codec.encode([0, 3], [1, 0], n_classes=2, reference=catalog.reference)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(payload)))
    assert main(["verify", "-", "--catalog", str(cat), "--reference", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "all 2 selected items are present" in out and "OK: -: 2 entries" in out
