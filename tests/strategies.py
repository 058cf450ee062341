"""Hypothesis strategies for selections, payloads and damaged payloads."""

import numpy as np
from hypothesis import strategies as st

import plada_codec
from plada_codec import codecs

n_refs = st.one_of(
    st.integers(1, 300), st.integers(1, 2**20), st.integers(2**32 - 5, 2**32 + 5), st.integers(1, 2**48)
)
class_counts = st.one_of(st.integers(1, 10), st.integers(1, 300), st.sampled_from([256, 257, 65536, 2**24]))


@st.composite
def selections(draw, max_count=400):
    """(indices, labels, n_ref, n_classes) with sorted distinct indices."""
    n_ref = draw(n_refs)
    n_classes = draw(class_counts)
    if draw(st.booleans()) and n_ref <= 2000:
        # dense: a random mask, k up to N (covers k = N and long zero-gap runs)
        mask = draw(st.lists(st.booleans(), min_size=n_ref, max_size=n_ref))
        indices = np.flatnonzero(mask)[:max_count] if sum(mask) <= max_count else np.flatnonzero(mask)
    else:
        indices = np.array(
            sorted(draw(st.sets(st.integers(0, n_ref - 1), max_size=min(max_count, n_ref)))),
            dtype=np.int64,
        )
    labels = np.array(
        draw(st.lists(st.integers(0, n_classes - 1), min_size=indices.size, max_size=indices.size)),
        dtype=np.int64,
    )
    return indices.astype(np.int64), labels, n_ref, n_classes


def codec_pairs():
    """(index_codec, label_codec) options the encoder accepts, from the registry:
    "auto" or any name, except that a joint codec takes its partner or "auto"."""
    index_codecs = codecs.for_section(codecs.SECTION_INDEX)
    label_codecs = codecs.for_section(codecs.SECTION_LABELS)
    pairs = [("auto", "auto")]
    pairs += [("auto", c.name) for c in label_codecs]
    pairs += [(c.name, "auto") for c in index_codecs]
    for index in index_codecs:
        for label in label_codecs:
            fits = (index.partner is None or index.partner == (label.section_type, label.id)) and (
                label.partner is None or label.partner == (index.section_type, index.id))
            if fits:
                pairs.append((index.name, label.name))
    return pairs


@st.composite
def encode_options(draw):
    index_codec, label_codec = draw(st.sampled_from(codec_pairs()))
    return {
        "index_codec": index_codec,
        "label_codec": label_codec,
        "compression": draw(st.sampled_from(["auto", "none", "zstd"])),
        "zstd_level": draw(st.sampled_from([1, 3])),
    }


# Any Unicode scalar value (no surrogates: they have no UTF-8), LF and CR drawn often.
name_texts = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.text(st.sampled_from("a\n\r\ufeff\x00é🍎"), max_size=6),
)


def class_name_lists(n_classes, with_lf=True):
    """Lists of *n_classes* class names, empty and repeated ones included; without
    *with_lf*, names the text codec (FORMAT.md 5.6, codec 1) can carry."""
    names = name_texts if with_lf else name_texts.map(lambda t: t.replace("\n", ""))
    return st.lists(names, min_size=n_classes, max_size=n_classes)


@st.composite
def widths_and_values(draw, max_count=300):
    width = draw(st.integers(0, 64))
    count = draw(st.one_of(st.integers(0, 20), st.integers(0, max_count)))
    top = (1 << width) - 1
    values = draw(
        st.lists(
            st.one_of(st.integers(0, top), st.just(top), st.just(0)), min_size=count, max_size=count
        )
    )
    return width, np.array(values, dtype=np.uint64)


@st.composite
def small_payloads(draw):
    indices, labels, n_ref, n_classes = draw(selections(max_count=60))
    if n_ref > 2**22:  # keep bitmaps small
        options = {"index_codec": "delta", "compression": draw(st.sampled_from(["none", "zstd"]))}
    else:
        options = {"compression": draw(st.sampled_from(["none", "zstd", "auto"]))}
    extras = {}
    if draw(st.booleans()) and n_classes <= 16:
        extras["class_names"] = draw(st.one_of(st.just([f"c{i}" for i in range(n_classes)]),
                                               class_name_lists(n_classes)))
    if draw(st.booleans()):
        extras["metadata"] = {"keep": 0.01, "mode": "low-energy"}
    return plada_codec.encode(
        indices, labels, n_ref=n_ref, n_classes=n_classes, zstd_level=1, **options, **extras
    )


@st.composite
def mutations(draw, data: bytes):
    """One damaging edit of *data*: truncation, bit flips, byte overwrite, insertion, extension."""
    buf = bytearray(data)
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "extend", "multi"]))
    if kind == "truncate":
        return bytes(buf[: draw(st.integers(0, len(buf) - 1))])
    if kind == "extend":
        return bytes(buf) + draw(st.binary(min_size=1, max_size=8))
    if kind == "insert":
        at = draw(st.integers(0, len(buf)))
        return bytes(buf[:at]) + draw(st.binary(min_size=1, max_size=8)) + bytes(buf[at:])
    flips = 1 if kind != "multi" else draw(st.integers(2, 8))
    for _ in range(flips):
        at = draw(st.integers(0, len(buf) - 1))
        if kind == "overwrite":
            buf[at] = draw(st.integers(0, 255))
        else:
            buf[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(buf)


@st.composite
def structural_mutations(draw, data: bytes):
    """*data* with one header or section field, or a body, changed and every CRC
    recomputed: lying lengths and bad values that checksums do not catch."""
    from plada_codec import wire

    raw = wire.split(data)
    target = draw(st.sampled_from(["count", "n_ref", "n_classes", "raw_length", "stored_length",
                                   "codec", "compression", "body", "type", "section_count"]))
    value = draw(st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1)))
    section = raw.sections[draw(st.integers(0, len(raw.sections) - 1))]
    if target in ("count", "n_ref"):
        setattr(raw, target, value)
    elif target == "n_classes":
        raw.n_classes = value % 2**32
    elif target == "section_count":
        raw.section_count = value % 2**16
    elif target in ("raw_length", "stored_length"):
        setattr(section, target, value)
    elif target in ("codec", "compression"):
        setattr(section, target, value % 256)
    elif target == "type":
        section.type = value % 2**16
    else:
        section.body = draw(st.binary(max_size=64))
    return wire.join(raw)
