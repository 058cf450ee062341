"""An independent PLADA 1.x decoder written from spec/FORMAT.md alone.

Like zstd's educational_decoder: small, slow, stdlib only (plus the
`zstandard` package, only for sections that use compression 1), no numpy and
no import of plada_codec. It exists to show that the spec is complete: the
test suite runs it over every vector and requires the same content for valid
vectors and the same error class for invalid ones.

    python spec/educational_decoder.py PAYLOAD   # prints the decoded content as JSON
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

MAGIC = b"\x89PLADA\r\n"


class DecodeError(Exception):
    """Carries the spec's error class name (FORMAT.md 9.1)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def fail(kind: str, message: str):
    raise DecodeError(kind, message)


# -- CRC32C (section 1): reflected polynomial 0x82F63B78, init and xorout 0xFFFFFFFF
_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def u(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def bit_length(x: int) -> int:
    return x.bit_length()


# -- bit packing (section 6.1) ---------------------------------------------------------
def unpack(body: bytes, start: int, n: int, w: int) -> list[int]:
    """n values of w bits, LSB-first, from byte *start*; checks zero padding."""
    values, bit = [], start * 8
    for _ in range(n):
        value = 0
        for b in range(w):
            value |= (body[bit >> 3] >> (bit & 7) & 1) << b
            bit += 1
        values.append(value)
    while bit % 8:  # padding up to the byte boundary
        if body[bit >> 3] >> (bit & 7) & 1:
            fail("FormatError", "padding bits are not zero")
        bit += 1
    return values


# -- sections (5.4 - 7) ------------------------------------------------------------------
def decompress(body: bytes, raw_length: int) -> bytes:
    import zstandard

    if body[:4] != b"\x28\xb5\x2f\xfd":
        fail("FormatError", "not a Zstandard frame")
    try:
        params = zstandard.get_frame_parameters(body)
        size = zstandard.frame_content_size(body)
    except zstandard.ZstdError as exc:
        fail("FormatError", f"bad frame header ({exc})")
    if size < 0 or size != raw_length:
        fail("FormatError", "Frame_Content_Size missing or not raw_length")
    if params.window_size > 2**27 or params.dict_id:
        fail("FormatError", "window above 2**27 or a dictionary")
    if raw_length == 0:
        obj = zstandard.ZstdDecompressor().decompressobj()
        try:
            out = obj.decompress(body)
        except zstandard.ZstdError as exc:
            fail("FormatError", str(exc))
        if out or not obj.eof or obj.unused_data:
            fail("FormatError", "not exactly one empty frame")
        return b""
    try:
        out = zstandard.ZstdDecompressor(max_window_size=2**27).decompress(
            body, max_output_size=raw_length, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        fail("FormatError", str(exc))
    if len(out) != raw_length:
        fail("FormatError", "frame length differs from raw_length")
    return out


def decode_delta(raw: bytes, k: int, n_ref: int, c: int) -> list[int]:
    nb = (k + 127) // 128
    if len(raw) < nb:
        fail("FormatError", "width table missing")
    widths = list(raw[:nb])
    if any(w > 64 for w in widths):
        fail("FormatError", "block width above 64")
    sizes = [16 * w for w in widths[:-1]] + ([((k - 128 * (nb - 1)) * widths[-1] + 7) // 8] if nb else [])
    if len(raw) != nb + sum(sizes):
        fail("FormatError", "raw_length does not match the widths")
    gaps, pos = [], nb
    for b, w in enumerate(widths):
        n = 128 if b < nb - 1 else k - 128 * (nb - 1)
        gaps += unpack(raw, pos, n, w)
        pos += sizes[b]
    indices, previous = [], -1
    for gap in gaps:
        if gap >= n_ref:
            fail("FormatError", "index out of range")
        previous = previous + gap + 1
        if previous >= n_ref:
            fail("FormatError", "index out of range")
        indices.append(previous)
    return indices


def decode_bitmap(raw: bytes, k: int, n_ref: int, c: int) -> list[int]:
    if len(raw) != (n_ref + 7) // 8:
        fail("FormatError", "bitmap length")
    if n_ref % 8 and raw[-1] >> (n_ref % 8):
        fail("FormatError", "padding bits are not zero")
    indices = [8 * i + b for i, byte in enumerate(raw) if byte for b in range(8) if byte >> b & 1]
    if len(indices) != k:
        fail("FormatError", "population count differs from k")
    return indices


def label_width(c: int) -> int:
    return bit_length(c - 1)


def label_bytes(c: int) -> int:
    w = label_width(c)
    return 1 if w <= 8 else 2 if w <= 16 else 4


def check_labels(labels: list[int], c: int) -> list[int]:
    if any(label >= c for label in labels):
        fail("FormatError", "label >= C")
    return labels


def decode_packed_labels(raw: bytes, k: int, n_ref: int, c: int) -> list[int]:
    return check_labels(unpack(raw, 0, k, label_width(c)), c)


def decode_byte_labels(raw: bytes, k: int, n_ref: int, c: int) -> list[int]:
    b = label_bytes(c)
    return check_labels([u(raw, j * b, b) for j in range(k)], c)


def utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("FormatError", "not UTF-8")


def decode_metadata(raw: bytes, k: int, n_ref: int, c: int):
    text = utf8(raw)
    if text[:1] == "\ufeff":
        fail("FormatError", "byte-order mark")

    def pairs(items):
        keys = [key for key, _ in items]
        if len(keys) != len(set(keys)):
            fail("FormatError", "duplicate key")
        return dict(items)

    def constant(name):
        fail("FormatError", f"{name} is not JSON")

    def integer(token):
        digits = token.lstrip("-")
        if len(digits) > 16 or int(digits) > 2**53 - 1:
            fail("FormatError", "integer outside +-(2**53 - 1)")
        return int(token)

    def number(token):
        value = float(token)
        if value in (float("inf"), float("-inf")):
            fail("FormatError", "number outside a double")
        return value

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_int=integer,
                           parse_float=number)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, DecodeError):
            raise
        fail("FormatError", "invalid JSON")
    if not isinstance(value, dict):
        fail("FormatError", "metadata is not an object")
    depth = [(value, 1)]
    while depth:
        item, d = depth.pop()
        if isinstance(item, (dict, list)):
            if d > 64:
                fail("FormatError", "nested deeper than 64")
            depth += [(child, d + 1) for child in (item.values() if isinstance(item, dict) else item)]
            strings = list(item.keys()) if isinstance(item, dict) else []
        else:
            strings = [item] if isinstance(item, str) else []
        for string in strings:
            if any(0xD800 <= ord(ch) <= 0xDFFF for ch in string):
                fail("FormatError", "lone surrogate")
    return value


def decode_class_names(raw: bytes, k: int, n_ref: int, c: int) -> list[str]:
    names, pos = [], 0
    for _ in range(c):
        if pos + 4 > len(raw):
            fail("FormatError", "class name length past the section")
        length = u(raw, pos, 4)
        if pos + 4 + length > len(raw):
            fail("FormatError", "class name past the section")
        names.append(utf8(raw[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    if pos != len(raw):
        fail("FormatError", "bytes after the last class name")
    return names


# -- the codecs of sections 5.2, 5.6, 6 and 7 --------------------------------------------------
def exactly(size: int) -> tuple[int, int]:
    return size, size


def ancillary_bounds(k: int, n_ref: int, c: int) -> tuple[int, int]:
    return 0, 2**26


# (section type, codec id) -> (output field, minor version that introduced it,
#                              raw_length bounds of 5.5, body decoder).
# A joint codec (5.2) names a tuple of fields and its decoder returns a tuple of values; its
# partner names () and returns (); PARTNERS maps each of the two to the other.
CODECS = {
    (0x0001, 0): ("indices", 0, lambda k, n_ref, c: ((k + 127) // 128, (k + 127) // 128 + 8 * k), decode_delta),
    (0x0001, 1): ("indices", 0, lambda k, n_ref, c: exactly((n_ref + 7) // 8), decode_bitmap),
    (0x0002, 0): ("labels", 0, lambda k, n_ref, c: exactly((k * label_width(c) + 7) // 8), decode_packed_labels),
    (0x0002, 1): ("labels", 0, lambda k, n_ref, c: exactly(k * label_bytes(c)), decode_byte_labels),
    (0x8001, 0): ("class_names", 0, lambda k, n_ref, c: (4 * c, 2**26), decode_class_names),
    (0x8002, 0): ("task_name", 0, ancillary_bounds, lambda raw, k, n_ref, c: utf8(raw)),
    (0x8003, 0): ("metadata", 0, ancillary_bounds, decode_metadata),
}
PARTNERS: dict = {}  # format 1.0 has no joint codecs
UNCOMPRESSED: set = set()  # codecs whose body MUST have compression 0; none in format 1.0
# -- format 1.1: the joint context-model codec (section 15, spec/educational_cm.py) --
_cm_spec = importlib.util.spec_from_file_location(f"{__name__}_cm", Path(__file__).with_name("educational_cm.py"))
educational_cm = importlib.util.module_from_spec(_cm_spec)
_cm_spec.loader.exec_module(educational_cm)
educational_cm.fail = fail  # its rejections carry this module's DecodeError
CODECS[(0x0001, 2)] = (("indices", "labels"), 1, educational_cm.raw_length_bounds, educational_cm.decode_cm_body)
CODECS[(0x0002, 2)] = ((), 1, lambda k, n_ref, c: exactly(0), lambda raw, k, n_ref, c: ())
PARTNERS.update({(0x0001, 2): (0x0002, 2), (0x0002, 2): (0x0001, 2)})
UNCOMPRESSED.add((0x0001, 2))  # 15.1: compression 0 only
# -- end of format 1.1 --


# -- format 1.2: class-names codec 1, text (section 5.6) ---------------------------------------
def decode_class_names_text(raw: bytes, k: int, n_ref: int, c: int) -> list[str]:
    if raw.count(b"\n") != c - 1:  # rule 1, before any name is built
        fail("FormatError", "class-names text: not exactly C - 1 LF bytes")
    return utf8(raw).split("\n")  # rule 2: the whole body is UTF-8; rule 3: nothing else is special


CODECS[(0x8001, 1)] = ("class_names", 2, lambda k, n_ref, c: (c - 1, 2**26), decode_class_names_text)
# -- end of format 1.2 --


# -- the decoding procedure of section 9 -----------------------------------------------------
def decode(data: bytes, *, max_count: int = 2**24, max_section_bytes: int = 2**28,
           max_ancillary_bytes: int = 2**22, max_metadata_items: int = 2**16, reference=None) -> dict:
    # step 1
    if data[:8] != MAGIC[: min(len(data), 8)]:
        fail("FormatError", "bad magic")
    if len(data) < 10:
        fail("Truncated", "shorter than 10 bytes")
    if data[8] != 1:
        fail("UnsupportedVersion", f"major version {data[8]}")
    if len(data) < 80:
        fail("Truncated", "header cut short")
    # step 2
    if crc32c(data[:76]) != u(data, 76, 4):
        fail("Checksum", "header CRC")
    # step 3
    if u(data, 10, 2):
        fail("UnsupportedFeature", "feature flags")
    c, n_ref, k = u(data, 12, 4), u(data, 16, 8), u(data, 24, 8)
    fingerprint, total, count = data[32:64], u(data, 64, 8), u(data, 72, 2)
    if u(data, 74, 2) or not 1 <= n_ref <= 2**48 or not 1 <= c <= 2**24 or k > n_ref:
        fail("FormatError", "header field out of range")
    if not 2 <= count <= 256 or total < 80:
        fail("FormatError", "section_count or total_length out of range")
    # step 4
    if len(data) < total:
        fail("Truncated", "shorter than total_length")
    if len(data) > total:
        fail("TrailingData", "bytes after total_length")
    # step 5
    if k > max_count:
        fail("LimitExceeded", "count above max_count")
    # step 6
    sections, offset, previous = [], 80, 0
    for _ in range(count):
        if offset + 24 > total:
            fail("Truncated", "section header past the end")
        stype, codec, compression = u(data, offset, 2), data[offset + 2], data[offset + 3]
        flags, raw_length, stored = u(data, offset + 4, 4), u(data, offset + 8, 8), u(data, offset + 16, 8)
        end = offset + 24 + stored + 4
        if end > total:
            fail("Truncated", "section past the end")
        if crc32c(data[offset : end - 4]) != u(data, end - 4, 4):
            fail("Checksum", "section CRC")
        if flags:
            fail("FormatError", "section flags")
        if stype <= previous:
            fail("FormatError", "section order")
        if not stype & 0x8000 and stype not in (1, 2):
            fail("UnsupportedFeature", "unknown critical section")
        if stype & 0x8000 and raw_length > 2**26:
            fail("FormatError", "ancillary raw_length above 2**26")
        if compression == 0 and stored != raw_length:
            fail("FormatError", "stored_length differs from raw_length")
        if stored > max_section_bytes or raw_length > max_section_bytes:
            fail("LimitExceeded", "section above max_section_bytes")
        previous = stype
        sections.append((stype, codec, compression, raw_length, data[offset + 24 : end - 4]))
        offset = end
    if offset != total:
        fail("FormatError", "bytes belonging to no section")
    if {1, 2} - {s[0] for s in sections}:
        fail("FormatError", "a critical section is missing")
    # step 7
    unbound = fingerprint == bytes(32)
    if reference is not None:
        ref_n, ref_fp = reference
        if ref_n != n_ref or unbound or ref_fp != fingerprint:
            fail("ReferenceMismatch", "binding")
    # step 8a: every section's codec, before any body is read
    minor = data[9]
    plan = []
    for stype, codec, compression, raw_length, body in sections:
        known = CODECS.get((stype, codec))
        if known is None or compression > 1:
            if stype & 0x8000:
                continue
            fail("UnsupportedFeature", "unknown codec or compression")
        if known[1] > minor:
            fail("FormatError", "codec newer than the header's minor version")
        if (stype, codec) in UNCOMPRESSED and compression != 0:
            fail("FormatError", "this codec's body must be stored uncompressed")
        plan.append((stype, codec, compression, raw_length, body))
    chosen = {stype: codec for stype, codec, _, _, _ in plan}
    for stype, codec, _, _, _ in plan:
        partner = PARTNERS.get((stype, codec))
        if partner is not None and chosen.get(partner[0]) != partner[1]:
            fail("FormatError", "a joint codec without its partner")
    # step 8b
    out = {"format_version": f"1.{minor}", "n_ref": n_ref, "n_classes": c, "count": k,
           "fingerprint": None if unbound else fingerprint.hex(), "indices": None, "labels": None,
           "class_names": None, "task_name": None, "metadata": None}
    for stype, codec, _compression, raw_length, _body in plan:  # the critical bounds first
        low, high = CODECS[(stype, codec)][2](k, n_ref, c)
        if not stype & 0x8000 and not low <= raw_length <= high:
            fail("FormatError", "raw_length outside its bounds")
    # The critical bodies are decoded whole here, one after the other; a decoder may also step
    # through both at once (9, step 8b): every error in them is a FormatError either way.
    for stype, codec, compression, raw_length, body in plan:
        field, _, bounds, decode_body = CODECS[(stype, codec)]
        low, high = bounds(k, n_ref, c)
        if not low <= raw_length <= high:
            fail("FormatError", "raw_length outside its bounds")
        counted = max(raw_length, 64 * c) if stype == 0x8001 else raw_length  # 5.5: 64 bytes a name
        if stype & 0x8000 and counted > max_ancillary_bytes:
            fail("LimitExceeded", "ancillary section above max_ancillary_bytes")
        raw = body if compression == 0 else decompress(body, raw_length)
        if stype == 0x8003 and sum(raw.count(ch) for ch in b"[{,:") > max_metadata_items:
            fail("LimitExceeded", "metadata above max_metadata_items")
        if isinstance(field, tuple):
            out.update(zip(field, decode_body(raw, k, n_ref, c)))
        else:
            out[field] = decode_body(raw, k, n_ref, c)
    return out


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as fh:
        try:
            print(json.dumps(decode(fh.read())))
        except DecodeError as exc:
            print(exc, file=sys.stderr)
            sys.exit(1)
