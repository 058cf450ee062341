"""Class-names codec 1, text (spec/FORMAT.md 5.6, format 1.2): the C names as
UTF-8 joined by LF bytes, no lengths, no escapes (a name holding LF is written
by codec 0). Without a length field between names the body compresses at
Zstandard level 7 to about the size codec 0 reaches at level 19, in a
twentieth of the time (benchmarks/README.md)."""

from __future__ import annotations

from collections.abc import Iterator

from .._constants import ANCILLARY_MAX_RAW
from .._errors import EncodeError, PayloadFormatError
from ._registry import register
from .class_names import ClassNamesCodec, name_bytes

LF = b"\n"
# Body bytes decoded to text per step, then cut at the next LF: the names are
# built a piece at a time, so a decode holds beyond the body and the names one
# piece and its list of at most 4,097 names, not the whole body as one str and
# a list of every name beside the tuple.
PIECE = 1 << 12


def _holds_lf(names) -> bool | None:
    """Whether a name of *names* holds LF; None when they are not all str (the
    encoder then reports the bad name)."""
    try:
        return "\n" in "".join(names)
    except TypeError:
        return None


@register
class ClassNamesText(ClassNamesCodec):
    id = 1
    name = "text"
    introduced = (1, 2)
    fast_level = 7
    supersedes = 0  # plain: its lengths cost 14% more at level 7 than this body does

    def raw_length_bounds(self, shape):
        return shape.n_classes - 1, ANCILLARY_MAX_RAW

    def usable(self, selection, forced):
        names = selection.class_names
        if names is None or isinstance(names, str):
            return True  # name_bytes says what is wrong
        if _holds_lf(names):
            if forced:
                raise EncodeError("a class name holds LF (U+000A), which the text codec cannot carry")
            return False
        return True

    def encode(self, selection, kernels):
        names = selection.class_names
        body = None
        if isinstance(names, (list, tuple)) and len(names) == selection.n_classes and set(map(type, names)) <= {str}:
            try:  # one join and one encode: 0.3 ms for 21,841 names, a name at a time 2 ms
                body = "\n".join(names).encode("utf-8")
            except UnicodeEncodeError:
                pass
        if body is None:  # the checks of codec 0, which say what is wrong
            body = LF.join(name_bytes(selection))
        if body.count(LF) != selection.n_classes - 1:
            raise EncodeError("a class name holds LF (U+000A), which the text codec cannot carry")
        return body

    def decode(self, raw, context, kernels, where):
        raw = bytes(raw)
        separators = raw.count(LF)  # checked before any name is built
        if separators != context.n_classes - 1:
            raise PayloadFormatError(
                f"{where}: {separators} LF bytes separate {separators + 1} names, "
                f"n_classes is {context.n_classes} (the body must hold {context.n_classes - 1})"
            )
        return {"class_names": tuple(_names(raw, where))}


def _names(raw: bytes, where: str) -> Iterator[str]:
    """The names of a text body whose LF count was checked, a piece at a time."""
    end = len(raw)
    view = memoryview(raw)  # pieces decoded from it without a copy of their bytes
    pos = 0
    while True:
        cut = raw.find(LF, pos + PIECE) if pos + PIECE < end else -1
        stop = end if cut < 0 else cut
        try:
            text = str(view[pos:stop], "utf-8")
        except UnicodeDecodeError as exc:
            number = raw.count(LF, 0, pos + exc.start)
            raise PayloadFormatError(f"{where}: name {number} is not UTF-8 ({exc.reason})") from None
        yield from text.split("\n")
        if cut < 0:
            return
        pos = cut + 1
