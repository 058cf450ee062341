"""The names older code imported from ``plada_codec._format``.

The format now lives in modules named for what they hold: ``_constants``
(spec section 2), ``_results`` (Payload, PayloadInfo), ``_container`` (header
and section framing), ``_compression``, ``_metadata`` (the JSON rules),
``codecs/`` (one file per section codec, behind a registry), ``_decode`` and
``_encode``. New code imports from ``plada_codec`` itself.
"""

from ._constants import (  # noqa: F401
    COMPRESSION_NAMES,
    DEFAULT_MAX_COUNT,
    DEFAULT_MAX_SECTION_BYTES,
    DEFAULT_ZSTD_LEVEL,
    FORMAT_MAJOR,
    FORMAT_MINOR,
    SECTION_NAMES,
    crc32c,
)
from ._decode import PayloadDecoder, decode, inspect, verify  # noqa: F401
from ._encode import PayloadEncoder, encode  # noqa: F401
from ._metadata import canonical_json  # noqa: F401
from ._results import Payload, PayloadInfo, SectionInfo  # noqa: F401
