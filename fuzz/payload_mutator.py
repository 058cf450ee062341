"""Structure-aware, checksum-repairing mutations of PLADA payloads.

A random byte flip almost always lands behind a CRC32C, so a plain fuzzer
spends its time on [Checksum] rejections. This module parses a payload
*leniently* (any bytes, nothing validated) into header fields and sections,
mutates fields, bodies and the section list the way a damaged or hostile
payload would differ, and writes it back with ``total_length``,
``stored_length``, ``section_count`` and every CRC32C recomputed (spec/FORMAT.md
sections 4 and 5.1), so the mutation reaches the checks behind the CRCs.
Now and then a length or CRC is left as mutated, so the framing checks stay
covered too.

Used as atheris' ``custom_mutator`` / ``custom_crossover`` by
``fuzz/fuzz_decode.py``; depends on no plada_codec internals (the CRC comes from
the ``crc32c`` package, Zstandard from ``zstandard``), so a bug in the codec's
own framing cannot hide itself here.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field, replace

import crc32c as _crc32c
import zstandard

MAGIC = b"\x89PLADA\r\n"
HEADER = struct.Struct("<8sBBHIQQ32sQHHI")  # spec section 4
SECTION = struct.Struct("<HBBIQQ")  # spec section 5.1
HEADER_SIZE = 80
SECTION_HEADER_SIZE = 24
CRC_SIZE = 4

INDEX, LABELS, CLASS_NAMES, TASK_NAME, METADATA = 0x0001, 0x0002, 0x8001, 0x8002, 0x8003
KNOWN_TYPES = (INDEX, LABELS, CLASS_NAMES, TASK_NAME, METADATA)

# Values at and around every bound the spec states (2^24 classes, 2^48 items,
# 2^26 ancillary bytes, 2^27 zstd window, 64-bit wrap) plus small ones.
INTERESTING = (
    0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1023, 1024, 4095, 4096,
    65535, 65536, (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 26) - 1, 1 << 26, (1 << 26) + 1,
    1 << 27, (1 << 27) + 1, (1 << 28) + 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32,
    (1 << 48) - 1, 1 << 48, (1 << 48) + 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
)
FIELD_BITS = {"minor": 8, "flags": 16, "n_classes": 32, "n_ref": 64, "count": 64,
              "total_length": 64, "section_count": 16, "reserved": 16}

# Metadata bodies that probe the JSON rules of spec 5.6 (duplicate keys,
# non-finite numbers, lone surrogates, depth, BOM, huge integers).
TRICKY_JSON = (
    b"{}", b'{"a":1}', b'{"a":1,"a":2}', b'{"a":1e999}', b'{"a":-1e999}', b'{"a":NaN}',
    b'{"a":Infinity}', b'{"a":"\\ud800"}', b'{"a":"\\udc00\\ud800"}', b"\xef\xbb\xbf{}",
    b"[]", b'"x"', b"1", b"null", b'{"a":1.0,"b":1}', b'{"\\u0061":1,"a":2}',
    b'{"a":' + b"[" * 63 + b"]" * 63 + b"}",
    b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"a":' + b"9" * 4301 + b"}", b'{"a":' + b"9" * 400 + b"}", b'{"a":1e-400}',
    b'{"a":-0}', b'{"a":0.1e1}', b'{"a":"\xff"}', b'{"a":"\\u0000"}', b'{"a" : 1 }',
    b'{"a":[' + b"0," * 1000 + b"0]}", b'{"a":[' + b"{}," * 1000 + b"{}]}",
)


@dataclass
class Section:
    """One section as framed on the wire, lengths as declared."""

    type: int
    codec: int
    compression: int
    flags: int
    raw_length: int
    stored_length: int
    body: bytes


@dataclass
class Model:
    """A payload cut into fields; ``trailing`` holds whatever did not parse."""

    magic: bytes = MAGIC
    major: int = 1
    minor: int = 0
    flags: int = 0
    n_classes: int = 1
    n_ref: int = 1
    count: int = 0
    fingerprint: bytes = bytes(32)
    total_length: int = 0
    section_count: int = 0
    reserved: int = 0
    header_crc: int = 0
    sections: list[Section] = field(default_factory=list)
    section_crcs: list[int] = field(default_factory=list)
    trailing: bytes = b""


def crc32c(data: bytes) -> int:
    return _crc32c.crc32c(data)


def parse(data: bytes) -> Model | None:
    """Cut *data* into a :class:`Model` without validating anything; None
    when it is shorter than a header. Sections are read while their declared
    framing fits in *data*; the rest goes to ``trailing``."""
    if len(data) < HEADER_SIZE:
        return None
    (magic, major, minor, flags, n_classes, n_ref, count, fingerprint, total, n_sections,
     reserved, header_crc) = HEADER.unpack_from(data, 0)
    model = Model(magic, major, minor, flags, n_classes, n_ref, count, fingerprint, total,
                  n_sections, reserved, header_crc)
    offset = HEADER_SIZE
    for _ in range(min(n_sections, 256)):
        if offset + SECTION_HEADER_SIZE > len(data):
            break
        stype, codec, compression, sflags, raw_length, stored = SECTION.unpack_from(data, offset)
        end = offset + SECTION_HEADER_SIZE + stored + CRC_SIZE
        if end > len(data):
            break
        body = data[offset + SECTION_HEADER_SIZE : end - CRC_SIZE]
        model.sections.append(Section(stype, codec, compression, sflags, raw_length, stored, body))
        (crc,) = struct.unpack_from("<I", data, end - CRC_SIZE)
        model.section_crcs.append(crc)
        offset = end
    model.trailing = data[offset:]
    return model


def serialize(model: Model, *, fix_lengths: bool = True, fix_crcs: bool = True) -> bytes:
    """Write *model* back. ``fix_lengths`` recomputes ``stored_length``,
    ``section_count`` and ``total_length`` from the content; ``fix_crcs``
    recomputes the header and section CRC32Cs (after the lengths)."""
    parts = []
    for number, section in enumerate(model.sections):
        stored = len(section.body) if fix_lengths else section.stored_length
        framed = SECTION.pack(section.type & 0xFFFF, section.codec & 0xFF,
                              section.compression & 0xFF, section.flags & 0xFFFFFFFF,
                              section.raw_length & (2**64 - 1), stored & (2**64 - 1)) + section.body
        if fix_crcs or number >= len(model.section_crcs):
            crc = crc32c(framed)
        else:
            crc = model.section_crcs[number]
        parts.append(framed + struct.pack("<I", crc))
    body = b"".join(parts)
    total = HEADER_SIZE + len(body) if fix_lengths else model.total_length
    n_sections = len(model.sections) if fix_lengths else model.section_count
    header = bytearray(HEADER.pack(
        model.magic, model.major & 0xFF, model.minor & 0xFF, model.flags & 0xFFFF,
        model.n_classes & 0xFFFFFFFF, model.n_ref & (2**64 - 1), model.count & (2**64 - 1),
        model.fingerprint, total & (2**64 - 1), n_sections & 0xFFFF, model.reserved & 0xFFFF, 0,
    ))
    crc = crc32c(bytes(header[:76])) if fix_crcs else model.header_crc
    struct.pack_into("<I", header, 76, crc)
    return bytes(header) + body + model.trailing


def repair(data: bytes) -> bytes:
    """Recompute the header CRC and every section CRC over *data*'s own
    declared framing, and set total_length to the length of *data*; nothing
    else changes. Turns a raw byte mutation into one that passes the CRCs."""
    model = parse(data)
    if model is None:
        return data
    out = bytearray(data)
    offset = HEADER_SIZE
    for section in model.sections:
        end = offset + SECTION_HEADER_SIZE + section.stored_length
        struct.pack_into("<I", out, end, crc32c(bytes(out[offset:end])))
        offset = end + CRC_SIZE
    struct.pack_into("<Q", out, 64, len(out))
    struct.pack_into("<I", out, 76, crc32c(bytes(out[:76])))
    return bytes(out)


# -- helpers on bodies -------------------------------------------------------------


def raw_body(section: Section) -> bytes | None:
    """The decompressed body, or None when it does not decompress."""
    if section.compression == 0:
        return section.body
    if section.compression != 1:
        return None
    try:
        return zstandard.ZstdDecompressor().decompressobj().decompress(section.body)
    except zstandard.ZstdError:
        return None


def store(section: Section, raw: bytes, rng: random.Random, compression: int | None = None) -> None:
    """Put *raw* into *section* with *compression* (default: its own),
    setting raw_length; Zstandard frames vary in level, checksum and whether
    they declare their content size (spec 5.4 requires it)."""
    compression = section.compression if compression is None else compression
    section.raw_length = len(raw)
    if compression == 1:
        compressor = zstandard.ZstdCompressor(
            level=rng.choice((1, 3, 19)),
            write_checksum=rng.random() < 0.3,
            write_content_size=rng.random() < 0.95,
        )
        section.body = compressor.compress(raw)
    else:
        section.body = raw
    section.compression = compression


def mutate_bytes(data: bytes, max_size: int, rng: random.Random, libfuzzer_mutate=None) -> bytes:
    """libFuzzer's own mutation when given (atheris.Mutate), else a few
    random byte edits."""
    if libfuzzer_mutate is not None:
        return libfuzzer_mutate(data, max_size)
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.5 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice < 0.7 and out:
            del out[rng.randrange(len(out))]
        elif choice < 0.9 and len(out) < max_size:
            out.insert(rng.randrange(len(out) + 1), rng.randrange(256))
        elif out:
            start = rng.randrange(len(out))
            out[start : start + rng.randint(1, 8)] = bytes(rng.randint(1, 8))
    return bytes(out[:max_size])


def interesting_value(rng: random.Random, bits: int, current: int) -> int:
    """A boundary value, a small step from *current*, or random bits."""
    choice = rng.random()
    mask = (1 << bits) - 1
    if choice < 0.5:
        return rng.choice(INTERESTING) & mask
    if choice < 0.85:
        return (current + rng.choice((-8, -2, -1, 1, 2, 8, 128))) & mask
    return rng.getrandbits(bits)


def bit_length(x: int) -> int:
    return x.bit_length()


# -- the mutations ------------------------------------------------------------------


def _find(model: Model, stype: int) -> Section | None:
    return next((s for s in model.sections if s.type == stype), None)


def mutate_header_field(model: Model, rng: random.Random) -> None:
    name = rng.choice(("n_classes", "n_ref", "count", "count", "n_ref", "n_classes", "minor",
                       "flags", "reserved", "fingerprint", "major"))
    if name == "fingerprint":
        model.fingerprint = rng.choice((bytes(32), rng.randbytes(32)))
    elif name == "major":
        model.major = rng.choice((0, 1, 2, 255))
    else:
        setattr(model, name, interesting_value(rng, FIELD_BITS[name], getattr(model, name)))


def mutate_section_field(model: Model, rng: random.Random) -> None:
    if not model.sections:
        return
    section = rng.choice(model.sections)
    name = rng.choice(("type", "codec", "codec", "compression", "flags", "raw_length",
                       "raw_length", "raw_length"))
    if name == "type":
        section.type = rng.choice(KNOWN_TYPES + (0, 3, 0x7FFF, 0x8000, 0x8004, 0xFFFF))
    elif name == "codec":
        section.codec = rng.choice((0, 1, 2, 3, 255))
    elif name == "compression":
        section.compression = rng.choice((0, 1, 2, 255))
    elif name == "flags":
        section.flags = rng.choice((1, 1 << 31))
    else:
        section.raw_length = interesting_value(rng, 64, section.raw_length)


def mutate_body(model: Model, rng: random.Random, max_size: int, libfuzzer_mutate) -> None:
    """Mutate a section's *raw* content, recompressing it when it was
    compressed, so the damage reaches the codec behind Zstandard."""
    if not model.sections:
        return
    section = rng.choice(model.sections)
    raw = raw_body(section)
    if raw is None or rng.random() < 0.2:
        section.body = mutate_bytes(section.body, max(len(section.body) * 2, 64), rng, libfuzzer_mutate)
        if section.compression == 0:
            section.raw_length = len(section.body)
        return
    raw = mutate_bytes(raw, max(len(raw) * 2, 64, max_size // 2), rng, libfuzzer_mutate)
    store(section, raw, rng)


def toggle_compression(model: Model, rng: random.Random) -> None:
    if not model.sections:
        return
    section = rng.choice(model.sections)
    raw = raw_body(section)
    if raw is not None:
        store(section, raw, rng, compression=1 - min(section.compression, 1))


def sync_count(model: Model, rng: random.Random) -> None:
    """Make the header agree with a mutated index body, so the body's own
    checks (padding, range, population) run instead of the length bounds."""
    index = _find(model, INDEX)
    if index is None:
        return
    raw = raw_body(index)
    if raw is None:
        return
    if index.codec == 1:
        model.count = int.from_bytes(raw, "little").bit_count()  # popcount in C: bitmaps reach megabytes
        if rng.random() < 0.5 and raw:
            model.n_ref = max(1, 8 * len(raw) - rng.randrange(8))
        model.count = min(model.count, model.n_ref)
    elif index.codec == 0 and raw:
        # Choose k so that the width table plus blocks can fill the body.
        blocks = max(1, min(len(raw), rng.randint(1, 4)))
        model.count = rng.randint(128 * (blocks - 1) + 1, 128 * blocks)
    labels = _find(model, LABELS)
    if labels is not None and rng.random() < 0.7:
        width = bit_length(max(model.n_classes, 1) - 1)
        if labels.codec == 0:
            size = (model.count * width + 7) // 8
        else:
            size = model.count * (1 if width <= 8 else 2 if width <= 16 else 4)
        raw = (raw_body(labels) or b"")[:size]
        raw += bytes(size - len(raw)) if size < 1 << 20 else b""
        store(labels, raw, rng)


def rewrite_delta_widths(model: Model, rng: random.Random) -> None:
    """Set one block width byte of an index-delta body to a boundary value
    (0, 63, 64, 65, 255), keeping the rest, then fix the body length to what
    the widths imply so the width and padding checks are reached."""
    index = _find(model, INDEX)
    if index is None or index.codec != 0:
        return
    raw = raw_body(index)
    k = model.count
    blocks = -(-k // 128)
    if raw is None or not blocks or len(raw) < blocks or blocks > 4096:
        return
    widths = bytearray(raw[:blocks])
    widths[rng.randrange(blocks)] = rng.choice((0, 1, 7, 8, 33, 48, 63, 64, 65, 255))
    need = sum(16 * w if b < blocks - 1 or k % 128 == 0 else ((k % 128) * w + 7) // 8
               for b, w in enumerate(min(w, 64) for w in widths))
    if need > 1 << 20:
        return
    tail = raw[blocks : blocks + need]
    tail += bytes(rng.getrandbits(8) for _ in range(need - len(tail)))
    store(index, bytes(widths) + tail, rng)


def compression_bomb(model: Model, rng: random.Random) -> None:
    """A section whose small Zstandard body declares a large raw body
    (up to 2^22 bytes): zero-filled bitmaps over a large N, long runs of zero
    gaps, many empty class names, metadata with long arrays. Valid payloads
    that are cheap to send and must still be cheap to decode (spec 9, 13)."""
    size = 1 << rng.randint(16, 22)
    kind = rng.choice(("bitmap", "delta", "class-names", "metadata-zeros", "metadata-objects"))
    if kind == "bitmap":
        model.n_ref, model.count = 8 * size, rng.choice((0, 1))
        raw = bytearray(size)
        if model.count:
            raw[rng.randrange(size)] = 1
        section = Section(INDEX, 1, 1, 0, 0, 0, b"")
    elif kind == "delta":
        model.count = min(size, 1 << 20)
        model.n_ref = max(model.n_ref, model.count) if model.n_ref <= 1 << 48 else model.count
        raw = bytes(-(-model.count // 128))  # every block width 0: k consecutive indices
        section = Section(INDEX, 0, 1, 0, 0, 0, b"")
    elif kind == "class-names" and rng.random() < 0.5:
        model.n_classes = min(size // 4, 1 << 24)
        raw = bytes(4 * model.n_classes)
        section = Section(CLASS_NAMES, 0, 1, 0, 0, 0, b"")
    elif kind == "class-names":  # codec 1 (format 1.2): C empty names are C - 1 LF bytes
        model.n_classes = min(size, 1 << 24)
        model.minor = max(model.minor, 2)
        raw = b"\n" * (model.n_classes - 1)
        section = Section(CLASS_NAMES, 1, 1, 0, 0, 0, b"")
    else:
        item = b"0," if kind == "metadata-zeros" else b"{},"
        raw = b'{"a":[' + item * (size // len(item)) + b"0]}"
        section = Section(METADATA, 0, 1, 0, 0, 0, b"")
    store(section, bytes(raw), rng, compression=1)
    model.sections = [s for s in model.sections if s.type != section.type] + [section]
    model.sections.sort(key=lambda s: s.type)
    if section.type == INDEX:
        labels = _find(model, LABELS)
        if labels is not None:
            width = bit_length(max(model.n_classes, 1) - 1)
            size = (model.count * width + 7) // 8 if labels.codec == 0 else model.count * (
                1 if width <= 8 else 2 if width <= 16 else 4)
            store(labels, bytes(size), rng, compression=1)


def mutate_section_list(model: Model, rng: random.Random) -> None:
    choice = rng.random()
    if choice < 0.25 and model.sections:
        del model.sections[rng.randrange(len(model.sections))]
    elif choice < 0.45 and model.sections:
        model.sections.insert(rng.randrange(len(model.sections) + 1),
                              replace(rng.choice(model.sections)))
    elif choice < 0.6 and len(model.sections) > 1:
        i, j = rng.sample(range(len(model.sections)), 2)
        model.sections[i], model.sections[j] = model.sections[j], model.sections[i]
    else:
        model.sections.append(make_ancillary(model, rng))
        model.sections.sort(key=lambda s: s.type)


def make_ancillary(model: Model, rng: random.Random) -> Section:
    """A class-names, task-name, metadata or unknown ancillary section."""
    stype = rng.choice((CLASS_NAMES, TASK_NAME, METADATA, METADATA, 0x8004, 0xFFFF))
    codec = rng.choice((0, 0, 0, 1))
    if stype == METADATA:
        raw = rng.choice(TRICKY_JSON)
    elif stype == CLASS_NAMES:
        codec = rng.choice((0, 1, 1, 2))  # 1: text (format 1.2), 2: unknown
        n = model.n_classes if model.n_classes <= 4096 and rng.random() < 0.8 else rng.randint(0, 8)
        names = [rng.choice((b"", b"cat", "é".encode(), b"\xff", b"a" * 300, b"\r", b"\xc0\x8a")) for _ in range(n)]
        if codec == 1:  # joined by LF (FORMAT.md 5.6): an LF inside a name, or one more or less, breaks rule 1
            raw = b"\n".join(names)
            if rng.random() < 0.2:
                raw = rng.choice((b"\n", b"")) + raw + rng.choice((b"\n", b"\na\nb", b""))
            if rng.random() < 0.8:
                model.minor = max(model.minor, 2)  # else the version rule of 9 step 8a rejects it
        else:
            raw = b"".join(struct.pack("<I", len(x)) + x for x in names)
        if rng.random() < 0.2 and raw:
            raw = raw[: rng.randrange(len(raw))]
    elif stype == TASK_NAME:
        raw = rng.choice((b"", b"mnist", "τ".encode(), b"\xc3", b"\xed\xa0\x80"))
    else:
        raw = rng.randbytes(rng.randint(0, 32))
    section = Section(stype, codec, 0, 0, 0, 0, b"")
    store(section, raw, rng, compression=rng.choice((0, 0, 1)))
    return section


def codec_names(section: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """Codec names the installed plada_codec registers for *section* (so
    format 1.1 codecs are tried as soon as they are registered)."""
    try:
        from plada_codec import codecs

        return tuple(codecs.names(section))
    except (ImportError, AttributeError, KeyError, ValueError):
        return fallback


def reencode(data: bytes, rng: random.Random, encode) -> bytes | None:
    """A fresh valid payload near *data*: a small random selection over the
    same (clamped) N and C, encoded with random codecs and compression by
    *encode* (plada_codec.encode). Gives the fuzzer valid starting points
    with bitmap/bytes/zstd combinations the vectors do not cover."""
    model = parse(data)
    n_ref = model.n_ref if model and 1 <= model.n_ref <= 1 << 20 else rng.choice((1, 7, 8, 9, 200, 5000))
    n_classes = model.n_classes if model and 1 <= model.n_classes <= 1 << 24 else rng.choice((1, 2, 5, 256, 257))
    k = rng.randint(0, min(n_ref, rng.choice((0, 1, 5, 130, 300))))
    indices = sorted(rng.sample(range(n_ref), k))
    labels = [rng.randrange(n_classes) for _ in range(k)]
    options = {
        "index_codec": rng.choice(("auto",) + codec_names("index", ("delta", "bitmap"))),
        "label_codec": rng.choice(("auto",) + codec_names("labels", ("packed", "bytes"))),
        "compression": rng.choice(("auto", "none", "zstd")),
        "zstd_level": 1,
    }
    extras = {}
    if rng.random() < 0.3 and n_classes <= 64:
        extras["class_names"] = [f"c{i}" for i in range(n_classes)]
    if rng.random() < 0.3:
        extras["task_name"] = rng.choice(("t", "τ"))
    if rng.random() < 0.3:
        extras["metadata"] = {"a": rng.choice((1, 1.5, "x", [1, {}], None))}
    try:
        return encode(indices, labels, n_ref=n_ref, n_classes=n_classes, **options, **extras)
    except Exception:  # an option the encoder refuses (bitmap too big, ...): no seed
        return None


def mutate(data: bytes, max_size: int, seed: int, libfuzzer_mutate=None, encode=None,
           bombs: bool = True) -> bytes:
    """One mutation of *data* of at most *max_size* bytes, chosen by *seed*.

    Mostly structure-aware edits behind recomputed lengths and CRCs; about
    one in ten is a plain byte mutation whose CRCs are then repaired, and
    about one in fifty is left with stale lengths or CRCs. ``bombs=False``
    leaves out :func:`compression_bomb` (for quick tests)."""
    rng = random.Random(seed)
    model = parse(data)
    roll = rng.random()
    if model is None or roll < 0.10:
        out = mutate_bytes(data, max_size, rng, libfuzzer_mutate)
        return repair(out) if rng.random() < 0.9 else out
    if roll < 0.14 and encode is not None:
        fresh = reencode(data, rng, encode)
        if fresh is not None and len(fresh) <= max_size:
            return fresh
    steps = (
        (mutate_header_field, 0.22), (mutate_section_field, 0.2), (mutate_body, 0.25),
        (toggle_compression, 0.05), (sync_count, 0.1), (rewrite_delta_widths, 0.06),
        (mutate_section_list, 0.11), (compression_bomb, 0.01),
    )
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        pick = rng.random()
        for step, weight in steps:
            if pick < weight:
                if step is compression_bomb and not bombs:
                    break
                if step is mutate_body:
                    step(model, rng, max_size, libfuzzer_mutate)
                else:
                    step(model, rng)
                break
            pick -= weight
    stale = rng.random() < 0.02
    out = serialize(model, fix_lengths=not stale or rng.random() < 0.5, fix_crcs=not stale)
    if len(out) > max_size:
        out = mutate_bytes(data, max_size, rng, libfuzzer_mutate)
        return repair(out)
    return out


def crossover(data1: bytes, data2: bytes, max_size: int, seed: int) -> bytes:
    """Header of one payload with sections of both (cut at section
    boundaries, the splice spec/FORMAT.md's integrity discussion worries
    about), lengths and CRCs recomputed."""
    rng = random.Random(seed)
    a, b = parse(data1), parse(data2)
    if a is None or b is None or not (a.sections or b.sections):
        return data1[:max_size]
    pool = a.sections + b.sections
    picked = [replace(s) for s in rng.sample(pool, rng.randint(1, min(len(pool), 6)))]
    if rng.random() < 0.8:
        picked.sort(key=lambda s: s.type)
    a.sections = picked
    if rng.random() < 0.5:
        a.count, a.n_ref, a.n_classes = b.count, b.n_ref, b.n_classes
    out = serialize(a)
    return out if len(out) <= max_size else data1[:max_size]

