"""Careless inputs at the public API: what each gets (found by a hostile-user trial)."""

import os

import numpy as np
import pytest

import plada_codec

PAYLOAD = plada_codec.encode([1, 5, 7], [0, 2, 1], n_ref=100, n_classes=3)


def test_a_payload_in_a_strided_buffer_decodes(backend):
    strided = np.repeat(np.frombuffer(PAYLOAD, np.uint8), 2)[::2]
    assert not strided.flags.c_contiguous and strided.tobytes() == PAYLOAD
    for data in (strided, memoryview(PAYLOAD[::-1])[::-1]):
        assert plada_codec.decode(data, backend=backend).indices.tolist() == [1, 5, 7]
        assert plada_codec.inspect(data).count == 3
        assert plada_codec.verify(data).count == 3


def test_reference_set_paths_that_name_no_file_are_refused(tmp_path):
    manifest = tmp_path / "m.txt"
    manifest.write_text("not a manifest\n")
    fd = os.open(manifest, os.O_RDONLY)
    try:
        with pytest.raises(plada_codec.ReferenceSetError, match="must be a path"):
            plada_codec.ReferenceSet.from_manifest(fd)  # a file descriptor, taken and closed before
        os.fstat(fd)  # still open
    finally:
        os.close(fd)
    for bad in (None, 5, 1.5, ["a"]):
        with pytest.raises(plada_codec.ReferenceSetError):
            plada_codec.ReferenceSet.from_folder(bad)
    for bad in ("", "a\0b", None, 5):
        with pytest.raises(plada_codec.ReferenceSetError):
            plada_codec.ReferenceSet.from_path(bad)  # "" was the current folder
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.png").write_bytes(b"x")
    by_bytes = plada_codec.ReferenceSet.from_path(os.fsencode(tmp_path / "f"))  # bytes: one path, not a list
    assert by_bytes == plada_codec.ReferenceSet.from_path(tmp_path / "f")


@pytest.mark.parametrize("n_ref, fingerprint", [
    (2, bytes(32)),  # the all-zero fingerprint means unbound: encode would have written an unbound payload
    (1.5, b"\1" * 32), (True, b"\1" * 32), ("5", b"\1" * 32), (None, b"\1" * 32), (0, b"\1" * 32),
    (2**48 + 1, b"\1" * 32), (2, [1] * 32), (2, "x" * 32), (2, None), (2, b"\1" * 31),
])
def test_a_reference_set_is_made_of_an_int_size_and_32_bytes(n_ref, fingerprint):
    with pytest.raises(plada_codec.ReferenceSetError):
        plada_codec.ReferenceSet(n_ref, fingerprint)


@pytest.mark.parametrize("value", [None, "3", 1.9, True, -1, float("inf")])
def test_decoder_limits_are_non_negative_ints(value):
    for name in ("max_count", "max_section_bytes", "max_ancillary_bytes", "max_metadata_items"):
        with pytest.raises(plada_codec.InvalidOptionError, match=f"^{name} must be a non-negative int"):
            plada_codec.decode(PAYLOAD, **{name: value})  # 1.9 became 1, None a bare TypeError
    with pytest.raises(plada_codec.InvalidOptionError, match="max_total_length"):
        plada_codec.read_payload(__import__("io").BytesIO(PAYLOAD), max_total_length=value)


