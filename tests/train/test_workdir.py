"""What lives in ``produce --out`` and how a run keeps it sound (plada_train.workdir), met by a
careless or hostile user (issue 14): files in --out that are not what produce wrote, a target
moved to another path (a saved teacher and scores follow the content, not the path), two runs on
one --out, a full disk, the temporary file of a killed run. Tiny data (sklearn digits at 16 px,
a teacher of 2 steps): each produce takes seconds."""

import errno
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

import plada_codec  # noqa: E402
from plada_train.cli import main  # noqa: E402
from tests.helpers import one_line  # noqa: E402

FAST = ["--teacher-steps", "2", "--teacher-batch-size", "64", "--image-size", "16", "--shard-size", "512",
        "--score-batch-size", "128", "--keep", "0.2", "--device", "cpu", "--quiet"]


def produce_args(digits, out, *extra):
    target, reference, _ = digits
    return ["produce", "--target", target, "--reference", reference, "--out", str(out), *FAST, *extra]


# -- files in --out that are not what produce wrote ------------------------------------------------


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


# -- a target moved to another path is the same target ---------------------------------------------


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


# -- two runs on one --out -------------------------------------------------------------------------


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


# -- a full disk -----------------------------------------------------------------------------------


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


# -- the temporary file of a killed run ------------------------------------------------------------


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


def test_a_payload_name_says_the_score_unless_it_is_energy():
    from plada_train.workdir import payload_name

    assert payload_name("ends", 0.0, 0.05, score="margin") == "payload-ends-margin-0.05.plada"
    assert payload_name("low", 0.5, 0.1, 2.0, score="entropy") == "payload-low-entropy-safety-spread2-0.1.plada"
    assert payload_name("low", 0.0, 0.05, score="energy") == "payload-low-0.05.plada"  # the default, as before
