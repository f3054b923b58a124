"""Job kinds: one registry maps each kind to the handler that runs its jobs.

Adding a kind is one registration where the adapters are built (`bot.server.BotServer`)::

    class SyncHandler(JobHandler[None]):
        async def run(self, run: JobRun, work: None) -> str | None:
            await sync_procore(self.client, run.job.payload["project_id"])
            return None

    kinds.register("procore_sync", SyncHandler(procore_client))

then `storage.jobs.enqueue(key, payload, kind="procore_sync")`. The worker (`bot.worker`) owns
everything generic: claiming, the lease and its renewal, pausing a job through a database outage,
the attempts cap, ending the job succeeded or failed. A handler owns what its kind does:

- `JobHandler.plan`: decide the work (may record the decision with `JobRun.record_state`, so a
  resumed run does the same); runs before the attempts cap is checked, so `failed` knows whom
  to tell;
- `JobHandler.run`: do it; call `JobRun.fence` right before each outside side effect and record
  each step right after (`JobRun.recorded`), so a resumed run skips what was done; return a note
  kept on the job (or None);
- `JobHandler.failed`: tell whoever should know that the job failed (best effort);
- `JobHandler.close`: release what the handler holds (at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from bot.blocks.messages import Failure
from bot.errors import is_database_error
from storage import jobs
from storage.jobs import Job, LeaseLost

log = logging.getLogger(__name__)

W = TypeVar("W")
T = TypeVar("T")

DATABASE_RETRY_SECONDS = (0.2, 2.0)  # first and longest wait between database retries
STILL_WAITING_LOG_SECONDS = 30.0  # how often a wait for the database says it still waits


class JobFailure(Exception):
    """The job cannot succeed for a reason the handler knows (``failure``: what to tell)."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


class JobRun:
    """One claimed job as its handler sees it: the row and what the worker lets it do with it."""

    def __init__(self, job: Job, owner: str, lease_seconds: float) -> None:
        self.job = job
        self.owner = owner
        self._lease_seconds = lease_seconds

    async def fence(self) -> None:
        """Before an outside side effect: make sure this worker still holds the job, for a whole
        lease from now (`LeaseLost` otherwise)."""
        await jobs.renew_lease(self.job, self.owner, self._lease_seconds)

    async def record_state(self, **values: Any) -> None:
        """Merge ``values`` into the job's ``state`` (fenced; `recorded` for outage retries)."""
        await jobs.record_state(self.job, self.owner, **values)

    async def recorded(self, record: Callable[[], Awaitable[None]]) -> None:
        """Record a step already done outside; through a database failure, retry until it is
        recorded (or `LeaseLost`), so that the step is never done twice."""
        try:
            await record()
        except LeaseLost:
            raise
        except Exception as error:
            if not is_database_error(error):
                raise
            await when_database_answers(record)


async def when_database_answers(
    query: Callable[[], Awaitable[T]],
    also: Callable[[BaseException], bool] | None = None,
) -> T:
    """``query()``, retried (waiting longer each time) until the database answers (and, with
    ``also``, until ``query`` stops raising the errors ``also`` accepts: an object store outage).
    While it waits it says so every `STILL_WAITING_LOG_SECONDS`, with the last error."""
    loop = asyncio.get_running_loop()
    delay, longest = DATABASE_RETRY_SECONDS
    started = said_at = loop.time()
    while True:
        await asyncio.sleep(delay)
        try:
            return await query()
        except Exception as error:
            if not (is_database_error(error) or (also is not None and also(error))):
                raise
            if loop.time() - said_at >= STILL_WAITING_LOG_SECONDS:
                said_at = loop.time()
                log.warning(
                    "still waiting for the database after %.0f s: %s", said_at - started, error
                )
        delay = min(delay * 2, longest)


class JobHandler(Generic[W]):
    """Runs the jobs of one kind (subclass it; `run` is required)."""

    async def plan(self, run: JobRun) -> W:
        """The work of this run (default: None, the payload says it all)."""
        return None  # type: ignore[return-value]

    async def run(self, run: JobRun, work: W) -> str | None:
        """Do ``work`` to its end; return a note kept on the succeeded job."""
        raise NotImplementedError

    async def failed(self, run: JobRun, work: W | None, failure: Failure, detail: str) -> None:
        """Tell whoever should know that the job failed (``work``: None when planning failed).
        Never raises to the worker; the default tells no one (the job row holds the error)."""

    async def close(self) -> None:
        """Release what the handler holds (process pools, sessions)."""


class JobKinds:
    """The registry: kind → handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler[Any]] = {}
        self._one_at_a_time: set[str] = set()

    def register(self, kind: str, handler: JobHandler[Any], *, one_at_a_time: bool = False) -> None:
        """Run the jobs of ``kind`` with ``handler`` (a kind is registered once).
        ``one_at_a_time``: never run two jobs of this kind at once, across processes (the next
        waits in the queue until the running one ends; `storage.jobs.claim_next`)."""
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is already registered")
        self._handlers[kind] = handler
        if one_at_a_time:
            self._one_at_a_time.add(kind)

    def handler(self, kind: str) -> JobHandler[Any]:
        """The handler of ``kind`` (KeyError for a kind nobody registered)."""
        return self._handlers[kind]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every registered kind (what the worker claims)."""
        return tuple(self._handlers)

    @property
    def one_at_a_time(self) -> tuple[str, ...]:
        """The kinds registered ``one_at_a_time``."""
        return tuple(kind for kind in self._handlers if kind in self._one_at_a_time)

    async def close(self) -> None:
        """Close every handler (each once, even when registered for several kinds)."""
        for handler in {id(h): h for h in self._handlers.values()}.values():
            await handler.close()
