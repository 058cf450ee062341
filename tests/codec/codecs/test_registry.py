"""The codec registry: lookups, unknown ids, joint codecs, reader versions,
and the meta-test that every registered codec has vectors and a branch in
the educational decoder."""

import importlib.util
import json
import struct

import pytest

import plada_codec
from plada_codec import codecs, wire
from plada_codec._constants import label_bit_width
from tests.helpers import REPO

SPEC = REPO / "spec"
_spec = importlib.util.spec_from_file_location("educational_decoder_registry", SPEC / "educational_decoder.py")
educational = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(educational)

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


def _section_name(codec) -> str:
    return f"{codecs.SECTION_NAMES[codec.section_type]}/{codec.name}"


def _vectors():
    valid, rejected = set(), set()
    for folder in sorted(SPEC.glob("vectors/v1.*")):
        for path in folder.glob("*.bin"):
            valid.update((s.type, s.codec) for s in plada_codec.inspect(path.read_bytes()).sections)
        for path in (folder / "invalid").glob("*.json"):
            rejected.add(json.loads(path.read_text(encoding="utf-8")).get("codec"))
    return valid, rejected


VALID_CODECS, REJECTED_CODECS = _vectors()


@pytest.mark.parametrize("codec", codecs.all_codecs(), ids=_section_name)
def test_every_registered_codec_has_vectors_and_a_spec_decoder_branch(codec):
    """Meta-test: a codec added to the registry without vectors or without a
    branch in spec/educational_decoder.py fails here."""
    key = (codec.section_type, codec.id)
    assert key in VALID_CODECS, f"no valid vector uses {_section_name(codec)}"
    assert _section_name(codec) in REJECTED_CODECS, f"no must-reject vector names codec {_section_name(codec)}"
    assert key in educational.CODECS, "spec/educational_decoder.py has no branch for it"
    fields, minor = educational.CODECS[key][:2]
    assert minor == codec.introduced[1], "introduced in a different minor version"
    assert (fields if isinstance(fields, tuple) else (fields,)) == codec.fields
    assert educational.PARTNERS.get(key) == codec.partner


def test_every_compression_has_a_valid_vector():
    seen = set()
    for path in SPEC.glob("vectors/v1.*/*.bin"):
        seen.update(s.compression for s in plada_codec.inspect(path.read_bytes()).sections)
    assert {0, 1} <= seen


def test_names_and_lookups():
    assert codecs.names("index") == codecs.names(codecs.SECTION_INDEX)
    assert codecs.names("index")[:2] == ["delta", "bitmap"]
    assert codecs.names("labels")[:2] == ["packed", "bytes"]
    assert codecs.get(codecs.SECTION_LABELS, 1).name == "bytes"
    assert codecs.by_name("index", "bitmap").id == 1
    with pytest.raises(plada_codec.UnsupportedFeatureError, match="unknown codec id 77"):
        codecs.get(codecs.SECTION_INDEX, 77)
    with pytest.raises(ValueError, match="unknown section"):
        codecs.names("nonsense")


def test_register_refuses_a_taken_id_or_name():
    class Clash(codecs.Codec):
        section_type = codecs.SECTION_INDEX
        id = 0
        name = "other"
        fields = ("indices",)

    with pytest.raises(ValueError, match="taken"):
        codecs.register(Clash)
    Clash.id, Clash.name = 250, "delta"
    with pytest.raises(ValueError, match="taken"):
        codecs.register(Clash)


@pytest.mark.parametrize("stype", [codecs.SECTION_INDEX, codecs.SECTION_LABELS])
def test_every_unregistered_codec_id_is_unsupported(backend, stype):
    """No id falls through to another codec's decoder (the old if/else did)."""
    base = plada_codec.encode([1, 2], [0, 1], n_ref=8, n_classes=2, compression="none")
    registered = {c.id for c in codecs.for_section(stype)}
    for codec_id in sorted(set(range(256)) - registered):
        raw = wire.split(base)
        raw.sections[stype - 1].codec = codec_id
        with pytest.raises(plada_codec.UnsupportedFeatureError, match=f"unknown codec id {codec_id}"):
            plada_codec.decode(wire.join(raw), backend=backend)


