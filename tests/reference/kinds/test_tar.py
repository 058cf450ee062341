"""The one tar lister (plada_codec.kinds.tar): the direct header walk against Python's
tarfile, the sample rules of spec/REFERENCE.md 3.4, positional reads and streamed digests.

Shards cut short or damaged are one error naming the shard, never a shorter shard: Python's
tarfile stops silently at a header cut short, a damaged header or the end of the file; the
reference-set listing (plada_codec) and plada_train's member index (the same lister) check
where it stopped."""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import re
import tarfile
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plada_codec
from plada_codec import Catalog, ReferenceSet, ReferenceSetError
from plada_codec.cli import EXIT_USAGE, main
from plada_codec.kinds import Listing, list_items
from plada_codec.kinds.folder import FolderKind
from plada_codec.kinds.tar import TarKind, _fast_members, _tarfile_members, _Unsure, list_shard, list_shards
from tests.refsets import write_tar


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the header walk agrees with tarfile -----------------------------------------------------------

NAME_PART = st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=40)
MEMBER = st.tuples(
    st.lists(NAME_PART, min_size=1, max_size=5).map("/".join),
    st.one_of(st.binary(max_size=1200), st.none(), st.just("->target")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.lists(MEMBER, max_size=12),
       fmt=st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
def test_the_header_walk_agrees_with_tarfile(tmp_path, members, fmt):
    path = tmp_path / "random.tar"
    try:
        write_tar(path, members, fmt)
    except ValueError:  # a name that USTAR cannot store: nothing to compare
        return
    expected = _tarfile_members(str(path))
    assert _fast_members(str(path)) == expected  # the walk decided it, without tarfile


def test_long_names_pax_paths_and_prefixes_are_read_as_tarfile_reads_them(tmp_path):
    long = "d" * 90 + "/" + "e" * 90 + "/n01_1.jpg"  # ustar: prefix + name; GNU: an L record; pax: path
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        path = write_tar(tmp_path / f"{fmt}.tar", [(long, b"IMG"), ("é/ü.png", b"X" * 700)], fmt)
        names = [m[0] for m in _fast_members(str(path))]
        assert names == [long, "é/ü.png"]
        assert list_shard(str(path)).keys[0] == "d" * 90 + "/" + "e" * 90 + "/n01_1"


def test_what_the_walk_does_not_decide_goes_to_tarfile(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.jpg")
        info.size = 3
        info.pax_headers = {"GNU.sparse.major": "1"}  # sparse records change where data lies
        archive.addfile(info, io.BytesIO(b"abc"))
    path = tmp_path / "sparse.tar"
    path.write_bytes(raw.getvalue())
    with pytest.raises(_Unsure):
        _fast_members(str(path))
    assert list(list_shard(str(path)).keys) == ["a"]  # tarfile's reading, through the fallback
    damaged = bytearray(write_tar(tmp_path / "d.tar", [("a.jpg", b"1"), ("b.jpg", b"2")]).read_bytes())
    damaged[1024 + 100] ^= 1  # a byte of the second header: its checksum no longer holds
    (tmp_path / "d.tar").write_bytes(bytes(damaged))
    with pytest.raises(_Unsure):
        _fast_members(str(tmp_path / "d.tar"))
    with pytest.raises(ReferenceSetError, match="truncated or damaged tar shard"):
        list_shard(str(tmp_path / "d.tar"))


# -- the sample rules (spec 3.4) --------------------------------------------------------------------


def test_vector_6_an_image_named_by_the_last_part_of_its_extension(tmp_path):
    # spec/REFERENCE.md section 7, set 6: s.jpg is the image beside s.seg.png (a whole image extension
    # beats a last part); t.v2.png is an image (its last part). Computed by hand with sha256sum.
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tar(shards / "000.tar", [("s.jpg", b"IMG-1"), ("s.seg.png", b"MASK"), ("t.v2.png", b"IMG-2")])
    ref = ReferenceSet.from_tar_shards(shards)
    assert ref.hex == "d59cf021a7325bb4021d36b6b629e45852dd2796f8ce47bbbfeed4d766d08743"
    assert [t.member for t in plada_codec.tar_images(shards)] == ["s.jpg", "t.v2.png"]


def test_a_folder_and_shards_of_the_same_images_give_one_catalog(tmp_path):
    folder = tmp_path / "folder"
    (folder / "n01").mkdir(parents=True)
    (folder / "n01" / "s.jpg").write_bytes(b"IMG-1")
    (folder / "n01" / "t.v2.png").write_bytes(b"IMG-2")
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tar(shards / "b.tar", [("t.v2.png", b"IMG-2"), ("t.cls", b"3")])
    write_tar(shards / "a.tar", [("s.jpg", b"IMG-1"), ("s.seg.png", b"MASK")])
    expected = f"plada-catalog 1\nfields id sha256\ns\t{sha(b'IMG-1')}\nt\t{sha(b'IMG-2')}\n".encode()
    assert Catalog.build(folder).to_bytes() == expected
    assert Catalog.build(shards).to_bytes() == expected


@pytest.mark.parametrize("members, match", [
    ([("s.a.jpg", b"1"), ("s.b.png", b"2")], "sample 's' has two image members"),
    ([("s.jpg", b"1"), ("s.png", b"2")], "sample 's' has two image members"),
    ([("s.cls", b"1"), ("t.jpg", b"2")], "sample 's' has no image member"),
    ([("s.jpg", b"1"), ("t.jpg", b"2"), ("s.cls", b"3")], "sample key 's' appears again"),
])
def test_samples_that_break_the_rules_are_refused(tmp_path, members, match):
    with pytest.raises(ReferenceSetError, match=match):
        list_shard(str(write_tar(tmp_path / "x.tar", members)))


def test_a_regular_member_named_like_a_folder_is_ignored(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in (("d/", b""), ("d/a.jpg", b"A"), ("d/.hidden.jpg", b"H")):
            info = tarfile.TarInfo(name)
            info.size = len(data)  # type "0": a regular file whose name ends in "/"
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / "x.tar"
    path.write_bytes(raw.getvalue())
    assert list(list_shard(str(path)).keys) == ["d/a"]


# -- listing in processes --------------------------------------------------------------------------


def test_listing_in_processes_equals_listing_here(tmp_path):
    shards = [str(write_tar(tmp_path / f"{n}.tar", [(f"k{n}_{i}.jpg", bytes([n, i])) for i in range(20)]))
              for n in range(5)]
    here = list_shards(shards, workers=1)
    there = list_shards(shards, workers=2)
    for a, b in zip(here, there):
        assert list(a.keys) == list(b.keys) and a.offset.tolist() == b.offset.tolist()
        assert a.size.tolist() == b.size.tolist()
    listing = TarKind.scan(str(tmp_path), workers=2)
    assert [listing.read(i) for i in (0, 21, 99)] == [bytes([0, 0]), bytes([1, 1]), bytes([4, 19])]


# -- reads and digests -------------------------------------------------------------------------------


def test_threads_sharing_a_listing_read_their_own_bytes(tmp_path):
    # One descriptor a shard, read by position: threads never move one another's file position.
    rng = np.random.default_rng(0)
    payloads = {f"k{i:03d}": rng.integers(0, 256, int(rng.integers(1, 3000)), np.uint8).tobytes() for i in range(300)}
    keys = list(payloads)
    write_tar(tmp_path / "a.tar", [(f"{k}.jpg", payloads[k]) for k in keys[:150]])
    write_tar(tmp_path / "b.tar", [(f"{k}.jpg", payloads[k]) for k in keys[150:]])
    listing = list_items(tmp_path)
    wrong = []

    def reader(seed):
        order = np.random.default_rng(seed).integers(0, len(listing), 3000)
        wrong.extend(int(i) for i in order if listing.read(int(i)) != payloads[listing.names[int(i)]])

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_a_digest_is_streamed_not_read_whole(tmp_path, monkeypatch):
    data = os.urandom(3 << 20)
    write_tar(tmp_path / "a.tar", [("big.jpg", data)])
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "big.jpg").write_bytes(data)
    listings = [list_items(tmp_path / "a.tar"), list_items(tmp_path / "f")]
    for kind in (TarKind, FolderKind):
        monkeypatch.setattr(kind, "read", classmethod(lambda cls, listing, i: pytest.fail("read whole")))
    reads = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append(n) or real_pread(fd, n, at))
    for listing in listings:
        assert listing.digest(0) == sha(data)
    assert reads and max(reads) <= 1 << 20


def test_a_fifo_planted_where_a_file_was_listed_is_refused(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"A")
    listing = list_items(folder)
    (folder / "a.jpg").unlink()
    os.mkfifo(folder / "a.jpg")  # opened for reading without a writer, a blocking open never returns
    with pytest.raises(ReferenceSetError, match="not a regular file"):
        listing.read(0)
    with pytest.raises(ReferenceSetError, match="not a regular file"):
        listing.digest(0)


def test_a_listing_read_past_its_file_names_the_item(tmp_path):
    write_tar(tmp_path / "a.tar", [("a.jpg", b"A" * 100)])
    listing = list_items(tmp_path / "a.tar")
    (tmp_path / "a.tar").write_bytes((tmp_path / "a.tar").read_bytes()[:520])
    with pytest.raises(ReferenceSetError, match=r"a.tar:a: truncated \(8 of 100 bytes"):
        listing.read(0)


# -- the one cache format ------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    write_tar(tmp_path / "a.tar", [(f"k{i}.jpg", bytes([i]) * 10) for i in range(8)])
    listing = list_items(tmp_path / "a.tar")
    listing.save(tmp_path / "listing.npz")
    return tmp_path, listing


def test_a_saved_listing_loads_memory_mapped_and_equal(saved):
    root, listing = saved
    loaded = Listing.load(root / "listing.npz", TarKind, TarKind.signature(str(root / "a.tar")))
    assert loaded is not None and loaded.kind is TarKind
    assert list(loaded.names) == [f"k{i}" for i in range(8)] and loaded.where(1).endswith("a.tar:k1")
    assert [loaded.read(i) for i in range(8)] == [bytes([i]) * 10 for i in range(8)]
    base = loaded.offset
    while base is not None and not isinstance(base, mmap.mmap):  # a view of the mapped file, not a copy
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    assert isinstance(base, mmap.mmap)


def _tampered(path, **changes):
    arrays = dict(np.load(path))
    arrays.update(changes)
    np.savez(path, **arrays)


@pytest.mark.parametrize("change", [
    {"source": np.array([0, 0, 0, 0, 0, 0, 0, 5], np.int32)},  # a shard past the listing's sources
    {"size": np.array([10] * 7 + [-2], np.int64)},
    {"offset": np.array([512] * 7 + [-1], np.int64)},
    {"size": np.array([10] * 7, np.int64)},  # one entry short
    {"names_offsets": np.array([0, 2, 1, 4, 6, 8, 10, 12, 14], np.int64)},
    {"meta": np.frombuffer(b'{"version": 99}', np.uint8)},
    {"meta": np.frombuffer(b"not json", np.uint8)},
])
def test_a_cache_that_does_not_check_out_is_a_miss(saved, change):
    root, _ = saved
    _tampered(root / "listing.npz", **change)
    assert Listing.load(root / "listing.npz", TarKind) is None


def test_a_stale_or_special_cache_is_a_miss_without_a_hang(saved):
    root, _ = saved
    os.utime(root / "a.tar", ns=(1, 1))
    assert Listing.load(root / "listing.npz", TarKind, TarKind.signature(str(root / "a.tar"))) is None
    os.mkfifo(root / "fifo.npz")
    assert Listing.load(root / "fifo.npz") is None
    os.symlink("/dev/zero", root / "zero.npz")
    assert Listing.load(root / "zero.npz") is None
    assert Listing.load(root / "absent.npz") is None


def test_a_touched_shard_is_the_only_one_listed_again(tmp_path, monkeypatch):
    import plada_codec.kinds.tar as tar

    for n in range(4):
        write_tar(tmp_path / f"{n}.tar", [(f"k{n}_{i}.jpg", bytes([n, i])) for i in range(5)])
    first = TarKind.scan(str(tmp_path))
    first.save(tmp_path / ".listing.npz")
    cached = Listing.load(tmp_path / ".listing.npz", TarKind)
    write_tar(tmp_path / "2.tar", [("new.jpg", b"NEW"), ("k2_0.jpg", b"X")])  # rewritten
    listed = []
    real = tar.list_shard
    monkeypatch.setattr(tar, "list_shard", lambda shard: listed.append(shard) or real(shard))
    again = TarKind.scan(str(tmp_path), previous=cached)
    assert listed == [str(tmp_path / "2.tar")]
    assert list(again.names) == [f"k{n}_{i}" for n in (0, 1) for i in range(5)] + ["new", "k2_0"] + \
        [f"k3_{i}" for i in range(5)]
    assert [again.read(i) for i in (0, 10, 11, 12, 16)] == [b"\0\0", b"NEW", b"X", bytes([3, 0]), bytes([3, 4])]
    assert again.signature == TarKind.signature(str(tmp_path))


def test_an_old_style_member_named_like_a_folder_is_read_as_tarfile_reads_it(tmp_path):
    # Type NUL with a name ending in "/" and data: tarfile makes it a folder and skips no data,
    # so the data block is read as the next header. The walks leave that case to tarfile.
    info = tarfile.TarInfo("d/")
    info.size = 600
    header = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    header[156] = 0
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    tail = io.BytesIO()
    with tarfile.open(fileobj=tail, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        member = tarfile.TarInfo("a.jpg")
        member.size = 1
        archive.addfile(member, io.BytesIO(b"A"))
    path = tmp_path / "areg.tar"
    path.write_bytes(bytes(header) + bytes(1024) + tail.getvalue())
    with pytest.raises(_Unsure):
        _fast_members(str(path))
    try:
        expected = _tarfile_members(str(path))
    except ReferenceSetError as exc:
        with pytest.raises(ReferenceSetError, match=re.escape(str(exc))):
            list_shard(str(path))
    else:
        assert [m[0] for m in expected] == [m for m in list_shard(str(path)).members]


def test_a_size_past_any_offset_is_one_error(tmp_path):
    info = tarfile.TarInfo("a.jpg")
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[124:136] = b"\x80" + b"\xff" * 11  # base-256: far past any file offset
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    path = tmp_path / "huge.tar"
    path.write_bytes(bytes(header) + bytes(1024))
    with pytest.raises(ReferenceSetError, match="huge.tar"):
        list_shard(str(path))


# -- shards cut short or damaged: one error naming the shard -------------------------------------

MEMBER_BYTES = 700  # data of each image: 2 blocks after its 512-byte header
SECOND_HEADER = 512 + 1024  # byte offset of member 1's header


def _six_images() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for i in range(6):
            info = tarfile.TarInfo(f"sample{i}.jpg")
            info.size = MEMBER_BYTES
            archive.addfile(info, io.BytesIO(bytes([i]) * MEMBER_BYTES))
    return out.getvalue()


DAMAGE = {
    "cut-inside-a-header": (lambda raw: raw[: SECOND_HEADER + 100], "is cut inside a member header (100 of its 512"),
    "cut-after-a-member": (lambda raw: raw[:SECOND_HEADER], "ends without the end-of-archive marker"),
    "damaged-header": (lambda raw: raw[:SECOND_HEADER] + b"\x01" * 512 + raw[SECOND_HEADER + 512 :],
                       "holds a damaged member header"),
}


@pytest.fixture
def shards(tmp_path):
    raw = _six_images()
    (tmp_path / "good.tar").write_bytes(raw)
    for name, (damage, _) in DAMAGE.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "a-good.tar").write_bytes(raw)
        (folder / "b-bad.tar").write_bytes(damage(raw))
    return tmp_path


def test_the_intact_shard_has_six_items(shards):
    assert len(plada_codec.tar_images(shards / "good.tar")) == 6
    # One end block of zeros instead of two (GNU tar accepts it with a warning): still complete.
    one_block = _six_images()[: 512 + 6 * 1536 + 512]
    (shards / "one-block.tar").write_bytes(one_block)
    assert len(plada_codec.tar_images(shards / "one-block.tar")) == 6


@pytest.mark.parametrize("name", list(DAMAGE))
def test_a_damaged_shard_is_one_error_naming_it(shards, name):
    shard = shards / name / "b-bad.tar"
    message = DAMAGE[name][1]
    expected = f"{shard}: truncated or damaged tar shard: at byte {SECOND_HEADER}, after 1 member, it {message}"
    with pytest.raises(plada_codec.ReferenceSetError, match=re.escape(expected)):
        plada_codec.tar_images(shard)
    with pytest.raises(plada_codec.ReferenceSetError, match="b-bad.tar: truncated or damaged"):
        plada_codec.ReferenceSet.from_tar_shards(shards / name)  # a folder holding the shard


@pytest.mark.parametrize("name", list(DAMAGE))
def test_ref_hash_exits_2_for_the_shard_and_for_its_folder(shards, capsys, name):
    for target in (shards / name / "b-bad.tar", shards / name):
        capsys.readouterr()
        assert main(["ref-hash", str(target)]) == EXIT_USAGE
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert out == "" and len(lines) == 1
        assert lines[0].startswith("plada ref-hash: error: ReferenceSetError: ") and "b-bad.tar: truncated" in lines[0]


@pytest.mark.parametrize("name", list(DAMAGE))
def test_the_one_tar_lister_and_training_refuse_it_too(shards, name):
    from plada_codec.kinds.tar import list_shard

    listed = list_shard(str(shards / "good.tar"))
    assert len(listed.keys) == 6 and listed.size.tolist() == [MEMBER_BYTES] * 6
    with pytest.raises(plada_codec.ReferenceSetError, match="b-bad.tar: truncated or damaged tar shard"):
        list_shard(str(shards / name / "b-bad.tar"))
    pytest.importorskip("torch")
    from plada_train.data import DataError, TarImages

    with pytest.raises(DataError, match="b-bad.tar: truncated or damaged tar shard"):
        TarImages([str(shards / name / "a-good.tar"), str(shards / name / "b-bad.tar")], index_workers=1)
