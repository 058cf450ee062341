"""Default encode and decode time for every selection shape of issue 17, next to the previous default.

    python benchmarks/bench_encode.py              # the table of benchmarks/README.md (a few minutes)
    python benchmarks/bench_encode.py --quick      # fewer rounds
    python benchmarks/bench_encode.py --json       # one JSON object per row
    python benchmarks/bench_encode.py --decode     # decode time only, best of 25 rounds (--quick: 9)

Shapes: 1% of ImageNet-21K (N = 14,197,122, k = 141,971) clustered, uniform,
with a Safety-Net (half the budget as per-class quotas scattered over N),
periodic labels (one run, labels cycling through the classes), all C = 200;
10% of ImageNet-1K (N = 1,281,167, k = 128,117) clustered, C = 200; and the
ImageNet-21K case with its 21,841 class names: a Safety-Net selection over
C = 21,841 with 20% of the labels noisy, the names ImageNet-like
(``synthetic.class_names``, 658 KB as a section body), metadata as a server writes it.

"default" is ``encode(...)`` (effort 2); "previous" is ``encode(...,
effort=3, format_version="1.1")``, the encoder that was the default before
effort 2 (every frame at Zstandard level 19 except where the 15.9 bound rules
it out; format 1.1, so the class names take codec 0 as they did): the same
code and machine, in the same run, so the ratios compare like with like. For
the shape with class names a second table sets the default next to the
default of format 1.1 (``encode(..., format_version="1.1")``: class-names
codec 0 at level 19), which the 1.2 text codec (level 7) replaces. Times are CPU time
(``time.process_time``, one core: nothing here starts a thread), the best of
the rounds. "cold" clears the per-process cache of ancillary frames before each
round (a first payload); "warm" keeps it (the next payload of the same task).
Decode is of the default payload. ``--decode`` times only that, with more
rounds, for comparing two builds of the decoder: run it once per checkout
(``PYTHONPATH=<checkout> python benchmarks/bench_encode.py --decode``), in turn.
"""

from __future__ import annotations

import json
import sys
import time

import plada_codec
from plada_codec import _compression
from plada_codec.synthetic import (
    class_names,
    clustered_selection,
    periodic_selection,
    safety_net_selection,
    uniform_selection,
)

IN21K, IN1K = 14_197_122, 1_281_167
K21, K1 = 141_971, 128_117
C = 200
METADATA = {"mode": "low-energy", "keep": 0.01, "teacher": "resnet50", "seed": 0}


def shapes():
    """name -> (n_ref, n_classes, indices, labels, class names or None)."""
    return {
        "IN-21K 1% clustered": (IN21K, C, *clustered_selection(IN21K, K21, C, 5), None),
        "IN-21K 1% uniform": (IN21K, C, *uniform_selection(IN21K, K21, C, 5), None),
        "IN-21K 1% Safety-Net": (IN21K, C, *safety_net_selection(IN21K, K21, C, 5), None),
        "IN-21K 1% periodic labels": (IN21K, C, *periodic_selection(IN21K, K21, C, 5), None),
        "IN-1K 10% clustered": (IN1K, C, *clustered_selection(IN1K, K1, C, 5), None),
        "IN-21K 1% Safety-Net, C = 21,841 + names": (
            IN21K, 21_841, *safety_net_selection(IN21K, K21, 21_841, 5, label_noise=0.2), class_names(21_841)),
    }


def _clear_cache() -> None:
    with _compression._cache_lock:
        _compression._cache.clear()
        _compression._cache_bytes = 0


def cpu_best(fn, rounds: int, cold: bool = True):
    best, result = float("inf"), None
    for _ in range(rounds):
        if cold:
            _clear_cache()
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return result, best


