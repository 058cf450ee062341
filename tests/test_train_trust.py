"""plada-train under a careless or hostile user (issue 14): files in --out that
are not what produce wrote, one exit-code table with plada, a target moved to
another path, API keywords and types, a CLI that answers before torch is
imported, two runs on one --out, a full disk, Ctrl-C. Tiny data (sklearn
digits at 16 px, a teacher of 2 steps): each produce takes seconds."""

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import plada_codec  # noqa: E402
from plada_train import DataError, consume, produce  # noqa: E402
from plada_train.cli import main  # noqa: E402

from .test_train import write_digits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--teacher-steps", "2", "--teacher-batch-size", "64", "--image-size", "16", "--shard-size", "512",
        "--score-batch-size", "128", "--keep", "0.2", "--device", "cpu", "--quiet"]
API_FAST = dict(teacher_steps=2, teacher_batch_size=64, image_size=16, shard_size=512, score_batch_size=128,
                keep=0.2, device="cpu")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def server(digits, tmp_path_factory):
    """One produce through the API with the CLI's option names as keywords."""
    target, reference, _ = digits
    out = tmp_path_factory.mktemp("server")
    return out, produce(target, reference, str(out), **API_FAST)


def produce_args(digits, out, *extra):
    target, reference, _ = digits
    return ["produce", "--target", target, "--reference", reference, "--out", str(out), *FAST, *extra]


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- files in --out that are not what produce wrote ------------------------------------------


def test_out_naming_a_file_is_one_line(digits, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder")
    assert main(produce_args(digits, out)) == 2
    assert "exists and is not a folder" in one_line(capsys.readouterr().err)
    assert main(produce_args(digits, out / "sub")) == 2
    assert "is not a folder" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["truncated", "not a zip"])
def test_a_damaged_scores_file_names_itself_and_rescore(server, digits, tmp_path, capsys, damage):
    out, _ = server
    scores = tmp_path / "scores.npz"
    data = (out / "scores.npz").read_bytes()
    scores.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"PK\x03\x04" + b"\0" * 40)
    assert main(produce_args(digits, out, "--scores", str(scores))) == 2
    err = one_line(capsys.readouterr().err)
    assert str(scores) in err and "--rescore" in err


@pytest.mark.parametrize("name, damage", [("teacher.pt", b"\x80\x02garbage"), ("teacher.pt", None),
                                          ("teacher.json", b"{not json")])