def test_reference_and_names_options_get_payload_errors():
    with pytest.raises(plada_codec.InvalidOptionError, match="reference must be a ReferenceSet or None"):
        plada_codec.decode(PAYLOAD, reference=b"\1" * 32)
    assert issubclass(plada_codec.ReferenceMismatchError, ValueError)
    ref = plada_codec.ReferenceSet.from_ids([f"a{i}" for i in range(100)])
    for bad in ("abc", float("nan"), float("inf"), [1], 100.5, "100", 100.0):
        with pytest.raises(plada_codec.EncodeError, match="n_ref must be an int"):
            plada_codec.encode([1], [0], n_classes=1, reference=ref, n_ref=bad)  # 100.0 was accepted
    assert plada_codec.encode([1], [0], n_classes=1, reference=ref, n_ref=100) == \
        plada_codec.encode([1], [0], n_classes=1, reference=ref)
    bound = plada_codec.encode([1], [0], n_classes=1, n_ref=100, reference=memoryview(ref.fingerprint))
    assert plada_codec.inspect(bound).fingerprint == ref.fingerprint
    with pytest.raises(plada_codec.EncodeError, match="class_names must be a sequence of str, not int"):
        plada_codec.encode([1], [0], n_ref=10, n_classes=1, class_names=5)


@pytest.mark.parametrize("version", [(1, True), (True, 0), 1.0, "١.٠", "1.²", (1, -1), "1.", ".1", "1.1.1"])
def test_a_format_version_is_ascii_digits_or_a_pair_of_ints(version):
    with pytest.raises(plada_codec.EncodeError, match="a format version is 'MAJOR.MINOR' or a"):
        plada_codec.encode([1], [0], n_ref=4, n_classes=1, format_version=version)
    with pytest.raises(plada_codec.InvalidOptionError, match="a format version is 'MAJOR.MINOR' or a"):
        plada_codec.decode(PAYLOAD, format_version=version)


@pytest.mark.parametrize("make", [
    lambda: plada_codec.ReferenceSet.from_items(["abc"]),  # a bare ValueError from unpacking
    lambda: plada_codec.ReferenceSet.from_items([("a", None, "x")]),
    lambda: plada_codec.ReferenceSet.from_ids([1, 2]),
    lambda: plada_codec.ReferenceSet.from_ids(["a"], [object()]),  # a bare TypeError
    lambda: plada_codec.ReferenceSet.from_array([[1], [1, 2]]),  # numpy's ragged ValueError
    lambda: plada_codec.ReferenceSet.from_array(np.array([{}], dtype=object)),
], ids=["not-a-pair", "a-triple", "int-ids", "object-digest", "ragged", "objects"])
def test_reference_items_that_are_not_id_digest_pairs(make):
    with pytest.raises(plada_codec.ReferenceSetError):
        make()


def test_catalog_lookups_and_inputs_of_the_wrong_type():
    catalog = plada_codec.Catalog.from_items(["a", "b"])
    text = catalog.to_bytes()
    assert plada_codec.Catalog.from_bytes(memoryview(text)).fingerprint == catalog.fingerprint
    for bad in (None, "plada-catalog 1", 5):
        with pytest.raises(plada_codec.ReferenceSetError):
            plada_codec.Catalog.from_bytes(bad)
    with pytest.raises(plada_codec.ReferenceSetError):
        plada_codec.Catalog.open(5)
    for bad in (5, ["a", "b"]):
        with pytest.raises(plada_codec.ReferenceSetError, match="index_of takes one id, a str"):
            catalog.index_of(bad)  # an AttributeError before
    with pytest.raises(plada_codec.ReferenceSetError, match="sequence of str"):
        catalog.positions_of([5])
    with pytest.raises(KeyError):  # documented: an id the catalog does not hold
        catalog.index_of("c")
    assert catalog.index_of("b") == 1 and 5 not in catalog


def test_indices_from_a_generator_and_masked_arrays():
    from_generator = plada_codec.encode((i for i in [1, 5, 7]), iter([0, 2, 1]), n_ref=100, n_classes=3)
    assert from_generator == PAYLOAD
    masked = np.ma.masked_array([1, 5, 7], mask=[False, True, False])
    with pytest.raises(plada_codec.EncodeError, match="masked array with masked entries"):
        plada_codec.encode(masked, [0, 2, 1], n_ref=100, n_classes=3)  # 5 was encoded as kept
    assert plada_codec.encode(np.ma.masked_array([1, 5, 7]), [0, 2, 1], n_ref=100, n_classes=3) == PAYLOAD
