"""UTF-8 rules shared by the text-carrying ancillary codecs."""

from __future__ import annotations

from .._errors import EncodeError, PayloadFormatError


def utf8_bytes(text: str, name: str) -> bytes:
    """*text* as UTF-8; EncodeError for text that has none (lone surrogates)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{name} is not valid Unicode text ({exc.reason})") from None


def utf8_text(raw, where: str) -> str:
    """Strict UTF-8 decoding (RFC 3629: no surrogates, no overlong forms)."""
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadFormatError(f"{where}: not UTF-8 ({exc.reason})") from None
