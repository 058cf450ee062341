"""The ``arrow`` kind: a Hugging Face ``datasets`` copy as ``Dataset.save_to_disk`` writes it.

The copies are written by ``datasets`` itself (an independent writer of the layout); the
hostile ones are written with pyarrow in the same layout. Expected values are the bytes
written and hashlib digests of them, never a listing of the kind under test.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from plada_codec import Catalog, ReferenceSetError
from plada_codec.kinds import KINDS, detect_kind
from plada_codec.kinds.arrow import ArrowKind
from tests.refsets import make_items, write_folder

pa = pytest.importorskip("pyarrow")

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def test_the_registry_lists_the_kind_before_the_folder_kind():
    names = list(KINDS)
    assert KINDS["arrow"] is ArrowKind and names.index("arrow") < names.index("folder")


@pytest.fixture(scope="module")
def datasets():
    """Hugging Face ``datasets``, the writer of the layout (the hostile copies need only pyarrow)."""
    module = pytest.importorskip("datasets")
    module.disable_progress_bars()
    return module


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def items():
    # Rows in an order that is neither sorted by id nor grouped by synset.
    chosen = make_items(13, n_synsets=3)
    random.Random(5).shuffle(chosen)
    return chosen


def save_to_disk(datasets, items, root: Path, num_shards: int = 2, **extra_columns) -> Path:
    """*items* as ``datasets`` saves them: an Image column of bytes and ``<id>.png`` paths."""
    features = {"image": datasets.Image(), "synset": datasets.Value("string")}
    columns = {"image": [{"bytes": i.png, "path": f"{i.item_id}.png"} for i in items],
               "synset": [i.synset for i in items]}
    for name, (feature, values) in extra_columns.items():
        features[name], columns[name] = feature, values
    dataset = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    dataset.save_to_disk(str(root), num_shards=num_shards)
    return root


@pytest.fixture(scope="module")
def copy(datasets, items, tmp_path_factory):
    return save_to_disk(datasets, items, tmp_path_factory.mktemp("arrow") / "train")


def rows_of(file: Path) -> list[str]:
    """The image paths of one data file, read with pyarrow alone."""
    table = pa.ipc.open_stream(pa.memory_map(str(file))).read_all()
    return [row["path"] for row in table.column("image").to_pylist()]


def data_files(root: Path) -> list[Path]:
    return [root / entry["filename"] for entry in json.loads((root / "state.json").read_text())["_data_files"]]


def test_detected_before_the_folder_kind(copy, tmp_path):
    assert detect_kind(copy) is ArrowKind
    assert {p.name for p in copy.iterdir()} == {"state.json", "dataset_info.json", "data-00000-of-00002.arrow",
                                                "data-00001-of-00002.arrow"}
    # Plain folders stay folders: images beside a state.json, or beside both json files but no .arrow.
    plain = write_folder(make_items(2), tmp_path / "plain")
    (plain / "state.json").write_text("{}")
    assert detect_kind(plain).name == "folder"
    (plain / "dataset_info.json").write_text("{}")
    assert detect_kind(plain).name == "folder"


def test_listing_follows_state_json_then_rows(items, copy):
    listing = ArrowKind.scan(str(copy))
    expected = [f"{i.item_id}.png" for i in items]  # save_to_disk keeps row order across its shards
    assert list(listing.names) == expected
    assert listing.sources == [str(f) for f in data_files(copy)]
    assert list(listing.names) == rows_of(data_files(copy)[0]) + rows_of(data_files(copy)[1])
    assert [listing.read(i) for i in range(len(items))] == [i.png for i in items]
    assert [listing.digest(i) for i in range(len(items))] == [sha(i.png) for i in items]
    assert list(ArrowKind.item_names(listing, "stem")) == [i.item_id for i in items]
    assert listing.where(len(items) - 1).endswith(f"row {len(rows_of(data_files(copy)[1])) - 1} "
                                                  f"({items[-1].item_id}.png)")


def test_state_json_order_decides(items, copy, tmp_path):
    swapped = tmp_path / "swapped"
    shutil.copytree(copy, swapped)
    state = json.loads((swapped / "state.json").read_text())
    state["_data_files"].reverse()
    (swapped / "state.json").write_text(json.dumps(state))
    first, second = data_files(copy)
    listing = ArrowKind.scan(str(swapped))
    assert list(listing.names) == rows_of(second) + rows_of(first)
    by_path = {f"{i.item_id}.png": i.png for i in items}
    assert [listing.read(i) for i in range(len(listing))] == [by_path[name] for name in listing.names]
    # The state file is part of the signature: reordering it invalidates a cached resolution.
    assert ArrowKind.signature(str(swapped))[0][0] == "state.json"


def test_catalog_equals_the_folder_catalog(items, copy, tmp_path):
    folder = write_folder(items, tmp_path / "folder")  # train/<synset>/<id>.png
    expected = "plada-catalog 1\nfields id sha256\n" + "".join(
        f"{i.item_id}\t{sha(i.png)}\n" for i in sorted(items, key=lambda i: i.item_id.encode()))
    from_arrow = Catalog.build(copy, id="stem")
    assert from_arrow.to_bytes() == expected.encode()
    assert from_arrow.to_bytes() == Catalog.build(folder, id="stem").to_bytes()


def test_folder_catalog_resolves_against_the_arrow_copy(items, copy, tmp_path):
    folder = write_folder(items, tmp_path / "folder")
    Catalog.build(folder, tmp_path / "ref.plcat", id="stem")
    catalog = Catalog.open(tmp_path / "ref.plcat")
    for attempt in ("listed", "cached"):  # the second resolve comes from the cache beside the catalog
        resolution = catalog.resolve(copy)
        assert (resolution.present, resolution.missing, resolution.differ) == (len(items), 0, 0), attempt
        by_id = {i.item_id: i.png for i in items}
        assert [resolution.read(p) for p in range(len(catalog))] == [by_id[i] for i in catalog.ids], attempt


def test_column_rule(datasets, items, tmp_path):
    keys = [f"k{n:03d}" for n in range(len(items))]
    numbers = [7 * n + 1 for n in range(len(items))]
    root = save_to_disk(datasets, items, tmp_path / "c", key=(datasets.Value("string"), keys),
                        number=(datasets.Value("int64"), numbers))
    catalog = Catalog.build(root, id="column:key")
    assert list(catalog.ids) == sorted(keys)
    assert [catalog.digest_of(catalog.index_of(k)) for k in keys] == [sha(i.png) for i in items]
    assert sorted(Catalog.build(root, id="column:number").ids, key=int) == [str(n) for n in numbers]
    with pytest.raises(ReferenceSetError, match="no column 'absent'"):
        Catalog.build(root, id="column:absent")


def test_reads_from_threads(items, copy):
    listing = ArrowKind.scan(str(copy))
    wrong = []

    def reader(seed: int) -> None:
        order = random.Random(seed).choices(range(len(items)), k=400)
        wrong.extend(i for i in order if listing.read(i) != items[i].png)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


# ---------------------------------------------------------------------------- layouts pyarrow writes


def write_copy(root: Path, tables: list, *, compression=None, max_rows: int | None = None) -> Path:
    """*tables* as data files of a save_to_disk layout, written with pyarrow."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data-{n:05d}-of-{len(tables):05d}.arrow" for n in range(len(tables))]
    for name, table in zip(names, tables):
        with pa.OSFile(str(root / name), "wb") as out:
            options = pa.ipc.IpcWriteOptions(compression=compression)
            with pa.ipc.new_stream(out, table.schema, options=options) as writer:
                writer.write_table(table, max_chunksize=max_rows)
    (root / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names]}))
    (root / "dataset_info.json").write_text("{}")
    return root


