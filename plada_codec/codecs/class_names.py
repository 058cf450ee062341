"""Class-names codec 0, plain (spec/FORMAT.md 5.6): C entries, each a uint32le
byte length and that many bytes of UTF-8."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from .._constants import ANCILLARY_MAX_RAW, SECTION_CLASS_NAMES
from .._errors import EncodeError, PayloadFormatError
from ._registry import Codec, register
from ._text import utf8_bytes

_LENGTH = struct.Struct("<I")
# Bytes each name counts as at least against max_ancillary_bytes (spec 5.5):
# decoding a name costs about this much (a str object and a tuple slot) even
# when it is empty, so 2**22 bytes allow 65,536 names, not the 2**20 empty
# names of a 4 MiB body. ImageNet-21K's 21,841 names count as 1.4 MB.
NAME_FLOOR = 64


class ClassNamesCodec(Codec):
    """What every class-names codec shares: the section, the field, and the
    max_ancillary_bytes rule that counts a name as at least NAME_FLOOR bytes."""

    section_type = SECTION_CLASS_NAMES
    limit = "max_ancillary_bytes"
    limit_rule = f"at least {NAME_FLOOR} bytes a name"
    fields = ("class_names",)

    def limit_cost(self, raw_length, shape):
        return max(raw_length, NAME_FLOOR * shape.n_classes)


@register
class ClassNamesPlain(ClassNamesCodec):
    id = 0
    name = "plain"
    introduced = (1, 0)

    def raw_length_bounds(self, shape):
        return 4 * shape.n_classes, ANCILLARY_MAX_RAW

    def encode(self, selection, kernels):
        datas = name_bytes(selection)
        lengths = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas))
        fields = (np.cumsum(lengths + 4) - lengths - 4)[:, None] + np.arange(4)  # where each length goes
        out = np.empty(int(lengths.sum()) + 4 * len(datas), dtype=np.uint8)
        out[fields] = lengths.astype("<u4").view(np.uint8).reshape(-1, 4)
        text = np.ones(out.size, dtype=bool)
        text[fields.ravel()] = False
        out[text] = np.frombuffer(b"".join(datas), dtype=np.uint8)
        return out.tobytes()

    def decode(self, raw, context, kernels, where):
        raw = bytes(raw)
        # tuple() of a generator grows the tuple in place: no list beside it, so
        # 2**20 names (4 MiB of lengths) cost one 8 MiB array of pointers, not two.
        names = tuple(_names(raw, context.n_classes, where))
        return {"class_names": names}


def name_bytes(selection) -> list[bytes]:
    """The C class names of *selection* as UTF-8, checked (EncodeError: not a
    sequence of C str, or a name with no UTF-8); shared by both codecs."""
    names = selection.class_names
    if isinstance(names, str):
        raise EncodeError("class_names must be a sequence of str, not one str")
    try:
        names = list(names)
    except TypeError:
        raise EncodeError(f"class_names must be a sequence of str, not {type(names).__name__}") from None
    if len(names) != selection.n_classes:
        raise EncodeError(f"class_names has {len(names)} names, n_classes is {selection.n_classes}")
    # Checked and encoded a list at a time: 21,841 names in a few ms, where a
    # loop over names took tens.
    try:
        datas = [name.encode("utf-8") for name in names]
    except (AttributeError, TypeError, UnicodeEncodeError):
        datas = []
    if len(datas) != len(names) or not set(map(type, names)) <= {str}:  # the slow path: say which
        for number, name in enumerate(names):
            if not isinstance(name, str):
                raise EncodeError(f"class_names[{number}] is {type(name).__name__}, not str")
            utf8_bytes(name, f"class_names[{number}]")  # raises for a name that has no UTF-8
        datas = [str.encode(name, "utf-8") for name in names]  # str subclasses encode as str does
    return datas


def _names(raw: bytes, count: int, where: str) -> Iterator[str]:
    """The *count* names of a class-names body (spec 5.6), checked as they are read."""
    end = len(raw)
    unpack = _LENGTH.unpack_from  # bound once: this loop runs up to 2**20 times
    pos = 0
    for number in range(count):
        if pos + 4 > end:
            raise PayloadFormatError(f"{where}: name {number} length runs past the section")
        stop = pos + 4 + unpack(raw, pos)[0]
        if stop > end:
            raise PayloadFormatError(f"{where}: name {number} runs past the section")
        try:
            yield raw[pos + 4 : stop].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadFormatError(f"{where}: name {number} is not UTF-8 ({exc.reason})") from None
        pos = stop
    if pos != end:
        raise PayloadFormatError(f"{where}: {end - pos} bytes follow the last class name")
