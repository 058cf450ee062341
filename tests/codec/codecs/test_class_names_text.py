"""Class-names codec 1, text (FORMAT.md 5.6, format 1.2): the names joined by LF.

Expected bytes are written out by hand from the spec's rules, never taken from
the encoder; the round trips run on both backends and against the educational
decoder (spec/educational_decoder.py). The vectors of spec/vectors/v1.2 run in
tests/spec/test_vectors.py."""

import importlib.util

import pytest
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from plada_codec import codecs, wire
from plada_codec.codecs import class_names_text
from tests.helpers import REPO
from tests.strategies import class_name_lists

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked

_spec = importlib.util.spec_from_file_location(
    "educational_decoder_names", REPO / "spec" / "educational_decoder.py")
educational = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(educational)

PLAIN = {"index_codec": "delta", "label_codec": "packed", "compression": "none"}


def _names_section(data):
    return next(s for s in wire.split(data).sections if s.type == 0x8001)


def _payload(n_classes, body, minor=2):
    """k = 0 and one class-names section with codec 1 around *body*, CRCs computed."""
    return wire.join(wire.RawPayload(n_classes=n_classes, n_ref=1, count=0, minor=minor, sections=[
        wire.RawSection(0x0001, 0, 0, b""), wire.RawSection(0x0002, 0, 0, b""),
        wire.RawSection(0x8001, 1, 0, body)]))


def test_registered_as_the_1_2_codec_of_class_names():
    codec = codecs.get(codecs.SECTION_CLASS_NAMES, 1)
    assert (codec.name, codec.introduced) == ("text", (1, 2))
    assert codecs.names("class-names") == ["plain", "text"]
    assert codecs.names("class-names", (1, 1)) == ["plain"]
    assert plada_codec.FORMAT_VERSION == "1.2"


def test_the_body_is_the_names_joined_by_lf(backend):
    data = plada_codec.encode([1, 5], [0, 2], n_ref=10, n_classes=3, class_names=["chat", "", "Äpfel 🍎"],
                              backend=backend, **PLAIN)
    section = _names_section(data)
    # "chat" LF (empty name) LF "Äpfel 🍎": Ä = C3 84, space 20, 🍎 = F0 9F 8D 8E
    expected = b"chat" + b"\x0a" + b"\x0a" + b"\xc3\x84pfel\x20\xf0\x9f\x8d\x8e"
    assert (section.codec, section.compression, bytes(section.body)) == (1, 0, expected)
    assert section.raw_length == 4 + 1 + 1 + 11
    assert data[8:10] == b"\x01\x02"  # format 1.2: the header names the version of codec 1 (4, 5.2)


@pytest.mark.parametrize("names, body", [
    ([""], b""),                        # C = 1, one empty name: the empty body
    (["", "", ""], b"\n\n"),            # C - 1 = 2 LF bytes, nothing else
    (["", "x", ""], b"\nx\n"),          # an LF at each end: empty first and last names
    (["\ufeffa", "b\r"], b"\xef\xbb\xbfa\nb\r"),  # U+FEFF and CR are kept as they are (rule 3)
    (["a", "a"], b"a\na"),              # names may repeat
])
def test_hand_computed_bodies(backend, names, body):
    data = plada_codec.encode([], [], n_ref=1, n_classes=len(names), class_names=names, backend=backend, **PLAIN)
    assert bytes(_names_section(data).body) == body
    assert plada_codec.decode(_payload(len(names), body), backend=backend).class_names == tuple(names)
    assert educational.decode(_payload(len(names), body))["class_names"] == names


@pytest.mark.parametrize("n_classes, body, message", [
    (3, b"a\nb", "1 LF bytes separate 2 names, n_classes is 3"),
    (2, b"a\nb\n", "2 LF bytes separate 3 names"),
    (2, b"a\n\xff", "name 1 is not UTF-8"),
    (2, b"\xed\xa0\x80\nb", "name 0 is not UTF-8"),
    (1, b"a\xc0\x8ab", "name 0 is not UTF-8"),  # an overlong LF is no separator (rule 2)
    (3, b"\n", "raw_length 1 outside the 2..67108864"),  # below C - 1 (5.5)
])
def test_every_rule_rejects(backend, n_classes, body, message):
    with pytest.raises(plada_codec.PayloadFormatError, match=message):
        plada_codec.decode(_payload(n_classes, body), backend=backend)
    with pytest.raises(educational.DecodeError) as exc:
        educational.decode(_payload(n_classes, body))
    assert exc.value.kind == "FormatError"


def test_a_1_1_header_may_not_use_it(backend):
    with pytest.raises(plada_codec.PayloadFormatError, match="format 1.2, but the header declares format 1.1"):
        plada_codec.decode(_payload(2, b"a\nb", minor=1), backend=backend)


def test_a_1_1_reader_skips_the_section_and_reads_the_rest(backend):
    """5.2: to a reader of 1.1 the codec is unknown, and an ancillary section with an unknown codec is skipped."""
    data = plada_codec.encode([1, 5], [0, 2], n_ref=10, n_classes=3, class_names=["a", "b", "c"],
                              task_name="t", backend=backend, **PLAIN)
    full = plada_codec.decode(data, backend=backend)
    old = plada_codec.decode(data, backend=backend, format_version="1.1")
    assert full.class_names == ("a", "b", "c") and old.class_names is None
    assert (old.indices.tolist(), old.labels.tolist(), old.task_name) == ([1, 5], [0, 2], "t")
    assert not [s for s in plada_codec.inspect(data).sections if s.type == 0x8001][0].critical