# -- a joint pair of test codecs, as format 1.1's context-model codec will be ---------


class _JointIndex(codecs.Codec):
    """Index codec whose body carries the labels too: u64 delta length, delta body, packed labels."""

    section_type = codecs.SECTION_INDEX
    id = 254
    name = "test-joint"
    introduced = (1, 1)
    fields = ("indices", "labels")
    partner = (codecs.SECTION_LABELS, 254)

    def raw_length_bounds(self, shape):
        blocks = -(-shape.count // 128)
        labels = (shape.count * label_bit_width(shape.n_classes) + 7) // 8
        return 8 + blocks + labels, 8 + blocks + 8 * shape.count + labels

    def encode(self, selection, kernels):
        delta = kernels.delta_encode(selection.indices)
        labels = kernels.labels_encode(selection.labels, label_bit_width(selection.n_classes))
        return struct.pack("<Q", len(delta)) + delta + labels

    def decode(self, raw, shape, kernels, where):
        raw = bytes(raw)
        (size,) = struct.unpack_from("<Q", raw)
        if 8 + size > len(raw):
            raise plada_codec.PayloadFormatError(f"{where}: delta part runs past the body")
        width = label_bit_width(shape.n_classes)
        return {"indices": kernels.delta_decode(raw[8 : 8 + size], shape.count, shape.n_ref),
                "labels": kernels.labels_decode(raw[8 + size :], shape.count, width, shape.n_classes)}


class _JointLabels(codecs.Codec):
    """The label half of the pair: an empty body."""

    section_type = codecs.SECTION_LABELS
    id = 254
    name = "test-joint"
    introduced = (1, 1)
    fields = ()
    partner = (codecs.SECTION_INDEX, 254)

    def raw_length_bounds(self, shape):
        return 0, 0

    def encode(self, selection, kernels):
        return b""

    def decode(self, raw, shape, kernels, where):
        return {}


@pytest.fixture
def joint_codec():
    codecs.register(_JointIndex)
    codecs.register(_JointLabels)
    try:
        yield
    finally:
        codecs.unregister(codecs.SECTION_INDEX, 254)
        codecs.unregister(codecs.SECTION_LABELS, 254)


INDICES, LABELS = [0, 3, 4, 90, 91, 92], [1, 1, 0, 2, 2, 2]
ARGS = dict(n_ref=100, n_classes=3)


def test_joint_codec_roundtrip(joint_codec, backend):
    data = plada_codec.encode(INDICES, LABELS, index_codec="test-joint", compression="none", backend=backend, **ARGS)
    info = plada_codec.inspect(data)
    assert [(s.codec_name, s.raw_length) for s in info.sections] == [("test-joint", len(data) - 80 - 56),
                                                                     ("test-joint", 0)]
    assert info.version == (1, 1)  # the header declares the newest version its codecs need
    payload = plada_codec.decode(data, backend=backend)
    assert payload.indices.tolist() == INDICES and payload.labels.tolist() == LABELS
    # A reader of format 1.0 does not know the codec: UnsupportedFeature, not a wrong decode.
    with pytest.raises(plada_codec.UnsupportedFeatureError, match="format 1.0 reader"):
        plada_codec.PayloadDecoder(format_version="1.0", backend=backend).decode(data)
    # Payloads using only format 1.0 codecs still say 1.0 and still read as 1.0.
    plain = plada_codec.encode(INDICES, LABELS, index_codec="delta", backend=backend, **ARGS)
    assert plada_codec.inspect(plain).version == (1, 0)
    assert plada_codec.PayloadDecoder(format_version="1.0", backend=backend).decode(plain).labels.tolist() == LABELS


def test_joint_codec_needs_its_partner(joint_codec, backend):
    data = plada_codec.encode(INDICES, LABELS, index_codec="test-joint", compression="none", **ARGS)
    packed = plada_codec.encode(INDICES, LABELS, index_codec="delta", label_codec="packed", compression="none",
                                **ARGS)
    raw, other = wire.split(data), wire.split(packed)
    raw.sections[1] = other.sections[1]  # joint index body + a packed label section
    with pytest.raises(plada_codec.PayloadFormatError, match="needs the labels section's codec id 254"):
        plada_codec.decode(wire.join(raw), backend=backend)
    other.minor = 1
    other.sections[1] = wire.split(data).sections[1]  # delta index + the empty joint label half
    with pytest.raises(plada_codec.PayloadFormatError, match="needs the index section's codec id 254"):
        plada_codec.decode(wire.join(other), backend=backend)
    with pytest.raises(plada_codec.EncodeError, match="joint codec needs its partner"):
        plada_codec.encode(INDICES, LABELS, index_codec="test-joint", label_codec="packed", **ARGS)


def test_codec_newer_than_the_header_is_rejected(joint_codec, backend):
    raw = wire.split(plada_codec.encode(INDICES, LABELS, index_codec="test-joint", **ARGS))
    raw.minor = 0
    with pytest.raises(plada_codec.PayloadFormatError, match="header declares format 1.0"):
        plada_codec.decode(wire.join(raw), backend=backend)


def test_auto_compares_pairs_of_codecs(joint_codec, backend):
    """The joint pair competes with every independent pair on total size."""
    forced = {
        name: len(plada_codec.encode(INDICES, LABELS, index_codec=name, backend=backend, **ARGS))
        for name in codecs.names("index")
    }
    assert "test-joint" in forced
    auto = plada_codec.encode(INDICES, LABELS, backend=backend, **ARGS)
    assert len(auto) == min(forced.values())
    restricted = plada_codec.encode(INDICES, LABELS, format_version="1.0", backend=backend, **ARGS)
    assert plada_codec.inspect(restricted).version == (1, 0)
    assert len(restricted) == min(forced[c.name] for c in codecs.for_section("index", (1, 0)))
    with pytest.raises(plada_codec.EncodeError, match="index_codec must be"):
        plada_codec.PayloadEncoder(index_codec="test-joint", format_version="1.0")


@pytest.fixture
def joint_in_spec_decoder(joint_codec, monkeypatch):
    """The test-joint pair in the educational decoder too, written the way a spec section would say it."""

    def decode_joint(raw, k, n_ref, c):
        size = int.from_bytes(raw[:8], "little")
        if 8 + size > len(raw):
            educational.fail("FormatError", "delta part past the body")
        return (educational.decode_delta(raw[8 : 8 + size], k, n_ref, c),
                educational.decode_packed_labels(raw[8 + size :], k, n_ref, c))

    def bounds(k, n_ref, c):
        blocks, labels = (k + 127) // 128, (k * educational.label_width(c) + 7) // 8
        return 8 + blocks + labels, 8 + blocks + 8 * k + labels

    codecs_ = dict(educational.CODECS)
    codecs_[(1, 254)] = (("indices", "labels"), 1, bounds, decode_joint)
    codecs_[(2, 254)] = ((), 1, lambda k, n_ref, c: (0, 0), lambda raw, k, n_ref, c: ())
    monkeypatch.setattr(educational, "CODECS", codecs_)
    monkeypatch.setattr(educational, "PARTNERS", {(1, 254): (2, 254), (2, 254): (1, 254)})


def test_spec_decoder_agrees_on_a_joint_codec(joint_in_spec_decoder, backend):
    data = plada_codec.encode(INDICES, LABELS, index_codec="test-joint", compression="none", **ARGS)
    expected = plada_codec.decode(data, backend=backend).to_dict()
    assert educational.decode(data) == expected
    raw = wire.split(data)
    raw.sections[1] = wire.split(plada_codec.encode(INDICES, LABELS, index_codec="delta", label_codec="packed",
                                                    compression="none", **ARGS)).sections[1]
    with pytest.raises(educational.DecodeError, match="without its partner"):
        educational.decode(wire.join(raw))
    with pytest.raises(plada_codec.PayloadFormatError, match="needs the labels section"):
        plada_codec.decode(wire.join(raw), backend=backend)
