import hashlib
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from plada_codec import ReferenceSet, ReferenceSetError
from plada_codec import _reference as _reference_module
from plada_codec._reference import MANIFEST_HEADER, array_item_digest


def test_ids_known_answer():
    # Spelled out from FORMAT.md section 8.1, independent of the implementation.
    manifest = b"plada-reference-manifest 1\na.png\nb.png\n"
    assert ReferenceSet.from_ids(["a.png", "b.png"]).fingerprint == hashlib.sha256(manifest).digest()


def test_array_digest_known_answer():
    item = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert array_item_digest(item) == hashlib.sha256(b"u1:2x3\n" + bytes(range(6))).hexdigest()
    big_endian = np.arange(3, dtype=">u2")
    assert array_item_digest(big_endian) == hashlib.sha256(b"u2:3\n" + b"\x00\x00\x01\x00\x02\x00").hexdigest()


def test_changes_of_order_membership_content_change_fingerprint():
    base = ReferenceSet.from_ids(["a", "b", "c"])
    assert ReferenceSet.from_ids(["a", "b", "c"]) == base
    assert ReferenceSet.from_ids(["b", "a", "c"]) != base
    assert ReferenceSet.from_ids(["a", "b"]) != base
    x = np.zeros((4, 2, 2), np.float32)
    y = x.copy()
    y[3, 1, 1] = 1e-7
    assert ReferenceSet.from_array(x) != ReferenceSet.from_array(y)
    assert ReferenceSet.from_array(x) != ReferenceSet.from_array(x.astype(np.float64))
    assert len(ReferenceSet.from_array(x)) == 4


def test_folder_manifest_and_canonical_order(tmp_path):
    (tmp_path / "n01").mkdir()
    (tmp_path / "n01a").mkdir()
    (tmp_path / "n01" / "x.jpg").write_bytes(b"1")
    (tmp_path / "n01a" / "y.jpg").write_bytes(b"2")
    (tmp_path / "Z.png").write_bytes(b"3")
    (tmp_path / "a.png").write_bytes(b"4")
    if hasattr(os, "symlink"):
        os.symlink(tmp_path / "a.png", tmp_path / "link.png")  # not followed, not listed
    assert ReferenceSet.folder_files(tmp_path) == ["Z.png", "a.png", "n01/x.jpg", "n01a/y.jpg"]
    manifest_path = tmp_path.parent / "manifest.txt"
    with open(manifest_path, "wb") as out:
        ref = ReferenceSet.from_folder(tmp_path, manifest_out=out)
    text = manifest_path.read_bytes()
    assert text.startswith(MANIFEST_HEADER)
    assert text.splitlines()[1] == b"Z.png\t" + hashlib.sha256(b"3").hexdigest().encode()
    assert ReferenceSet.from_manifest(manifest_path) == ref
    assert ReferenceSet.from_folder(tmp_path, content=False) != ref
    (tmp_path / "a.png").write_bytes(b"changed")
    assert ReferenceSet.from_folder(tmp_path) != ref


