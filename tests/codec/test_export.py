"""``plada export`` and ``plada_codec.export``: each format loaded back with the
tool its users read it with (the csv module, torchvision's ImageFolder,
webdataset, pyarrow / datasets), compared with the image bytes written into
the fixture copies and the labels encoded into the payload."""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

import plada_codec
from plada_codec import export
from tests.refsets import make_items as _make_items
from tests.refsets import store, write_folder


def make_items(*args, **kwargs):
    pytest.importorskip("PIL")  # refsets writes real PNG files; the codec's own env has no Pillow
    return _make_items(*args, **kwargs)

N_ITEMS = 160
# Duplicates, a path separator, a Windows device name and an empty class (label 5 gets no item).
CLASS_NAMES = ["cat", "dog/wolf", "cat", "CON", "über fish", "nobody"]


def _selection(n: int) -> tuple[list[int], list[int]]:
    positions = list(range(0, n, 3))
    return positions, [(p * 7) % 5 for p in positions]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("export"))


def build_world(base: Path) -> dict:
    """The fixture copies, a catalog of the full folder, a payload over it, and what it selects:
    {item id: (png bytes, label)} derived from the items written, not from plada."""
    items = make_items(N_ITEMS, n_synsets=8)
    stored = store(items, base)
    catalog = plada_codec.Catalog.build(stored.folder, base / "ref.plcat", content=True)
    ordered = sorted(items, key=lambda i: i.item_id.encode())  # catalog order: ids by UTF-8 bytes
    positions, labels = _selection(len(ordered))
    payload = plada_codec.encode(positions, labels, n_classes=len(CLASS_NAMES), reference=catalog.reference,
                                 class_names=CLASS_NAMES, metadata={"preprocess": {"kind": "smallcnn"}})
    (base / "p.plada").write_bytes(payload)
    for p in positions[1:10:5]:  # the partial copy lacks some selected items too
        item = ordered[p]
        os.remove(stored.partial / "train" / item.synset / f"{item.item_id}.png")
        stored.removed.append(item.item_id)
    expected = {ordered[p].item_id: (ordered[p].png, lab) for p, lab in zip(positions, labels)}
    return {"base": base, "stored": stored, "catalog": base / "ref.plcat", "payload": base / "p.plada",
            "expected": expected, "positions": positions, "labels": labels, "ordered": ordered}


def _pairs(pairs) -> collections.Counter:
    return collections.Counter((bytes(data), int(label)) for data, label in pairs)


def _expected(world, copy: str = "folder") -> collections.Counter:
    removed = set(world["stored"].removed) if copy == "partial" else set()
    return _pairs(v for k, v in world["expected"].items() if k not in removed)


def _copy(world, copy: str) -> Path:
    return getattr(world["stored"], copy)


def _vset(world, copy: str, **options):
    return export.virtual_set(world["payload"], _copy(world, copy), world["catalog"], **options)


# -- rows -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["folder", "shards", "parquet", "partial"])
def test_rows_name_the_selected_items_where_the_copy_holds_them(world, copy):
    vset = _vset(world, copy)
    removed = set(world["stored"].removed) if copy == "partial" else set()
    wanted = [(p, lab) for p, lab in zip(world["positions"], world["labels"])
              if world["ordered"][p].item_id not in removed]
    assert vset.positions.tolist() == [p for p, _ in wanted]
    assert vset.labels.tolist() == [lab for _, lab in wanted]
    assert list(vset.ids) == [world["ordered"][p].item_id for p, _ in wanted]
    assert sorted(vset.missing_ids) == sorted(i for i in world["expected"] if i in removed)
    for j, row in enumerate(vset.rows()):
        png, label = world["expected"][row["id"]]
        assert row["label"] == label and row["class_name"] == CLASS_NAMES[label]
        assert vset.read(j) == png
        if copy in ("folder", "partial"):
            assert Path(row["file"]).read_bytes() == png
        elif copy == "shards":
            with open(row["file"], "rb") as fh:
                fh.seek(row["offset"])
                assert fh.read(row["size"]) == png


