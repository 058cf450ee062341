"""Regenerate the normative test vectors of format 1.2 (class-names codec 1, text).

    python spec/vectors/v1.2/make_vectors.py            # writes spec/vectors/v1.2/
    python spec/vectors/v1.2/make_vectors.py --check    # exits 1 if any file would change

Same layout and JSON fields as spec/vectors/v1.0 (FORMAT.md 12), and the same
Writer (imported from ../make_vectors.py). Valid vectors are made by
plada_codec.encode with the options in their JSON (its default effort writes
class names with codec 1). Invalid ones are framed with plada_codec.wire around
hand-written bodies, CRCs recomputed, so that the one rule of FORMAT.md 5.6
(codec 1), 5.5 or 5.2 they break is what fails. Every invalid vector is
checked here to be rejected with its error class on every backend before it
is written. Tests never run this script; they only read its output.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import zstandard

from plada_codec import wire
from plada_codec.synthetic import class_names, clustered_selection

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("make_vectors_v1_0", HERE.parent / "make_vectors.py")
_v10 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_v10)
Writer = _v10.Writer

TEXT = "class-names/text"
PLAIN_BODIES = {"compression": "none", "index_codec": "delta", "label_codec": "packed", "format_version": None}


def make_valid(w: Writer) -> None:
    w.valid("names-text", "class names joined by LF: non-ASCII, an empty name in the middle (FORMAT.md 5.6)",
            [1, 5], [0, 2], n_ref=10, n_classes=3, class_names=["chat", "", "Äpfel 🍎"], **PLAIN_BODIES)
    w.valid("names-text-one-empty", "C = 1, one empty name: the empty body (raw_length 0 = C - 1)",
            [0], [0], n_ref=1, n_classes=1, class_names=[""], **PLAIN_BODIES)
    w.valid("names-text-all-empty", "C = 4 empty names: the body is three LF bytes",
            [], [], n_ref=3, n_classes=4, class_names=["", "", "", ""], **PLAIN_BODIES)
    w.valid("names-text-ends", "empty first and last names: the body starts and ends with LF",
            [2], [1], n_ref=3, n_classes=3, class_names=["", "mid", ""], **PLAIN_BODIES)
    w.valid("names-text-ordinary-bytes",
            "rule 3: U+FEFF at the start, CR, tab, U+0000 and a repeated name are ordinary characters",
            [0, 1], [6, 0], n_ref=2, n_classes=7,
            class_names=["\ufeffbom", "cr\r", "\r", "a", "a", "tab\tx", "nul\x00x"], **PLAIN_BODIES)
    idx, labels = clustered_selection(100_000, 2_000, 1_000, seed=5)
    w.valid("names-text-zstd", "1,000 ImageNet-like names (synthetic.class_names), the default encoder: "
            "codec 1 at Zstandard level 7, the pairs under the context model",
            idx, labels, n_ref=100_000, n_classes=1_000, class_names=class_names(1_000), format_version=None)


def _payload(n_classes, body, minor=2, compression=0, raw_length=None) -> bytes:
    """k = 0 (empty index-delta and packed-label bodies) and one class-names section with codec 1."""
    return wire.join(wire.RawPayload(n_classes=n_classes, n_ref=1, count=0, minor=minor, sections=[
        wire.RawSection(0x0001, 0, 0, b""), wire.RawSection(0x0002, 0, 0, b""),
        wire.RawSection(0x8001, 1, compression, body, raw_length=raw_length)]))


def make_invalid(w: Writer) -> None:
    w.invalid("names-text-too-few-lf", "FormatError", "5.6 codec 1 rule 1: C = 3 but one LF (two names)",
              _payload(3, b"a\nbc"), codec=TEXT)
    w.invalid("names-text-trailing-lf", "FormatError",
              "5.6 codec 1 rule 1: C = 2 and an LF after the last name (three names; no terminator)",
              _payload(2, b"a\nb\n"), codec=TEXT)
    w.invalid("names-text-not-utf8", "FormatError", "5.6 codec 1 rule 2: byte FF in name 1",
              _payload(2, b"a\n\xff"), codec=TEXT)
    w.invalid("names-text-surrogate", "FormatError", "5.6 codec 1 rule 2: ED A0 80 (U+D800) in name 0",
              _payload(2, b"\xed\xa0\x80\nb"), codec=TEXT)
    w.invalid("names-text-overlong-lf", "FormatError",
              "5.6 codec 1 rule 2: C = 1 and C0 8A, an overlong LF: invalid UTF-8, not a separator",
              _payload(1, b"a\xc0\x8ab"), codec=TEXT)
    w.invalid("names-text-below-bound", "FormatError", "5.5 class-names / text: raw_length >= C - 1 (0 < 2)",
              _payload(3, b""), codec=TEXT)
    w.invalid("names-text-in-1.1-payload", "FormatError",
              "5.2 / 9 step 8a: codec 1 (format 1.2) in a payload whose version_minor is 1",
              _payload(2, b"a\nb", minor=1), codec=TEXT)
    lfs = b"\n" * 65_536
    frame = zstandard.ZstdCompressor(level=19, write_content_size=True, write_checksum=False,
                                     write_dict_id=False).compress(lfs)
    w.invalid("names-text-limit", "LimitExceeded",
              "5.5 max_ancillary_bytes: 65,537 empty names count as 64 C = 4,194,368 > 2^22 "
              "(the body is 65,536 LF bytes in a Zstandard frame of a few bytes)",
              _payload(65_537, frame, compression=1, raw_length=len(lfs)), codec=TEXT)


if __name__ == "__main__":
    sys.exit(_v10.generate(__doc__.split("\n")[0], HERE, make_valid, make_invalid))
