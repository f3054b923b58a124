"""The process pool for the CPU-heavy PDF work (kept free of Slack and database imports, since
every worker process imports this module).

Workers ignore SIGTERM and SIGINT from birth (`pdf.processes`): a stop signal sent to the whole
process group or control group reaches the main process, which ends its workers itself with
`end_process_pool` when it is done with them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pdf.processes import STOP_SIGNALS, ignore_stop_signals

PDF_WORKER_NICENESS = 10
# Imported once by the fork server, so every worker it forks starts with them loaded (a worker
# that replaces a dead one, or the one worker of a CLI compile, does not import them again).
PRELOADED_MODULES = ("pdf.assemble",)
T = TypeVar("T")


def lower_priority() -> None:
    """Yield the CPU to the bot's event loop, so acks stay fast while big backups compile."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(PDF_WORKER_NICENESS)


def start_pdf_worker() -> None:
    """Run in each worker at start: ignore stop signals, lower the priority."""
    ignore_stop_signals()
    lower_priority()


def start_fork_server() -> None:
    """Start the pools' fork server now, ahead of `new_process_pool` (it boots a new interpreter
    and imports the PDF modules, which can then overlap other start-up work). Call it from the
    main thread; without fork servers (not POSIX) it does nothing."""
    if _start_method() == "forkserver":
        _ensure_fork_server()


def new_process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``workers`` processes at a lower priority. They come from a fork server (never
    forked from the bot, whose event loop, sockets and threads must not leak into children)."""
    start_fork_server()
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(_start_method()),
        initializer=start_pdf_worker,
    )


def _start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _ensure_fork_server() -> None:
    """Start the fork server with SIGTERM and SIGINT ignored, which it and every worker it forks
    inherit (a signal mask would not be: the server is a new interpreter). The dispositions of
    this process are put back; a signal that comes meanwhile waits, blocked, until then. Only
    the main thread may change them: from another thread the server starts as it is."""
    multiprocessing.forkserver.set_forkserver_preload(["__main__", *PRELOADED_MODULES])
    if threading.current_thread() is not threading.main_thread():
        multiprocessing.forkserver.ensure_running()
        return
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def end_process_pool(executor: concurrent.futures.Executor) -> None:
    """Shut ``executor`` down now and wait: a process pool's workers are killed (what they ran
    fails with `BrokenProcessPool`; their own children die with them); queued work is cancelled.
    A thread pool cannot be interrupted: its running work is waited for."""
    if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        processes = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
    executor.shutdown(wait=True, cancel_futures=True)


def _worker_started() -> None:
    """Nothing: submitted to start a pool's worker ahead of its first real work."""


async def with_process_pool(
    workers: int,
    work: Callable[[concurrent.futures.Executor], Awaitable[T]],
    *,
    start_now: bool = False,
) -> T:
    """``await work(pool)`` with a new pool of ``workers``, ended afterwards. Cancelled, it
    cancels ``work`` and ends the pool at the same time (so work that waits for its PDF work to
    stop gets to clean up), waits for ``work`` to unwind, then lets the cancellation go on.

    ``start_now``: a worker starts at once (from a worker thread: the start waits for the fork
    server), not at the first submit, so its start overlaps what ``work`` does before that."""
    pool = new_process_pool(workers)
    starting = (
        asyncio.ensure_future(asyncio.to_thread(pool.submit, _worker_started))
        if start_now
        else None
    )
    running = asyncio.ensure_future(work(pool))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        running.cancel()
        raise
    finally:
        if starting is not None:
            await asyncio.wait({starting})  # the worker it starts is then ended with the others
            starting.exception()  # retrieved: a failed start is the pool's to report, not its
        await asyncio.to_thread(end_process_pool, pool)
        if not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await running
