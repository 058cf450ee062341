import hashlib
import os

import numpy as np
import pytest

import plada_codec
from plada_codec import ReferenceSet
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
    with pytest.raises(plada_codec.PayloadFormatError, match="not a plada reference manifest"):
        ReferenceSet.from_manifest(bad)
    bad.write_bytes(MANIFEST_HEADER + b"a\tnothex\n")
    with pytest.raises(plada_codec.PayloadFormatError, match="64 lowercase hex"):
        ReferenceSet.from_manifest(bad)
    bad.write_bytes(MANIFEST_HEADER + b"a")
    with pytest.raises(plada_codec.PayloadFormatError, match="LF"):
        ReferenceSet.from_manifest(bad)
    with pytest.raises(ValueError, match="control character"):
        ReferenceSet.from_ids(["a\tb"])
    with pytest.raises(ValueError, match="at least one item"):
        ReferenceSet.from_ids([])


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
