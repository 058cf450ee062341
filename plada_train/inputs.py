"""Opening a run's reference set, once a machine under ``torchrun``.

(The data layer opens one reference; this adds the sharing between the
processes of a machine, which needs the run's distributed context.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .distributed import Context

__all__ = ["open_run_reference"]


def open_run_reference(spec: str, manifest, rehash: bool, catalog: str | None = None, id_rule: str = "stem",
                       present_only: bool = False, context: Context | None = None, progress: bool = False):
    """The reference data set. Under torchrun with several processes a machine,
    its local rank 0 lists the set and writes the listing to a temporary file
    that the others memory-map, so a machine holds one listing and scans its
    copy once; the file is removed once every process has opened it."""
    from .data import open_reference

    if catalog is not None:
        def resolved():
            return open_reference(spec, catalog=catalog, id_rule=id_rule, present_only=present_only)

        if context is None or context.local_world_size <= 1 or not context.distributed:
            return resolved()
        # Local rank 0 resolves the copy first and leaves the resolution beside the catalog; the
        # other ranks of the machine then map it instead of listing the copy again.
        refs = resolved() if context.local_rank == 0 else None
        context.barrier()
        return refs if refs is not None else resolved()
    kwargs: dict = {} if manifest is None and not rehash else {"manifest": manifest, "rehash": rehash}
    if progress:
        kwargs["progress"] = True
    if context is None or context.local_world_size <= 1 or not context.distributed:
        return open_reference(spec, **kwargs)
    import secrets
    import tempfile

    name = context.from_main(lambda: f"plada-listing-{os.getpid()}-{secrets.token_hex(8)}")
    shared = Path(tempfile.gettempdir()) / f"{name}-node{context.node}.npz"
    try:
        refs = open_reference(spec, shared_index=shared, **kwargs) if context.local_rank == 0 else None
        context.barrier()
        if refs is None:
            kwargs.pop("progress", None)
            refs = open_reference(spec, shared_index=shared, **kwargs)
        context.barrier()
    finally:
        if context.local_rank == 0:
            shared.unlink(missing_ok=True)
    return refs


# -- server ------------------------------------------------------------------------------------
