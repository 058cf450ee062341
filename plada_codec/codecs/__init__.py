"""Section codecs behind one registry keyed by (section type, codec id).

>>> from plada_codec import codecs
>>> codecs.names("index"), codecs.names("labels")
(['delta', 'bitmap', 'context-model'], ['packed', 'bytes', 'joint'])
>>> codecs.get(codecs.SECTION_INDEX, 0)
<codec index/delta id 0, format 1.0>

Each codec is one module of this package (``index_delta.py``, ...) holding a
:class:`Codec` subclass decorated with :func:`register`; every public module
here is imported below, so a new codec is a new file.
"""

from __future__ import annotations

import importlib
import pkgutil

from .._constants import (
    SECTION_CLASS_NAMES,
    SECTION_INDEX,
    SECTION_LABELS,
    SECTION_METADATA,
    SECTION_NAMES,
    SECTION_TASK_NAME,
)
from ._registry import (
    Codec,
    DecodeContext,
    Limits,
    PayloadContent,
    Shape,
    all_codecs,
    by_name,
    find,
    for_section,
    get,
    names,
    register,
    section_type_of,
    unregister,
)

__all__ = [
    "Codec", "PayloadContent", "Shape", "Limits", "DecodeContext", "register", "unregister", "get", "find",
    "for_section",
    "names", "by_name", "all_codecs", "section_type_of",
    "SECTION_INDEX", "SECTION_LABELS", "SECTION_CLASS_NAMES", "SECTION_TASK_NAME",
    "SECTION_METADATA", "SECTION_NAMES",
]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")