@pytest.mark.parametrize("fmt,copy", [("csv", "folder"), ("jsonl", "shards"), ("csv", "partial")])
def test_csv_and_jsonl_rows_read_back_to_the_selected_bytes_and_labels(world, tmp_path, fmt, copy):
    out = tmp_path / f"sel.{fmt}"
    export.write(_vset(world, copy), out, fmt)
    text = out.read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines())) if fmt == "csv" else [json.loads(line) for line in
                                                                          text.splitlines()]
    pairs = []
    for row in rows:
        with open(row["file"], "rb") as fh:
            fh.seek(int(row["offset"]))
            pairs.append((fh.read(int(row["size"])), int(row["label"])))
        assert row["class_name"] == CLASS_NAMES[int(row["label"])]
        assert world["expected"][row["id"]][1] == int(row["label"])
    assert _pairs(pairs) == _expected(world, copy)


# -- imagefolder ------------------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["folder", "shards", "parquet", "partial"])
def test_imagefolder_loads_in_torchvision_with_the_payload_labels(world, tmp_path, copy):
    datasets = pytest.importorskip("torchvision.datasets")
    out = tmp_path / "if"
    result = export.write(_vset(world, copy), out, "imagefolder")
    # Label 5 has no item: its folder is kept, so torchvision numbers the classes as the payload does.
    assert result.empty_classes == ("nobody",)
    folder = datasets.ImageFolder(str(out), loader=lambda path: Path(path).read_bytes(), allow_empty=True)
    assert len(folder.classes) == len(CLASS_NAMES)
    assert _pairs(folder) == _expected(world, copy)
    links = [p for p in out.rglob("*") if p.is_symlink()]
    assert len(links) == (len(folder) if copy in ("folder", "partial") else 0)


def test_imagefolder_copy_writes_files_not_links(world, tmp_path):
    out = tmp_path / "if"
    export.write(_vset(world, "folder"), out, "imagefolder", copy=True)
    files = [p for p in out.rglob("*.png")]
    assert files and not any(p.is_symlink() for p in files)
    info = json.loads((out / export.EXPORT_INFO).read_text())
    assert info["class_folders"] == ["0_cat", "1_dog_wolf", "2_cat_2", "3_CON", "4_über_fish", "5_nobody"]
    got = _pairs((p.read_bytes(), info["class_folders"].index(p.parent.name)) for p in files)
    assert got == _expected(world)


