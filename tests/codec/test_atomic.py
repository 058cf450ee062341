"""plada_codec._atomic: the one atomic write (temporary file, fsync, os.replace)."""

import os

import pytest

import plada_codec
from plada_codec._atomic import NotARegularFileError, write_atomically


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writes_whole_and_replaces(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old" * 1000)
    assert write_atomically(target, lambda fh: fh.write(b"new")) == 3
    assert target.read_bytes() == b"new" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, failure):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def write(fh):
        fh.write(b"half of the new one")
        raise failure("stopped")

    with pytest.raises(failure):
        write_atomically(target, write)
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_a_link_and_a_folder_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    link = tmp_path / "link"
    link.symlink_to(victim)
    folder = tmp_path / "folder"
    folder.mkdir()
    called = []
    for path, what in ((fifo, "a FIFO"), (link, "a symbolic link"), (folder, "a folder")):
        with pytest.raises(NotARegularFileError, match=f"exists and is {what}; refusing to replace it"):
            write_atomically(path, called.append)
    assert called == []  # refused before the writer ran
    assert victim.read_bytes() == b"keep" and link.is_symlink() and fifo.exists()
    assert issubclass(NotARegularFileError, OSError) and issubclass(NotARegularFileError, plada_codec.PayloadError)


def test_a_link_planted_at_the_temporary_name_is_not_followed(tmp_path):
    target = tmp_path / "out.bin"
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / f".out.bin.{os.getpid()}.tmp").symlink_to(victim)
    with pytest.raises(OSError):
        write_atomically(target, lambda fh: fh.write(b"new"))
    assert victim.read_bytes() == b"keep" and not target.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_record_refuses_a_fifo_manifest_before_hashing(tmp_path, monkeypatch):
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    fifo = tmp_path / "m.fifo"
    os.mkfifo(fifo)

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed before refusing the target")

    monkeypatch.setattr(plada_codec.ReferenceSet, "_hash_folder", classmethod(no_hashing))
    with pytest.raises(NotARegularFileError, match="m.fifo: exists and is a FIFO"):
        plada_codec.ReferenceSet.record(folder, fifo)


def test_the_helper_is_public_api_for_plada_train():
    """plada_train may import only plada_codec's public names (tests/codec/test_backend.py)."""
    assert plada_codec.write_atomically is write_atomically
    assert "write_atomically" in plada_codec.__all__ and "NotARegularFileError" in plada_codec.__all__


def test_a_folder_that_does_not_exist_is_named_as_the_user_gave_it(tmp_path):
    target = tmp_path / "missing" / "out.plada"
    with pytest.raises(FileNotFoundError) as caught:
        write_atomically(target, lambda fh: fh.write(b"x"))
    assert caught.value.filename == str(target)  # not the hidden .out.plada.PID.tmp
