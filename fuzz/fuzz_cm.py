#!/usr/bin/env python3
"""Differential fuzzer for the format 1.1 context-model codec's two twins.

    python fuzz/fuzz_cm.py [--keep-going] [libFuzzer options] [CORPUS_DIR ...]

Input layout (little-endian): count (u16, low 12 bits used, so the pure twin
stays fast), n_ref (u64, masked to 49 bits), n_classes (u32, masked to 25
bits), then the index section body (preset byte + range-coded stream).
``cm_decode`` of the python backend's kernel object (``plada_codec._cm_py``,
the executable reference) and of the C backend's (the C kernel) must raise the same PayloadError
with the same message, or return the same pairs; a success must satisfy the
format (indices strictly increasing in [0, N), labels in [0, C)) and
re-encode to exactly the body (the decoder accepts only canonical streams).
Any other exception, or a disagreement, is a finding. Seeds:
``python fuzz/make_kernel_seeds.py cm DIR``. Options as in fuzz_decode.py.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def check_body(data: bytes, cm_py, cm_c, payload_error) -> str:
    """Run both twins (kernel objects: ``cm_decode`` / ``cm_encode``) on one
    input; returns "ok" or the error class name."""
    from decode_oracle import Finding

    if len(data) < 14:
        return "short"
    count, n_ref, n_classes = struct.unpack_from("<HQI", data, 0)
    count &= 0x0FFF
    n_ref &= (1 << 49) - 1
    n_classes &= (1 << 25) - 1
    body = data[14:]
    if not (1 <= n_ref <= 1 << 48 and 1 <= n_classes <= 1 << 24 and count <= n_ref):
        return "out-of-format"  # the container rejects these before the codec runs
    outcomes = []
    for twin in (cm_py, cm_c):
        try:
            outcomes.append(("ok", twin.cm_decode(body, count, n_ref, n_classes)))
        except payload_error as exc:
            outcomes.append(("error", exc))
    (kind_py, py), (kind_c, c) = outcomes
    if kind_py != kind_c:
        raise Finding("twins-disagree", f"python: {kind_py} {py if kind_py == 'error' else ''}; "
                      f"c: {kind_c} {c if kind_c == 'error' else ''}")
    if kind_py == "error":
        if (type(py), str(py)) != (type(c), str(c)):
            raise Finding("twins-disagree", f"python raised {type(py).__name__}: {py}; "
                          f"c raised {type(c).__name__}: {c}")
        return type(py).__name__
    import numpy as np

    (idx_py, lab_py), (idx_c, lab_c) = py, c
    if not (np.array_equal(idx_py, idx_c) and np.array_equal(lab_py, lab_c)):
        raise Finding("twins-disagree", "the twins decode different pairs")
    if idx_c.size != count or lab_c.size != count:
        raise Finding("count-mismatch", f"{idx_c.size} pairs for count {count}")
    if count:
        if idx_c[0] < 0 or idx_c[-1] >= n_ref or (np.diff(idx_c) <= 0).any():
            raise Finding("index-order", "indices not strictly increasing within [0, N)")
        if lab_c.min() < 0 or lab_c.max() >= n_classes:
            raise Finding("label-range", f"labels outside [0, {n_classes})")
    again = cm_c.cm_encode(idx_c, lab_c, n_ref, n_classes, body[0])
    if again != bytes(body):
        raise Finding("non-canonical", f"accepted a {len(body)}-byte body whose canonical "
                      f"encoding is {len(again)} bytes")
    return "ok"


def main() -> None:
    import atheris

    sys.argv, keep_going = [a for a in sys.argv if a != "--keep-going"], "--keep-going" in sys.argv
    import numpy  # noqa: F401

    with atheris.instrument_imports(include=["plada_codec"]):
        import plada_codec
        from plada_codec._backend import get_kernels

    import fuzz_decode

    findings = fuzz_decode.FINDINGS
    findings.mkdir(exist_ok=True)
    seen: set[str] = set()

    def test_one_input(data: bytes) -> None:
        try:
            check_body(data, get_kernels("python"), get_kernels("c"), plada_codec.PayloadError)
        except Exception as exc:
            if not keep_going:
                raise
            kind = getattr(exc, "kind", type(exc).__name__)
            if kind not in seen:
                seen.add(kind)
                import hashlib
                import traceback

                name = f"cm-{kind}-{hashlib.sha1(data).hexdigest()[:12]}"
                (findings / f"{name}.bin").write_bytes(data)
                (findings / f"{name}.txt").write_text("".join(traceback.format_exception(exc)))
                print(f"\nfuzz_cm: new finding {kind} -> fuzz/findings/{name}.bin", file=sys.stderr)

    atheris.Setup(fuzz_decode._with_defaults(sys.argv), test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