def refused(root: Path, match: str, **build) -> str:
    with pytest.raises(ReferenceSetError, match=match) as info:
        Catalog.build(root, **build)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_binary_image_column_needs_an_id_column(tmp_path):
    table = pa.table({"image": pa.array([b"IMG-A", b"IMG-BB"], pa.binary()), "name": ["n01_1", "n01_2"]})
    root = write_copy(tmp_path / "b", [table])
    refused(root, "column:NAME")
    catalog = Catalog.build(root, id="column:name")
    assert list(catalog.ids) == ["n01_1", "n01_2"]
    assert [catalog.digest_of(0), catalog.digest_of(1)] == [sha(b"IMG-A"), sha(b"IMG-BB")]


def test_a_row_without_image_bytes(tmp_path):
    images = pa.array([{"bytes": b"IMG", "path": "a.png"}, {"bytes": None, "path": "b.png"}], IMAGE_TYPE)
    root = write_copy(tmp_path / "n", [pa.table({"image": images})])
    assert list(Catalog.build(root, content=False).ids) == ["a", "b"]
    refused(root, r"data-00000-of-00001\.arrow row 1 \(b\.png\): the row holds no image bytes")


@pytest.mark.parametrize(("column", "match"), [
    (pa.array([{"bytes": 2**40, "path": "a.png"}], pa.struct([("bytes", pa.int64()), ("path", pa.string())])),
     r"column 'image\.bytes' is int64"),
    (pa.array([{"bytes": b"IMG", "path": 5}], pa.struct([("bytes", pa.binary()), ("path", pa.int64())])),
     r"column 'image\.path' is int64"),
    (pa.array([[1, 2]], pa.list_(pa.int64())), r"column 'image' is list<item: int64>"),
    (pa.array([{"path": "a.png"}], pa.struct([("path", pa.string())])), r"column 'image' is struct"),
])
def test_image_column_of_the_wrong_type(tmp_path, column, match):
    message = refused(write_copy(tmp_path / "w", [pa.table({"image": column})]), match)
    assert "data-00000-of-00001.arrow" in message