def measure(name, n_ref, n_classes, indices, labels, names, rounds: int) -> dict:
    def enc(**kw):
        return lambda: plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=n_classes, class_names=names,
                                          metadata=METADATA, backend="c", **kw)

    new, t_new = cpu_best(enc(), rounds)
    _, t_warm = cpu_best(enc(), rounds, cold=False)
    old, t_old = cpu_best(enc(effort=3, format_version="1.1"), max(1, rounds // 3))
    _, t_dec = cpu_best(lambda: plada_codec.decode(new, backend="c"), rounds)
    info = plada_codec.inspect(new)
    pairs = sum(24 + s.stored_length + 4 for s in info.sections if s.critical) + 80
    row = {
        "shape": name, "k": int(indices.size), "n_ref": n_ref, "n_classes": n_classes,
        "codec": info.sections[0].codec_name, "version": "{}.{}".format(*info.version), "bytes": len(new),
        "pairs_bytes": pairs, "previous_bytes": len(old), "encode_ms": 1e3 * t_new, "encode_warm_ms": 1e3 * t_warm,
        "previous_encode_ms": 1e3 * t_old, "decode_ms": 1e3 * t_dec,
    }
    if names is not None:  # the default of format 1.1: class-names codec 0 at level 19
        v11, t_v11 = cpu_best(enc(format_version="1.1"), rounds)
        _, t_v11_warm = cpu_best(enc(format_version="1.1"), rounds, cold=False)
        _, t_v11_dec = cpu_best(lambda: plada_codec.decode(v11, backend="c"), rounds)
        sections = {s.type: s for s in info.sections}
        old_sections = {s.type: s for s in plada_codec.inspect(v11).sections}
        row.update({
            "names_codec": sections[0x8001].codec_name, "names_stored": sections[0x8001].stored_length,
            "v11_names_codec": old_sections[0x8001].codec_name, "v11_names_stored": old_sections[0x8001].stored_length,
            "v11_bytes": len(v11), "v11_encode_ms": 1e3 * t_v11, "v11_encode_warm_ms": 1e3 * t_v11_warm,
            "v11_decode_ms": 1e3 * t_v11_dec,
        })
    return row


def table(rows) -> str:
    out = ["| selection | k | codec | bytes (default) | bytes (previous) | size ratio | encode ms, default "
           "(cold / warm) | encode ms, previous | time ratio | decode ms |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        warm = f" / {r['encode_warm_ms']:,.1f}" if r["n_classes"] > C else ""
        out.append(f"| {r['shape']} | {r['k']:,} | {r['codec']} | {r['bytes']:,} | {r['previous_bytes']:,} | "
                   f"{r['bytes'] / r['previous_bytes']:.4f} | {r['encode_ms']:,.1f}{warm} | "
                   f"{r['previous_encode_ms']:,.1f} | {r['encode_ms'] / r['previous_encode_ms']:.3f} | "
                   f"{r['decode_ms']:.1f} |")
    named = [r for r in rows if "v11_bytes" in r]
    if named:
        out += ["", "| selection | class names: codec, stored bytes | payload bytes | size ratio | "
                "encode ms (cold / warm) | cold time ratio | decode ms |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in named:
            out.append(f"| {r['shape']}, default (format {r['version']}) | {r['names_codec']}, "
                       f"{r['names_stored']:,} | {r['bytes']:,} | {r['bytes'] / r['v11_bytes']:.4f} | "
                       f"{r['encode_ms']:,.1f} / {r['encode_warm_ms']:,.1f} | "
                       f"{r['encode_ms'] / r['v11_encode_ms']:.3f} | {r['decode_ms']:.1f} |")
            out.append(f"| {r['shape']}, previous default (format 1.1) | {r['v11_names_codec']}, "
                       f"{r['v11_names_stored']:,} | {r['v11_bytes']:,} | 1.0000 | "
                       f"{r['v11_encode_ms']:,.1f} / {r['v11_encode_warm_ms']:,.1f} | 1.000 | "
                       f"{r['v11_decode_ms']:.1f} |")
    return "\n".join(out)


def measure_decode(name, n_ref, n_classes, indices, labels, names, rounds: int) -> dict:
    payload = plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=n_classes, class_names=names,
                                 metadata=METADATA, backend="c")
    _, t_dec = cpu_best(lambda: plada_codec.decode(payload, backend="c"), rounds, cold=False)
    return {"shape": name, "k": int(indices.size), "codec": plada_codec.inspect(payload).sections[0].codec_name,
            "bytes": len(payload), "decode_ms": 1e3 * t_dec, "decoder": plada_codec.__file__}


def decode_table(rows) -> str:
    out = [f"decoder: {rows[0]['decoder']}" if rows else "",
           "| selection | k | codec | bytes | decode ms |", "|---|---:|---|---:|---:|"]
    out += [f"| {r['shape']} | {r['k']:,} | {r['codec']} | {r['bytes']:,} | {r['decode_ms']:.2f} |" for r in rows]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if "c" not in plada_codec.available_backends():
        print("bench_encode.py: the C core is not built", file=sys.stderr)
        return 2
    if "--decode" in argv:
        rounds = 9 if "--quick" in argv else 25
        rows = [measure_decode(name, *shape, rounds) for name, shape in shapes().items()]
        print("\n".join(json.dumps(r) for r in rows) if "--json" in argv else decode_table(rows))
        return 0
    rounds = 3 if "--quick" in argv else 7
    rows = []
    for name, (n_ref, n_classes, indices, labels, names) in shapes().items():
        row = measure(name, n_ref, n_classes, indices, labels, names, rounds)
        rows.append(row)
        if "--json" in argv:
            print(json.dumps(row), flush=True)
        else:
            print(f"  {name}: {row['encode_ms']:.1f} ms, previous {row['previous_encode_ms']:.1f} ms",
                  file=sys.stderr, flush=True)
    if "--json" not in argv:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
