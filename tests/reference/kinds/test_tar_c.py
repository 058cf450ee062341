"""The tar lister's C walk (csrc/plada_tar.c through plada_codec.kinds._tar_c) against the
Python lister of plada_codec.kinds.tar, the reference: the same ShardListing, or None (the
Python lister decides, and words the error); never a listing where Python refuses."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from plada_codec import ReferenceSet, ReferenceSetError, _backend
from plada_codec.kinds import _tar_c
from plada_codec.kinds._tar_c import list_shard_c
from plada_codec.kinds.tar import ShardListing, list_shard
from tests.refsets import write_tar

pytestmark = pytest.mark.codec

FORMATS = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]


def reference(shard) -> ShardListing | str:
    """The Python lister's listing, or its error message (or exception, where tarfile's escapes)."""
    return through_hook(shard, "python")


def by_c(shard, backend: str) -> ShardListing | None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_backend, "backend", backend)
        return list_shard_c(str(shard))


def through_hook(shard, backend: str) -> ShardListing | str:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_backend, "backend", backend)
        try:
            return list_shard(str(shard))
        except ReferenceSetError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001  the reference's own failure (tarfile's), compared as such
            return f"{type(exc).__name__}: {exc}"


def same(a: ShardListing, b: ShardListing) -> bool:
    def strings(p):
        return bytes(p.blob), p.offsets.dtype, p.offsets.tolist()
    return (strings(a.keys) == strings(b.keys) and strings(a.members) == strings(b.members)
            and a.offset.dtype == b.offset.dtype == np.int64 and a.size.dtype == b.size.dtype == np.int64
            and a.offset.tolist() == b.offset.tolist() and a.size.tolist() == b.size.tolist())


def check(shard, backend: str, decided: bool | None = None) -> ShardListing | None:
    """The C walk gives the reference listing or None (None whenever the reference refuses),
    and list_shard gives the reference through the hook. *decided*: whether C must decide."""
    expected = reference(shard)
    got = by_c(shard, backend)
    if currently_in_test_context():  # shown by --hypothesis-show-statistics
        event("refused by the reference" if isinstance(expected, str) else
              "decided by C" if got is not None else "left to Python")
    if backend != "c":
        assert got is None
    elif isinstance(expected, str):
        assert got is None, f"the C walk listed a shard the Python lister refuses: {expected}"
    elif got is not None:
        assert same(got, expected)
    if decided is not None and backend == "c":
        assert (got is not None) == decided, expected
    hooked = through_hook(shard, backend)
    assert hooked == expected if isinstance(expected, str) else same(hooked, expected)
    return got


# -- random archives: the C walk decides what the Python walk decides -------------------------------

FOLDER = st.sampled_from(["", "d/", "n01/", "é/ü/", "a.b/", "d" * 90 + "/" + "e" * 60 + "/", "x" * 110 + "/"])
BASE = st.sampled_from(["a", "b", "n01_1", "K", "ключ", "s p", "ab" * 40, ".h", "", "1.2"])
EXTENSION = st.sampled_from(["jpg", "JPG", "jpeg", "cls", "png", "seg.png", "v2.png", "PnG", "txt", "", "tar.gz",
                             "json", "jpg.bak", "Jpeg"])
CONTENT = st.one_of(st.binary(max_size=1100).map(lambda b: b or b"x"), st.just(b""), st.none(),
                    st.just("->target"), st.just("=>a.jpg"),
                    st.tuples(st.binary(max_size=40), st.sampled_from([{"comment": "c"}, {"mtime": "1.5"}])))
IMAGE = st.sampled_from(["jpg", "JPEG", "png", "seg.png", "v2.png", "webp", "Tif"])
# An image member first, so that most samples keep the rules; the others may break them.
SAMPLE = st.tuples(FOLDER, BASE, st.tuples(st.tuples(IMAGE, CONTENT), st.lists(st.tuples(EXTENSION, CONTENT),
                                                                             max_size=3)).map(lambda t: [t[0], *t[1]]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.lists(SAMPLE, max_size=8, unique_by=lambda s: s[:2]), fmt=st.sampled_from(FORMATS),
       order=st.sampled_from(["kept", "kept", "one again", "shuffled"]), shuffle=st.randoms(use_true_random=False),
       global_records=st.sampled_from([None, {"comment": "g"}, {"path": "g.jpg"}]))
def test_random_archives_list_as_the_python_lister_lists_them(tmp_path, backend, samples, fmt, order, shuffle,
                                                               global_records):
    members = [(folder + base + ("." + ext if ext else ""), content)
               for folder, base, parts in samples for ext, content in parts]
    if order == "one again" and members:  # a key after other keys: "appears again"
        members.append(shuffle.choice(members[:-1] or members))
    elif order == "shuffled":
        shuffle.shuffle(members)
    if fmt != tarfile.PAX_FORMAT:
        global_records = None
        members = [(n, c[0] if isinstance(c, tuple) else c) for n, c in members]
    path = tmp_path / "random.tar"
    try:
        write_tar(path, members, fmt, global_records)
    except ValueError:  # a name USTAR cannot store
        return
    # tarfile writes plain octal fields and none of what the walk hands to tarfile: C decides it all.
    check(path, backend, decided=not isinstance(reference(path), str))


# -- hostile bytes ------------------------------------------------------------------------------------


def archive_bytes(members, fmt=tarfile.PAX_FORMAT, **kw) -> bytearray:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt, **kw) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                data, info.pax_headers = data
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return bytearray(raw.getvalue())


def reseal(buf: bytearray, header: int) -> None:
    """Recompute the checksum of the header at byte *header*, as tarfile writes it."""
    block = buf[header:header + 512]
    block[148:156] = b" " * 8
    buf[header + 148:header + 156] = b"%06o\0 " % sum(block)


BASES = [
    archive_bytes([("s.jpg", b"IMG-1"), ("s.seg.png", b"MASK"), ("t.v2.png", b"IMG-2" * 200), ("u.cls", b"3"),
                   ("u.JPEG", b"U")], fmt)
    for fmt in FORMATS
] + [
    archive_bytes([("d" * 90 + "/" + "é" * 40 + "/n01_1.jpg", b"I" * 600), ("k.png", b"P")], fmt) for fmt in FORMATS
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(range(len(BASES))), data=st.data())
def test_damaged_archives_are_listed_as_python_lists_them_or_left_to_it(tmp_path, backend, base, data):
    buf = bytearray(BASES[base])
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()):  # keep the checksum true, so the fields themselves are tried
            reseal(buf, at - at % 512)
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(buf))))
    if cut is not None:
        del buf[cut:]
    path = tmp_path / "damaged.tar"
    path.write_bytes(bytes(buf))
    check(path, backend)


def one_member(size_field: bytes, data_blocks: int = 1, kind: bytes = b"0", name: bytes = b"a.jpg") -> bytearray:
    buf = archive_bytes([("a.jpg", b"x" * 10)], tarfile.USTAR_FORMAT)
    buf[0:100] = name.ljust(100, b"\0")
    buf[124:136] = size_field
    buf[156:157] = kind
    reseal(buf, 0)
    return buf[:512 * (1 + data_blocks)] + bytes(1024)


@pytest.mark.parametrize("what, raw, decided", [
    ("bad checksum", (lambda b: b.__setitem__(148, ord("7")) or b)(archive_bytes([("a.jpg", b"1")])), False),
    ("cut inside a header", archive_bytes([("a.jpg", b"1"), ("b.jpg", b"2")])[:1024 + 300], False),
    ("no end marker", archive_bytes([("a.jpg", b"1")])[:1024], False),
    ("one zero block only", archive_bytes([("a.jpg", b"1")])[:1536], True),
    ("huge octal size", one_member(b"77777777777\0"), False),
    ("size past the end", one_member(b"00000010000\0"), False),
    ("size in base-256", one_member(b"\x80" + bytes(10) + b"\x0a"), True),
    ("huge base-256 size", one_member(b"\x80" + b"\xff" * 11), False),
    ("negative base-256 size", one_member(b"\xff" * 12), False),
    ("size with a sign", one_member(b"+0000000012\0"), False),
    ("size with spaces between digits", one_member(b"0000 000012\0"), False),
    ("size with a tab", one_member(b"\t0000000012\0"), False),
    ("spaces around the size", one_member(b"  12        "), True),
    ("empty size field", one_member(b"\0" * 12, 0), True),
    ("old GNU sparse type", one_member(b"00000000012\0", 1, b"S"), False),
    ("a vendor type", one_member(b"00000000012\0", 1, b"V"), False),
    ("a FIFO with a size: no data skipped", one_member(b"00000000012\0", 0, b"6"), True),
    ("pax size record", archive_bytes([("a.jpg", (b"abc", {"size": "3"}))]), False),
    ("pax hdrcharset record", archive_bytes([("a.jpg", (b"abc", {"hdrcharset": "BINARY"}))]), False),
    ("pax sparse record", archive_bytes([("a.jpg", (b"abc", {"GNU.sparse.major": "1"}))]), False),
    ("pax path", archive_bytes([("a.jpg", (b"abc", {"path": "p/b.png"}))]), True),
])
def test_hand_made_hostile_shards(tmp_path, backend, what, raw, decided):
    path = tmp_path / "hostile.tar"
    path.write_bytes(bytes(raw))
    check(path, backend, decided)


def pax_block(records: bytes, kind: bytes = b"x") -> bytes:
    header = bytearray(archive_bytes([("a.jpg", b"")], tarfile.USTAR_FORMAT)[:512])
    header[0:100] = b"././@PaxHeader".ljust(100, b"\0")
    header[124:136] = b"%011o\0" % len(records)
    header[156:157] = kind
    reseal(header, 0)
    return bytes(header) + records.ljust((len(records) + 511) // 512 * 512, b"\0")


def member_block(name: bytes, data: bytes) -> bytes:
    raw = archive_bytes([("a.jpg", data)], tarfile.USTAR_FORMAT)
    raw[0:100] = name.ljust(100, b"\0")
    reseal(raw, 0)
    return bytes(raw[:512 + (len(data) + 511) // 512 * 512])


@pytest.mark.parametrize("what, records, decided", [
    ("a record length past the block", b"99 path=b.png\n", False),
    ("a record length of zero", b"0 path=b.png\n", False),
    ("a record not ending in a newline", b"15 path=b.pngXX", False),
    ("no '=' at all", b"12 pathb.png\n", False),
    ("an empty keyword", b"8 =b.png\n", False),
    ("a huge record length", b"9" * 30 + b" path=b.png\n", False),
    ("text after the records", b"14 path=b.png\nxyz", False),
    ("NUL padding after the records", b"14 path=b.png\n\0\0\0", True),
    ("two paths: the last wins", b"14 path=b.png\n14 path=c.png\n", True),
    ("an empty path", b"8 path=\n", True),
    ("a record length inside its keyword", b"3 \n=x", False),
    ("a linkpath is not a path", b"18 linkpath=b.png\n", True),
])
def test_malformed_pax_records(tmp_path, backend, what, records, decided):
    path = tmp_path / "pax.tar"
    path.write_bytes(pax_block(records) + member_block(b"a.jpg", b"abc") + bytes(1024))
    check(path, backend, decided)


def record(keyword: bytes, value: bytes) -> bytes:
    body = b" " + keyword + b"=" + value + b"\n"
    length = len(body) + 1
    length += len(str(length + len(str(length)))) - 1
    return b"%d" % length + body


RECORD = st.one_of(
    st.builds(record, st.sampled_from([b"path", b"comment", b"mtime", b"linkpath", b"size", b"hdrcharset",
                                       b"GNU.sparse.map", b"pa\nth"]),
              st.sampled_from([b"b.png", b"d/e.jpg", b"", b"\xc3\xa9.jpg", b"x" * 300 + b".jpg", b"3"])),
    st.binary(max_size=20),  # anything at all
    st.sampled_from([b"0 path=a.jpg\n", b"99 path=a.jpg\n", b"5 a=b\n", b"\0\0\0"]),
)


def gnu_block(kind: bytes, name: bytes) -> bytes:
    return pax_block(name, kind)  # the same layout: a header, then the data


def prefixed_block(prefix: bytes, name: bytes, data: bytes, kind: bytes = b"0") -> bytes:
    raw = bytearray(member_block(name, data))
    raw[345:500] = prefix.ljust(155, b"\0")[:155]
    raw[156:157] = kind
    reseal(raw, 0)
    return bytes(raw)


NAME = st.sampled_from([b"a.jpg", b"a.cls", b"b.png", b"b.seg.png", b"d/", b".h.jpg", b"c", b"\xc3\xa9.JPG",
                        b"n" * 100])
BLOCK = st.one_of(
    st.builds(lambda records, kind: pax_block(b"".join(records), kind), st.lists(RECORD, max_size=3),
              st.sampled_from([b"x", b"g"])),
    st.builds(gnu_block, st.sampled_from([b"L", b"K"]), NAME.map(lambda n: n + b"\0") | NAME),
    st.builds(prefixed_block, st.sampled_from([b"", b"p", b"p/q", b"\xff"]), NAME, st.binary(max_size=600),
              st.sampled_from([b"0", b"0", b"\0", b"7", b"2", b"5"])),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks=st.lists(BLOCK, max_size=8), end=st.sampled_from([2, 2, 1, 0]))
def test_random_header_sequences(tmp_path, backend, blocks, end):
    # pax blocks (local and global, well formed or not), GNU long names, ustar prefixes, links
    # and folders in any order: the name logic of the walk, record by record.
    path = tmp_path / "blocks.tar"
    path.write_bytes(b"".join(blocks) + bytes(512 * end))
    check(path, backend)


def test_global_paths_apply_only_through_a_local_pax_header(tmp_path, backend):
    blocks = (pax_block(b"14 path=g.png\n", b"g") + member_block(b"a.jpg", b"1")  # own name
              + pax_block(b"11 mtime=1\n") + member_block(b"b.jpg", b"2")  # the global path
              + pax_block(b"14 path=h.png\n", b"g") + member_block(b"c.jpg", b"3"))
    (tmp_path / "g.tar").write_bytes(blocks + bytes(1024))
    got = check(tmp_path / "g.tar", backend, decided=True)
    if got is not None:
        assert list(got.members) == ["a.jpg", "g.png", "c.jpg"]


def test_gnu_long_names_and_ustar_prefixes(tmp_path, backend):
    long = "d" * 90 + "/" + "é" * 30 + "/n01_1.jpg"  # a 151-byte ustar prefix
    for fmt in FORMATS:
        got = check(write_tar(tmp_path / f"{fmt}.tar", [(long, b"I"), (long[:-4] + ".cls", b"1")], fmt), backend,
                    decided=True)
        if got is not None:
            assert list(got.keys) == [long[:-4]] and list(got.members) == [long]


# -- the rules and the ids --------------------------------------------------------------------------


@pytest.mark.parametrize("members", [
    [("s.a.jpg", b"1"), ("s.b.png", b"2")],  # two whole image extensions
    [("s.jpg", b"1"), ("s.png", b"2")],
    [("s.x.png", b"1"), ("s.y.png", b"2")],  # two last parts
    [("s.cls", b"1"), ("t.jpg", b"2")],  # no image
    [("s.jpg", b"1"), ("t.jpg", b"2"), ("s.cls", b"3")],  # a key again
    [("s.jpg", b"1"), ("t.jpg", b"2"), ("s.png", b"3")],  # a key again, with an image of its own
    [("d/s.jpg", b"1"), ("d/t.png", b"2"), ("e.jpg", b"3"), ("d/s.png", b"3")],
])
def test_samples_that_break_the_rules_go_to_the_python_lister(tmp_path, backend, members):
    path = write_tar(tmp_path / "x.tar", members)
    check(path, backend, decided=False)
    assert isinstance(reference(path), str)


@pytest.mark.parametrize("members, message", [
    ([("a\x01b.jpg", b"1")], "control character"),
    ([("a\x7f.jpg", b"1")], "control character"),
    # Each key alone is invalid; together their bytes ("x\xc3" + "\xa9y") would be a valid "e".
    ([("x\udcc3.jpg", b"1"), ("\udca9y.jpg", b"2")], "not valid UTF-8"),
    ([("ok.jpg", b"1"), ("\udca9y.jpg", b"2")], "not valid UTF-8"),
    ([("\udcff.jpg", b"1")], "not valid UTF-8"),
])
def test_keys_are_listed_as_they_are_and_ids_checked_where_they_are_made(tmp_path, backend, members, message):
    # The lister checks no id: a manifest refuses <shard>/<key> ids that break the id rules, a
    # catalog the ids its rule derives (spec 8.2), each where it makes them.
    path = write_tar(tmp_path / "u.tar", members, tarfile.GNU_FORMAT)
    assert not isinstance(reference(path), str)
    check(path, backend, decided=True)
    with pytest.raises(ReferenceSetError, match=message):
        ReferenceSet.from_tar_shards([str(path)], content=False)


def test_a_shard_name_that_is_no_id_is_refused_by_a_manifest_only(tmp_path, backend):
    path = write_tar(tmp_path / "bad\x01name.tar", [("a.jpg", b"1")])
    check(path, backend, decided=True)
    with pytest.raises(ReferenceSetError, match="control character"):
        ReferenceSet.from_tar_shards([str(path)], content=False)


def test_an_empty_shard_and_unreadable_paths(tmp_path, backend):
    check(write_tar(tmp_path / "empty.tar", []), backend, decided=True)
    (tmp_path / "short.tar").write_bytes(b"x" * 100)
    check(tmp_path / "short.tar", backend, decided=False)
    check(tmp_path / "missing.tar", backend, decided=False)
    (tmp_path / "folder.tar").mkdir()
    check(tmp_path / "folder.tar", backend, decided=False)


def test_vector_6_through_the_c_walk(tmp_path, backend):
    path = write_tar(tmp_path / "000.tar", [("s.jpg", b"IMG-1"), ("s.seg.png", b"MASK"), ("t.v2.png", b"IMG-2")])
    got = check(path, backend, decided=True)
    if got is not None:
        assert list(got.members) == ["s.jpg", "t.v2.png"] and list(got.keys) == ["s", "t"]


# -- the C contract: bounded outputs ----------------------------------------------------------------


def test_outputs_too_small_give_unsure_and_bad_tables_an_argument_error(tmp_path):
    if _tar_c.lib is None:
        pytest.skip("the C core is not built")
    ffi, lib = _tar_c.ffi, _tar_c.lib
    src = bytes(archive_bytes([("key.jpg", b"1"), ("other.png", b"2")]))
    ext = _tar_c._EXTENSIONS

    def run(blob_cap, cap, table_len):
        keys, names = np.zeros(max(blob_cap, 1), np.uint8), np.zeros(max(blob_cap, 1), np.uint8)
        ko, no = np.zeros(cap + 1, np.int64), np.zeros(cap + 1, np.int64)
        off, size = np.zeros(max(cap, 1), np.int64), np.zeros(max(cap, 1), np.int64)
        table = np.zeros(max(table_len, 1), np.uint32)
        count = ffi.new("size_t *")
        fb = ffi.from_buffer
        status = lib.plada_tar_list(src, len(src), ext, len(ext), fb("uint8_t[]", keys), blob_cap,
                                    fb("int64_t[]", ko), fb("uint8_t[]", names), blob_cap, fb("int64_t[]", no),
                                    fb("int64_t[]", off), fb("int64_t[]", size), cap, fb("uint32_t[]", table),
                                    table_len, 7, count)
        return status, count[0]

    assert run(64, 8, 64) == (0, 2)
    assert run(4, 8, 64)[0] == 1  # "key" and "other" do not fit 4 bytes
    assert run(64, 1, 64)[0] == 1  # two samples, room for one
    assert run(64, 8, 48)[0] == 3  # not a power of two
    assert run(64, 8, 8)[0] == 3  # not above the samples it may hold


def test_the_python_backend_never_takes_the_c_walk(tmp_path):
    path = write_tar(tmp_path / "a.tar", [("a.jpg", b"1")])
    assert by_c(path, "python") is None
    assert list(through_hook(path, "python").keys) == ["a"]


def test_a_shard_of_many_samples(tmp_path, backend):
    members = [(f"n{i % 97:08d}_{i}.{'JPEG' if j == 0 else 'cls'}", b"%d" % i) for i in range(3000) for j in range(2)]
    got = check(write_tar(tmp_path / "big.tar", members, tarfile.GNU_FORMAT), backend, decided=True)
    if got is not None:
        assert len(got) == 3000 and got.keys[2999] == "n00000089_2999"
