"""Reference-set fingerprints (normative rules: spec/REFERENCE.md).

A reference set is an ordered list of items. Its *manifest* is UTF-8 text::

    plada-reference-manifest 1 LF
    then one line per item, in the set's order:  ID LF   or   ID TAB SHA256HEX LF

and the fingerprint is SHA-256 over the manifest's bytes. The same items in the
same order give the same fingerprint on any machine; any change of order,
membership or (when digests are included) content changes it.

Split by idea: :mod:`.manifest` (the text, how a path is taken as a set, the
folder walk), :mod:`.hashing` (the cancellable thread pool), :mod:`.cache` (the
local stat cache, not normative) and :mod:`.reference_set` (the value and its
constructors). What a layout *is* lives in :mod:`plada_codec.kinds`.
"""

from __future__ import annotations

from ..kinds.images import IMAGE_EXTENSIONS
from ..kinds.npz import array_item_digest
from ..kinds.tar import TarImage, tar_images, tar_shards
from .cache import CACHE_SUFFIX
from .hashing import _ordered_map
from .manifest import MANIFEST_HEADER, PathLike, _manifest_items
from .reference_set import ReferenceSet

__all__ = [
    "ReferenceSet", "TarImage", "tar_images", "tar_shards", "MANIFEST_HEADER", "array_item_digest",
    "IMAGE_EXTENSIONS", "CACHE_SUFFIX", "PathLike",
    # for tests of the internals
    "_ordered_map", "_manifest_items",
]
