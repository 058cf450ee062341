"""PLADA: the payload file ``produce`` writes (format 1.1; the format 1.0 size of
the same selection beside it), a student trained by ``consume`` from it. The
client already holds the reference set. One teacher, one scoring pass, every
keep rate, with and without the Safety-Net (share 0.5, alpha -0.2)."""

from __future__ import annotations

import plada_codec

from .run import Run

__all__ = ["NAME", "run"]

NAME = "plada"
SAFETY = {"safety_share": 0.5, "alpha": -0.2}


def run(ctx: Run) -> None:
    variants = ((ctx.mode, {}), (f"{ctx.mode}+safety", SAFETY))
    for variant, extra in variants[:1] if ctx.quick else variants:
        result = ctx.produce(ctx.keeps, **extra)
        for produced in result.payloads:
            payload = plada_codec.decode(produced.payload)
            v1 = plada_codec.encode(payload.indices, payload.labels, n_ref=payload.n_ref, n_classes=payload.n_classes,
                                    reference=plada_codec.ReferenceSet(payload.n_ref, payload.fingerprint),
                                    class_names=payload.class_names, metadata=payload.metadata,
                                    format_version="1.0")
            ctx.store.record(NAME, f"{variant} {produced.keep:g}", ctx.payload_student(produced.path), ctx.seeds,
                             len(produced.payload), k=len(payload), format_1_0_bytes=len(v1),
                             payload=produced.path.name)
