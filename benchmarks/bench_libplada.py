"""libplada (csrc/libplada/) next to plada_codec.decode (C backend): decode time and peak memory.

    python benchmarks/bench_libplada.py [--repeat 5] [--build DIR]

1% of ImageNet-21K (N = 14,197,122, C = 21,841, k = 141,971) in three shapes
(plada_codec.synthetic: clustered, uniform, Safety-Net), each encoded as format 1.0 (delta or
bitmap, packed or bytes labels, Zstandard as the encoder chooses) and as format 1.1 (the encoder
chooses, the context model where it is smaller). Per payload, in one run:

- ``plada_codec.decode(data, backend="c")`` in this process (best of --repeat);
- libplada's ``plada_decode`` in this process through ctypes (best of --repeat; the same bytes
  in memory, the result freed), and the ratio plada_codec / libplada (above 1: libplada is faster);
- ``plada-c decode FILE`` as a process (best wall time, start-up and a fork included);
- peak memory beyond the input against the output size (12 bytes a pair): plada_codec's as
  tracemalloc counts it (numpy's buffers included, FORMAT.md 13's measure), plada-c's as its
  peak RSS minus the RSS of decoding an empty payload (its start-up and libzstd).

The library is built with its one command (make) into --build (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import plada_codec
from plada_codec import synthetic

ROOT = Path(__file__).resolve().parent.parent
N_REF, N_CLASSES = 14_197_122, 21_841
COUNT = N_REF // 100


def _build(build: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(ROOT / "csrc" / "libplada"), f"BUILD={build}"], check=True)


def _selections():
    yield "clustered", synthetic.clustered_selection(N_REF, COUNT, N_CLASSES, seed=1)
    yield "uniform", synthetic.uniform_selection(N_REF, COUNT, N_CLASSES, seed=1)
    yield "safety-net", synthetic.safety_net_selection(N_REF, COUNT, N_CLASSES, seed=1)


class _Lib:
    """plada_decode through ctypes: the bytes in memory, as a C client has them."""

    def __init__(self, path: Path) -> None:
        self.lib = ctypes.CDLL(str(path))
        self.lib.plada_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                          ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
        self.lib.plada_decode.restype = ctypes.c_int
        self.lib.plada_payload_free.argtypes = [ctypes.c_void_p]

    def decode(self, data: bytes) -> None:
        out = ctypes.c_void_p()
        message = ctypes.create_string_buffer(256)
        rc = self.lib.plada_decode(None, data, len(data), ctypes.byref(out), message, 256)
        if rc != 0:
            raise RuntimeError(f"libplada refused a valid payload: {message.value.decode()}")
        self.lib.plada_payload_free(out)


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# Linux keeps a process's peak RSS across exec, so a child forked from this (large) Python
# process would report this process's size: plada-c's peak is read by a 20-line C launcher.
_LAUNCHER = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    pid_t pid = fork();
    if (pid == 0) { freopen("/dev/null", "w", stdout); execv(argv[1], argv + 1); _exit(127); }
    int status; struct rusage usage;
    wait4(pid, &status, 0, &usage);
    printf("%ld %d\n", usage.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
"""


def _launcher(build: Path) -> Path:
    source, program = build / "peak_rss.c", build / "peak_rss"
    source.write_text(_LAUNCHER)
    subprocess.run(["cc", "-O1", str(source), "-o", str(program)], check=True)
    return program


def _process(launcher: Path, plada_c: Path, path: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one `plada-c decode FILE`."""
    start = time.perf_counter()
    done = subprocess.run([str(launcher), str(plada_c), "decode", str(path)], capture_output=True, text=True,
                          check=True)
    elapsed = time.perf_counter() - start
    maxrss_kib, status = (int(x) for x in done.stdout.split())
    if status != 0:
        raise RuntimeError(f"plada-c refused {path}")
    return elapsed, maxrss_kib * 1024


def _python_peak(data: bytes) -> int:
    tracemalloc.start()
    payload = plada_codec.decode(data, backend="c")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del payload
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build = args.build or Path(tmp) / "build"
        _build(build)
        lib = _Lib(build / "libplada.so.1")
        plada_c = build / "plada-c"
        launcher = _launcher(build)
        empty = Path(tmp) / "empty.bin"
        empty.write_bytes(plada_codec.encode(np.zeros(0, np.int64), np.zeros(0, np.int64), n_ref=N_REF,
                                             n_classes=N_CLASSES))
        baseline_rss = min(_process(launcher, plada_c, empty)[1] for _ in range(3))
        print(f"decode of 1% of ImageNet-21K (N {N_REF:,}, C {N_CLASSES:,}, k {COUNT:,}); "
              f"best of {args.repeat}; ratio = plada_codec / libplada (> 1: libplada faster)")
        header = (f"{'selection':<11} {'format':<6} {'codecs':<22} {'bytes':>8} {'plada_codec ms':>14} "
                  f"{'libplada ms':>11} {'ratio':>6} {'plada-c ms':>10} {'output MiB':>10} "
                  f"{'py peak/out':>11} {'c peak/out':>10}")
        print(header)
        print("-" * len(header))
        for shape, (indices, labels) in _selections():
            for version in ("1.0", "1.1"):
                data = plada_codec.encode(indices, labels, n_ref=N_REF, n_classes=N_CLASSES, format_version=version)
                info = plada_codec.inspect(data)
                codecs = "/".join(f"{s.codec_name}{'+zstd' if s.compression else ''}" for s in info.sections[:2])
                assert np.array_equal(plada_codec.decode(data, backend="c").indices, indices)
                path = Path(tmp) / f"{shape}-{version}.bin"
                path.write_bytes(data)
                python_s = _best(lambda data=data: plada_codec.decode(data, backend="c"), args.repeat)
                lib_s = _best(lambda data=data: lib.decode(data), args.repeat)
                process_s = min(_process(launcher, plada_c, path)[0] for _ in range(args.repeat))
                rss = max(_process(launcher, plada_c, path)[1] for _ in range(2))
                output = 12 * len(indices)
                print(f"{shape:<11} {version:<6} {codecs:<22} {len(data):>8,} {python_s * 1e3:>14.2f} "
                      f"{lib_s * 1e3:>11.2f} {python_s / lib_s:>6.2f} {process_s * 1e3:>10.2f} "
                      f"{output / 2**20:>10.2f} {_python_peak(data) / output:>11.2f} "
                      f"{max(0, rss - baseline_rss) / output:>10.2f}")


if __name__ == "__main__":
    main()