def test_no_image_column(tmp_path):
    refused(write_copy(tmp_path / "w", [pa.table({"pixels": [b"x"]})]), "no 'image' column")


@pytest.mark.parametrize(("values", "kind"), [
    (pa.array([1.5]), "double"), (pa.array([b"id1"]), "binary"), (pa.array([[1]]), "list<item: int64>"),
    (pa.array([True]), "bool"),
])
def test_id_column_of_the_wrong_type(tmp_path, values, kind):
    images = pa.array([{"bytes": b"IMG", "path": "a.png"}], IMAGE_TYPE)
    root = write_copy(tmp_path / "w", [pa.table({"image": images, "name": values})])
    refused(root, f"column 'name' is {kind}; an id column holds strings or integers", id="column:name")


def small_copy(root: Path, rows: int = 9, max_rows: int = 4, **options) -> Path:
    images = pa.array([{"bytes": b"IMG-%d" % i * (i + 1), "path": f"n01_{i}.png"} for i in range(rows)], IMAGE_TYPE)
    return write_copy(root, [pa.table({"image": images, "label": list(range(rows))})], max_rows=max_rows, **options)


def test_every_truncation_is_refused(tmp_path):
    root = small_copy(tmp_path / "t")
    file = data_files(root)[0]
    whole = file.read_bytes()
    assert len(Catalog.build(root)) == 9
    for length in range(len(whole)):  # cut inside a message or exactly between two batches
        file.write_bytes(whole[:length])
        with pytest.raises(ReferenceSetError, match="data-00000-of-00001.arrow") as info:
            ArrowKind.scan(str(root))
        assert "\n" not in str(info.value)
    file.write_bytes(whole + b"\0" * 8)
    refused(root, "end-of-stream marker")


def test_bit_flips_are_read_or_refused(tmp_path):
    root = small_copy(tmp_path / "f")
    file = data_files(root)[0]
    whole = file.read_bytes()
    rng = random.Random(0)
    outcomes = set()
    for _ in range(300):
        flipped = bytearray(whole)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        file.write_bytes(bytes(flipped))
        try:
            listing = ArrowKind.scan(str(root))
            for i in range(len(listing)):
                try:
                    assert len(listing.read(i)) <= len(flipped)
                except ReferenceSetError:
                    pass
            outcomes.add("read")
        except ReferenceSetError as exc:
            assert "\n" not in str(exc)
            outcomes.add("refused")
    assert outcomes == {"read", "refused"}


def test_compressed_batches_refused_before_decompressing(tmp_path):
    refused(small_copy(tmp_path / "z", compression="zstd"), "compressed record batches")


def test_a_file_changed_after_listing(tmp_path):
    root = small_copy(tmp_path / "c", max_rows=None)
    listing = ArrowKind.scan(str(root))
    file = data_files(root)[0]
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(ReferenceSetError, match="past the end of the file; it changed since it was listed"):
        listing.read(len(listing) - 1)
    listing.size[0] = 2**40  # as a damaged cache would hold it: refused before anything is allocated
    with pytest.raises(ReferenceSetError, match="past the end"):
        listing.read(0)


def test_an_empty_image(tmp_path):
    images = pa.array([{"bytes": b"", "path": "a.png"}, {"bytes": b"IMG", "path": "b.png"}], IMAGE_TYPE)
    listing = ArrowKind.scan(str(write_copy(tmp_path / "e", [pa.table({"image": images})])))
    assert [listing.read(0), listing.read(1)] == [b"", b"IMG"]


def write_state(root: Path, state) -> None:
    (root / "state.json").write_text(state if isinstance(state, str) else json.dumps(state))


