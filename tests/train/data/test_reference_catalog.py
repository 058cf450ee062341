"""Reference kind ``catalog`` (plada_train.data.reference_catalog): a payload made against a
catalog on one copy trains on every other copy: folder tree, shuffled shards, parquet, a
partial and a re-encoded copy; and what consume says on the partial and the re-encoded one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")

import plada_codec  # noqa: E402
from plada_codec import Catalog  # noqa: E402
from plada_train.cli import main as train_main  # noqa: E402
from plada_train.client import consume  # noqa: E402
from plada_train.data import CatalogImages, DataError, open_reference  # noqa: E402
from plada_train.recipes import StudentRecipe, TeacherRecipe  # noqa: E402
from plada_train.server import produce  # noqa: E402
from tests.refsets import make_items, store  # noqa: E402

TEACHER = TeacherRecipe(steps=4, batch_size=16, checkpoint_every=0)
STUDENT = StudentRecipe(steps=2, batch_size=8, checkpoint_every=0)
N = 400


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("world")
    stored = store(make_items(N, n_synsets=4), base, missing=0.05)
    catalog_path = base / "ref.plcat.zst"
    Catalog.build(stored.folder, catalog_path)
    rng = np.random.default_rng(0)
    target = base / "target.npz"
    np.savez(target, x_train=rng.integers(0, 256, (48, 3, 8, 8), dtype=np.uint8), y_train=np.arange(48) % 4,
             x_test=rng.integers(0, 256, (16, 3, 8, 8), dtype=np.uint8), y_test=np.arange(16) % 4)
    out = base / "server"
    result = produce(str(target), str(stored.shards), str(out), catalog=str(catalog_path), keep=(0.25,),
                     teacher_recipe=TEACHER, device="cpu")
    return stored, catalog_path, target, result


def _layouts(stored):
    layouts = {"folder": stored.folder, "shards": stored.shards, "partial": stored.partial,
               "reencoded": stored.reencoded}
    if stored.parquet is not None:
        layouts["parquet"] = stored.parquet
    return layouts


def test_payload_is_bound_to_the_catalog(world):
    stored, catalog_path, _, result = world
    catalog = Catalog.open(catalog_path)
    payload = plada_codec.decode(result.payloads[0].payload, reference=catalog.reference)
    assert payload.n_ref == N and len(payload) == N // 4  # keep 25% of the catalog's N
    assert np.array_equal(payload.indices, result.payloads[0].selection.indices)


@pytest.mark.parametrize("layout", ["folder", "shards", "parquet", "partial", "reencoded"])
def test_selected_items_resolve_to_the_same_ids_and_bytes(world, layout):
    stored, catalog_path, _, result = world
    local = _layouts(stored).get(layout)
    if local is None:
        pytest.skip("pyarrow is not installed")
    catalog = Catalog.open(catalog_path)
    indices = plada_codec.decode(result.payloads[0].payload).indices
    refs = open_reference(str(local), catalog=str(catalog_path))
    assert isinstance(refs, CatalogImages)
    by_id = {item.item_id: item for item in stored.items}
    for position in indices[:40].tolist():
        item_id = catalog.ids[position]
        assert refs.item_id(position) == item_id
        if not refs.resolution.holds(position):
            assert layout == "partial" and item_id in stored.removed
            continue
        data = refs.resolution.read(position)
        same = hashlib.sha256(data).hexdigest() == catalog.digest_of(position)
        assert same == (layout != "reencoded")
        assert same == (data == by_id[item_id].png)


@pytest.mark.parametrize("layout", ["folder", "parquet", "partial", "reencoded"])
def test_consume_on_every_copy(world, layout):
    stored, catalog_path, target, result = world
    local = _layouts(stored).get(layout)
    if local is None:
        pytest.skip("pyarrow is not installed")
    payload = plada_codec.decode(result.payloads[0].payload)
    removed_positions = set(Catalog.open(catalog_path).positions_of(stored.removed).tolist())
    expected = len(payload) - (len(set(payload.indices.tolist()) & removed_positions) if layout == "partial" else 0)
    consumed = consume(str(result.payloads[0].path), str(local), catalog=str(catalog_path), test=str(target),
                       student_recipe=STUDENT, device="cpu", max_missing=1.0)
    assert consumed.count == expected and consumed.accuracy is not None


def test_partial_copy_threshold(world, tmp_path, capsys):
    stored, catalog_path, _, _ = world
    catalog = Catalog.open(catalog_path)
    removed = catalog.positions_of(stored.removed[:3]).tolist()
    held = [p for p in range(N) if catalog.ids[p] not in set(stored.removed)][:7]
    indices = sorted(removed + held)
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode(indices, [0] * len(indices), n_classes=4, reference=catalog.reference))
    with pytest.raises(DataError, match=r"3 of 10 selected images \(30.00%\) are missing"):
        consume(str(payload), str(stored.partial), catalog=str(catalog_path), student_recipe=STUDENT, device="cpu")
    code = train_main(["consume", str(payload), "--reference", str(stored.partial), "--catalog", str(catalog_path),
                       "--max-missing", "0.25", "--steps", "1", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "above --max-missing 0.25" in err
    assert repr(stored.removed[0]) in err or repr(catalog.ids[removed[0]]) in err
    consumed = consume(str(payload), str(stored.partial), catalog=str(catalog_path), student_recipe=STUDENT,
                       device="cpu", max_missing=0.3)
    assert consumed.count == 7


def test_server_never_selects_what_it_lacks(world, tmp_path):
    stored, catalog_path, target, _ = world
    result = produce(str(target), str(stored.partial), str(tmp_path / "s"), catalog=str(catalog_path), keep=(1.0,),
                     teacher_recipe=TEACHER, device="cpu")
    catalog = Catalog.open(catalog_path)
    chosen = {catalog.ids[p] for p in plada_codec.decode(result.payloads[0].payload).indices.tolist()}
    assert len(chosen) == N - len(stored.removed)
    assert not chosen & set(stored.removed)


def test_catalog_errors_are_one_line(world, tmp_path, capsys):
    stored, catalog_path, target, _ = world
    other = tmp_path / "other.plcat"
    other.write_bytes(b"plada-catalog 1\nfields id\nzzz_1\n")
    with pytest.raises(DataError, match="holds none of the catalog"):
        open_reference(str(stored.folder), catalog=str(other))
    code = train_main(["produce", "--target", str(target), "--reference", str(stored.folder), "--catalog",
                       str(tmp_path / "missing.plcat"), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "catalog" in err and "not found" in err


def test_consume_with_another_sets_catalog_blames_the_binding_not_the_copy(world, tmp_path, capsys, monkeypatch):
    # The payload was made against the world's catalog; the client passes a catalog of other images.
    # decode and verify call that ReferenceMismatch (exit 1); consume must too, before it lists the copy.
    stored, _, _, result = world
    other = tmp_path / "other.plcat"
    Catalog.from_items(["x1", "x2", "x3"]).write(other)
    monkeypatch.setattr(Catalog, "resolve", lambda *a, **k: pytest.fail("the copy was resolved first"))
    with pytest.raises(plada_codec.ReferenceMismatchError):
        consume(str(result.payloads[0].path), str(stored.folder), catalog=str(other), student_recipe=STUDENT,
                device="cpu")
    code = train_main(["consume", str(result.payloads[0].path), "--reference", str(stored.folder), "--catalog",
                       str(other), "--steps", "1", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "ReferenceMismatch" in err


# -- what consume says on a partial or re-encoded copy (issue 23) ----------------------------------


def _partial_payload(world, tmp_path) -> Path:
    stored, catalog_path, _, _ = world
    catalog = Catalog.open(catalog_path)
    removed = catalog.positions_of(stored.removed[:3]).tolist()
    held = [p for p in range(len(catalog)) if catalog.ids[p] not in set(stored.removed)][:7]
    indices = sorted(removed + held)
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode(indices, [0] * len(indices), n_classes=4, reference=catalog.reference))
    return payload


def test_consume_on_a_partial_copy_says_what_it_trains_on(world, tmp_path, capsys):
    stored, catalog_path, _, _ = world
    consumed = consume(str(_partial_payload(world, tmp_path)), str(stored.partial), catalog=str(catalog_path),
                       student_recipe=STUDENT, device="cpu", max_missing=0.5)
    out = capsys.readouterr().out
    assert "3 of 10 selected images" in out and "training on the other 7" in out
    assert "training smallcnn on the 7 this copy holds" in out and "on them" not in out
    assert consumed.count == 7 and consumed.selected == 10


def test_consume_on_a_reencoded_copy_says_every_image_differs(world, capsys):
    stored, catalog_path, _, result = world
    consume(str(result.payloads[0].path), str(stored.reencoded), catalog=str(catalog_path), student_recipe=STUDENT,
            device="cpu")
    lines = [line for line in capsys.readouterr().out.splitlines() if "differ in content" in line]
    assert len(lines) == 1 and lines[0].startswith("note: every one of the selected images")
    consume(str(result.payloads[0].path), str(stored.folder), catalog=str(catalog_path), student_recipe=STUDENT,
            device="cpu")
    assert "differ in content" not in capsys.readouterr().out  # the same bytes: nothing to say


def test_a_catalog_payload_says_so_and_keeps_its_keep_rate(world):
    stored, catalog_path, _, result = world
    meta = plada_codec.decode(result.payloads[0].payload).metadata
    catalog = Catalog.open(catalog_path)
    assert meta["catalog"] == {"fingerprint": catalog.hex, "n": len(catalog), "id_rule": "stem",
                               "file": catalog_path.name}
    assert meta["keep_fraction"] == 0.25
    with pytest.raises(plada_codec.ReferenceMismatchError, match=f"pass --catalog {catalog_path.name}"):
        consume(str(result.payloads[0].path), str(stored.folder), student_recipe=STUDENT, device="cpu")
