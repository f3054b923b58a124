"""The process pool for the CPU-heavy PDF work (kept free of Slack and database imports, since
every worker process imports this module)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os

PDF_WORKER_NICENESS = 10


def lower_priority() -> None:
    """Run in each worker at start: yield the CPU to the bot's event loop, so acks stay fast
    while big backups compile."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(PDF_WORKER_NICENESS)


def new_process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``workers`` processes at a lower priority. They come from a fork server (never
    forked from the bot, whose event loop, sockets and threads must not leak into children)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=lower_priority,
    )
