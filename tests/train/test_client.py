"""The client, ``consume`` (plada_train.client).

It trains on the payload's virtual set: the (reference position, label)
pairs it trains on are ``plada_codec.export.virtual_set``'s, on a partial catalog
copy and on a folder or tar copy without a catalog, and both are the pairs the
payload encodes less the items the copy is known to lack. What it leaves behind
(a result next to the payload) is what ``plada-train report`` reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PIL")

import plada_codec  # noqa: E402
import plada_train.train  # noqa: E402
from plada_codec import Catalog, ReferenceSet, export  # noqa: E402
from plada_train.cli import main  # noqa: E402
from plada_train.client import consume  # noqa: E402
from plada_train.data import DataError  # noqa: E402
from plada_train.recipes import StudentRecipe  # noqa: E402
from tests.refsets import make_items, store  # noqa: E402
from tests.train.data.test_reference_catalog import world  # noqa: E402, F401  (the catalog world fixture)

STUDENT = StudentRecipe(steps=1, batch_size=4, checkpoint_every=0)
N = 120
N_CLASSES = 4


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    base = tmp_path_factory.mktemp("copies")
    stored = store(make_items(N, n_synsets=N_CLASSES), base, missing=0.1)
    catalog_path = base / "ref.plcat"
    Catalog.build(stored.folder, catalog_path)
    return stored, catalog_path


@pytest.fixture
def trained_on(monkeypatch):
    """The (position, label) pairs of every virtual set consume hands to training."""
    seen: list[list[tuple[int, int]]] = []

    def capture(model, virtual, context, **_):
        seen.append(list(zip(virtual.indices.tolist(), virtual.labels.tolist())))
        return model

    monkeypatch.setattr(plada_train.train, "train_student", capture)
    return seen


def _pairs(vset: export.VirtualSet) -> list[tuple[int, int]]:
    return list(zip(vset.positions.tolist(), vset.labels.tolist()))


def _encode(indices: list[int], reference, tmp_path) -> tuple[object, list[tuple[int, int]]]:
    labels = [(7 * i + 3) % N_CLASSES for i in indices]  # any labels, known here
    path = tmp_path / "p.plada"
    path.write_bytes(plada_codec.encode(indices, labels, n_classes=N_CLASSES, reference=reference))
    return path, sorted(zip(indices, labels))


def test_catalog_partial_copy_trains_on_the_virtual_set(stored, tmp_path, trained_on, monkeypatch):
    stored, catalog_path = stored
    catalog = Catalog.open(catalog_path)
    lacking = set(stored.removed)
    missing_positions = [p for p in range(N) if catalog.ids[p] in lacking][:4]
    held_positions = [p for p in range(N) if catalog.ids[p] not in lacking][::3]
    path, encoded = _encode(sorted(missing_positions + held_positions), catalog.reference, tmp_path)
    expected = [(p, label) for p, label in encoded if catalog.ids[p] not in lacking]
    assert len(expected) == len(held_positions) and len(encoded) - len(expected) == 4
    resolves = []
    resolve = Catalog.resolve
    monkeypatch.setattr(Catalog, "resolve", lambda *a, **k: resolves.append(1) or resolve(*a, **k))

    consumed = consume(str(path), str(stored.partial), catalog=str(catalog_path), student_recipe=STUDENT,
                       device="cpu", max_missing=0.5)
    assert len(resolves) == 1  # the copy is resolved once, for both
    vset = export.virtual_set(path, stored.partial, catalog_path, max_missing=0.5)
    assert trained_on == [expected] and _pairs(vset) == expected
    assert consumed.count == len(expected) and consumed.selected == len(encoded)
    assert sorted(vset.missing_ids) == sorted(catalog.ids[p] for p in missing_positions)


def test_catalog_copy_refused_where_the_virtual_set_is(stored, tmp_path, trained_on):
    stored, catalog_path = stored
    catalog = Catalog.open(catalog_path)
    lacking = set(stored.removed)
    missing_positions = [p for p in range(N) if catalog.ids[p] in lacking][:2]
    held_positions = [p for p in range(N) if catalog.ids[p] not in lacking][:8]
    path, _ = _encode(sorted(missing_positions + held_positions), catalog.reference, tmp_path)
    # 2 of 10 missing: 0.2 is allowed, anything below it is not, by both
    with pytest.raises(export.MissingItemsError):
        export.virtual_set(path, stored.partial, catalog_path, max_missing=0.19)
    with pytest.raises(DataError, match=r"^2 of 10 selected images \(20.00%\) are missing from .*above "
                                        r"--max-missing 0.19: restore them, or pass a larger --max-missing"):
        consume(str(path), str(stored.partial), catalog=str(catalog_path), student_recipe=STUDENT, device="cpu",
                max_missing=0.19)
    assert trained_on == []
    consume(str(path), str(stored.partial), catalog=str(catalog_path), student_recipe=STUDENT, device="cpu",
            max_missing=0.2)
    assert trained_on == [_pairs(export.virtual_set(path, stored.partial, catalog_path, max_missing=0.2))]
    assert len(trained_on[0]) == 8


@pytest.mark.parametrize("layout", ["folder", "shards"])
def test_copy_without_a_catalog_trains_on_the_virtual_set(stored, tmp_path, trained_on, layout):
    stored, _ = stored
    local = getattr(stored, layout)
    reference = ReferenceSet.open(local)
    assert reference.n_ref == N
    path, encoded = _encode(list(range(1, N, 5)), reference, tmp_path)

    consume(str(path), str(local), student_recipe=STUDENT, device="cpu")
    vset = export.virtual_set(path, local)
    assert trained_on == [encoded] and _pairs(vset) == encoded  # nothing missing: every pair the payload holds
    assert not len(vset.missing_positions)
    assert np.array_equal(vset.positions, np.array([p for p, _ in encoded]))


# -- what consume leaves behind (issue 23) ---------------------------------------------------------


def test_consume_leaves_a_result_that_report_reads(world, capsys):  # noqa: F811
    stored, catalog_path, target, result = world
    path = result.payloads[0].path
    code = main(["consume", str(path), "--reference", str(stored.folder), "--catalog", str(catalog_path),
                 "--test", str(target), "--steps", "2", "--batch-size", "8", "--device", "cpu", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    teacher = plada_codec.decode(result.payloads[0].payload).metadata["teacher_accuracy"]
    assert summary["test_count"] == 16 and summary["teacher_accuracy"] == teacher
    assert summary["selected"] == summary["count"] == 100
    written = json.loads(path.with_name(path.stem + ".result.json").read_text())
    assert written["accuracy"] == summary["accuracy"] and written["student"] == "smallcnn"
    assert main(["report", str(path.parent), "--json", "--no-plot"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["accuracy"] for row in rows if row["payload"] == path.name] == [summary["accuracy"]]
    assert [row["keep"] for row in rows if row["payload"] == path.name] == [0.25]
