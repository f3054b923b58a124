"""Render the default invoice PDFs of a backup, in parallel when that is safe and worth it.

`render_invoice` (reportlab, pure Python) takes about 3 ms for an invoice with few lines and
5 to 8 ms for 25 to 50 lines: for 50 invoices that alone is more than half the time qpdf needs to
copy 250 MB of scans. `InvoiceRenderer` starts every render at once in forked worker processes,
so they run while the caller triages and merges attachments, and hands the PDFs back in any order
the caller asks for.

Forking is only done from a single-threaded process (a `ProcessPoolExecutor` worker is one;
forking a process that runs other threads can deadlock the child), with at least
`PARALLEL_MIN_INVOICES` invoices and more than one CPU; otherwise each invoice is rendered in the
calling process when asked for. The result is the same bytes either way. The render workers
ignore stop signals and die with the process that forked them (`pdf.processes`).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from pdf.documents import InvoiceSheet
from pdf.processes import RENDER_PROCESS_NAME, start_child_of
from pdf.render_invoice import render_invoice

PARALLEL_MIN_INVOICES = 6
MAX_RENDER_WORKERS = 4


class InvoiceRenderer:
    """Renders `sheets[i]` on request; use as a context manager so the workers are shut down."""

    def __init__(self, sheets: Sequence[InvoiceSheet | None]) -> None:
        """`None` entries are never rendered up front (their invoice has a signed PDF)."""
        self._sheets = list(sheets)
        self._executor: ProcessPoolExecutor | None = None
        self._futures: dict[int, Future[bytes]] = {}
        wanted = [index for index, sheet in enumerate(self._sheets) if sheet is not None]
        workers = _worker_count(len(wanted))
        if workers > 1:
            try:
                self._executor = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=start_child_of,
                    initargs=(os.getpid(), RENDER_PROCESS_NAME),
                )
                for index in wanted:
                    self._futures[index] = self._executor.submit(
                        render_invoice, self._sheets[index]
                    )
            except (OSError, BrokenProcessPool):  # cannot fork now: render in this process
                self.close()
                self._futures.clear()

    def render(self, index: int, sheet: InvoiceSheet) -> bytes:
        """The PDF of `sheet` (the invoice at `index`), from a worker if it was started there."""
        future = self._futures.pop(index, None)
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:
                pass  # a worker died (killed, out of memory): render here instead
        return render_invoice(sheet)

    def close(self) -> None:
        """Stop the workers; renders nobody asked for are cancelled."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> InvoiceRenderer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _worker_count(invoice_count: int) -> int:
    """How many render processes to fork: 0 or 1 means render in the calling process."""
    if invoice_count < PARALLEL_MIN_INVOICES or threading.active_count() > 1:
        return 0
    if multiprocessing.current_process().daemon:
        return 0  # daemonic processes (multiprocessing.Pool workers) may not have children
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cpus or 1, MAX_RENDER_WORKERS)
