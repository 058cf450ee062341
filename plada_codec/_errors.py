"""The one exception tree of plada_codec.

Every failure of :func:`plada_codec.decode`, :func:`plada_codec.inspect` and
:func:`plada_codec.encode` on bad input raises a subclass of :class:`PayloadError`.
Leaves also subclass the builtin a caller would naturally catch (``ValueError``,
``EOFError``), so ``except ValueError`` keeps working for code that knows nothing
of plada. Both backends (C and numpy) raise the same classes. One exception to
the tree, as in Python's own functions: a payload argument that is not bytes-like
at all (a str, None, a file object: use ``read_payload`` for files) raises
``TypeError`` naming its type.
"""

from __future__ import annotations

__all__ = [
    "PayloadError",
    "PayloadFormatError",
    "TruncatedPayloadError",
    "TrailingDataError",
    "ChecksumError",
    "UnsupportedVersionError",
    "UnsupportedFeatureError",
    "LimitExceededError",
    "ReferenceMismatchError",
    "EncodeError",
    "ReferenceSetError",
    "StaleManifestError",
    "InvalidOptionError",
    "UnknownBackendError",
]


class PayloadError(Exception):
    """Root of every error plada_codec raises on bad input."""


class PayloadFormatError(PayloadError, ValueError):
    """The bytes are not a well-formed PLADA payload (spec section "Decoding")."""


class TruncatedPayloadError(PayloadFormatError, EOFError):
    """The payload ends before a field or section it declares."""


class TrailingDataError(PayloadFormatError):
    """Bytes follow the end of the payload declared by ``total_length``."""


class ChecksumError(PayloadFormatError):
    """A CRC32C over the header or a section does not match its content."""


class UnsupportedVersionError(PayloadFormatError):
    """The payload's format major version is not one this decoder reads."""


class UnsupportedFeatureError(PayloadFormatError):
    """A must-understand element is unknown: a feature flag, a critical
    section type, a codec id or a compression id."""


class LimitExceededError(PayloadError, ValueError):
    """The payload is well formed but declares more than the caller's limits
    (``max_count``, ``max_section_bytes``) allow; nothing was allocated."""


class ReferenceMismatchError(PayloadError, ValueError):
    """The payload is bound to a different reference set than the one given
    (fingerprint or size differ), or is unbound when a check was asked for."""


class EncodeError(PayloadError, ValueError):
    """The selection handed to the encoder is invalid (unsorted or duplicate
    indices, labels out of range, wrong dtype or shape, bad option)."""


class ReferenceSetError(PayloadError, ValueError):
    """A reference set or its manifest cannot be fingerprinted: a file name the
    manifest cannot hold (not UTF-8, a control character), an empty set, a
    malformed manifest, a tar shard that breaks the tar rule, an unreadable file
    (spec/REFERENCE.md). Not a payload problem: no payload was read."""


class StaleManifestError(ReferenceSetError):
    """The reference set on disk no longer matches the manifest cache recorded
    for it (a file added, removed, resized or touched), or does not match the
    manifest it is checked against; re-hash it (``plada ref-hash --rehash``)."""


class InvalidOptionError(PayloadError, ValueError):
    """An option given to the codec (``backend=``, ``format_version=``) has no valid meaning."""


class UnknownBackendError(InvalidOptionError):
    """``backend=`` names no kernel backend (valid: ``auto``, ``c``, ``python``)."""


# spec/FORMAT.md 9.1: each error class of the spec -> the exception plada_codec
# raises for it. The one copy: the vector suite, the fuzzers' oracle and the
# differential tests read it from here.
SPEC_ERRORS: dict[str, type[PayloadError]] = {
    "FormatError": PayloadFormatError,
    "Truncated": TruncatedPayloadError,
    "TrailingData": TrailingDataError,
    "Checksum": ChecksumError,
    "UnsupportedVersion": UnsupportedVersionError,
    "UnsupportedFeature": UnsupportedFeatureError,
    "LimitExceeded": LimitExceededError,
    "ReferenceMismatch": ReferenceMismatchError,
}
