"""`bot.pool.with_process_pool(..., start_now=True)`, as `invoice-backups compile` uses it: the
PDF worker starts while the command still reads the database, before any work is submitted."""

from __future__ import annotations

import concurrent.futures
import os

from bot.pool import with_process_pool
from tests.process_table import ProcessRow, session_processes, wait_until


def pool_workers() -> list[ProcessRow]:
    """The live children of this process's fork server (the pools' workers)."""
    rows = session_processes(os.getsid(0))
    servers = {
        row.pid
        for row in rows
        if row.parent_pid == os.getpid() and "multiprocessing.forkserver" in row.command_line
    }
    return [row for row in rows if row.parent_pid in servers]


async def test_a_pool_started_now_has_its_worker_before_anything_is_submitted() -> None:
    before = {row.pid for row in pool_workers()}

    async def work(_: concurrent.futures.Executor) -> set[int]:
        await wait_until(
            lambda: {row.pid for row in pool_workers()} - before, 120, "the pool's worker"
        )
        return {row.pid for row in pool_workers()} - before

    started = await with_process_pool(1, work, start_now=True)

    assert len(started) == 1
    await wait_until(
        lambda: not started & {row.pid for row in pool_workers()}, 60, "the worker's end"
    )
