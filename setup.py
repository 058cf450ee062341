"""Build hook for the optional C core; all metadata lives in pyproject.toml.

Without a working C compiler the package still installs and runs on the numpy
backend (a warning says so), unless PLADA_REQUIRE_C=1, as CI sets.
"""

import os

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # compiler missing or failing
            if os.environ.get("PLADA_REQUIRE_C") == "1":
                raise
            self.warn(
                f"plada: the C core was not built ({exc}); plada_codec will use its numpy "
                "backend. Install a C compiler and reinstall for the fast path."
            )


setup(cffi_modules=["csrc/build_cffi.py:ffibuilder"], cmdclass={"build_ext": OptionalBuildExt})
