"""Listing tar shards in worker processes (forked on Linux)."""

from __future__ import annotations

import os
import warnings

__all__ = ["_listing_workers", "_in_daemon", "_list_in_processes"]


def _listing_workers() -> int:
    """Processes for listing tar headers: up to 8, the usable CPUs shared by
    torchrun's local ranks (each rank builds its own index)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        local_ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:  # not set by torchrun: ignore it
        local_ranks = 1
    return max(1, min(8, cpus // local_ranks))


def _in_daemon() -> bool:
    """True in a DataLoader worker or any daemonic process: it may not start children."""
    import multiprocessing

    return multiprocessing.current_process().daemon


def _list_in_processes(func, shards: list[str], workers: int) -> list | None:
    """``[func(shard) for shard in shards]`` on *workers* processes, in shard
    order; None, with a RuntimeWarning, if the pool cannot run here (the caller
    then lists in-process).

    Linux forks, as torch's DataLoader does, so a worker costs milliseconds and
    re-imports nothing; elsewhere the platform's default (spawn) is used, which
    re-imports the main script. A shard's ReferenceSetError propagates."""
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    workers = min(workers, len(shards))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        listed = list(pool.map(func, shards))
    except (BrokenProcessPool, OSError) as exc:  # a worker could not start or was killed
        # If a later fork failed, the pool never started its manager thread, so the
        # workers already forked would wait for work forever and block interpreter exit.
        started = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=True, cancel_futures=True)
        for process in started:
            if process.is_alive():
                process.terminate()
                process.join(5)
        warnings.warn(f"listing tar shards in {workers} processes failed ({exc!r}); listing them here",
                      RuntimeWarning, stacklevel=4)  # -> _build_index -> TarImages() -> its caller
        return None
    except BaseException:  # a bad shard stops the listing: the shards not yet started are dropped
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return listed