@pytest.mark.parametrize(("state", "match"), [
    ({"_data_files": [{"filename": "../outside.arrow"}]}, "not a plain file name"),
    ({"_data_files": [{"filename": "/etc/passwd"}]}, "not a plain file name"),
    ({"_data_files": [{"filename": "sub/data.arrow"}]}, "not a plain file name"),
    ({"_data_files": [{"filename": ".."}]}, "not a plain file name"),
    ({"_data_files": [{"filename": "absent.arrow"}]}, "absent.arrow: listed in state.json but cannot be read"),
    ({"_data_files": [{"filename": "data-00000-of-00001.arrow"}] * 2}, "twice"),
    ({"_data_files": [{"filename": 7}]}, r"_data_files\[0\] has no 'filename' string"),
    ({"_data_files": []}, "not a non-empty list"),
    ({"_data_files": "data-00000-of-00001.arrow"}, "not a non-empty list"),
    ({"_data_files": [{"filename": "data-00000-of-00001.arrow"}],
      "_indices_data_files": [{"filename": "indices.arrow"}]}, "indices mapping"),
    ([1, 2], "not a JSON object"),
    ("{", "not valid JSON"),
    ("[" * 100_000, "not valid JSON"),
    ('{"_data_files": [{"filename": "\\ud800.arrow"}]}', "cannot be read"),
])
def test_hostile_state_json(tmp_path, state, match):
    root = small_copy(tmp_path / "s")
    (tmp_path / "outside.arrow").write_bytes(data_files(root)[0].read_bytes())
    write_state(root, state)
    message = refused(root, match)
    assert "state.json" in message or "absent.arrow" in message


def test_state_json_limits_and_special_files(tmp_path):
    root = small_copy(tmp_path / "s")
    data = data_files(root)[0]
    write_state(root, " " * (17 << 20))
    refused(root, "larger than")
    os.symlink(data, root / "link.arrow")
    write_state(root, {"_data_files": [{"filename": "link.arrow"}]})
    refused(root, "link.arrow: listed in state.json but not a regular file")
    os.mkfifo(root / "fifo.arrow")  # opening a FIFO for reading would wait for a writer forever
    write_state(root, {"_data_files": [{"filename": "fifo.arrow"}]})
    refused(root, "fifo.arrow: listed in state.json but not a regular file")
    (root / "state.json").unlink()
    os.mkfifo(root / "state.json")
    with pytest.raises(ReferenceSetError, match="state.json: not a regular file"):
        ArrowKind.scan(str(root))


def test_dataset_dict_names_its_splits(datasets, items, tmp_path):
    root = tmp_path / "dd"
    dataset = datasets.Dataset.from_dict({"image": [{"bytes": i.png, "path": f"{i.item_id}.png"} for i in items[:3]]},
                                         features=datasets.Features({"image": datasets.Image()}))
    datasets.DatasetDict({"train": dataset, "test": dataset}).save_to_disk(str(root))
    with pytest.raises(ReferenceSetError, match="DatasetDict; give one split's folder .*test, train"):
        detect_kind(root)
    assert list(Catalog.build(root / "train").ids) == sorted(i.item_id for i in items[:3])


def test_ref_hash_points_a_user_at_a_catalog(copy, capsys):
    # The copy has no manifest of its own (section 3.5): ref-hash says to build a catalog instead of
    # hashing state.json and the .arrow files as a folder of files.
    from plada_codec.cli import EXIT_USAGE, main

    assert main(["ref-hash", str(copy)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arrow copy has no manifest of its own" in err[0] and "plada catalog build" in err[0]


def test_training_reads_the_copy_through_a_catalog_with_no_edit_of_its_own(items, copy, tmp_path):
    # produce/consume open a reference through plada_train.data.open_reference: a catalog of the
    # images as a folder, and the arrow copy as the local copy, give the catalog's images in order.
    pytest.importorskip("torch")
    from PIL import Image

    from plada_train.data import DataError, open_reference

    Catalog.build(write_folder(items, tmp_path / "folder"), tmp_path / "ref.plcat", id="stem")
    reference = open_reference(copy, catalog=tmp_path / "ref.plcat")
    by_id = {i.item_id: i.png for i in items}
    ids = sorted(by_id, key=str.encode)
    assert len(reference) == len(items) and [reference.item_id(i) for i in range(len(reference))] == ids
    with Image.open(io.BytesIO(by_id[ids[3]])) as expected:
        assert np.array_equal(np.asarray(reference.raw(3)), np.asarray(expected))
    with pytest.raises(DataError, match="arrow reference has no manifest of its own.*--catalog"):
        open_reference(copy)
