"""The library version: the one place it is written (pyproject.toml reads it from here).

It is not the format version (plada_codec.FORMAT_VERSION, spec/FORMAT.md).
"""

__version__ = "0.2.0"
