"""What ``produce`` and ``consume`` take (plada_train.requests): option types named when wrong,
the CLI's names as API keywords, repeated keep rates and steps with epochs refused, consume's
--save checked before training. Tiny data (sklearn digits at 16 px, a teacher of 2 steps)."""

import json
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

from plada_train import DataError, consume, produce  # noqa: E402
from plada_train.cli import main  # noqa: E402
from tests.helpers import one_line, write_true_payload  # noqa: E402


@pytest.mark.parametrize("where", ["no folder", "fifo", "folder"])
def test_consume_save_is_checked_before_training(digits, tmp_path, capsys, where):
    payload = tmp_path / "p.plada"
    write_true_payload(digits, payload)
    save = {"no folder": tmp_path / "nodir" / "x.pt", "fifo": tmp_path / "fifo", "folder": tmp_path}[where]
    if where == "fifo":
        os.mkfifo(save)
    argv = ["consume", str(payload), "--reference", digits[1], "--steps", "2", "--save", str(save),
            "--image-size", "16", "--device", "cpu", "--quiet"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "--save" in one_line(captured.err)
    assert "training" not in captured.out  # refused before the payload was even decoded
    if where == "fifo":
        assert Path(save).is_fifo()


# -- the API: types, the CLI's names, short reprs --------------------------------------------------


@pytest.mark.parametrize("keep, named", [("0.1", "str"), (True, "bool"), (None, "NoneType"), ([0.1, "0.2"], "str"),
                                         ([0.1, False], "bool"), ({0.1}, "set")])
def test_a_keep_of_the_wrong_type_names_the_type(tmp_path, keep, named):
    # a target that does not exist: without the type check the run fails on that instead
    with pytest.raises(DataError, match=rf"keep.*must be a number.*got {named}\b"):
        produce("no-such-target.npz", "builtin:pool", str(tmp_path / "out"), keep=keep)


@pytest.mark.parametrize("option, value, named", [("temperature", "1", "str"), ("safety_share", True, "bool"),
                                                  ("n_classes", 10.0, "float"), ("teacher_lr", "0.1", "str"),
                                                  ("rescore", 1, "int")])
def test_other_options_of_the_wrong_type_name_the_type(tmp_path, option, value, named):
    with pytest.raises(DataError, match=rf"{option.replace('teacher_', '').replace('_', ' ')} must be .*got {named}\b"):
        produce("no-such-target.npz", "builtin:pool", str(tmp_path / "out"), **{option: value})


def test_api_takes_the_cli_names_and_lists_the_valid_ones(server, digits, tmp_path):
    out, result = server
    recipe = json.loads((out / "teacher.json").read_text())["request"]["recipe"]
    assert recipe["steps"] == 2 and recipe["epochs"] is None and recipe["batch_size"] == 64
    with pytest.raises(DataError, match=r"unknown option teacher_step; valid: .*teacher_steps"):
        produce(digits[0], digits[1], str(tmp_path / "x"), teacher_step=5)
    with pytest.raises(DataError, match=r"unknown option stepz; valid: .*\bsteps\b"):
        consume(str(result.payloads[0].path), digits[1], stepz=5)
    ckpt = tmp_path / "ckpt"
    consumed = consume(str(result.payloads[0].path), digits[1], steps=3, batch_size=16, checkpoint_every=0,
                       checkpoint_dir=str(ckpt), image_size=16, device="cpu")
    state = torch.load(ckpt / "train-state.pt", weights_only=False)
    assert state["step"] == 3 and state["recipe"]["batch_size"] == 16 and state["recipe"]["steps"] == 3
    for text in (repr(result), repr(consumed)):
        assert len(text) < 400 and "b'" not in text and "Conv2d" not in text, text
    assert "Produced(" in repr(result) and "images=" in repr(result) and "model=SmallCNN" in repr(consumed)


def test_the_api_takes_the_clis_quiet(tmp_path):
    with pytest.raises(DataError, match="keep rate 5.0 outside"):  # quiet accepted, the bad keep reached
        produce("builtin:mnist", "builtin:pool", str(tmp_path / "o"), keep=5, quiet=True)
    with pytest.raises(DataError, match="quiet must be True or False, got str"):
        produce("builtin:mnist", "builtin:pool", str(tmp_path / "o"), quiet="yes")


def test_repeated_keep_rates_and_steps_with_epochs_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"keep rates repeat \(0.1, 0.1\)"):
        produce("no-such-target.npz", "builtin:pool", str(tmp_path / "out"), keep=[0.1, 0.1])
    from plada_train.recipes import StudentRecipe

    with pytest.raises(DataError, match="give steps or epochs, not both"):
        StudentRecipe().with_(steps=2, epochs=1.0)  # one of them was silently ignored
    assert StudentRecipe().with_(steps=2).steps == 2 and StudentRecipe().with_(epochs=1.0).steps is None