def test_bad_manifest_and_ids(tmp_path):
    bad = tmp_path / "m.txt"
    bad.write_bytes(b"not a manifest\n")
    # A manifest is not a payload: its errors are ReferenceSetErrors, never PayloadFormatErrors.
    with pytest.raises(plada_codec.ReferenceSetError, match="not a plada reference manifest") as info:
        ReferenceSet.from_manifest(bad)
    assert not isinstance(info.value, plada_codec.PayloadFormatError)
    bad.write_bytes(MANIFEST_HEADER + b"a\tnothex\n")
    with pytest.raises(plada_codec.ReferenceSetError, match="64 lowercase hex"):
        ReferenceSet.from_manifest(bad)
    bad.write_bytes(MANIFEST_HEADER + b"a\t" + b"A" * 64 + b"\n")  # upper-case hex is not canonical
    with pytest.raises(plada_codec.ReferenceSetError, match="64 lowercase hex"):
        ReferenceSet.from_manifest(bad)
    bad.write_bytes(MANIFEST_HEADER + b"a")
    with pytest.raises(plada_codec.ReferenceSetError, match="LF"):
        ReferenceSet.from_manifest(bad)
    bad.write_bytes(MANIFEST_HEADER)
    with pytest.raises(plada_codec.ReferenceSetError, match="at least one item"):
        ReferenceSet.from_manifest(bad)
    with pytest.raises(plada_codec.ReferenceSetError, match="cannot read"):
        ReferenceSet.from_manifest(tmp_path / "missing.txt")
    with pytest.raises(plada_codec.ReferenceSetError, match="control character"):
        ReferenceSet.from_ids(["a\tb"])
    with pytest.raises(plada_codec.ReferenceSetError, match="at least one item"):
        ReferenceSet.from_ids([])


def test_constructor_errors_are_one_tree_and_still_value_errors(tmp_path):
    cases = [
        lambda: ReferenceSet.from_ids([]),
        lambda: ReferenceSet.from_ids(["a"], ["0" * 63]),
        lambda: ReferenceSet.from_ids(["a", "b"], ["0" * 64]),
        lambda: ReferenceSet.from_array(np.zeros((0, 2))),
        lambda: ReferenceSet.from_array(np.zeros((2, 2), np.complex64)),
        lambda: ReferenceSet.from_folder(tmp_path / "missing"),
        lambda: ReferenceSet.folder_files(tmp_path / "missing"),
        lambda: ReferenceSet(1, b"short"),
        lambda: ReferenceSet.from_tar_shards([]),
        lambda: ReferenceSet.from_folder(tmp_path),  # empty
    ]
    for make in cases:
        with pytest.raises(plada_codec.ReferenceSetError) as info:
            make()
        assert isinstance(info.value, plada_codec.PayloadError) and isinstance(info.value, ValueError)

def test_binding_checked_on_decode(backend):
    ref = ReferenceSet.from_ids([str(i) for i in range(10)])
    data = plada_codec.encode([1, 2], [0, 1], n_classes=2, reference=ref, backend=backend)
    assert plada_codec.decode(data, reference=ref, backend=backend).fingerprint == ref.fingerprint
    other = ReferenceSet.from_ids([str(i) for i in range(1, 11)])
    with pytest.raises(plada_codec.ReferenceMismatchError, match="made for reference set"):
        plada_codec.decode(data, reference=other, backend=backend)
    with pytest.raises(plada_codec.ReferenceMismatchError, match="has 11"):
        plada_codec.decode(data, reference=ReferenceSet.from_ids([str(i) for i in range(11)]), backend=backend)
    unbound = plada_codec.encode([1], [0], n_ref=10, n_classes=2)
    with pytest.raises(plada_codec.ReferenceMismatchError, match="not bound"):
        plada_codec.decode(unbound, reference=ref, backend=backend)
    with pytest.raises(plada_codec.EncodeError, match="reference set has 10"):
        plada_codec.encode([1], [0], n_ref=11, n_classes=2, reference=ref)


# -- folders: the rules of spec/REFERENCE.md -------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_folder_skips_hidden_links_and_special_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"A")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.png").write_bytes(b"X")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".hidden.png").write_bytes(b"H")
    (tmp_path / "sub" / "b.png").write_bytes(b"B")
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "sub", tmp_path / "linked-folder")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
    manifest = f"plada-reference-manifest 1\na.png\t{_sha(b'A')}\nsub/b.png\t{_sha(b'B')}\n".encode()
    assert ReferenceSet.folder_files(tmp_path) == ["a.png", "sub/b.png"]
    assert ReferenceSet.from_folder(tmp_path).fingerprint == hashlib.sha256(manifest).digest()


