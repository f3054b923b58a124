"""Running the bot: the aiohttp web server, Socket Mode, the job worker, the digest scheduler
(`bot.scheduler`, which also runs the daily retention purge of old PDFs, and the sweep of what
killed processes left on this host's disk at start-up and every `SWEEP_MINUTES`), one event loop.

HTTP routes: ``POST /slack/events`` (slash commands, interactivity, options loads, events: the
signature and timestamp are verified on the raw bytes before anything is parsed, so forged,
unsigned or older than five minutes → 401; a signed body of the wrong shape → 400; see
`bot.listeners.guard`), ``GET /healthz``, ``GET /metrics`` (Prometheus, `bot.metrics`) and, with
PROCORE_WEBHOOK_SECRET set, ``POST /procore/webhooks`` (`bot.procore_webhooks`) in both Slack
modes. With SLACK_APP_TOKEN set, the same listeners are fed over Socket Mode.

Shutdown (SIGTERM/SIGINT): stop accepting requests and firing schedules, give running jobs a
grace period (a second signal ends it at once), put the ones still running back in the queue at
their last recorded step, end the PDF worker processes and close every HTTP session. The PDF
workers and their children ignore the signals (`bot.pool`), so a signal sent to the whole process
group or control group leaves this decision to the main process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from tortoise.exceptions import ConfigurationError

from bot import logs, metrics
from bot.app import build_app, build_web_client
from bot.identity import IdentityResolver
from bot.job_kinds import JobKinds
from bot.listeners.guard import (
    MalformedRequest,
    parse_body,
    request_kind,
    signature_problem,
    work_after_acks_done,
)
from bot.procore_sync_job import PROCORE_SYNC, ProcoreSyncHandler, enqueue_scheduled_sync
from bot.procore_webhooks import WEBHOOKS_PATH, WebhookEndpoint, WebhookPassHandler
from bot.scheduler import ScheduleRegistry
from bot.seal import MetadataSeal
from bot.services import Services
from bot.settings import Settings, SettingsError
from bot.slack_jobs import CompileFunction, SlackDeliveries, register_slack_kinds
from bot.worker import JobWorker
from commands.procore_freshness import ProcoreFreshness
from commands.retention import purge_expired_backups
from commands.sweep_leftovers import sweep_leftovers
from procore import ProcoreClient
from storage import jobs
from storage.blobs import BlobStore, StoreConfig, StoreError, open_blob_store
from storage.db import close_database, data_dir, open_database
from storage.schema import SchemaOutdated
from storage.webhooks import PROCORE_WEBHOOK

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
HEALTH_DB_TIMEOUT = 2.0
HEALTH_STORE_TIMEOUT = 5.0
HTTP_SHUTDOWN_TIMEOUT = 5.0
PURGE_JOB_ID = "purge-expired-backups"
SWEEP_JOB_ID = "sweep-leftovers"
SWEEP_MINUTES = 60
PROCORE_SYNC_JOB_ID = "procore-sync"


class StartupError(Exception):
    """The bot cannot start; ``str(exc)`` is one line saying why."""


class BotServer:
    """The running bot. `start` brings everything up; `stop` takes it down cleanly."""

    def __init__(
        self,
        settings: Settings,
        *,
        executor_factory: Callable[[], concurrent.futures.Executor] | None = None,
        compile_function: CompileFunction | None = None,
        worker_options: dict[str, Any] | None = None,
        scheduler_options: dict[str, Any] | None = None,
        webhook_options: dict[str, float] | None = None,
        blob_store: BlobStore | None = None,
        start_worker: bool = True,
    ) -> None:
        """``start_worker=False``: `start` leaves the job worker stopped (jobs wait in the queue)
        until the caller starts it with ``worker.start()``: tests that decide when jobs run. So
        does ``settings.run_jobs`` False (``BACKUPS_RUN_JOBS=false``): a process that only
        answers Slack, the jobs it queues run in the others."""
        self.settings = settings
        self._start_worker = start_worker and settings.run_jobs
        self._webhook_options = webhook_options or {}
        self.blob_store = blob_store or open_blob_store(settings.store or StoreConfig(data_dir()))
        self._executor_factory = executor_factory
        self._compile_function = compile_function
        self._worker_options = worker_options or {}
        self._scheduler_options = scheduler_options or {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._socket_mode: AsyncSocketModeHandler | None = None
        self.client: AsyncWebClient | None = None
        self.app: AsyncApp | None = None
        self.worker: JobWorker | None = None
        self.scheduler: ScheduleRegistry | None = None
        self.procore: ProcoreClient | None = None  # built once in `start` from the settings
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (after `start`)."""
        return f"http://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Start the HTTP server (and Socket Mode), then the job worker."""
        settings = self.settings
        # slack_sdk applies its own timeout only to sessions it makes: this one carries it.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.slack_timeout_seconds)
        )
        self.client = build_web_client(settings, self._session)
        if settings.procore is not None:
            self.procore = ProcoreClient(settings.procore.client_config())
        self.worker = JobWorker(
            self._job_kinds(self.client), store=self.blob_store, **self._options_of_worker()
        )
        self.scheduler = ScheduleRegistry(wake_worker=self.worker.wake, **self._scheduler_options)
        self.scheduler.add_daily(PURGE_JOB_ID, self._purge_expired_backups, hour=3, minute=15)
        self.scheduler.add_interval(SWEEP_JOB_ID, self._sweep_leftovers, minutes=SWEEP_MINUTES)
        if settings.procore is not None and settings.procore.sync_minutes > 0:
            self.scheduler.add_interval(
                PROCORE_SYNC_JOB_ID,
                self._enqueue_procore_sync,
                minutes=settings.procore.sync_minutes,
            )
        services = Services(
            identities=IdentityResolver(self.client),
            max_invoices=settings.max_invoices,
            wake_worker=self.worker.wake,
            seal=MetadataSeal.from_secrets(
                settings.signing_secret, settings.backups_secret, settings.bot_token
            ),
            schedules=self.scheduler,
            owners=settings.owners,
            procore=self.procore,
        )
        self.app = build_app(settings, self.client, services)
        self._runner = web.AppRunner(
            self._web_app(self.app), access_log=None, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as error:
            await self._close_quietly()
            raise StartupError(
                f"cannot listen on HOST={settings.host} PORT={settings.port}: {error.strerror}"
            ) from error
        self.port = int(self._runner.addresses[0][1])
        log.info("invoice-backups bot listening on %s", self.url)  # the port PORT=0 was given
        if settings.app_token is not None:
            self._socket_mode = AsyncSocketModeHandler(self.app, settings.app_token)
            await self._socket_mode.connect_async()
        if self._start_worker:
            await self.worker.start()
        await self.scheduler.start()
        log.info(
            "invoice-backups bot serving on %s (%s mode, %s, files in %s)",
            self.url,
            "Socket" if settings.socket_mode else "HTTP",
            f"{settings.workers} PDF workers"
            if settings.run_jobs
            else "jobs left to other processes (BACKUPS_RUN_JOBS=false)",
            self.blob_store.description,
        )

    def _job_kinds(self, client: AsyncWebClient) -> JobKinds:
        """The registry of job kinds: one `JobKinds.register` per kind."""
        kinds = JobKinds()
        deliveries = SlackDeliveries(
            client,
            blob_store=self.blob_store,
            concurrency=self.settings.workers,
            executor_factory=self._executor_factory,
            progress_interval=self._worker_options.get("progress_interval", 1.0),
            **({"compile_function": self._compile_function} if self._compile_function else {}),
            freshness=ProcoreFreshness(self.procore, self.blob_store)
            if self.procore is not None
            else None,
        )
        register_slack_kinds(kinds, deliveries)
        if self.procore is not None:
            # One sync at a time across processes: a sync that outlasts PROCORE_SYNC_MINUTES
            # never overlaps the next one (which waits, and coalesces: `enqueue_scheduled_sync`).
            kinds.register(
                PROCORE_SYNC, ProcoreSyncHandler(self.procore, client), one_at_a_time=True
            )
            kinds.register(
                PROCORE_WEBHOOK, WebhookPassHandler(self.procore, **self._webhook_options)
            )
        return kinds

    async def _enqueue_procore_sync(self, now: datetime) -> None:
        """The scheduled Procore sync: one job per period across processes; never raises."""
        assert self.settings.procore is not None
        try:
            enqueued = await enqueue_scheduled_sync(now, self.settings.procore.sync_minutes)
        except Exception as error:
            log.warning("could not queue the Procore sync (next period tries again): %s", error)
            return
        if enqueued.created and self.worker is not None:
            self.worker.wake()

    def _options_of_worker(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "lease_seconds": self.settings.job_lease_seconds,
            "poll_seconds": self.settings.job_poll_seconds,
            "max_in_flight": max(8, self.settings.workers * 4),
            **self._worker_options,
        }
        options.pop("progress_interval", None)  # the Slack deliveries' option
        return options

    async def _purge_expired_backups(self) -> None:
        """The daily retention purge (`commands.retention`); failures are logged, never raised."""
        try:
            report = await purge_expired_backups(
                datetime.now(UTC), self.settings.retention_days, self.blob_store
            )
        except Exception as error:
            log.warning("retention purge failed (next try tomorrow): %s", error)
            return
        log.info("retention purge: %s", report.render())

    async def _sweep_leftovers(self, _fired_at: datetime) -> None:
        """The sweep of killed compiles' workspaces and partial files (`commands.sweep_leftovers`),
        on the wall clock (file times are); one line logged, failures too, never raised."""
        try:
            report = await sweep_leftovers(datetime.now(UTC), self.blob_store)
        except Exception as error:
            metrics.LEFTOVER_SWEEP_FAILURES.inc()
            log.warning("leftover sweep failed (next try in %d minutes): %s", SWEEP_MINUTES, error)
            return
        metrics.LEFTOVERS_REMOVED.labels("workspace").inc(report.workspaces_removed)
        metrics.LEFTOVERS_REMOVED.labels("partial").inc(report.partial_files_removed)
        metrics.LEFTOVER_BYTES_REMOVED.inc(report.bytes_freed)
        if report.failures:
            metrics.LEFTOVER_SWEEP_FAILURES.inc()
        if report.found_anything:
            log.info("leftover sweep: %s", report.render())

    def _web_app(self, app: AsyncApp) -> web.Application:
        web_app = web.Application()

        if self.settings.signing_secret:
            web_app.router.add_post(EVENTS_PATH, self._slack_events)
        web_app.router.add_get(HEALTH_PATH, self._health)
        web_app.router.add_get(METRICS_PATH, self._metrics)
        secret = self.settings.procore_webhook_secret
        if secret:  # in both Slack modes: Procore reaches the bot over HTTP
            assert self.worker is not None
            web_app.router.add_post(WEBHOOKS_PATH, WebhookEndpoint(secret, self.worker.wake).handle)
            if self.procore is None:
                log.warning(
                    "PROCORE_WEBHOOK_SECRET is set but Procore is not configured: deliveries "
                    "are stored and wait until it is"
                )
        return web_app

    async def _slack_events(self, request: web.Request) -> web.Response:
        """Verify the signature on the raw bytes first (401), then the body's shape (400), then
        hand the request to Bolt; the ack latency is observed per request kind."""
        assert self.app is not None
        started = time.perf_counter()
        with logs.bind(request_id=logs.new_request_id()):
            raw_body = await request.read()
            problem = signature_problem(
                self.settings.signing_secret,
                raw_body,
                request.headers.get("X-Slack-Request-Timestamp"),
                request.headers.get("X-Slack-Signature"),
                time.time(),
            )
            if problem is not None:
                metrics.REJECTED_REQUESTS.labels(problem).inc()
                log.info("refused a Slack request: %s", problem)
                return web.Response(status=401, text="invalid request signature")
            try:
                body = parse_body(raw_body, request.content_type)
            except MalformedRequest as malformed:
                metrics.REJECTED_REQUESTS.labels("malformed").inc()
                log.warning("refused a malformed Slack request: %s", malformed)
                return web.Response(status=400, text=f"Malformed request: {malformed}")
            response = await to_aiohttp_response(
                await self.app.async_dispatch(await to_bolt_request(request))
            )
            kind = request_kind(body)
            metrics.ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)
            return response

    async def _metrics(self, request: web.Request) -> web.Response:
        """The Prometheus exposition; the job gauge is read from the database now (left as it
        was when the database does not answer)."""
        try:
            counts = await asyncio.wait_for(jobs.count_by_kind_and_status(), HEALTH_DB_TIMEOUT)
            metrics.set_job_counts(counts)
        except Exception as error:
            log.warning("metrics: job counts unavailable: %s", error)
        payload, content_type = metrics.exposition()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    async def _health(self, request: web.Request) -> web.Response:
        """200 while the database and the object store answer; 503 (degraded) when one does
        not."""
        body: dict[str, Any] = {
            "status": "ok",
            "mode": "socket" if self.settings.socket_mode else "http",
            "jobs_in_progress": self.worker.running_jobs if self.worker else 0,
        }
        try:
            body["jobs"] = await asyncio.wait_for(jobs.count_by_status(), HEALTH_DB_TIMEOUT)
            body["database"] = "ok"
        except Exception as error:
            log.warning("health check: database unavailable: %s", error)
            body["status"] = "degraded"
            body["database"] = "unavailable"
        try:
            await asyncio.wait_for(self.blob_store.ping(), HEALTH_STORE_TIMEOUT)
            body["store"] = "ok"
        except (StoreError, TimeoutError) as error:
            log.warning("health check: object store unavailable: %s", error)
            body["status"] = "degraded"
            body["store"] = "unavailable"
        healthy = body["database"] == "ok" and body["store"] == "ok"
        return web.json_response(body, status=200 if healthy else 503)

    async def stop(self) -> None:
        """Stop accepting work, let running jobs reach a resumable state, close everything."""
        if self._socket_mode is not None:
            await self._socket_mode.close_async()
            self._socket_mode = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        with contextlib.suppress(TimeoutError):  # what listeners do after their acks
            await asyncio.wait_for(work_after_acks_done(), self.settings.shutdown_grace_seconds)
        if self.scheduler is not None:  # housekeeping in progress: ends, or is cut at the grace
            await self.scheduler.stop(within=self.settings.shutdown_grace_seconds)
        if self.worker is not None:
            await self.worker.stop(self.settings.shutdown_grace_seconds)
        await self._close_quietly()
        log.info("invoice-backups bot stopped")

    async def _close_quietly(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.procore is not None:
            await self.procore.close()
            self.procore = None


async def serve(settings: Settings) -> None:
    """Run the bot until SIGTERM or SIGINT; a second one ends the shutdown's grace period."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = BotServer(settings)

    def on_stop_signal() -> None:
        if not stop.is_set():
            stop.set()
        elif server.worker is not None:
            log.info("second stop signal: running jobs go back to the queue now")
            server.worker.stop_now()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop_signal)
    await server.start()
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


async def _run(settings: Settings) -> None:
    try:
        await open_database()
    except SchemaOutdated as error:
        raise SettingsError(str(error)) from error
    except ConfigurationError as error:
        raise SettingsError(
            f"DATABASE_URL is not a usable database URL: {_one_line(error)}"
        ) from error
    except Exception as error:
        raise StartupError(
            f"cannot open the database (DATABASE_URL): {_one_line(error)}"
        ) from error
    try:
        await serve(settings)
    finally:
        await close_database()


GIL_SWITCH_SECONDS = 0.0005


def run_serve() -> int:
    """``invoice-backups serve``: settings from the environment, run until SIGTERM/SIGINT.

    Returns the exit code: 0 after a clean shutdown, 2 for a missing or malformed setting or a
    database schema that needs ``invoice-backups migrate``, 1 when start-up fails otherwise
    (database, port); each failure is one line on stderr.
    """
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"invoice-backups serve: {error}", file=sys.stderr)
        return 2
    logs.install(settings.log_level, settings.log_format)
    # Threads doing CPU work (sheet checks, pickling for the PDF pool) hand the GIL back every
    # GIL_SWITCH_SECONDS instead of Python's 5 ms: the event loop, which gives the GIL up at
    # every await on I/O, waits that long to take it back each time, and a request awaits often.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    if settings.log_level != "DEBUG":  # tortoise's INFO lines ("startup", "shutdown") are noise
        logging.getLogger("tortoise").setLevel(logging.WARNING)
    try:
        asyncio.run(_run(settings))
        gc.collect()  # drops obstore's S3 client while the interpreter runs (bot.cli.console_main)
    except SettingsError as error:
        print(f"invoice-backups serve: {error}", file=sys.stderr)
        return 2
    except StartupError as error:
        print(f"invoice-backups serve: {error}", file=sys.stderr)
        return 1
    return 0