# -- wds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["shards", "folder", "partial"])
def test_wds_shards_read_by_webdataset(world, tmp_path, copy):
    wds = pytest.importorskip("webdataset")
    out = tmp_path / "wds"
    result = export.write(_vset(world, copy), out, "wds", shard_samples=20)
    shards = sorted(str(p) for p in out.glob("train-*.tar"))
    assert len(shards) == result.files == -(-result.count // 20)
    samples = list(wds.WebDataset(shards, shardshuffle=False, empty_check=False))
    pairs = []
    for sample in samples:
        meta = json.loads(sample["json"])
        assert int(sample["cls"]) == meta["label"] and meta["class_name"] == CLASS_NAMES[meta["label"]]
        assert world["expected"][meta["id"]][1] == meta["label"]
        pairs.append((sample["png"], int(sample["cls"])))
    assert _pairs(pairs) == _expected(world, copy)
    info = json.loads((out / "_info.json").read_text())["splits"]["train"]
    assert info["num_samples"] == len(samples) and sum(info["shard_lengths"]) == len(samples)


def test_wds_shards_are_a_plada_tar_reference_of_the_selected_images(world, tmp_path):
    out = tmp_path / "wds"
    export.write(_vset(world, "shards"), out, "wds", shard_samples=25)
    got = {i.key: (Path(i.shard).open("rb").read()[i.offset:i.offset + i.size]) for i in plada_codec.tar_images(out)}
    assert collections.Counter(got.values()) == collections.Counter(png for png, _ in world["expected"].values())


# -- parquet ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["parquet", "shards", "partial"])
def test_parquet_reads_back_with_pyarrow(world, tmp_path, copy):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "pq"
    export.write(_vset(world, copy), out, "parquet")
    files = sorted(out.glob("train-*.parquet"))
    assert [f.name for f in files] == [f"train-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))]
    table = pq.read_table(files)
    pairs = [(image["bytes"], label) for image, label in zip(table.column("image").to_pylist(),
                                                             table.column("label").to_pylist())]
    assert _pairs(pairs) == _expected(world, copy)
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["label"]["names"] == ["cat", "dog/wolf", "cat~2", "CON", "über fish", "nobody"]


def test_parquet_loads_with_hugging_face_datasets(world, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "pq"
    export.write(_vset(world, "shards"), out, "parquet")
    loaded = datasets.load_dataset("parquet", data_files=str(out / "train-*.parquet"), split="train",
                                   cache_dir=str(tmp_path / "cache"))
    assert loaded.features["label"].names[:3] == ["cat", "dog/wolf", "cat~2"]
    loaded = loaded.cast_column("image", datasets.Image(decode=False))
    assert _pairs((row["image"]["bytes"], row["label"]) for row in loaded) == _expected(world)


# -- rules -----------------------------------------------------------------------------------------


def test_without_a_catalog_positions_are_the_copys_canonical_order(world, tmp_path):
    stored = world["stored"]
    # A folder's order: relative paths by bytes; tar shards': shard names sorted, members in archive order.
    folder_order = sorted((f"train/{i.synset}/{i.item_id}.png".encode(), i) for i in stored.items)
    shard_order = []
    for shard in sorted(stored.shards.glob("*.tar")):
        with tarfile.open(shard) as archive:
            shard_order += [m.name.rpartition(".")[0] for m in archive.getmembers() if m.name.endswith(".png")]
    by_id = {i.item_id: i for i in stored.items}
    for copy, order in ((stored.folder, [i for _, i in folder_order]), (stored.shards,
                                                                          [by_id[k] for k in shard_order])):
        reference = plada_codec.ReferenceSet.open(copy)
        positions, labels = _selection(len(order))
        payload = plada_codec.encode(positions, labels, n_classes=5, reference=reference)
        vset = export.virtual_set(payload, copy)
        assert [vset.read(j) for j in range(len(vset))] == [order[p].png for p in positions]
        out = tmp_path / f"{copy.name}.wds"
        export.write(vset, out, "wds")
        with tarfile.open(out / "train-000000.tar") as archive:
            keys = {m.name.partition(".")[0] for m in archive.getmembers()}
        assert keys == {order[p].item_id for p in positions}  # named by the stem rule, as a catalog would


def test_a_payload_for_another_reference_is_refused_before_anything_is_read(world, tmp_path):
    other = plada_codec.encode([0, 1], [0, 1], n_ref=N_ITEMS, n_classes=2, reference=b"\x01" * 32)
    with pytest.raises(plada_codec.ReferenceMismatchError):
        export.virtual_set(other, world["stored"].folder, world["catalog"])
    with pytest.raises(plada_codec.ReferenceMismatchError):
        export.virtual_set(other, world["stored"].folder)


def test_more_missing_items_than_allowed_are_refused(world):
    with pytest.raises(plada_codec.ReferenceSetError, match="missing from .*above max missing 0"):
        _vset(world, "partial", max_missing=0)
    assert len(_vset(world, "partial", max_missing=1).missing_positions) > 0


def test_an_existing_output_is_refused_and_left_as_it_was(world, tmp_path):
    vset = _vset(world, "folder")
    for fmt, out in (("imagefolder", tmp_path / "empty"), ("csv", tmp_path / "sel.csv")):
        (out.mkdir() if fmt == "imagefolder" else out.write_text("mine"))
        with pytest.raises(export.ExportError, match="exists"):
            export.write(vset, out, fmt)
    assert not any((tmp_path / "empty").iterdir()) and (tmp_path / "sel.csv").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "sel.csv"]  # no temporary left


def test_a_failed_export_leaves_no_output(world, tmp_path, monkeypatch):
    vset = _vset(world, "shards")
    calls = []

    def failing_read(j):
        calls.append(j)
        if len(calls) > 5:
            raise OSError("disk gone")
        return original(j)

    original = vset.read
    monkeypatch.setattr(vset, "read", failing_read)
    with pytest.raises(OSError):
        export.write(vset, tmp_path / "out", "wds")
    assert list(tmp_path.iterdir()) == []


def test_names_that_collide_after_sanitising_never_overwrite(tmp_path):
    items = make_items(6, n_synsets=2)
    ids = ["Ab", "a b", "ab", "a_b", "NUL", "x" * 200]  # 0, 2, 4 in one folder; 1, 3, 5 in another
    for item, new_id in zip(items, ids):
        item.item_id = new_id
    copy = write_folder(items, tmp_path / "copy")
    catalog = plada_codec.Catalog.build(copy, tmp_path / "c.plcat", id="key")
    # key rule: ids keep their folders (train/n00000000/Ab), so the '/' are sanitised too.
    payload = plada_codec.encode(list(range(len(catalog))), [0] * len(catalog), n_classes=1,
                                 reference=catalog.reference)
    vset = export.virtual_set(payload, copy, tmp_path / "c.plcat", id_rule="key")
    out = tmp_path / "if"
    export.write(vset, out, "imagefolder", copy=True)
    files = sorted((out / "0").iterdir())
    assert len(files) == len(items)
    assert len({f.name.casefold() for f in files}) == len(items)
    assert collections.Counter(f.read_bytes() for f in files) == collections.Counter(i.png for i in items)
    assert all(len(f.name.encode()) <= 160 for f in files)


def test_safe_name_rules():
    assert export.safe_name("n01440764_10026") == "n01440764_10026"
    assert export.safe_name("a/b.c d") == "a_b_c_d"
    assert export.safe_name("con") == "con_" and export.safe_name("Größe") == "Größe"
    assert len(export.safe_name("é" * 200).encode()) <= 120
    assert export.unique_class_names(["a", "b", "a", "a~2"]) == ["a", "b", "a~2", "a~2~3"]


# -- the command ---------------------------------------------------------------------------------


def _run(argv: list[str]) -> int:
    from plada_codec import cli
    from plada_codec.cli.export import add_export_command

    parser = argparse.ArgumentParser(prog="plada")
    sub = parser.add_subparsers(dest="command", required=True)
    add_export_command(sub, "")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except cli.UsageError:
        return cli.EXIT_USAGE


def test_command_writes_each_format(world, tmp_path, capsys):
    for fmt in export.FORMATS:
        out = tmp_path / f"out-{fmt}"
        code = _run(["export", str(world["payload"]), "--reference", str(world["stored"].partial), "--catalog",
                     str(world["catalog"]), "--format", fmt, "-o", str(out), "--json"])
        assert code == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["count"] == len(world["expected"]) - printed["missing"] and printed["missing"] > 0
    code = _run(["export", str(world["payload"]), "--reference", str(world["stored"].partial), "--catalog",
                 str(world["catalog"]), "--format", "csv", "-o", str(tmp_path / "out-csv")])
    assert code == 2


def test_plada_export_command_line(world, tmp_path, capsys):
    from plada_codec import cli

    out = tmp_path / "if"
    assert cli.main(["export", str(world["payload"]), "--reference", str(world["stored"].folder), "--catalog",
                     str(world["catalog"]), "--format", "imagefolder", "-o", str(out)]) == 0
    assert cli.main(["export", str(world["payload"]), "--reference", str(world["stored"].folder), "--catalog",
                     str(world["catalog"]), "--format", "imagefolder", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert cli.main(["export", str(world["payload"]), "--reference", str(world["stored"].partial), "--catalog",
                     str(world["catalog"]), "--format", "csv", "-o", str(tmp_path / "s.csv"),
                     "--max-missing", "0"]) == 2
    assert os.path.exists(out) and not os.path.exists(tmp_path / "s.csv")


def test_without_a_catalog_a_folder_with_other_files_or_a_parquet_copy_is_refused(world, tmp_path):
    items = make_items(4, n_synsets=1)
    copy = write_folder(items, tmp_path / "copy")
    (copy / "README.txt").write_text("not an image")  # it is part of the reference set: it would shift positions
    payload = plada_codec.encode([0], [0], n_classes=1, reference=plada_codec.ReferenceSet.open(copy))
    with pytest.raises(plada_codec.ReferenceSetError, match="not images"):
        export.virtual_set(payload, copy)
    with pytest.raises(plada_codec.ReferenceSetError, match="catalog"):
        export.virtual_set(payload, world["stored"].parquet)


def test_an_empty_selection_writes_empty_outputs(world, tmp_path):
    catalog = plada_codec.Catalog.open(world["catalog"])
    payload = plada_codec.encode([], [], n_classes=2, reference=catalog.reference)
    vset = export.virtual_set(payload, world["stored"].shards, catalog)
    for fmt in export.FORMATS:
        result = export.write(vset, tmp_path / fmt, fmt)
        assert result.count == 0 and result.empty_classes == (() if fmt in ("csv", "jsonl") else ("0", "1"))


def test_a_folder_a_killed_export_left_is_removed_by_the_next_one(world, tmp_path):
    left = tmp_path / ".out.999999999.tmp"  # no such process
    (left / "0_cat").mkdir(parents=True)
    export.write(_vset(world, "folder"), tmp_path / "out", "imagefolder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_fingerprint_the_caller_holds_is_not_computed_again(world, monkeypatch):
    copy = world["stored"].folder
    reference = plada_codec.ReferenceSet.open(copy)
    payload = plada_codec.encode([0, 5], [1, 0], n_classes=2, reference=reference)

    def refuse(*args, **kwargs):
        raise AssertionError("hashed the copy again")

    monkeypatch.setattr(plada_codec.ReferenceSet, "open", refuse)
    vset = export.virtual_set(payload, copy, reference_set=reference)
    assert vset.labels.tolist() == [1, 0]
    with pytest.raises(plada_codec.ReferenceMismatchError):
        export.virtual_set(payload, copy, reference_set=plada_codec.ReferenceSet(reference.n_ref, b"\x02" * 32))


def test_timm_reads_the_imagefolder_and_wds_exports_with_the_payload_labels(world, tmp_path):
    timm_data = pytest.importorskip("timm.data")
    pytest.importorskip("webdataset")
    from PIL import Image

    # Class 2 gets no item: timm numbers the folders it finds, so the class map keeps the payload's labels.
    catalog = plada_codec.Catalog.open(world["catalog"])
    positions = world["positions"]
    labels = [(0, 1, 3, 4, 5)[p % 5] for p in positions]
    payload = plada_codec.encode(positions, labels, n_classes=6, reference=catalog.reference)
    expected = collections.Counter((Image.open(io.BytesIO(world["ordered"][p].png)).convert("RGB").tobytes(), label)
                                   for p, label in zip(positions, labels))
    vset = export.virtual_set(payload, world["stored"].shards, catalog)
    export.write(vset, tmp_path / "if", "imagefolder")
    export.write(vset, tmp_path / "wds", "wds", shard_samples=20)
    folder = timm_data.create_dataset("", root=str(tmp_path / "if"), is_training=False,
                                      class_map=str(tmp_path / "if" / export.CLASS_MAP))
    shards = timm_data.create_dataset("wds/", root=str(tmp_path / "wds"), split="train", is_training=False)
    for dataset in (folder, shards):
        assert collections.Counter((image.convert("RGB").tobytes(), int(label)) for image, label in dataset) \
            == expected
