"""The C twin of ``_cm_py``: the format 1.1 context-model codec over cffi.

Same signatures, bytes and exceptions as the pure-Python reference; C status
codes become exceptions through ``_cm_errors.raise_cm``.
"""

from __future__ import annotations

import numpy as np

from . import _cm_errors as ce
from ._cm_py import PRESETS
from ._plada_core import ffi, lib  # ImportError when the extension was not built

name = "c"

# Most streams are far below plada_cm_bound (136 bytes a pair); try this first.
_FIRST_TRY_BYTES_PER_PAIR = 16


def _params(preset):
    params = ffi.new("plada_cm_params *")
    params.slots = preset.slots
    params.mantissa_bits = preset.mantissa_bits
    params.average_shift = preset.average_shift
    params.rate_limit = preset.rate_limit
    return params


def encode(indices, labels, n_ref: int, n_classes: int, preset_id: int) -> bytes:
    preset = PRESETS[preset_id]
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    if labels.shape != indices.shape:
        ce.raise_cm(ce.ERR_ARG, 0, indices.size, labels.size)
    params = _params(preset)
    err = ffi.new("plada_error *")
    out_len = ffi.new("size_t *")
    bound = lib.plada_cm_bound(indices.size)
    for cap in (min(bound, 64 + _FIRST_TRY_BYTES_PER_PAIR * indices.size), bound):
        out = np.empty(cap + 1, dtype=np.uint8)
        out[0] = preset_id
        status = lib.plada_cm_encode(
            ffi.from_buffer("int64_t[]", indices), ffi.from_buffer("int32_t[]", labels),
            indices.size, n_ref, n_classes, params,
            ffi.from_buffer("uint8_t[]", out[1:], require_writable=True), cap, out_len, err,
        )
        if status != ce.ERR_LENGTH:
            break
    if status:
        ce.raise_cm(status, err.position, err.expected, err.actual)
    return out[: 1 + out_len[0]].tobytes()


def decode(body, count: int, n_ref: int, n_classes: int):
    src = np.frombuffer(body, dtype=np.uint8)
    if src.size == 0:
        ce.raise_cm(ce.ERR_LENGTH, 0, 1, 0)
    preset = PRESETS.get(int(src[0]))
    if preset is None:
        ce.raise_cm(ce.ERR_PRESET, 0, len(PRESETS), int(src[0]))
    indices = np.empty(count, dtype=np.int64)
    labels = np.empty(count, dtype=np.int32)
    err = ffi.new("plada_error *")
    status = lib.plada_cm_decode(
        ffi.from_buffer("uint8_t[]", src[1:]), src.size - 1, count, n_ref, n_classes,
        _params(preset), ffi.from_buffer("int64_t[]", indices, require_writable=True),
        ffi.from_buffer("int32_t[]", labels, require_writable=True), err,
    )
    if status:
        ce.raise_cm(status, err.position, err.expected, err.actual)
    return indices, labels
