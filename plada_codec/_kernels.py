"""The kernel object: one per backend, every hot loop of every codec behind one type.

A backend (``c`` or ``python``) is one object satisfying :class:`Kernels`:
the format 1.0 kernels (bit packing, index-delta, bitmap, packed labels) and
the format 1.1 context model (``cm_encode`` / ``cm_decode``, FORMAT.md 15).
``_backend.get_kernels(name)`` returns it and the codecs receive it; nothing
else chooses a backend. The two objects are ``_kernels_c.KERNELS`` (cffi
over csrc/) and ``_kernels_py.KERNELS`` (numpy, with the pure-Python context
model of ``_cm_py``, the readable reference). They return identical arrays
and bytes and raise identical exceptions (``_status.raise_status``); the
tests check this on every input Hypothesis finds.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Kernels", "METHODS"]


@runtime_checkable
class Kernels(Protocol):
    """What a backend provides. Bounds and error reports are those of the C
    contracts in csrc/plada_core.h."""

    name: str  # "c" or "python"

    # -- format 1.0 (FORMAT.md 6, 7) --------------------------------------------
    def pack_bits(self, values: np.ndarray, width: int) -> bytes: ...

    def unpack_bits(self, buf, count: int, width: int, out: np.ndarray | None = None) -> np.ndarray: ...

    def delta_encode(self, indices: np.ndarray) -> bytes: ...

    def delta_decode(self, raw, count: int, n_ref: int, *, first: int = 0, start: int = 0) -> np.ndarray: ...

    def bitmap_encode(self, indices: np.ndarray, n_ref: int) -> bytes: ...

    def bitmap_decode(self, raw, count: int, n_ref: int) -> np.ndarray: ...

    def labels_encode(self, labels: np.ndarray, width: int) -> bytes: ...

    def labels_decode(self, raw, count: int, width: int, n_classes: int, *, first: int = 0) -> np.ndarray: ...

    # -- format 1.1 context model (FORMAT.md 15) ----------------------------------
    def cm_encode(self, indices, labels, n_ref: int, n_classes: int, preset_id: int) -> bytes:
        """The index section body (preset byte + stream) of the pairs under preset *preset_id*."""
        ...

    def cm_decode(self, body, count: int, n_ref: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """(int64 indices, int32 labels) of a context-model index section body."""
        ...


METHODS = ("pack_bits", "unpack_bits", "delta_encode", "delta_decode", "bitmap_encode", "bitmap_decode",
           "labels_encode", "labels_decode", "cm_encode", "cm_decode")
