"""The one list of image extensions (spec/REFERENCE.md section 3.4 rule 6)."""

from __future__ import annotations

IMAGE_EXTENSIONS = frozenset(
    ["jpg", "jpeg", "png", "ppm", "pgm", "pbm", "bmp", "gif", "tif", "tiff", "webp"]
)
# ASCII-only lower-casing (str.lower would also map e.g. U+212A KELVIN SIGN to "k").
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def is_image_name(name: str) -> bool:
    """Whether a file name's extension (after its last ``.``) is an image extension."""
    base = name.rpartition("/")[2]
    return "." in base and base.rpartition(".")[2].translate(_ASCII_LOWER) in IMAGE_EXTENSIONS