@pytest.mark.skipif(os.name == "nt", reason="POSIX file names are bytes")
def test_folder_refuses_non_utf8_and_control_character_names(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    fd = os.open(os.fsencode(bad) + b"/caf\xe9.png", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    with pytest.raises(plada_codec.ReferenceSetError, match=r"caf\\xe9.png.*not valid UTF-8"):
        ReferenceSet.from_folder(bad)
    ctrl = tmp_path / "ctrl"
    ctrl.mkdir()
    (ctrl / "a\nb.png").write_bytes(b"")
    with pytest.raises(plada_codec.ReferenceSetError, match="control character"):
        ReferenceSet.folder_files(ctrl)


def test_folder_names_are_not_normalised(tmp_path):
    import unicodedata

    nfd = unicodedata.normalize("NFD", "é.png")
    nfc = unicodedata.normalize("NFC", "é.png")
    (tmp_path / nfd).write_bytes(b"x")
    manifest_nfd = b"plada-reference-manifest 1\n" + nfd.encode() + b"\n"
    manifest_nfc = b"plada-reference-manifest 1\n" + nfc.encode() + b"\n"
    ref = ReferenceSet.from_folder(tmp_path, content=False)
    assert ref.fingerprint == hashlib.sha256(manifest_nfd).digest() != hashlib.sha256(manifest_nfc).digest()


def test_parallel_folder_hash_matches_a_manifest_written_by_hand(tmp_path):
    root = tmp_path / "ref"
    lines = []
    for i in range(150):  # several worker tasks
        name = f"{i % 7}/{i:04d}.bin"
        (root / str(i % 7)).mkdir(parents=True, exist_ok=True)
        data = bytes([i]) * (i * 997 % 5000)
        (root / name).write_bytes(data)
        lines.append(f"{name}\t{_sha(data)}\n")
    big = os.urandom(3 << 20)  # several read chunks
    (root / "big.bin").write_bytes(big)
    lines.append(f"big.bin\t{_sha(big)}\n")
    lines.sort(key=lambda line: line.split("\t")[0].encode())
    expected = hashlib.sha256(b"plada-reference-manifest 1\n" + "".join(lines).encode()).digest()
    for workers in (1, 4):
        assert ReferenceSet.from_folder(root, workers=workers).fingerprint == expected


# -- tar shards -------------------------------------------------------------------


def _add(archive, name, data=b"", kind=None):
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    if kind is not None:
        info.type = kind
        info.size = 0
        info.linkname = "target"
    archive.addfile(info, io.BytesIO(data) if kind is None else None)


def _shard(path, members, fmt=None):
    import tarfile

    with tarfile.open(path, "w", format=fmt or tarfile.PAX_FORMAT) as archive:
        for member in members:
            _add(archive, *member)
    return path


def test_tar_images_rule_offsets_and_fingerprint(tmp_path):
    import tarfile

    shards = tmp_path / "shards"
    shards.mkdir()
    long_key = "deep/" + "k" * 120  # needs a PAX/GNU long-name header before its data
    _shard(shards / "b.tar", [("x.webp", b"IMG-X"), ("x.cls", b"3")])
    _shard(shards / "a.tar", [
        ("s1.cls", b"7"), ("s1.jpg", b"IMG-1"), ("s1.json", b"{}"),
        ("dir", b"", tarfile.DIRTYPE),
        ("._s2.jpg", b"apple double"),          # hidden: ignored
        ("dir/s2.PNG", b"IMG-2"),               # extension matched in any case
        ("dir/s2.seg.png", b"not the image"),   # extension "seg.png": not an image member
        ("link.jpg", b"", tarfile.SYMTYPE),     # not a regular file: ignored
        (long_key + ".jpeg", b"IMG-3"),
    ])
    images = plada_codec.tar_images(shards)
    assert [(os.path.basename(i.shard), i.key, i.member) for i in images] == [
        ("a.tar", "s1", "s1.jpg"), ("a.tar", "dir/s2", "dir/s2.PNG"),
        ("a.tar", long_key, long_key + ".jpeg"), ("b.tar", "x", "x.webp"),
    ]
    for image, data in zip(images, [b"IMG-1", b"IMG-2", b"IMG-3", b"IMG-X"]):
        with open(image.shard, "rb") as fh:
            fh.seek(image.offset)
            assert fh.read(image.size) == data
    manifest = (
        "plada-reference-manifest 1\n"
        f"a.tar/s1\t{_sha(b'IMG-1')}\na.tar/dir/s2\t{_sha(b'IMG-2')}\n"
        f"a.tar/{long_key}\t{_sha(b'IMG-3')}\nb.tar/x\t{_sha(b'IMG-X')}\n"
    ).encode()
    for workers in (1, 3):
        ref = ReferenceSet.from_tar_shards(shards, workers=workers)
        assert ref.fingerprint == hashlib.sha256(manifest).digest() and ref.n_ref == 4
    names_only = b"plada-reference-manifest 1\na.tar/s1\na.tar/dir/s2\na.tar/" + long_key.encode() + b"\nb.tar/x\n"
    assert ReferenceSet.from_tar_shards(shards, content=False).fingerprint == hashlib.sha256(names_only).digest()
    # An explicit list keeps its order; a folder of .tar files is detected by open().
    reordered = ReferenceSet.from_tar_shards([shards / "b.tar", shards / "a.tar"])
    assert reordered != ref and reordered.n_ref == 4
    assert ReferenceSet.open(shards) == ref == ReferenceSet.open(shards, kind="tar")
    assert ReferenceSet.open(shards, kind="folder") != ref
    (shards / "notes.txt").write_text("a folder holding anything but .tar files is a folder of files")
    assert ReferenceSet.open(shards).n_ref == 3


@pytest.mark.parametrize("members, message", [
    ([("s.jpg", b"1"), ("s.png", b"2")], "two image members"),
    ([("s.cls", b"1"), ("t.jpg", b"2")], "sample 's' has no image"),
    ([("s.jpg", b"1"), ("t.jpg", b"2"), ("s.cls", b"3")], "appears again"),
    ([("a\x01b.jpg", b"1")], "control character"),
])
def test_tar_rule_violations(tmp_path, members, message):
    shard = _shard(tmp_path / "s.tar", members)
    with pytest.raises(plada_codec.ReferenceSetError, match=message):
        plada_codec.tar_images([shard])


def test_tar_shard_errors(tmp_path):
    import gzip

    good = _shard(tmp_path / "one.tar", [("s.jpg", b"1")])
    (tmp_path / "gz.tar").write_bytes(gzip.compress(good.read_bytes()))
    with pytest.raises(plada_codec.ReferenceSetError, match="not a readable uncompressed tar"):
        plada_codec.tar_images([tmp_path / "gz.tar"])
    (tmp_path / "other").mkdir()
    _shard(tmp_path / "other" / "one.tar", [("t.jpg", b"2")])
    with pytest.raises(plada_codec.ReferenceSetError, match="same file name"):
        plada_codec.tar_images([good, tmp_path / "other" / "one.tar"])
    with pytest.raises(plada_codec.ReferenceSetError, match="no such tar shard"):
        plada_codec.tar_images([tmp_path / "missing.tar"])
    _shard(tmp_path / "empty.tar", [("readme.txt", b"no images")])
    with pytest.raises(plada_codec.ReferenceSetError, match="no image"):
        plada_codec.tar_images([tmp_path / "empty.tar"])
    truncated = tmp_path / "cut.tar"
    truncated.write_bytes(_shard(tmp_path / "big.tar", [("s.jpg", b"x" * 5000)]).read_bytes()[:2048])
    with pytest.raises(plada_codec.ReferenceSetError, match="cut.tar"):
        ReferenceSet.from_tar_shards([truncated])


# -- the cached, verified manifest --------------------------------------------------


def _folder(root, files):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_record_then_open_verifies_by_stat_without_reading(tmp_path):
    root = _folder(tmp_path / "ref", {"a.png": b"A", "sub/b.png": b"BB"})
    manifest = tmp_path / "ref.manifest"
    ref = ReferenceSet.record(root, manifest, workers=2)
    expected = f"plada-reference-manifest 1\na.png\t{_sha(b'A')}\nsub/b.png\t{_sha(b'BB')}\n".encode()
    assert manifest.read_bytes() == expected and ref.fingerprint == hashlib.sha256(expected).digest()
    assert (tmp_path / "ref.manifest.cache").exists()
    assert ReferenceSet.open(root, manifest=manifest) == ref
    # Same size, mtime put back: the cached check cannot see it (it reads no file),
    # which is the point of the cache; rehash=True reads everything again.
    stat = os.stat(root / "a.png")
    (root / "a.png").write_bytes(b"Z")
    os.utime(root / "a.png", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ReferenceSet.open(root, manifest=manifest) == ref
    rehashed = ReferenceSet.open(root, manifest=manifest, rehash=True)
    assert rehashed != ref and b"a.png\t" + _sha(b"Z").encode() in manifest.read_bytes()
    assert ReferenceSet.open(root, manifest=manifest) == rehashed
    # Hidden files are not part of the set, so they do not make it stale.
    (root / ".DS_Store").write_bytes(b"junk")
    assert ReferenceSet.open(root, manifest=manifest) == rehashed


@pytest.mark.parametrize("change, message", [
    (lambda root: (root / "c.png").write_bytes(b"C"), "file 'c.png' was added"),
    (lambda root: (root / "sub" / "b.png").unlink(), "file 'sub/b.png' was removed"),
    (lambda root: (root / "a.png").write_bytes(b"AAA"), "'a.png' is 3 bytes, was 1"),
    (lambda root: os.utime(root / "a.png", ns=(0, 123456789)), "'a.png' was modified"),
])
def test_open_refuses_a_changed_set_and_says_rehash(tmp_path, change, message):
    root = _folder(tmp_path / "ref", {"a.png": b"A", "sub/b.png": b"BB"})
    manifest = tmp_path / "m.txt"
    ReferenceSet.record(root, manifest)
    change(root)
    with pytest.raises(plada_codec.StaleManifestError, match=message) as info:
        ReferenceSet.open(root, manifest=manifest)
    assert "plada ref-hash" in str(info.value) and isinstance(info.value, plada_codec.ReferenceSetError)
    assert ReferenceSet.open(root, manifest=manifest, rehash=True) == ReferenceSet.from_folder(root)


def test_open_checks_a_manifest_without_cache_once(tmp_path):
    root = _folder(tmp_path / "ref", {"a.png": b"A", "b.png": b"B"})
    published = tmp_path / "published.manifest"  # e.g. shipped with a payload, no cache
    published.write_bytes(f"plada-reference-manifest 1\na.png\t{_sha(b'A')}\nb.png\t{_sha(b'B')}\n".encode())
    ref = ReferenceSet.open(root, manifest=published)
    assert ref.fingerprint == hashlib.sha256(published.read_bytes()).digest()
    assert (tmp_path / "published.manifest.cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["published.manifest", "published.manifest.cache", "ref"]
    other = tmp_path / "other.manifest"
    other.write_bytes(f"plada-reference-manifest 1\na.png\t{_sha(b'A')}\nb.png\t{_sha(b'X')}\n".encode())
    with pytest.raises(plada_codec.StaleManifestError, match="'b.png' .*different content"):
        ReferenceSet.open(root, manifest=other)
    # An edited manifest no longer matches its cache: checked by hashing again.
    published.write_bytes(published.read_bytes() + b"c.png\n")
    with pytest.raises(plada_codec.StaleManifestError, match="ends before manifest item 'c.png'"):
        ReferenceSet.open(root, manifest=published)
    # A manifest that does not exist yet is created.
    fresh = tmp_path / "fresh.manifest"
    assert ReferenceSet.open(root, manifest=fresh) == ReferenceSet.from_folder(root)
    assert fresh.exists() and (tmp_path / "fresh.manifest.cache").exists()


def test_tar_set_manifest_cache(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    _shard(shards / "000.tar", [("a.jpg", b"1"), ("b.jpg", b"2")])
    _shard(shards / "001.tar", [("c.jpg", b"3")])
    manifest = tmp_path / "m.txt"
    ref = ReferenceSet.record(shards, manifest)
    expected = (f"plada-reference-manifest 1\n000.tar/a\t{_sha(b'1')}\n000.tar/b\t{_sha(b'2')}\n"
                f"001.tar/c\t{_sha(b'3')}\n").encode()
    assert manifest.read_bytes() == expected and ref.n_ref == 3
    assert ReferenceSet.open(shards, manifest=manifest) == ref
    _shard(shards / "002.tar", [("d.jpg", b"4")])
    with pytest.raises(plada_codec.StaleManifestError, match="shard '002.tar' was added"):
        ReferenceSet.open(shards, manifest=manifest)
    (shards / "002.tar").unlink()
    os.utime(shards / "001.tar", ns=(0, 1))
    with pytest.raises(plada_codec.StaleManifestError, match="shard '001.tar' was modified"):
        ReferenceSet.open(shards, manifest=manifest)


# -- spec/REFERENCE.md section 7: fingerprints computed with sha256sum over hand-written manifests


def test_spec_vector_1_ids():
    ref = ReferenceSet.from_ids(["a.png", "b.png"])
    assert ref.hex == "d369cab1c487737b4ca1bf02834a66f93484c78a3b28089174381060af369723"


def test_spec_vector_2_folder(tmp_path):
    _folder(tmp_path, {"Z.png": b"3", "a.png": b"4", "n01/x.jpg": b"1", "n01a/y.jpg": b"2",
                       ".DS_Store": b"x", ".git/x": b"y"})
    os.symlink("a.png", tmp_path / "l.png")
    assert ReferenceSet.from_folder(tmp_path).hex == "93cc62c72a288ea5750d007199bf9e4da320f754f2b89350c214fd61d83b4c00"


def test_spec_vector_3_array():
    ref = ReferenceSet.from_array(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    assert ref.hex == "245faf0b380973191031e96f1783276a45065f57ccf3cafb6eb0302a19737c21"


def test_spec_vector_4_tar(tmp_path):
    _shard(tmp_path / "000.tar", [("s1.cls", b"7"), ("s1.jpg", b"IMG-1"), ("s2.png", b"IMG-2")])
    _shard(tmp_path / "001.tar", [("x.webp", b"IMG-X"), ("x.json", b"{}")])
    expected = "f29c1fc95f1ea3f3ca607836fb112ca5d48d6771ba518c720a094d8dfb5ce02e"
    assert ReferenceSet.from_tar_shards(tmp_path).hex == expected
    assert ReferenceSet.from_tar_shards([tmp_path / "000.tar", tmp_path / "001.tar"]).hex == expected


def test_spec_vector_5_no_normalisation(tmp_path):
    (tmp_path / "e\u0301.png").write_bytes(b"")
    (tmp_path / "\u00e9.png").write_bytes(b"")
    ref = ReferenceSet.from_folder(tmp_path, content=False)
    assert ref.hex == "94c6187944b6d396456fae73baa56b7c4f6eb672b7693a429fe0e2da567a83b6"


def test_manifest_out_takes_a_path_or_a_file(tmp_path):
    _shard(tmp_path / "000.tar", [("s1.jpg", b"IMG-1")])
    expected = f"plada-reference-manifest 1\n000.tar/s1\t{_sha(b'IMG-1')}\n".encode()
    ReferenceSet.from_tar_shards([tmp_path / "000.tar"], manifest_out=tmp_path / "m1")
    with open(tmp_path / "m2", "wb") as fh:
        ReferenceSet.from_tar_shards([tmp_path / "000.tar"], manifest_out=fh)
    assert (tmp_path / "m1").read_bytes() == (tmp_path / "m2").read_bytes() == expected
    folder = _folder(tmp_path / "f", {"a": b"A"})
    ReferenceSet.from_folder(folder, manifest_out=str(tmp_path / "m3"))
    assert (tmp_path / "m3").read_bytes() == f"plada-reference-manifest 1\na\t{_sha(b'A')}\n".encode()
    (folder / "b\x01").write_bytes(b"")
    with pytest.raises(plada_codec.ReferenceSetError):
        ReferenceSet.from_folder(folder, manifest_out=tmp_path / "m4")
    assert not (tmp_path / "m4").exists()  # no half-written manifest


def test_a_damaged_cache_is_a_miss_like_a_missing_one(tmp_path):
    root = _folder(tmp_path / "ref", {"a.png": b"A", "b.png": b"B", "c.png": b"C"})
    manifest = tmp_path / "m.txt"
    ref = ReferenceSet.record(root, manifest)
    cache = tmp_path / "m.txt.cache"
    good = cache.read_bytes()
    header, _, rows = good.partition(b"}\n")
    # a damaged row, a truncated header, something else entirely: hash once against the manifest,
    # then the cache is rewritten (a damaged row was an error, a foreign file a miss)
    for damaged in (header + b"}\nnot numbers a.png\n", good[:40], b"something else\n",
                    good[:-1], good[:-3], good[:good.rindex(b"\n", 0, -1) + 1]):  # cut in the last row, or before it
        cache.write_bytes(damaged)
        assert ReferenceSet.open(root, manifest=manifest) == ref
        assert cache.read_bytes() == good
    cache.write_bytes(header + b"}\nnot numbers a.png\n")
    (root / "a.png").write_bytes(b"changed")  # still checked against the manifest, by hashing
    with pytest.raises(plada_codec.StaleManifestError):
        ReferenceSet.open(root, manifest=manifest)


def test_a_manifest_inside_its_own_folder_is_refused(tmp_path):
    root = _folder(tmp_path / "ref", {"a.png": b"A", "sub/b.png": b"B"})
    for inside in (root / "ref.manifest", root / "sub" / "m.txt"):
        with pytest.raises(plada_codec.ReferenceSetError, match="inside the reference folder"):
            ReferenceSet.record(root, inside)
        assert not inside.exists()
    hidden = ReferenceSet.record(root, root / ".ref.manifest")  # hidden: not part of the set
    assert ReferenceSet.open(root, manifest=root / ".ref.manifest") == hidden == ReferenceSet.from_folder(root)
    shards = tmp_path / "shards"
    shards.mkdir()
    _shard(shards / "000.tar", [("s.jpg", b"1")])
    with pytest.raises(plada_codec.ReferenceSetError, match="inside the reference folder"):
        ReferenceSet.record(shards, shards / "m.txt")


_ID_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="".join(map(chr, [*range(32), 127])))


@given(ids=st.lists(st.text(_ID_CHARS, min_size=1, max_size=12), min_size=1, max_size=20),
       with_digests=st.booleans())
def test_manifest_grammar_for_any_valid_ids(ids, with_digests):
    import io

    digests = [hashlib.sha256(i.encode()).hexdigest() for i in ids] if with_digests else None
    lines = [i + ("\t" + d if digests else "") for i, d in zip(ids, digests or ids)]
    manifest = ("plada-reference-manifest 1\n" + "".join(line + "\n" for line in lines)).encode("utf-8")
    out = io.BytesIO()
    ref = ReferenceSet.from_items(zip(ids, digests or [None] * len(ids)), manifest_out=out)
    assert out.getvalue() == manifest and ref.fingerprint == hashlib.sha256(manifest).digest()
    assert ref.n_ref == len(ids)
    reread = ReferenceSet.from_items(_reference_module._manifest_items(io.BytesIO(manifest), "m"))
    assert reread == ref


def test_manifest_cache_for_a_list_of_shards(tmp_path):
    a = _shard(tmp_path / "a.tar", [("x.jpg", b"1")])
    b = _shard(tmp_path / "b.tar", [("y.jpg", b"2")])
    manifest = tmp_path / "list.manifest"
    ref = ReferenceSet.open([b, a], manifest=manifest)  # created on first use, in the given order
    expected = f"plada-reference-manifest 1\nb.tar/y\t{_sha(b'2')}\na.tar/x\t{_sha(b'1')}\n".encode()
    assert manifest.read_bytes() == expected and ref.fingerprint == hashlib.sha256(expected).digest()
    assert ReferenceSet.open([b, a], manifest=manifest) == ref
    with pytest.raises(plada_codec.StaleManifestError, match="order"):
        ReferenceSet.open([a, b], manifest=manifest)


@pytest.mark.parametrize("fmt", ["USTAR_FORMAT", "GNU_FORMAT", "PAX_FORMAT"])
def test_tar_offsets_in_every_tar_format(tmp_path, fmt):
    import tarfile

    long_dir = "d" * 90 + "/" + "e" * 60  # ustar stores it in the prefix field; GNU and pax need extra headers
    members = [(f"{long_dir}/k{i}.jpg", bytes([i]) * (700 + i)) for i in range(3)]
    shard = _shard(tmp_path / "s.tar", members, fmt=getattr(tarfile, fmt))
    images = plada_codec.tar_images([shard])
    assert [i.key for i in images] == [f"{long_dir}/k{i}" for i in range(3)]
    raw = shard.read_bytes()
    assert [raw[i.offset:i.offset + i.size] for i in images] == [data for _, data in members]


def test_an_abandoned_hashing_map_stops_its_threads_within_a_chunk():
    import threading
    import time

    from plada_codec._reference import _ordered_map

    steps: list[int] = []
    second_started = threading.Event()

    def task(number, stop):
        if number == 0:
            second_started.wait()
            raise ReferenceSetError("the first file is unreadable")
        second_started.set()
        done = 0
        while done < 2000 and not stop.is_set():  # a file of 2,000 chunks
            time.sleep(0.002)
            done += 1
        steps.append(done)
        return number

    with pytest.raises(ReferenceSetError, match="unreadable"):
        list(_ordered_map(task, range(2), workers=2))
    # the map waited for its thread, which saw the stop after a few chunks, not after all 2,000
    assert len(steps) == 1 and steps[0] < 2000


def test_ctrl_c_in_the_codec_cli_is_one_line(monkeypatch, capsys):
    from plada_codec import _reference, cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_reference.ReferenceSet, "from_path", interrupted)
    monkeypatch.setattr(_reference.ReferenceSet, "open", interrupted)
    assert cli.main(["ref-hash", "."]) == cli.EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "plada ref-hash: interrupted\n"


def test_names_only_through_a_manifest_with_digests(tmp_path):
    folder = tmp_path / "ref"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(bytes([i]) * 10)
    manifest = tmp_path / "ref.manifest"
    with_content = ReferenceSet.record(folder, manifest)
    names_only = ReferenceSet.from_folder(folder, content=False)
    assert names_only != with_content
    # content=False was ignored beside a manifest: the content fingerprint came back, a false mismatch
    assert ReferenceSet.open(folder, manifest=manifest, content=False) == names_only
    assert ReferenceSet.open(folder, manifest=manifest) == with_content
