"""Chooses the kernel backend, once, for the whole process: the one place that does.

A backend is one :class:`~plada_codec._kernels.Kernels` object (the 1.0
kernels and the 1.1 context model). ``PLADA_BACKEND`` may be ``auto`` (default: the C core when it was built, else
numpy), ``c`` (the C core or an ImportError) or ``python`` (numpy only).
"""

from __future__ import annotations

import os

from ._errors import UnknownBackendError
from ._kernels import Kernels

__all__ = ["backend", "available_backends", "get_kernels"]

_VALID = ("auto", "c", "python")


def _load_c() -> Kernels:
    from . import _kernels_c

    return _kernels_c.KERNELS


def _load_python() -> Kernels:
    from . import _kernels_py

    return _kernels_py.KERNELS


def available_backends() -> tuple[str, ...]:
    """Names of the backends that load in this process, fastest first."""
    names = []
    try:
        _load_c()
        names.append("c")
    except ImportError:
        pass
    names.append("python")
    return tuple(names)


def get_kernels(name: str = "auto") -> Kernels:
    """The kernel object for backend *name* (``auto``, ``c`` or ``python``).

    Raises :class:`~plada_codec.UnknownBackendError` (a PayloadError and a
    ValueError) for any other name, ImportError when ``c`` is not built.
    """
    if name == "python":
        return _load_python()
    if name == "c":
        return _load_c()
    if name == "auto":
        return _DEFAULT
    raise UnknownBackendError(f"unknown plada backend {name!r}; valid values are {', '.join(_VALID)}")


def _choose() -> Kernels:
    policy = os.environ.get("PLADA_BACKEND", "auto").strip().lower() or "auto"
    if policy not in _VALID:
        raise ImportError(
            f"PLADA_BACKEND={policy!r} is not a valid backend; use one of {', '.join(_VALID)}"
        )
    if policy == "python":
        return _load_python()
    if policy == "c":
        try:
            return _load_c()
        except ImportError as exc:
            raise ImportError(
                "PLADA_BACKEND=c but the C core (plada_codec._plada_core) is not built; "
                "reinstall with a C compiler present, or set PLADA_BACKEND=auto"
            ) from exc
    try:
        return _load_c()
    except ImportError:
        return _load_python()


_DEFAULT = _choose()
backend: str = _DEFAULT.name
