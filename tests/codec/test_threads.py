"""One encoder or decoder shared by several threads gives every thread the bytes one thread gets."""

import threading

import numpy as np

import plada_codec
from plada_codec.synthetic import class_names

THREADS, ROUNDS = 4, 12


def _in_threads(work) -> list:
    results: list = []
    errors: list = []

    def run():
        try:
            for _ in range(ROUNDS):
                results.append(work())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(results) == THREADS * ROUNDS
    return results


def test_a_shared_encoder_writes_the_same_bytes_in_every_thread(backend):
    # zstd frames of tens of KB at level 19 (index and labels, class names): a compressor context
    # shared between threads corrupted them or the heap before each thread had its own
    indices = np.arange(0, 60_000, 3)
    labels = indices % 7
    names = class_names(7)
    options = {"compression": "zstd", "backend": backend}  # the 1.0 codecs only: no context model to wait for
    encoder = plada_codec.PayloadEncoder(**options)
    want = plada_codec.PayloadEncoder(**options).encode(
        indices, labels, n_ref=100_000, n_classes=7, class_names=names)
    got = _in_threads(lambda: encoder.encode(indices, labels, n_ref=100_000, n_classes=7, class_names=names))
    assert all(g == want for g in got)
    decoded = plada_codec.decode(want)
    assert np.array_equal(decoded.indices, indices) and np.array_equal(decoded.labels, labels)


def test_a_shared_decoder_decodes_the_same_in_every_thread(backend):
    indices = np.arange(0, 60_000, 3)
    payload = plada_codec.encode(indices, indices % 7, n_ref=100_000, n_classes=7, compression="zstd")
    decoder = plada_codec.PayloadDecoder(backend=backend)
    for got in _in_threads(lambda: decoder.decode(payload)):
        assert np.array_equal(got.indices, indices) and np.array_equal(got.labels, indices % 7)
