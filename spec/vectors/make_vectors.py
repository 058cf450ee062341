"""Regenerate the normative test vectors of format 1.0.

    python spec/vectors/make_vectors.py            # writes spec/vectors/v1.0/
    python spec/vectors/make_vectors.py --check    # exits 1 if any file would change

Valid vectors are made by plada_codec.encode with the options recorded in their
JSON (or, where marked "reencode": false, by editing such a payload with
plada_codec.wire). Invalid vectors are valid payloads with exactly one rule
broken through plada_codec.wire, CRCs recomputed unless the CRC is the point.
Tests never run this script; they only read its output.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import zstandard

import plada_codec
from plada_codec import wire
from plada_codec.synthetic import clustered_selection

FORMAT_VERSION = "1.0"
OUT = Path(__file__).resolve().parent / f"v{FORMAT_VERSION}"
ZSTD_VERSION = ".".join(map(str, zstandard.ZSTD_VERSION))


def _json_dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


class Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[Path, bytes] = {}
        self.valid_no = 0
        self.invalid_no = 0

    def valid(self, name, description, indices, labels, reencode=True, edit=None, **options):
        # Only codecs of format 1.0, whatever else is registered: these are the 1.0 vectors.
        options.setdefault("format_version", FORMAT_VERSION)
        data = plada_codec.encode(indices, labels, **options)
        if edit is not None:
            raw = wire.split(data)
            edit(raw)
            data = wire.join(raw)
            reencode = False
        payload = plada_codec.decode(data, backend="python")
        content = payload.to_dict()
        encode_options = {k: v for k, v in options.items()
                          if k not in ("reference", "class_names", "task_name", "metadata")}
        if isinstance(options.get("reference"), bytes):
            encode_options["reference"] = options["reference"].hex()
        meta = {
            "description": description,
            "reencode": reencode,
            "encode_options": encode_options,
            "zstd_version": ZSTD_VERSION,
        }
        stem = f"{self.valid_no:03d}-{name}"
        self.valid_no += 1
        self.files[self.root / f"{stem}.bin"] = data
        self.files[self.root / f"{stem}.json"] = _json_dump({**meta, **content}).encode()

    def invalid(self, name, error, rule, data, limits=None, reference=None, codec=None):
        """*error* is the spec's error class (FORMAT.md 9.1); *codec* ("section/codec")
        names the codec whose body rule the vector breaks."""
        stem = f"{self.invalid_no:03d}-{name}"
        self.invalid_no += 1
        doc = {"error": error, "rule": rule}
        if codec:
            doc["codec"] = codec
        if limits:
            doc["limits"] = limits
        if reference:
            doc["reference"] = reference
        self.files[self.root / "invalid" / f"{stem}.bin"] = data
        self.files[self.root / "invalid" / f"{stem}.json"] = _json_dump(doc).encode()

    def sync(self, check: bool) -> int:
        """Write the vectors under root (removing stale ones), or with *check* only
        report what would change; the exit status of the generator."""
        changed = [p for p, data in self.files.items() if not p.exists() or p.read_bytes() != data]
        stale = [p for p in self.root.rglob("*")
                 if p.is_file() and p.suffix in (".bin", ".json") and p not in self.files]
        if check:
            for p in changed + stale:
                print(f"would change: {p.relative_to(self.root)}")
            return 1 if changed or stale else 0
        for p in stale:
            p.unlink()
        for p, data in self.files.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        print(f"{self.valid_no} valid and {self.invalid_no} invalid vectors in {self.root}")
        return 0


def make_valid(w: Writer) -> None:
    w.valid("empty", "k = 0, N = 1, C = 1: both critical sections present and empty",
            [], [], n_ref=1, n_classes=1)
    w.valid("single", "k = N = 1, C = 1: one index 0, label width 0",
            [0], [0], n_ref=1, n_classes=1)
    w.valid("small-delta", "index-delta and packed labels, uncompressed",
            [0, 1, 2, 10, 11, 200, 4095], [3, 3, 0, 1, 2, 2, 4], n_ref=5000, n_classes=5,
            index_codec="delta", label_codec="packed", compression="none")
    w.valid("bitmap", "bitmap index codec, N not a multiple of 8",
            [1, 2, 3, 5, 8, 13, 21, 34], [0, 1, 0, 1, 1, 0, 0, 1], n_ref=37, n_classes=2,
            index_codec="bitmap", compression="none")
    w.valid("all-selected", "k = N = 300 (every gap 0, width 0 blocks), C = 3",
            np.arange(300), np.arange(300) % 3, n_ref=300, n_classes=3,
            index_codec="delta", compression="none")
    w.valid("label-bytes", "bytes label codec with 2-byte labels (C = 1000)",
            [5, 50, 500, 5000], [0, 999, 512, 7], n_ref=6000, n_classes=1000,
            label_codec="bytes", compression="none")
    big = [0, 1, 2**32 - 1, 2**32, 2**32 + 5, 2**40, 2**47 + 3, 2**48 - 1]
    w.valid("beyond-2e32", "N = 2**48, indices beyond 2**32 up to N - 1, block width 47",
            big, [0, 1, 0, 1, 0, 1, 0, 1], n_ref=2**48, n_classes=2, compression="none")
    w.valid("width-48", "the largest legal gap width: one gap of 2**48 - 2 (indices 0 and 2**48 - 1)",
            [0, 2**48 - 1], [1, 0], n_ref=2**48, n_classes=2, compression="none")
    w.valid("max-classes", "C = 2**24: 24-bit packed labels including C - 1",
            [3, 4, 9], [0, 2**24 - 1, 123456], n_ref=10, n_classes=2**24,
            label_codec="packed", compression="none")
    rng = np.random.default_rng(7)
    idx = np.sort(rng.choice(100_000, 3000, replace=False))
    w.valid("zstd", "Zstandard on both critical sections (level 19), several full blocks and a partial one",
            idx, rng.integers(0, 10, idx.size), n_ref=100_000, n_classes=10,
            index_codec="delta", label_codec="bytes", compression="zstd", zstd_level=19)
    w.valid("ancillary", "class names (with non-ASCII and an empty name), task name and metadata",
            [1, 5], [0, 2], n_ref=10, n_classes=3,
            class_names=["chat", "", "Äpfel 🍎"], task_name="tâche 1",
            metadata={"mode": "low-energy", "keep_fraction": 0.01, "safety_net": {"share": 0.2, "alpha": -0.2}},
            compression="none")

    def add_unknown(raw):
        raw.sections.append(wire.RawSection(0x8FFF, 9, 7, b"future data"))

    w.valid("unknown-ancillary", "an ancillary section of unknown type, codec and compression: skipped",
            [2, 3], [1, 0], n_ref=4, n_classes=2, compression="none", edit=add_unknown)

    def minor7(raw):
        raw.minor = 7

    w.valid("minor-version", "format 1.7: a 1.0 reader reads any 1.x",
            [2], [1], n_ref=4, n_classes=2, compression="none", edit=minor7)
    ids_ref = plada_codec.ReferenceSet.from_ids([f"img{i:03d}.png" for i in range(50)])
    w.valid("bound", "bound to the reference set of ids img000.png .. img049.png (no digests)",
            [7, 8, 30], [1, 1, 0], n_classes=2, reference=ids_ref.fingerprint, n_ref=50,
            compression="none")
    idx, labels = clustered_selection(1_281_167, 12_811, 200, seed=11)
    w.valid("imagenet1k-1pct", "realistic: 1% of an ImageNet-1K-sized set, 200 classes, clustered; auto codecs",
            idx, labels, n_ref=1_281_167, n_classes=200, zstd_level=19)


    def metadata_forms(raw):
        # Non-canonical but valid JSON text: whitespace, an escaped surrogate pair, 1 and 1.0,
        # the largest safe integers, a number near the top of a double.
        raw.sections[2].body = (b'{ "int": 9007199254740991, "neg": -9007199254740991, "one": 1, '
                                b'"one_point_zero": 1.0, "big": 1e308, "emoji": "\\ud83d\\ude00" }')
        raw.sections[2].raw_length = None

    w.valid("metadata-json-edges", "metadata at the edges of 5.7: +-(2**53 - 1), 1 and 1.0, 1e308, an escaped "
            "surrogate pair, whitespace (not this implementation's canonical form)",
            [1], [0], n_ref=4, n_classes=2, metadata={"x": 1}, compression="none", edit=metadata_forms)

    def checksummed(raw):
        raw.sections[1].body = zstandard.ZstdCompressor(write_checksum=True).compress(bytes([0, 1] * 60))
        raw.sections[1].compression = 1
        raw.sections[1].raw_length = 120

    w.valid("zstd-checksum", "a Zstandard frame with a content checksum (verified by decoders, 5.4)",
            np.arange(120), np.arange(120) % 2, n_ref=120, n_classes=2, label_codec="bytes",
            index_codec="delta", compression="none", edit=checksummed)

    def signed_zeros(raw):
        # 5.7: -0 is the integer 0; 1e-400 underflows to 0.0 and is accepted; -0.0 keeps its sign.
        raw.sections[2].body = b'{"minus_zero":-0,"underflow":1e-400,"negative_zero":-0.0}'
        raw.sections[2].raw_length = None

    w.valid("metadata-signed-zeros", "metadata numbers 5.7 spells out: -0 (the integer 0), 1e-400 (underflows "
            "to 0.0, accepted), -0.0 (a double that keeps its sign)",
            [1], [0], n_ref=4, n_classes=2, metadata={"x": 1}, compression="none", edit=signed_zeros)


def make_invalid(w: Writer) -> None:
    def encode_1_0(*args, **kwargs):  # the payloads these vectors break use format 1.0 codecs only
        kwargs.setdefault("zstd_level", 19)  # the frames they were made with, at every effort
        return plada_codec.encode(*args, format_version=FORMAT_VERSION, **kwargs)

    base = encode_1_0([0, 3, 9], [1, 0, 2], n_ref=16, n_classes=3, compression="none",
                              index_codec="delta", label_codec="packed", metadata={"a": 1})

    def edited(fn, data=base):
        raw = wire.split(data)
        fn(raw)
        return wire.join(raw)

    def setattr_(name, value):
        return lambda raw: setattr(raw, name, value)

    w.invalid("empty-input", "Truncated", "9 step 1: shorter than 10 bytes", b"")
    w.invalid("bad-magic", "FormatError", "4 magic", b"\x89PLADB\r\n" + base[8:])
    w.invalid("text-mangled-magic", "FormatError", "4 magic (CRLF converted to LF)",
              b"\x89PLADA\n" + base[8:])
    w.invalid("major-version-2", "UnsupportedVersion", "4 version_major", edited(setattr_("major", 2)))
    # A cut at the start of every header field, and one byte short of the header.
    for cut in (8, 9, 10, 12, 16, 24, 32, 64, 72, 74, 76, 79):
        w.invalid(f"truncated-header-{cut}", "Truncated", "9 step 1: header cut short", base[:cut])
    raw = wire.split(base)
    offsets = [80]
    for s in raw.sections:
        offsets.append(offsets[-1] + 24 + len(s.body) + 4)
    for number, start in enumerate(offsets[:-1]):
        for field, delta in (("type", 0), ("raw_length", 8), ("body", 24), ("crc", offsets[number + 1] - start - 4)):
            w.invalid(f"truncated-section{number}-{field}", "Truncated",
                      "9 step 4: input shorter than total_length", base[: start + delta])
    w.invalid("header-crc", "Checksum", "4 header_crc", edited(setattr_("header_crc", 0x12345678)))
    flipped = bytearray(base)
    flipped[20] ^= 0x01  # a bit of n_ref
    w.invalid("header-bit-flip", "Checksum", "4 header_crc covers every header field", bytes(flipped))
    w.invalid("feature-flag", "UnsupportedFeature", "4 feature_flags", edited(setattr_("flags", 0x8000)))
    w.invalid("reserved-header", "FormatError", "4 reserved", edited(setattr_("reserved", 1)))
    w.invalid("n-ref-zero", "FormatError", "4 n_ref >= 1", edited(setattr_("n_ref", 0)))
    w.invalid("n-ref-too-big", "FormatError", "4 n_ref <= 2**48", edited(setattr_("n_ref", 2**48 + 1)))
    w.invalid("n-classes-zero", "FormatError", "4 n_classes >= 1", edited(setattr_("n_classes", 0)))
    w.invalid("n-classes-too-big", "FormatError", "4 n_classes <= 2**24",
              edited(setattr_("n_classes", 2**24 + 1)))
    w.invalid("count-above-n-ref", "FormatError", "4 count <= n_ref", edited(setattr_("count", 17)))
    w.invalid("section-count-1", "FormatError", "4 section_count >= 2", edited(setattr_("section_count", 1)))
    w.invalid("total-length-short", "FormatError", "4 total_length >= 80", edited(setattr_("total_length", 79)))
    w.invalid("total-length-lies-long", "Truncated", "9 step 4",
              edited(setattr_("total_length", len(base) + 10)))
    w.invalid("total-length-lies-short", "TrailingData", "9 step 4",
              edited(setattr_("total_length", len(base) - 1)))
    w.invalid("trailing-bytes", "TrailingData", "3 nothing after the last section", base + b"\x00")
    w.invalid("section-count-lies-high", "Truncated", "9 step 6",
              edited(setattr_("section_count", 4)))
    w.invalid("section-count-lies-low", "FormatError", "5.3 total_length equals the sections' sizes",
              edited(setattr_("section_count", 2)))

    def section_edit(number, **changes):
        def fn(raw):
            section = raw.sections[number]
            if "body" in changes and "raw_length" not in changes and section.compression == 0:
                changes["raw_length"] = None  # keep raw_length == stored_length
            for key, value in changes.items():
                setattr(section, key, value)
        return fn

    body_flip = bytearray(base)
    body_flip[80 + 24] ^= 0x40
    w.invalid("section-crc", "Checksum", "5.1 section_crc", bytes(body_flip))
    w.invalid("section-flags", "FormatError", "5.1 flags", edited(section_edit(0, flags=1)))
    w.invalid("stored-length-lies", "Truncated", "9 step 6",
              edited(section_edit(1, stored_length=1000)))
    w.invalid("unknown-critical-type", "UnsupportedFeature", "5.2 critical types",
              edited(lambda raw: raw.sections.insert(2, wire.RawSection(0x0003, 0, 0, b""))))
    w.invalid("unknown-index-codec", "UnsupportedFeature", "5.2 reserved codec ids (255: unassigned in every 1.x)",
              edited(section_edit(0, codec=255)))
    w.invalid("unknown-label-compression", "UnsupportedFeature", "5.4 compression ids",
              edited(section_edit(1, compression=2)))
    w.invalid("sections-out-of-order", "FormatError", "5.3 increasing type order",
              edited(lambda raw: raw.sections.reverse()))
    w.invalid("duplicate-section", "FormatError", "5.3 no duplicates",
              edited(lambda raw: raw.sections.insert(1, raw.sections[0])))
    w.invalid("missing-labels", "FormatError", "5.3 both critical sections present",
              edited(lambda raw: raw.sections.pop(1)))
    w.invalid("raw-length-mismatch", "FormatError", "5.4 uncompressed raw_length == stored_length",
              edited(section_edit(1, raw_length=2)))
    # Index-delta body: width byte then 3 gaps (0, 2, 5) packed at width 3.
    w.invalid("delta-width-65", "FormatError", "6.2 width <= 64",
              edited(section_edit(0, body=b"\x41" + base[80 + 24 + 1 :80 + 24 + 3])), codec="index/delta")
    w.invalid("delta-length-mismatch", "FormatError", "6.2 raw_length matches the widths",
              edited(section_edit(0, body=wire.split(base).sections[0].body + b"\x00")), codec="index/delta")
    w.invalid("delta-index-out-of-range", "FormatError", "6.2 every index < N",
              edited(section_edit(0, body=b"\x04" + bytes([0x20 | 0x00, 0x0F]))), codec="index/delta")
    w.invalid("delta-padding", "FormatError", "6.1 zero padding",
              edited(section_edit(0, body=wire.split(base).sections[0].body[:-1]
                                  + bytes([wire.split(base).sections[0].body[-1] | 0x80]))), codec="index/delta")
    bitmap = encode_1_0([0, 3, 9], [1, 0, 2], n_ref=13, n_classes=3, compression="none",
                                index_codec="bitmap")
    w.invalid("bitmap-count", "FormatError", "6.3 popcount == k",
              edited(section_edit(0, body=b"\x0b\x02"), bitmap), codec="index/bitmap")
    w.invalid("bitmap-padding", "FormatError", "6.3 zero padding",
              edited(section_edit(0, body=b"\x09\x22"), bitmap), codec="index/bitmap")
    w.invalid("bitmap-length", "FormatError", "5.5 bitmap raw_length == ceil(N/8)",
              edited(section_edit(0, body=b"\x09\x02\x00"), bitmap), codec="index/bitmap")
    w.invalid("label-out-of-range", "FormatError", "7.1 label < C",
              edited(section_edit(1, body=bytes([0b11_00_01]))), codec="labels/packed")
    w.invalid("label-padding", "FormatError", "6.1 zero padding",
              edited(section_edit(1, body=bytes([0b10_00_01 | 0x40]))), codec="labels/packed")
    label_bytes = encode_1_0([0, 3, 9], [1, 0, 2], n_ref=16, n_classes=3, compression="none",
                                     label_codec="bytes")
    w.invalid("label-bytes-out-of-range", "FormatError", "7.2 label < C",
              edited(section_edit(1, body=b"\x01\x00\x03"), label_bytes), codec="labels/bytes")
    w.invalid("label-raw-length", "FormatError", "5.5 packed labels raw_length",
              edited(section_edit(1, body=bytes([0b10_00_01, 0, 0]))), codec="labels/packed")
    # Zstandard rule breakers.
    zstd_base = encode_1_0(np.arange(0, 2000, 3), np.arange(667) % 3, n_ref=2000, n_classes=3,
                                   compression="zstd", index_codec="delta", label_codec="bytes")
    zraw = wire.split(zstd_base)
    labels_raw = (np.arange(667) % 3).astype("<u1").tobytes()
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(labels_raw)
    w.invalid("zstd-no-content-size", "FormatError", "5.4 Frame_Content_Size present",
              edited(section_edit(1, body=no_size), zstd_base))
    bigger = zstandard.ZstdCompressor().compress(labels_raw + b"\x00" * 100)
    w.invalid("zstd-declares-more", "FormatError", "5.4 Frame_Content_Size == raw_length",
              edited(section_edit(1, body=bigger), zstd_base))
    w.invalid("zstd-trailing", "FormatError", "5.4 nothing after the frame",
              edited(section_edit(1, body=zraw.sections[1].body + b"\x00"), zstd_base))
    w.invalid("zstd-two-frames", "FormatError", "5.4 exactly one frame",
              edited(section_edit(1, body=zraw.sections[1].body + zraw.sections[1].body), zstd_base))
    frame = bytearray(zstandard.ZstdCompressor().compress(labels_raw))
    # Clear Single_Segment and insert a Window_Descriptor for 2**30 (exponent 20).
    assert frame[4] & 0x20 and frame[4] >> 6 == 1
    wide = bytes(frame[:4]) + bytes([frame[4] & ~0x20]) + bytes([20 << 3]) + bytes(frame[5:])
    w.invalid("zstd-window-too-large", "FormatError", "5.4 window <= 2**27",
              edited(section_edit(1, body=wide), zstd_base))
    corrupt = bytearray(zraw.sections[1].body)
    corrupt[-3] ^= 0xFF
    w.invalid("zstd-corrupt", "FormatError", "5.4 frame decodes",
              edited(section_edit(1, body=bytes(corrupt)), zstd_base))
    w.invalid("zstd-skippable-frame", "FormatError", "5.4 no skippable frames",
              edited(section_edit(1, body=b"\x50\x2a\x4d\x18" + struct.pack("<I", 3) + b"abc"), zstd_base))
    # Ancillary content rules.
    anc = encode_1_0([1], [0], n_ref=2, n_classes=2, class_names=["a", "b"], task_name="t",
                             metadata={"k": 1}, compression="none")

    def anc_body(number, body):
        return edited(section_edit(number, body=body), anc)

    w.invalid("class-names-count", "FormatError", "5.6 exactly C names",
              anc_body(2, b"\x01\x00\x00\x00a"), codec="class-names/plain")
    w.invalid("class-names-utf8", "FormatError", "5.6 UTF-8",
              anc_body(2, b"\x01\x00\x00\x00\xff\x01\x00\x00\x00b"), codec="class-names/plain")
    w.invalid("task-name-utf8", "FormatError", "5.6 UTF-8", anc_body(3, b"\xc3"), codec="task-name/plain")
    w.invalid("metadata-not-object", "FormatError", "5.6 top-level object", anc_body(4, b"[1]"), codec="metadata/json")
    w.invalid("metadata-duplicate-key", "FormatError", "5.6 no duplicate keys",
              anc_body(4, b'{"a":1,"a":2}'), codec="metadata/json")
    w.invalid("metadata-nan", "FormatError", "5.6 no NaN", anc_body(4, b'{"a":NaN}'), codec="metadata/json")
    w.invalid("metadata-too-deep", "FormatError", "5.6 depth <= 64",
              anc_body(4, b'{"a":' + b"[" * 100 + b"]" * 100 + b"}"), codec="metadata/json")
    w.invalid("metadata-bad-json", "FormatError", "5.6 JSON", anc_body(4, b'{"a":'), codec="metadata/json")
    # Limits and reference binding.
    w.invalid("count-over-limit", "LimitExceeded", "5.5 local limit max_count", base,
              limits={"max_count": 2})
    zeros = wire.RawSection(0x0001, 0, 1, zstandard.ZstdCompressor().compress(bytes(2**16)), raw_length=2**16)
    huge = wire.RawPayload(n_classes=1, n_ref=2**40, count=2**23,
                           sections=[zeros, wire.RawSection(0x0002, 0, 0, b"")])
    w.invalid("huge-declared-count", "LimitExceeded",
              "13 a tiny payload declaring k = 2**23 is refused under max_count = 2**20 before allocation",
              wire.join(huge), limits={"max_count": 2**20})
    w.invalid("section-over-limit", "LimitExceeded", "5.5 local limit max_section_bytes",
              zstd_base, limits={"max_section_bytes": 100})
    bound = encode_1_0([1], [0], n_ref=50, n_classes=2, reference=bytes(range(32)))
    w.invalid("reference-fingerprint", "ReferenceMismatch", "8.2 fingerprint differs", bound,
              reference={"n_ref": 50, "fingerprint": bytes(range(1, 33)).hex()})
    w.invalid("reference-size", "ReferenceMismatch", "8.2 n_ref differs", bound,
              reference={"n_ref": 51, "fingerprint": bytes(range(32)).hex()})
    w.invalid("reference-unbound", "ReferenceMismatch", "8.2 unbound payload checked",
              base, reference={"n_ref": 16, "fingerprint": bytes(range(32)).hex()})

    # Added in the review of issue 9 (appended, so earlier vectors keep their numbers).
    # The JSON rules of 5.7, the same for encoders and decoders.
    w.invalid("metadata-integer-5000-digits", "FormatError", "5.7 integers within +-(2**53 - 1)",
              anc_body(4, b'{"a":' + b"7" * 5000 + b"}"), codec="metadata/json")
    w.invalid("metadata-integer-2e53", "FormatError", "5.7 integers within +-(2**53 - 1)",
              anc_body(4, b'{"a":9007199254740992}'), codec="metadata/json")
    w.invalid("metadata-number-overflow", "FormatError", "5.7 numbers finite as a double",
              anc_body(4, b'{"a":1e999}'), codec="metadata/json")
    w.invalid("metadata-lone-surrogate", "FormatError", "5.7 no lone surrogates after unescaping",
              anc_body(4, b'{"a":"\\ud800"}'), codec="metadata/json")
    w.invalid("metadata-bom", "FormatError", "5.7 no byte-order mark",
              anc_body(4, b'\xef\xbb\xbf{"a":1}'), codec="metadata/json")
    w.invalid("metadata-duplicate-escaped-key", "FormatError", "5.7 no duplicate keys after unescaping",
              anc_body(4, b'{"a":1,"\\u0061":2}'), codec="metadata/json")

    def zstd_ancillary(number, body, n_classes=2, raw_length=None):
        data = encode_1_0([1], [0], n_ref=2, n_classes=n_classes, class_names=[""] * n_classes
                                  if n_classes <= 16 else None, task_name="t", metadata={"k": 1},
                                  compression="none")
        raw = wire.split(data)
        stype = {2: 0x8001, 3: 0x8002, 4: 0x8003}[number]
        if raw_length is None:
            section = wire.RawSection(stype, 0, 1, zstandard.ZstdCompressor(level=19).compress(body),
                                      raw_length=len(body))
        else:  # *body* is a frame already
            section = wire.RawSection(stype, 0, 1, body, raw_length=raw_length)
        others = [s for s in raw.sections if s.type != stype]
        raw.sections = sorted(others + [section], key=lambda s: s.type)
        return wire.join(raw)

    w.invalid("metadata-items-over-limit", "LimitExceeded", "5.5 local limit max_metadata_items (2**16)",
              zstd_ancillary(4, b'{"a":[' + b"0," * 70_000 + b"0]}"), codec="metadata/json")
    w.invalid("metadata-over-limit", "LimitExceeded", "5.5 local limit max_ancillary_bytes (2**22)",
              zstd_ancillary(4, b'{"a":"' + b"x" * (1 << 22) + b'"}'), codec="metadata/json")
    w.invalid("class-names-over-limit", "LimitExceeded",
              "5.5 local limit max_ancillary_bytes: 2**24 empty class names are 64 MiB",
              zstd_ancillary(2, _zstd_zeros(4 * 2**24), n_classes=2**24, raw_length=4 * 2**24),
              codec="class-names/plain")
    w.invalid("class-names-raw-below-4c", "FormatError", "5.5 class-names raw_length >= 4 C",
              anc_body(2, b"\x00\x00\x00"), codec="class-names/plain")
    # Length rules that hold for sections a decoder skips (5.5, 9 step 6).
    def unknown_ancillary(**fields):
        def add(raw):
            raw.sections.append(wire.RawSection(0x8FFF, 9, fields.pop("compression", 7), fields.pop("body", b"x" * 10),
                                                **fields))
        return add

    w.invalid("unknown-ancillary-raw-too-long", "FormatError",
              "5.5 every ancillary raw_length <= 2**26, skipped or not",
              edited(unknown_ancillary(raw_length=2**26 + 1)))
    w.invalid("unknown-ancillary-stored-over-limit", "LimitExceeded",
              "5.5 max_section_bytes bounds stored_length of skipped sections too",
              edited(unknown_ancillary(body=b"x" * 200, raw_length=10)), limits={"max_section_bytes": 100})
    w.invalid("unknown-ancillary-length-mismatch", "FormatError",
              "5.4 compression 0: stored_length == raw_length, skipped or not",
              edited(unknown_ancillary(compression=0, body=b"abc", raw_length=5)))
    tiny_zstd = encode_1_0([0, 3, 9], [1, 0, 2], n_ref=16, n_classes=3, compression="zstd",
                                   index_codec="delta", label_codec="packed")
    tiny = wire.split(tiny_zstd)
    tiny.sections[1] = wire.RawSection(2, 0, 1, zstandard.ZstdCompressor().compress(bytes([0b10_00_01])), raw_length=1)
    w.invalid("stored-length-over-limit", "LimitExceeded", "5.5 max_section_bytes bounds stored_length",
              wire.join(tiny), limits={"max_section_bytes": 5})
    # Zstandard framing (5.4): window of a single-segment frame, content checksum.
    n_big = 8 * (2**27 + 1)
    frame = _zstd_zeros(2**27 + 1)
    assert not frame[4] & 0x20 and frame[4] >> 6 == 2  # a Window_Descriptor, a 4-byte content size
    single = frame[:4] + bytes([frame[4] | 0x20]) + frame[6:]  # single segment: the window is the content size
    big = wire.RawPayload(n_classes=2, n_ref=n_big, count=0,
                          sections=[wire.RawSection(1, 1, 1, single, raw_length=2**27 + 1),
                                    wire.RawSection(2, 0, 0, b"")])
    w.invalid("zstd-single-segment-window", "FormatError",
              "5.4 a single-segment frame's window is its content size, at most 2**27", wire.join(big))
    checked = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(labels_raw))
    checked[-1] ^= 0xFF
    w.invalid("zstd-checksum-mismatch", "FormatError", "5.4 a content checksum, when present, is verified",
              edited(section_edit(1, body=bytes(checked)), zstd_base))
    # Sections are bound by the header's total_length and the fixed section order (5.3).
    other = wire.split(encode_1_0([0, 3, 9], [1, 0, 2], n_ref=16, n_classes=3, compression="none",
                                          index_codec="delta", label_codec="bytes"))
    start, end = offsets[1], offsets[2]
    w.invalid("spliced-sections", "TrailingData",
              "5.3 a label section cut from another payload changes total_length",
              base[:start] + other.sections[1].to_bytes() + base[end:])
    # 5.3: the first section's predecessor is type 0, so a first section of type 0x0000 breaks
    # the order rule, which step 6 checks before the unknown critical type rule.
    w.invalid("first-section-type-zero", "FormatError",
              "5.3 type order: the first section's type must exceed 0x0000 (checked before unknown critical types)",
              edited(lambda raw: raw.sections.insert(0, wire.RawSection(0x0000, 0, 0, b""))))

def _zstd_zeros(size: int) -> bytes:
    """One Zstandard frame of *size* zero bytes, made a MiB at a time."""
    compressor = zstandard.ZstdCompressor(level=1).compressobj(size=size)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk[: min(len(chunk), size - done)]) for done in range(0, size, len(chunk))]
    return b"".join(parts) + compressor.flush()


def _uncovered_codecs(writer: Writer) -> list[str]:
    """Every codec of format 1.0 in the registry needs a valid vector using it
    and a must-reject vector breaking one of its body rules."""
    used, rejected = set(), set()
    for path, data in writer.files.items():
        if path.suffix != ".bin":
            continue
        if path.parent.name == "invalid":
            doc = json.loads(writer.files[path.with_suffix(".json")])
            rejected.add(doc.get("codec"))
        else:
            used.update((s.type, s.codec) for s in plada_codec.inspect(data).sections)
    return [
        f"{plada_codec.codecs.SECTION_NAMES[c.section_type]}/{c.name}"
        for c in plada_codec.codecs.all_codecs()
        if c.introduced == (1, 0)
        and ((c.section_type, c.id) not in used
             or f"{plada_codec.codecs.SECTION_NAMES[c.section_type]}/{c.name}" not in rejected)
    ]


def rejected_as_documented(w: Writer) -> list[str]:
    """Every invalid vector of *w* must be rejected with its documented class on every backend;
    the vectors that are not, in words."""
    from plada_codec._errors import SPEC_ERRORS

    problems = []
    for path, data in w.files.items():
        if path.suffix != ".bin" or path.parent.name != "invalid":
            continue
        expected = SPEC_ERRORS[json.loads(w.files[path.with_suffix(".json")])["error"]]
        for backend in plada_codec.available_backends():
            try:
                plada_codec.decode(data, backend=backend)
            except plada_codec.PayloadError as exc:
                if type(exc) is not expected:
                    problems.append(f"{path.name} ({backend}): {type(exc).__name__}: {exc}")
            else:
                problems.append(f"{path.name} ({backend}): accepted")
    return problems


def _not_rejected(writer: Writer) -> str | None:
    problems = rejected_as_documented(writer)
    return "invalid vectors not rejected as documented:\n  " + "\n  ".join(problems) if problems else None


def _uncovered(writer: Writer) -> str | None:
    missing = _uncovered_codecs(writer)
    return "registered format 1.0 codecs without a valid and a must-reject vector: " + ", ".join(missing) \
        if missing else None


def generate(description: str, out: Path, make_valid, make_invalid, check=_not_rejected) -> int:
    """The command line of a minor version's generator: write (or ``--check``) the vectors of
    *out*, after *check* (default: every invalid one is rejected as documented) found nothing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only report differences")
    args = parser.parse_args()
    writer = Writer(out)
    make_valid(writer)
    make_invalid(writer)
    problem = check(writer)
    if problem:
        print(problem)
        return 1
    return writer.sync(args.check)


def main() -> int:
    return generate(__doc__.split("\n")[0], OUT, make_valid, make_invalid, check=_uncovered)


if __name__ == "__main__":
    sys.exit(main())
