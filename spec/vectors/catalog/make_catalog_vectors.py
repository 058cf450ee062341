"""Writes the catalog vectors (spec/REFERENCE.md 8.4) from hand-written bytes.

Nothing here calls plada_codec: each valid vector's JSON holds its fingerprint
(hashlib SHA-256 of the bytes) and its items as written; each invalid vector
names the rule it breaks. ``--check`` reports differences without writing.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import zstandard

HERE = Path(__file__).parent
IMG1 = hashlib.sha256(b"IMG-1").hexdigest()
IMG2 = hashlib.sha256(b"IMG-2").hexdigest()

VALID = {
    "001-two-ids": (b"plada-catalog 1\nfields id\na\nb\n", "ids only"),
    "002-imagenet-ids": (b"plada-catalog 1\nfields id\nn01440764_10026\nn01440764_10027\nn01443537_10007\n",
                         "ImageNet ids, names only: the catalog of the same three images as a folder tree, "
                         "shuffled tar shards or parquet"),
    "003-group-and-digest": ((f"plada-catalog 1\nfields id group sha256\nn01_2\tn01\t{IMG2}\nn02_1\tn02\t{IMG1}\n")
                             .encode(), "groups decide the order; digests of IMG-2 and IMG-1"),
    "004-utf8-byte-order": ("plada-catalog 1\nfields id\nZ\na\ne\u0301\n\u00e9\n".encode(),
                            "ids compared as UTF-8 bytes: Z < a < e+U+0301 (65 CC 81) < U+00E9 (C3 A9)"),
    "005-empty-group": (b"plada-catalog 1\nfields id group\nb\t\na\tg\n", "an empty group sorts first"),
}

INVALID = {
    "001-out-of-order": (b"plada-catalog 1\nfields id\nb\na\n", "8.1 order"),
    "002-repeated-id": (b"plada-catalog 1\nfields id\na\na\n", "8.1 order (strictly ascending)"),
    "003-id-in-two-groups": (b"plada-catalog 1\nfields id group\na\tg\na\th\n", "8.1 unique ids"),
    "004-empty-id": (b"plada-catalog 1\nfields id\n\nb\n", "8.1 ID non-empty"),
    "005-tab-without-field": (b"plada-catalog 1\nfields id\na\tx\n", "8.1 field count"),
    "006-field-order": (b"plada-catalog 1\nfields sha256 id\n", "8.1 FIELDS"),
    "007-upper-case-digest": (b"plada-catalog 1\nfields id sha256\na\t" + IMG1.upper().encode() + b"\n",
                              "8.1 SHA256 lowercase"),
    "008-crlf": (b"plada-catalog 1\nfields id\na\r\n", "8.1 no CR"),
    "009-no-items": (b"plada-catalog 1\nfields id\n", "8.1 N >= 1"),
    "010-no-final-lf": (b"plada-catalog 1\nfields id\na", "8.1 every line ends in LF"),
    "011-not-utf8": (b"plada-catalog 1\nfields id\n\xff\n", "8.1 UTF-8"),
    "012-bom": (b"\xef\xbb\xbfplada-catalog 1\nfields id\na\n", "8.1 header, no BOM"),
    "013-control-character": (b"plada-catalog 1\nfields id\na\x7fb\n", "8.1 ID characters"),
    "014-zst-trailing-bytes": (zstandard.ZstdCompressor(level=3, write_content_size=True)
                               .compress(b"plada-catalog 1\nfields id\na\n") + b"x", "8.1 transport"),
    # A skippable frame (magic 0x184D2A50, 4 bytes of content) before a valid catalog frame.
    "015-zst-skippable-frame": ((0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"meta"
                                + zstandard.ZstdCompressor(level=3, write_content_size=True)
                                .compress(b"plada-catalog 1\nfields id\na\n"), "8.1 transport (one frame)"),
}


def _items(text: bytes) -> dict:
    lines = text.decode("utf-8").split("\n")
    fields = lines[1].split(" ")[1:]
    rows = [line.split("\t") for line in lines[2:-1]]
    return {name: [row[i] for row in rows] for i, name in enumerate(fields)}


def files() -> dict[Path, bytes]:
    out: dict[Path, bytes] = {}
    for name, (text, description) in VALID.items():
        out[HERE / f"{name}.plcat"] = text
        record = {"description": description, "n": text.count(b"\n") - 2,
                  "fingerprint": hashlib.sha256(text).hexdigest(), **_items(text)}
        out[HERE / f"{name}.json"] = (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode()
    for name, (data, rule) in INVALID.items():
        suffix = ".plcat.zst" if "-zst-" in name else ".plcat"
        out[HERE / "invalid" / f"{name}{suffix}"] = data
        out[HERE / "invalid" / f"{name}.json"] = (json.dumps({"error": "ReferenceSetError", "rule": rule})
                                                  + "\n").encode()
    return out


def main() -> int:
    check = "--check" in sys.argv
    differ = 0
    for path, data in files().items():
        if path.exists() and path.read_bytes() == data:
            continue
        differ += 1
        if check:
            print(f"differs: {path}")
        else:
            path.write_bytes(data)
    return 1 if check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
