"""Regenerate the normative test vectors of format 1.1 (the context-model codec).

    python spec/vectors/v1.1/make_vectors.py            # writes spec/vectors/v1.1/
    python spec/vectors/v1.1/make_vectors.py --check    # exits 1 if any file would change

Same layout and JSON fields as spec/vectors/v1.0 (FORMAT.md 12), and the same
Writer (imported from ../make_vectors.py). Valid vectors are made by
plada_codec.encode with the options in their JSON. Invalid ones are valid
payloads with one rule of FORMAT.md section 15 broken: bodies edited or made
by the pure-Python reference coder (plada_codec._cm_py) under other header
values, then reframed with plada_codec.wire (CRCs recomputed). Every invalid
vector is checked here to be rejected with its error class before it is
written. Tests never run this script; they only read its output.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import zstandard

import plada_codec
from plada_codec import _cm_py, wire
from plada_codec.synthetic import clustered_selection, uniform_selection

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("make_vectors_v1_0", HERE.parent / "make_vectors.py")
_v10 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_v10)
Writer = _v10.Writer

# format_version None: every registered codec (the v1.0 Writer defaults to 1.0 codecs only).
CM = {"index_codec": "context-model", "label_codec": "joint", "compression": "none", "format_version": None}
INDEX = "index/context-model"
JOINT = "labels/joint"


def make_valid(w: Writer) -> None:
    w.valid("cm-one-decision",
            "k = 1, N = 2, C = 1, index 0: one length decision; stream 80 (FORMAT.md 15, test_cm.py)",
            [0], [0], n_ref=2, n_classes=1, **CM)
    w.valid("cm-empty-stream", "k = 1, N = 2, C = 1, index 1: the canonical value is 0, the stream is empty",
            [1], [0], n_ref=2, n_classes=1, **CM)
    w.valid("cm-worked-example", "FORMAT.md appendix B: indices 2 3 11, labels 4 4 1, N = 20, C = 5",
            [2, 3, 11], [4, 4, 1], n_ref=20, n_classes=5, **CM)
    w.valid("cm-k-zero", "k = 0 forced onto the context model: the body is the preset byte alone",
            [], [], n_ref=10, n_classes=3, **CM)
    idx, labels = clustered_selection(100_000, 2_000, 10, seed=3)
    w.valid("cm-clustered", "clustered selection, 2% of N = 100,000, C = 10 (preset clustered)",
            idx, labels, n_ref=100_000, n_classes=10, **CM)
    idx, labels = uniform_selection(100_000, 1_500, 200, seed=4)
    w.valid("cm-flat", "uniform selection, 1.5% of N = 100,000, C = 200 (preset flat)",
            idx, labels, n_ref=100_000, n_classes=200, **CM)
    big = [0, 1, 2**32 - 1, 2**32, 2**32 + 5, 2**40, 2**47 + 3, 2**48 - 1]
    w.valid("cm-wide", "N = 2**48, C = 2**24: raw gap chunks of 16 bits, 16 raw label bits, label C - 1",
            big, [0, 2**24 - 1, 123456, 0, 2**24 - 1, 7, 7, 2**23], n_ref=2**48, n_classes=2**24, **CM)
    # Labels drawn at random: labels in long runs code in under 1 bit a pair, which
    # this codec may not carry (15.1).
    w.valid("cm-all-selected", "k = N = 300, C = 3: every gap 1, three list slots = C (last one implied)",
            np.arange(300), np.random.default_rng(7).integers(0, 3, 300), n_ref=300, n_classes=3, **CM)
    w.valid("cm-one-class", "C = 1: no label decisions at all",
            [4, 5, 6, 90, 91, 400], [0] * 6, n_ref=1000, n_classes=1, **CM)
    idx, labels = clustered_selection(1_281_167, 12_811, 200, seed=11)
    w.valid("imagenet1k-1pct-auto", "realistic: 1% of an ImageNet-1K-sized set, 200 classes, clustered; "
            "auto codecs (the encoder picks the context model)",
            idx, labels, n_ref=1_281_167, n_classes=200, zstd_level=19, format_version=None)
    w.valid("cm-densest", "k = N = 8, C = 1: the 1-byte body (preset 0, empty stream) at the limit of "
            "8 pairs per byte (15.1)", np.arange(8), [0] * 8, n_ref=8, n_classes=1, **CM)


def _payload(n_ref, n_classes, count, index_body, label_codec=2, label_body=b"", minor=1) -> bytes:
    return wire.join(wire.RawPayload(
        n_classes=n_classes, n_ref=n_ref, count=count, minor=minor,
        sections=[wire.RawSection(0x0001, 2, 0, index_body), wire.RawSection(0x0002, label_codec, 0, label_body)],
    ))


class _OverflowingEncoder(_cm_py.RangeEncoder):
    """Codes the first raw chunk whose interval does not split evenly in the
    slice past n * share, which no value in [0, n) maps to."""

    forged = False

    def uniform(self, value, n):
        share = self.range // n
        if not self.forged and self.range - n * share > 0:
            self.forged = True
            self.low += n * share
            self.range -= n * share
            self._normalize()
            return
        super().uniform(value, n)


def _raw_overflow_body(indices, n_ref) -> bytes:
    original = _cm_py.RangeEncoder
    _cm_py.RangeEncoder = _OverflowingEncoder
    try:
        return _cm_py.encode(indices, np.zeros(len(indices), np.int64), n_ref, 1, 1)
    finally:
        _cm_py.RangeEncoder = original


def _label_in_list_body() -> bytes:
    """N = 1, C = 10, preset clustered: label 2 coded through the tree although
    it sits in the initial move-to-front list (0, 1, 2, 3)."""
    enc = _cm_py.RangeEncoder()
    model = _cm_py._PairModel(_cm_py.PRESETS[0], 1, 1, 10)
    for slot in range(4):
        enc.bit(model.flags, model.flag_context(slot, 1), 0)
    node = 1
    for b in (3, 2, 1, 0):
        bit = (2 >> b) & 1
        enc.bit(model.tree, node, bit)
        node = 2 * node + bit
    return b"\x00" + enc.finish()


def make_invalid(w: Writer) -> None:
    indices, labels = list(range(0, 300, 3)), [i % 7 for i in range(100)]
    body = _cm_py.encode(indices, labels, 300, 7, 0)
    good = _payload(300, 7, 100, body)
    assert plada_codec.decode(good).labels.tolist() == labels

    w.invalid("cm-trailing-byte", "FormatError", "15.7 rule 1: a byte after the last one the decoder reads",
              _payload(300, 7, 100, body + b"\x00\x00\x00\x00\x01"), codec=INDEX)
    w.invalid("cm-trailing-zero", "FormatError", "15.7 rule 2: the stream ends with a 00 byte",
              _payload(300, 7, 100, body + b"\x00"), codec=INDEX)
    w.invalid("cm-non-canonical", "FormatError",
              "15.7 rule 2: the last byte one higher still decodes the same pairs but is not the canonical value",
              _payload(300, 7, 100, body[:-1] + bytes([body[-1] + 1])), codec=INDEX)
    longer = _cm_py.encode(indices + [299], labels + [1], 300, 7, 0)
    w.invalid("cm-decodes-past-k", "FormatError",
              "15.7 rule 1/2: a stream of k + 1 = 101 pairs under a header declaring k = 100",
              _payload(300, 7, 100, longer), codec=INDEX)
    rng = np.random.default_rng(3)
    far = np.sort(rng.choice(2**40, 20, replace=False))
    w.invalid("cm-raw-overflow", "FormatError",
              "15.4 decode_uniform: a raw mantissa chunk decodes to a value >= 2**c",
              _payload(2**40, 1, 20, _raw_overflow_body(far, 2**40)), codec=INDEX)
    # N = 1000 and 1023 share every model (bit_length 10, same starting average),
    # so a stream made for N = 1023 decodes under N = 1000 up to index 1010.
    w.invalid("cm-index-beyond-n", "FormatError", "15.5 index >= N",
              _payload(1000, 1, 2, _cm_py.encode([5, 1010], [0, 0], 1023, 1, 0)), codec=INDEX)
    # C = 200 and C = 256 share the tree width, so a stream made for C = 256 decodes
    # under C = 200 up to label 250.
    w.invalid("cm-label-beyond-c", "FormatError", "15.6 label >= C",
              _payload(10, 200, 3, _cm_py.encode([1, 2, 3], [3, 250, 4], 10, 256, 1)), codec=INDEX)
    w.invalid("cm-label-in-list", "FormatError",
              "15.6 a label coded through the tree that is in the move-to-front list (non-canonical)",
              _payload(1, 10, 1, _label_in_list_body()), codec=INDEX)
    w.invalid("cm-unknown-preset", "UnsupportedFeature", "15.2 preset 7 is not defined",
              _payload(300, 7, 100, b"\x07" + body[1:]), codec=INDEX)
    w.invalid("cm-empty-body", "FormatError", "15.1 raw_length >= 1 (the preset byte)",
              _payload(300, 7, 100, b""), codec=INDEX)
    w.invalid("cm-stream-start", "FormatError", "15.4 init: the stream starts FF FF FF FF (code >= range)",
              _payload(300, 7, 1, b"\x00\xff\xff\xff\xff"), codec=INDEX)
    w.invalid("cm-too-long", "FormatError", "15.1 raw_length <= 5 + 136 k",
              _payload(300, 7, 1, b"\x00" + b"\x01" * 141), codec=INDEX)
    w.invalid("cm-without-joint-labels", "FormatError", "15.1 index codec 2 needs label codec 2",
              _payload(300, 7, 100, body, label_codec=0,
                       label_body=plada_codec._kernels_py.labels_encode(np.array(labels), 3)), codec=INDEX)
    delta = plada_codec._kernels_py.delta_encode(np.array(indices))
    joint_alone = wire.join(wire.RawPayload(
        n_classes=7, n_ref=300, count=100, minor=1,
        sections=[wire.RawSection(0x0001, 0, 0, delta), wire.RawSection(0x0002, 2, 0, b"")]))
    w.invalid("joint-without-context-model", "FormatError", "15.1 label codec 2 needs index codec 2",
              joint_alone, codec=JOINT)
    w.invalid("joint-body-not-empty", "FormatError", "15.1 label codec 2: raw_length = 0",
              _payload(300, 7, 100, body, label_body=b"\x00"), codec=JOINT)
    # A preset byte alone is the canonical stream of k = N items of one class, for any k.
    w.invalid("cm-too-dense", "FormatError",
              "15.1 raw_length >= ceil(k / 8): k = N = 9, C = 1 in the 1-byte body (a canonical stream)",
              _payload(9, 1, 9, b"\x00"), codec=INDEX)
    w.invalid("cm-too-dense-large", "FormatError",
              "15.1 raw_length >= ceil(k / 8): a 137-byte payload declaring k = N = 2**20 pairs",
              _payload(2**20, 1, 2**20, b"\x00"), codec=INDEX)
    frame = zstandard.ZstdCompressor(write_content_size=True, write_checksum=False).compress(body)
    w.invalid("cm-compressed", "FormatError", "15.1 the context-model body has compression 1 (must be 0)",
              wire.join(wire.RawPayload(n_classes=7, n_ref=300, count=100, minor=1, sections=[
                  wire.RawSection(0x0001, 2, 1, frame, raw_length=len(body)),
                  wire.RawSection(0x0002, 2, 0, b"")])), codec=INDEX)


if __name__ == "__main__":
    sys.exit(_v10.generate(__doc__.split("\n")[0], HERE, make_valid, make_invalid))
