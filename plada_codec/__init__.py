"""plada_codec: the PLADA payload format (index, label) pairs over a shared
reference set; encode, decode, inspect, verify and reference fingerprints.

>>> import plada_codec
>>> data = plada_codec.encode([3, 17, 90], [1, 0, 1], n_ref=100, n_classes=2)
>>> payload = plada_codec.decode(data)
>>> payload.indices.tolist(), payload.labels.tolist()
([3, 17, 90], [1, 0, 1])
"""

from . import codecs, export, kinds
from ._atomic import NotARegularFileError, write_atomically
from ._backend import available_backends, backend
from ._catalog import Catalog, Resolution
from ._constants import (
    DEFAULT_EFFORT,
    DEFAULT_MAX_ANCILLARY_BYTES,
    DEFAULT_MAX_COUNT,
    DEFAULT_MAX_METADATA_ITEMS,
    DEFAULT_MAX_SECTION_BYTES,
    DEFAULT_ZSTD_LEVEL,
    FORMAT_MAJOR,
    FORMAT_MINOR,
)
from ._decode import PayloadDecoder, decode, inspect, verify
from ._encode import PayloadEncoder, encode
from ._errors import (
    ChecksumError,
    EncodeError,
    InvalidOptionError,
    LimitExceededError,
    PayloadError,
    PayloadFormatError,
    ReferenceMismatchError,
    ReferenceSetError,
    StaleManifestError,
    TrailingDataError,
    TruncatedPayloadError,
    UnknownBackendError,
    UnsupportedFeatureError,
    UnsupportedVersionError,
)
from ._npz import map_npz
from ._read import DEFAULT_MAX_TOTAL_LENGTH, read_payload
from ._reference import ReferenceSet, TarImage, tar_images, tar_shards
from ._results import Payload, PayloadInfo, SectionInfo
from ._version import __version__
from .kinds import PackedStrings

FORMAT_VERSION = f"{FORMAT_MAJOR}.{FORMAT_MINOR}"

__all__ = [
    "encode", "decode", "inspect", "verify", "read_payload",
    "PayloadEncoder", "PayloadDecoder", "Payload", "PayloadInfo", "SectionInfo",
    "ReferenceSet", "Catalog", "Resolution", "codecs", "export", "kinds",
    "TarImage", "tar_images", "tar_shards", "ReferenceSetError", "StaleManifestError", "UnknownBackendError",
    "InvalidOptionError",
    "PayloadError", "PayloadFormatError", "TruncatedPayloadError", "TrailingDataError",
    "ChecksumError", "UnsupportedVersionError", "UnsupportedFeatureError",
    "LimitExceededError", "ReferenceMismatchError", "EncodeError",
    "backend", "available_backends", "write_atomically", "NotARegularFileError", "PackedStrings", "map_npz",
    "DEFAULT_MAX_COUNT", "DEFAULT_MAX_SECTION_BYTES", "DEFAULT_MAX_ANCILLARY_BYTES",
    "DEFAULT_MAX_METADATA_ITEMS", "DEFAULT_MAX_TOTAL_LENGTH", "DEFAULT_ZSTD_LEVEL",
    "DEFAULT_EFFORT",
    "FORMAT_VERSION", "FORMAT_MAJOR", "FORMAT_MINOR", "__version__",
]
