"""An import hook that makes ``import torchvision`` (and so ``import timm``)
work on a CPU-only torch, for user code as well as plada's.

``scripts/setup.sh`` installs it into the virtual environment as the one line
``import plada_train._timm_hook`` of a ``.pth`` file, which Python runs at
start-up. Nothing is imported then: the hook waits on ``sys.meta_path`` for
the first ``import torchvision``, imports it through
``plada_train._compat.import_torchvision`` (which repairs the import on a
CPU-only torch, see there) and hands that module to the import system. Where
torchvision imports by itself (a CUDA torch), the repair does nothing. To do
the same by hand: ``import plada_train; plada_train.import_timm()``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

__all__ = ["install"]


class _Loaded(importlib.abc.Loader):
    """Hands over a module that is already imported."""

    def __init__(self, module) -> None:
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        pass


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchvisionFinder)]
        from ._compat import import_torchvision

        module = import_torchvision()
        return importlib.machinery.ModuleSpec(name, _Loaded(module), origin=getattr(module, "__file__", None),
                                              is_package=True)


def install() -> None:
    """Put the hook in front of the import system (once; no effect if torchvision is already imported)."""
    if "torchvision" in sys.modules or any(isinstance(f, _TorchvisionFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TorchvisionFinder())


install()
