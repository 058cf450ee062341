"""Exporting 1% of a large shuffled tar-shard copy (issue 24): time, peak RSS,
bytes read.

    python benchmarks/bench_export.py                         # 100,000 items
    python benchmarks/bench_export.py --sizes 100000 1000000 --format wds imagefolder

Makes a copy of N items shuffled over shards of 1,000 samples (each a ``.cls``
then an image member of 400 bytes with a PNG signature: an export copies bytes
and never decodes them), its catalog (from the ids: building it would read
the same headers the first resolve reads) and a payload selecting ``--keep``
of the items at random over 10 classes. Then, each in a fresh process:

- ``cold``: ``plada_codec.export.virtual_set`` resolves the copy against the
  catalog (reads every tar header once, caches the map beside the catalog),
  then ``write`` exports;
- ``warm``: the same again, the map now read from its cache.

For each: seconds to resolve and to write, the process's peak RSS, and the
bytes its ``read`` calls returned (``/proc/self/io`` ``rchar``) while writing,
next to the bytes of the selected members: the export reads only those. (The
listing reads tar headers through a memory map, which ``rchar`` does not
count: a cold resolve touches every header, a warm one none. The copy was just
written, so every figure is with the page cache warm.)
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARD_ITEMS = 1000
IMAGE_BYTES = 400

# One export in a fresh process; prints one JSON line.
PROBE = textwrap.dedent("""
    import json, os, resource, sys, time
    sys.path.insert(0, sys.argv[1])
    from plada_codec import export

    def rchar():
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))

    payload, copy, catalog, out, fmt = sys.argv[2:7]
    if fmt == "parquet":  # pyarrow's first table imports modules (11 MB of reads): not the export's reads
        import pyarrow
        pyarrow.table({"x": [b""]})
    start, read_before = time.perf_counter(), rchar()
    vset = export.virtual_set(payload, copy, catalog)
    resolved, read_resolving = time.perf_counter(), rchar()
    export.write(vset, out, fmt)
    done, read_writing = time.perf_counter(), rchar()
    selected = int(sum(vset.listing.size[vset.local]))
    print("PROBE " + json.dumps({
        "k": len(vset), "resolve_s": resolved - start, "write_s": done - resolved,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "read_resolving": read_resolving - read_before, "read_writing": read_writing - read_resolving,
        "selected_bytes": selected}))
""")


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_copy(root: Path, n: int, seed: int = 0) -> list[str]:
    """*n* items shuffled over shards of SHARD_ITEMS; returns the ids."""
    root.mkdir(parents=True)
    ids = [f"n{i % 1000:08d}_{i}" for i in range(n)]
    order = list(range(n))
    random.Random(seed).shuffle(order)
    filler = bytes(IMAGE_BYTES - 16)
    for shard, start in enumerate(range(0, n, SHARD_ITEMS)):
        with tarfile.open(root / f"train-{shard:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as archive:
            for i in order[start:start + SHARD_ITEMS]:
                _add(archive, f"{ids[i]}.cls", str(i % 1000).encode())
                _add(archive, f"{ids[i]}.png", b"\x89PNG\r\n\x1a\n" + i.to_bytes(8, "little") + filler)
    return ids


def run(n: int, keep: float, formats: list[str], work: Path) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import plada_codec

    started = time.perf_counter()
    copy = work / "copy"
    ids = make_copy(copy, n)
    catalog = plada_codec.Catalog.from_items(ids)
    catalog.write(work / "ref.plcat")
    rng = np.random.default_rng(0)
    positions = np.sort(rng.choice(n, max(1, int(n * keep)), replace=False))
    payload = plada_codec.encode(positions, rng.integers(0, 10, len(positions)), n_classes=10,
                                 reference=catalog.reference, class_names=[f"class {c}" for c in range(10)])
    (work / "p.plada").write_bytes(payload)
    print(f"# {n} items in {len(list(copy.glob('*.tar')))} shards made in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    rows = []
    for fmt in formats:
        for phase in ("cold", "warm"):
            if phase == "cold":
                for cache in work.glob("ref.plcat.*.resolved.npz"):
                    cache.unlink()
            out = work / f"out-{fmt}-{phase}"
            result = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), str(work / "p.plada"), str(copy),
                                     str(work / "ref.plcat"), str(out), fmt],
                                    capture_output=True, text=True, check=True)
            line = next(x for x in result.stdout.splitlines() if x.startswith("PROBE "))
            rows.append({"n": n, "format": fmt, "phase": phase, **json.loads(line[len("PROBE "):])})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| items | k | format | run | resolve s | write s | peak RSS MiB | read while writing MiB "
             "| selected members MiB |",
             "|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['k']:,} | {r['format']} | {r['phase']} | {r['resolve_s']:.2f} "
                     f"| {r['write_s']:.2f} | {r['peak_mib']:.0f} "
                     f"| {r['read_writing'] / 2**20:.2f} | {r['selected_bytes'] / 2**20:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--keep", type=float, default=0.01)
    parser.add_argument("--format", nargs="+", default=["wds"], choices=["csv", "jsonl", "imagefolder", "wds",
                                                                          "parquet"])
    parser.add_argument("--workdir", help="where to build the copies (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    rows = []
    for n in args.sizes:
        if args.workdir:
            work = Path(args.workdir) / f"n{n}"
            rows += run(n, args.keep, args.format, work)
        else:
            with tempfile.TemporaryDirectory(prefix="plada-bench-export-") as tmp:
                rows += run(n, args.keep, args.format, Path(tmp))
    print(table(rows))
    print(json.dumps(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
