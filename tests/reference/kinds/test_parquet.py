"""The parquet kind (plada_codec.kinds.parquet): copies whose columns have the wrong type, or
whose pages are damaged, are refused in one line naming the file and the column
(spec/REFERENCE.md 8.2): never a traceback, never a size read from the data and allocated,
never a list of numbers hashed as if it were bytes."""

from __future__ import annotations

import pytest

from plada_codec import Catalog, ReferenceSetError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def write(path, columns: dict, **kwargs):
    pq.write_table(pa.table(columns), path, **kwargs)
    return path


def image_struct(paths, images):
    return pa.array([{"bytes": b, "path": p} for b, p in zip(images, paths)])


@pytest.mark.parametrize("image, column", [
    (pa.StructArray.from_arrays([pa.array([b"x"]), pa.array([7], pa.int64())], ["bytes", "path"]), "image.path"),
    (pa.StructArray.from_arrays([pa.array([2**40], pa.int64()), pa.array(["a.png"])], ["bytes", "path"]),
     "image.bytes"),
    (pa.StructArray.from_arrays([pa.array([[1, 2, 3]], pa.list_(pa.int64())), pa.array(["a.png"])],
                                ["bytes", "path"]), "image.bytes"),
    (pa.array([[1, 2, 3]], pa.list_(pa.int64())), "'image'"),
    (pa.array([2**40], pa.int64()), "'image'"),
    (pa.array(["a string"]), "'image'"),
])
def test_an_image_column_of_the_wrong_type_is_refused_naming_file_and_column(tmp_path, image, column):
    path = write(tmp_path / "bad.parquet", {"image": image})
    for attempt in (lambda: Catalog.build(path), lambda: Catalog.from_items(["a"]).resolve(path)):
        with pytest.raises(ReferenceSetError) as caught:
            attempt()
        message = str(caught.value)
        assert str(path) in message and column in message and "\n" not in message


def test_plain_binary_and_large_types_are_images(tmp_path):
    big = pa.StructArray.from_arrays([pa.array([b"IMG"], pa.large_binary()), pa.array(["a.png"], pa.large_string())],
                                     ["bytes", "path"])
    one = write(tmp_path / "large.parquet", {"image": big})
    assert list(Catalog.build(one).ids) == ["a"]
    two = write(tmp_path / "binary.parquet", {"image": pa.array([b"IMG"]), "name": ["a"]})
    catalog = Catalog.build(two, id="column:name")
    assert list(catalog.ids) == ["a"] and catalog.resolve(two, id="column:name").read(0) == b"IMG"


@pytest.mark.parametrize("values, kind", [
    ([b"id1", b"id2"], pa.binary()), ([[1], [2]], pa.list_(pa.int64())), ([1.0, 2.5], pa.float64()),
    ([True, False], pa.bool_()), ([{"a": 1}, {"a": 2}], pa.struct([("a", pa.int64())])),
])
def test_an_id_column_that_is_not_text_or_integers_is_refused(tmp_path, values, kind):
    path = write(tmp_path / "ids.parquet", {"image": pa.array([b"1", b"2"]), "key": pa.array(values, kind)})
    with pytest.raises(ReferenceSetError, match=r"ids.parquet: id column 'key' is .*strings or integers"):
        Catalog.build(path, id="column:key")


def test_integer_and_dictionary_id_columns_read_as_text(tmp_path):
    path = write(tmp_path / "ids.parquet", {"image": pa.array([b"1", b"2", b"3"]),
                                           "n": pa.array([10, 2, -3], pa.int64()),
                                           "u": pa.array([10, 2, 3], pa.uint8()),
                                           "s": pa.array(["b", "a", "c"]).dictionary_encode()})
    # decimal text, compared as bytes: "-3" < "10" < "2"
    assert list(Catalog.build(path, id="column:n").ids) == ["-3", "10", "2"]
    assert list(Catalog.build(path, id="column:u").ids) == ["10", "2", "3"]
    assert list(Catalog.build(path, id="column:s").ids) == ["a", "b", "c"]


def test_a_corrupt_page_is_refused_naming_file_and_column(tmp_path):
    images = [bytes([i]) * 2000 for i in range(50)]
    path = write(tmp_path / "corrupt.parquet",
                 {"image": image_struct([f"n_{i}.png" for i in range(50)], images)}, compression="none",
                 use_dictionary=False)
    catalog = Catalog.build(path)
    data = bytearray(path.read_bytes())
    at = data.find(images[10])
    assert at > 0
    data[at - 64:at + 8000] = b"\xff" * 8064  # page headers and values overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(ReferenceSetError) as caught:
        Catalog.build(path)
    message = str(caught.value)
    assert str(path) in message and "image." in message and "\n" not in message.strip()
    del catalog


def test_hidden_parquet_files_are_not_part_of_a_copy(tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    write(folder / "train.parquet", {"image": image_struct(["a.png"], [b"A"])})
    write(folder / ".train.parquet", {"image": image_struct(["b.png"], [b"B"])})  # e.g. a partial download
    assert list(Catalog.build(folder).ids) == ["a"]


def test_a_tampered_cache_row_past_the_file_is_a_miss(tmp_path):
    import numpy as np

    path = write(tmp_path / "ok.parquet", {"image": image_struct(["a.png", "b.png"], [b"A", b"B"])})
    catalog = Catalog.build(path, tmp_path / "ref.plcat")
    assert catalog.resolve(path).read(1) == b"B"
    (cache,) = tmp_path.glob("ref.plcat.*.resolved.npz")
    with np.load(cache) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["offset"] = arrays["offset"] + 5
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)
    again = catalog.resolve(path)
    assert [again.read(0), again.read(1)] == [b"A", b"B"]
