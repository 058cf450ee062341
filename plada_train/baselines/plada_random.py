"""PLADA with a random selection: the same teacher labels, keep rates and payload
format as the PLADA family, but the kept reference images are a seeded random
draw (``produce --mode random``, seed 0) instead of the best-scored ones.

At each keep rate it holds as many (index, label) pairs as the PLADA point, so
the two curves differ only in which images were chosen: what the score's
ranking buys. Its payloads are a little larger, since a random draw has no
clusters for the codec to exploit."""

from __future__ import annotations

from .run import Run

__all__ = ["NAME", "run"]

NAME = "plada-random"


def run(ctx: Run) -> None:
    result = ctx.produce(ctx.keeps, mode="random")
    for produced in result.payloads:
        ctx.store.record(NAME, f"random {produced.keep:g}", ctx.payload_student(produced.path), ctx.seeds,
                         len(produced.payload), k=len(produced.selection.indices), payload=produced.path.name)