def test_the_lf_count_is_checked_before_any_name_is_built(backend, monkeypatch):
    def refuse(*args):
        raise AssertionError("names built before the LF count was checked")

    monkeypatch.setattr(class_names_text, "_names", refuse)
    with pytest.raises(plada_codec.PayloadFormatError, match="LF bytes separate"):
        plada_codec.decode(_payload(5, b"a\nb" * 1000), backend=backend)


def test_names_across_pieces_and_longer_than_a_piece(backend):
    piece = class_names_text.PIECE
    names = ["x" * (piece - 1), "", "é" * piece, "🍎", *[f"n{i}" for i in range(3000)], "y" * (3 * piece)]
    body = "\n".join(names).encode()
    assert plada_codec.decode(_payload(len(names), body), backend=backend).class_names == tuple(names)
    bad = body[: -10] + b"\xff" + body[-9:]  # in the last name, pieces after the first
    with pytest.raises(plada_codec.PayloadFormatError, match=f"name {len(names) - 1} is not UTF-8"):
        plada_codec.decode(_payload(len(names), bad), backend=backend)


def test_names_holding_lf_are_written_by_codec_0(backend):
    names = ["a\nb", "c"]
    data = plada_codec.encode([], [], n_ref=1, n_classes=2, class_names=names, backend=backend, **PLAIN)
    section = _names_section(data)
    assert (section.codec, bytes(section.body)) == (0, b"\x03\x00\x00\x00a\nb\x01\x00\x00\x00c")
    assert data[9] == 0  # only 1.0 codecs: the header says 1.0


@pytest.mark.parametrize("effort", [2, 4])  # one codec tried, or both
def test_names_from_an_iterator_are_read_once(effort):
    data = plada_codec.encode([], [], n_ref=1, n_classes=3, class_names=iter(["a", "b", "c"]), effort=effort)
    assert plada_codec.decode(data).class_names == ("a", "b", "c")


def test_the_encoder_errors_are_those_of_codec_0():
    with pytest.raises(plada_codec.EncodeError, match="class_names has 1 names, n_classes is 2"):
        plada_codec.encode([], [], n_ref=1, n_classes=2, class_names=["a"])
    with pytest.raises(plada_codec.EncodeError, match=r"class_names\[1\] is int, not str"):
        plada_codec.encode([], [], n_ref=1, n_classes=2, class_names=["a", 3])
    with pytest.raises(plada_codec.EncodeError, match=r"class_names\[0\] is not valid Unicode"):
        plada_codec.encode([], [], n_ref=1, n_classes=1, class_names=["\ud800"])


@given(st.integers(1, 40).flatmap(class_name_lists), st.sampled_from(["none", "zstd", "auto"]),
       st.sampled_from([None, 1, 5]))
def test_round_trip(backend, names, compression, zstd_level):
    data = plada_codec.encode([0], [len(names) - 1], n_ref=1, n_classes=len(names), class_names=names,
                              compression=compression, zstd_level=zstd_level, backend=backend)
    section = _names_section(data)
    assert section.codec == (0 if any("\n" in name for name in names) else 1)
    assert plada_codec.decode(data, backend=backend).class_names == tuple(names)
    assert educational.decode(data)["class_names"] == names


@given(st.integers(1, 40).flatmap(lambda c: class_name_lists(c, with_lf=False)))
def test_the_body_is_the_utf8_of_the_names_and_lf(names):
    data = plada_codec.encode([], [], n_ref=1, n_classes=len(names), class_names=names, **PLAIN)
    body = bytes(_names_section(data).body)
    assert body.count(b"\n") == len(names) - 1
    assert body.split(b"\n") == [name.encode("utf-8") for name in names]


@pytest.mark.parametrize("names", [[""] * 65_536, ["a" * (1 << 20) + "🍎"], [f"{i:059d}" for i in range(4096)]],
                         ids=["65536-empty", "one-1MiB-name", "4096-names"])
def test_decode_memory_is_bounded_by_the_body_and_the_names(names):
    """FORMAT.md 13: a class-names body peaks at up to 7 bytes per raw byte plus about 12 per name."""
    import tracemalloc

    data = plada_codec.encode([], [], n_ref=1, n_classes=len(names), class_names=names, compression="zstd")
    raw_length = _names_section(data).raw_length
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        decoded = plada_codec.decode(data, backend="python").class_names
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert decoded == tuple(names)
    assert peak <= 7 * raw_length + 12 * len(names) + (64 << 10), peak


# == The codec battery =============================================================================
# The shared checks of tests/codec/codecs/battery.py that every codec's test file runs, here on
# class-name lists without LF (which codec 1 cannot carry). Appended to this file's own tests,
# which it leaves as they are.

from tests.codec.codecs import battery  # noqa: E402


class TestBattery(battery.Battery):
    codec = battery.codec_named("class-names", "text")
    cases = battery.class_name_cases(with_lf=False)
