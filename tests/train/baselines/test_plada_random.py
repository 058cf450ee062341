"""The plada-random family (plada_train.baselines.plada_random): PLADA's payload with a random
selection, at the same counts as the PLADA family's points."""

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

from plada_train import baselines  # noqa: E402
from plada_train.recipes import StudentRecipe, TeacherRecipe  # noqa: E402


def test_the_random_selection_family_matches_plada_counts(quick_task, tmp_path):
    import plada_codec

    target, pool = quick_task
    report = baselines.run_baselines(
        target, pool, tmp_path, keeps=(0.1,), seeds=(0,), methods=("plada", "plada-random"), quick=True,
        student_recipe=StudentRecipe(steps=3, batch_size=16, checkpoint_every=0),
        teacher_recipe=TeacherRecipe(steps=3, batch_size=32, checkpoint_every=0), log=lambda line: None)
    points = {point.method: point for point in report.points}
    assert set(points) == {"plada", "plada-random"}
    assert points["plada-random"].details["k"] == points["plada"].details["k"] > 0  # same count, other images
    payload = plada_codec.decode((tmp_path / "plada" / points["plada-random"].details["payload"]).read_bytes())
    assert payload.metadata["mode"] == "random" and payload.metadata["seed"] == 0
    assert "plada-random" in (tmp_path / "baselines.md").read_text()