def test_a_damaged_teacher_names_itself_and_says_delete_it(digits, tmp_path, capsys, name, damage):
    out = tmp_path / "out"
    assert main(produce_args(digits, out)) == 0
    path = out / name
    data = path.read_bytes()
    path.write_bytes(damage if damage is not None else data[: len(data) // 3])
    capsys.readouterr()
    assert main(produce_args(digits, out)) == 2
    err = one_line(capsys.readouterr().err)
    assert str(path) in err and "delete it" in err
    assert path.stat().st_size == len(damage if damage is not None else data[: len(data) // 3])  # not retrained over


def test_a_damaged_training_state_names_itself(digits, tmp_path, capsys):
    payload = tmp_path / "p.plada"
    _write_true_payload(digits, payload)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "train-state.pt").write_bytes(b"PK\x03\x04 truncated")
    argv = ["consume", str(payload), "--reference", digits[1], "--steps", "2", "--checkpoint-dir", str(ckpt),
            "--image-size", "16", "--device", "cpu", "--quiet"]
    assert main(argv) == 2
    err = one_line(capsys.readouterr().err)
    assert "train-state.pt is unreadable" in err and "delete it" in err


def _write_true_payload(digits, path):
    from plada_train.data import open_reference

    _, reference, truth = digits
    at = np.flatnonzero(truth >= 0)[:64]
    path.write_bytes(plada_codec.encode(at, truth[at], n_classes=10,
                                        reference=open_reference(reference).reference_set()))


@pytest.mark.parametrize("where", ["no folder", "fifo", "folder"])
def test_consume_save_is_checked_before_training(digits, tmp_path, capsys, where):
    payload = tmp_path / "p.plada"
    _write_true_payload(digits, payload)
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


# -- one exit-code table for plada and plada-train ---------------------------------------------


def test_a_stale_manifest_exits_2_as_in_plada(digits, tmp_path, capsys):
    from PIL import Image

    from plada_codec.cli import main as plada_main

    folder = tmp_path / "ref"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    manifest = tmp_path / "ref.manifest"
    assert plada_main(["ref-hash", str(folder), "--manifest-out", str(manifest)]) == 0
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "003.png")  # changed since the manifest
    os.utime(folder / "003.png", (1, 1))
    capsys.readouterr()
    stale_plada = plada_main(["ref-hash", str(folder), "--manifest", str(manifest)])
    plada_err = capsys.readouterr().err
    target = digits[0]
    argv = ["produce", "--target", target, "--reference", str(folder), "--manifest", str(manifest),
            "--out", str(tmp_path / "out"), *FAST]
    assert main(argv) == stale_plada == 2, plada_err
    assert "StaleManifestError" in one_line(capsys.readouterr().err)


def test_the_exit_table_is_documented_once_for_both():
    import plada_train.cli

    for text in (plada_train.cli.__doc__, (ROOT / "docs" / "cli.md").read_text()):
        for code in ("130", "141"):
            assert code in text


# -- a target moved to another path is the same target -----------------------------------------


def test_saved_teacher_and_scores_follow_the_content_not_the_path(digits, tmp_path, monkeypatch, capsys):
    target, reference, _ = digits
    out = tmp_path / "out"
    assert main(produce_args(digits, out)) == 0
    recorded = json.loads((out / "teacher.json").read_text())
    assert recorded["target_spec"] == target  # kept, for the reader
    monkeypatch.chdir(Path(target).parent.parent)
    relative = os.path.relpath(target)
    assert relative != target and not os.path.isabs(relative)
    capsys.readouterr()
    assert main(["produce", "--target", relative, "--reference", reference, "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "reusing teacher" in printed and "reusing scores" in printed


def test_scores_from_before_keep_working_when_only_the_path_changed(server, digits, tmp_path, capsys):
    """A record written with the target's path inside the compared request (before
    this release) is matched on content: the path is dropped from both sides."""
    out, _ = server
    info = json.loads((out / "teacher.json").read_text())
    info["request"]["target"]["spec"] = "/some/where/else/target.npz"
    old = tmp_path / "old"
    old.mkdir()
    for name in ("teacher.pt", "scores.npz"):
        (old / name).write_bytes((out / name).read_bytes())
    (old / "teacher.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert main(produce_args(digits, old)) == 0
    printed = capsys.readouterr().out
    assert "reusing teacher" in printed and "reusing scores" in printed


# -- the API: types, the CLI's names, short reprs -----------------------------------------------


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


# -- a CLI that answers before torch is imported ----------------------------------------------


def _run_python(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh interpreter (timeout: a hang guard only)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # this tree's plada_train
    return subprocess.run([sys.executable, *args], env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=1800, cwd=cwd)


@pytest.mark.parametrize("argv, message", [
    (["produce", "--keep", "5", "--out", "OUT"], "keep rate 5.0 outside (0, 1]"),
    (["produce", "--target", "missing.npz", "--out", "OUT"], "target 'missing.npz' not found"),
    (["produce", "--reference", "missing-dir", "--out", "OUT"], "reference 'missing-dir' not found"),
    (["produce", "--out", "FILE"], "exists and is not a folder"),
    (["consume", "missing.plada"], "payload missing.plada not found"),
    (["consume", "PAYLOAD", "--save", "nodir/x.pt"], "nodir does not exist"),
])
def test_usage_errors_answer_without_importing_torch(tmp_path, argv, message):
    (tmp_path / "FILE").write_text("")
    (tmp_path / "PAYLOAD").write_bytes(b"")
    code = ("import sys\nfrom plada_train.cli import main\nrc = main(sys.argv[1:])\n"
            "print(rc, 'torch' in sys.modules)")
    done = _run_python("-c", code, *argv, cwd=tmp_path)
    assert done.stdout.split() == ["2", "False"], (done.stdout, done.stderr)
    assert message in one_line(done.stderr)


@pytest.mark.parametrize("argv", [["--help"], ["produce", "--help"], ["consume", "--help"]])
def test_help_imports_no_torch(argv):
    done = _run_python("-X", "importtime", "-m", "plada_train", *argv)
    assert done.returncode == 0 and "usage: plada-train" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "import time:" in line}
    assert "plada_train.cli" in imported and not {m for m in imported if m.split(".")[0] in ("torch", "timm")}


# -- two runs on one --out ----------------------------------------------------------------------


def _hold_lock(out: Path) -> subprocess.Popen:
    code = ("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nos.ftruncate(fd, 0)\nos.write(fd, f'{os.getpid()}\\n'.encode())\n"
            "print('locked', flush=True)\nsys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out / ".lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_produce_on_the_same_out_stops_at_once_naming_the_holder(server, digits, capsys):
    out, _ = server
    holder = _hold_lock(out)
    try:
        before = sorted(p.name for p in out.iterdir())
        assert main(produce_args(digits, out)) == 2
        err = one_line(capsys.readouterr().err)
        assert f"in use by another plada-train produce (process {holder.pid})" in err
        assert sorted(p.name for p in out.iterdir()) == before
    finally:
        holder.kill()  # as a killed run: the kernel drops its lock
        holder.wait()
    assert main(produce_args(digits, out)) == 0  # resumes, nothing to clean up
    fd = os.open(out / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on return
    finally:
        os.close(fd)


# -- a full disk ------------------------------------------------------------------------------


class _FullDisk:
    """A file whose writes stop half-way with ENOSPC, as on a full disk."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        data = bytes(data)
        self._fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


@pytest.mark.parametrize("victim", ["train-state.pt", "teacher.pt", "teacher.json", "payload-"])
def test_a_full_disk_is_one_line_and_leaves_nothing_after_the_next_run(digits, tmp_path, monkeypatch, capsys,
                                                                       victim):
    """Every atomic write of produce goes through plada_codec's one helper; the
    disk fills while *victim* is written (the helper's temporary file is real)."""
    import plada_train.train
    import plada_train.workdir

    real = plada_codec.write_atomically

    def full_disk(path, write):
        hit = victim in os.path.basename(path)
        return real(path, (lambda fh: write(_FullDisk(fh))) if hit else write)

    out = tmp_path / "out"
    argv = produce_args(digits, out)
    for module in (plada_train.workdir, plada_train.train):
        monkeypatch.setattr(module, "write_atomically", full_disk)
    assert main(argv) == 2
    monkeypatch.undo()
    err = one_line(capsys.readouterr().err)
    assert "No space left on device" in err and victim in err and "free some space" in err
    assert main(argv) == 0
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == [".lock", "payload-low-0.2.plada", "scores.npz", "teacher.json", "teacher.pt"]


# -- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_130(digits, tmp_path):
    target, reference, _ = digits
    command = [sys.executable, "-m", "plada_train", "produce", "--target", target, "--reference", reference,
               "--out", str(tmp_path / "out"), "--teacher-steps", "1000000", "--teacher-batch-size", "64",
               "--image-size", "16", "--device", "cpu", "--quiet"]
    # A shell's background job starts with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore the default in the child, as a terminal's Ctrl-C finds it.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    guard = threading.Timer(1800, proc.kill)  # a hang guard only (a loaded CI machine is slow)
    guard.start()
    try:
        for line in proc.stdout:
            if line.startswith("training the teacher"):
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate()
    finally:
        guard.cancel()
    assert proc.returncode == 130, err
    assert "interrupted while training the teacher" in one_line(err)
    assert "run the same command again to resume" in err


@pytest.mark.parametrize("argv, says", [
    (["consume", "p.plada"], "start over (with --checkpoint-dir a rerun resumes)"),
    (["consume", "p.plada", "--checkpoint-dir", "ckpt"], "resume from the last checkpoint in ckpt"),
])
def test_ctrl_c_in_consume_says_whether_a_rerun_resumes(monkeypatch, capsys, argv, says):
    import plada_train.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(plada_train.cli, "_cmd_consume", interrupted)  # bound when main builds the parser
    assert main(argv) == 130
    assert says in one_line(capsys.readouterr().err)


def test_a_temporary_file_of_a_killed_run_is_removed_by_the_next(server, digits, capsys):
    out, _ = server
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended: as one SIGKILLed in the middle of a write
    stale = [out / f".payload-low-0.2.plada.{pid}.tmp", out / f".teacher.json.{pid}.tmp",
             out / f"payload-low-0.05.plada.tmp{pid}", out / f"teacher.pt.tmp{pid}"]  # the last two: older runs
    for path in stale:
        path.write_bytes(b"")
    assert main(produce_args(digits, out)) == 0
    assert not [p for p in stale if p.exists()]
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


def test_repeated_keep_rates_and_steps_with_epochs_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"keep rates repeat \(0.1, 0.1\)"):
        produce("no-such-target.npz", "builtin:pool", str(tmp_path / "out"), keep=[0.1, 0.1])
    from plada_train.recipes import StudentRecipe

    with pytest.raises(DataError, match="give steps or epochs, not both"):
        StudentRecipe().with_(steps=2, epochs=1.0)  # one of them was silently ignored
    assert StudentRecipe().with_(steps=2).steps == 2 and StudentRecipe().with_(epochs=1.0).steps is None


def test_report_names_a_file_given_for_the_folder_and_the_payload_that_fails(tmp_path):
    from plada_train.report import report

    good = tmp_path / "payload-low-0.1.plada"
    good.write_bytes(plada_codec.encode([1], [0], n_ref=4, n_classes=1))
    with pytest.raises(DataError, match="a file, not the --out folder"):
        report(good)
    bad = tmp_path / "payload-low-0.2.plada"
    bad.write_bytes(good.read_bytes()[:-1] + bytes([good.read_bytes()[-1] ^ 1]))
    with pytest.raises(plada_codec.ChecksumError, match=r"payload-low-0\.2\.plada: "):
        report(tmp_path, plot=False)
