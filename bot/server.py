"""Running the bot: the aiohttp web server, Socket Mode, the job worker, the digest scheduler
(`bot.scheduler`, which also runs the daily retention purge of old PDFs), one event loop.

HTTP routes: ``POST /slack/events`` (slash commands, interactivity, options loads, events; Bolt
verifies the signature and the timestamp: forged or older than five minutes → 401) and
``GET /healthz``. With SLACK_APP_TOKEN set, the same listeners are fed over Socket Mode.

Shutdown (SIGTERM/SIGINT): stop accepting requests and firing schedules, give running jobs a
grace period (a second signal ends it at once), put the ones still running back in the queue at
their last recorded step, end the PDF worker processes and close every HTTP session. The PDF
workers and their children ignore the signals (`bot.pool`), so a signal sent to the whole process
group or control group leaves this decision to the main process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import signal
import sys
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

from bot.app import build_app, build_web_client
from bot.identity import IdentityResolver
from bot.scheduler import ScheduleRegistry
from bot.services import Services
from bot.settings import Settings, SettingsError
from bot.worker import CompileFunction, JobWorker
from commands.retention import purge_expired_backups
from storage import jobs
from storage.blobs import BlobStore, StoreConfig, StoreError, open_blob_store
from storage.db import close_database, data_dir, open_database
from storage.schema import SchemaOutdated

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
HEALTH_DB_TIMEOUT = 2.0
HEALTH_STORE_TIMEOUT = 5.0
HTTP_SHUTDOWN_TIMEOUT = 5.0
PURGE_JOB_ID = "purge-expired-backups"


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
        blob_store: BlobStore | None = None,
    ) -> None:
        self.settings = settings
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
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (after `start`)."""
        return f"http://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Start the HTTP server (and Socket Mode), then the job worker."""
        settings = self.settings
        self._session = aiohttp.ClientSession()
        self.client = build_web_client(settings, self._session)
        worker_options: dict[str, Any] = {
            "lease_seconds": settings.job_lease_seconds,
            "poll_seconds": settings.job_poll_seconds,
            **self._worker_options,
        }
        if self._compile_function is not None:
            worker_options["compile_function"] = self._compile_function
        self.worker = JobWorker(
            self.client,
            blob_store=self.blob_store,
            concurrency=settings.workers,
            executor_factory=self._executor_factory,
            **worker_options,
        )
        self.scheduler = ScheduleRegistry(wake_worker=self.worker.wake, **self._scheduler_options)
        self.scheduler.add_daily(PURGE_JOB_ID, self._purge_expired_backups, hour=3, minute=15)
        services = Services(
            identities=IdentityResolver(self.client),
            max_invoices=settings.max_invoices,
            wake_worker=self.worker.wake,
            schedules=self.scheduler,
            owners=settings.owners,
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
        if settings.app_token is not None:
            self._socket_mode = AsyncSocketModeHandler(self.app, settings.app_token)
            await self._socket_mode.connect_async()
        self.worker.start()
        await self.scheduler.start()
        log.info(
            "invoice-backups bot serving on %s (%s mode, %d PDF workers, files in %s)",
            self.url,
            "Socket" if settings.socket_mode else "HTTP",
            settings.workers,
            self.blob_store.description,
        )

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

    def _web_app(self, app: AsyncApp) -> web.Application:
        web_app = web.Application()

        async def slack_events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(
                await app.async_dispatch(await to_bolt_request(request))
            )

        if self.settings.signing_secret:
            web_app.router.add_post(EVENTS_PATH, slack_events)
        web_app.router.add_get(HEALTH_PATH, self._health)
        return web_app

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
        if self.scheduler is not None:
            await self.scheduler.stop()
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
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "DEBUG":  # tortoise's INFO lines ("startup", "shutdown") are noise
        logging.getLogger("tortoise").setLevel(logging.WARNING)
    try:
        asyncio.run(_run(settings))
        gc.collect()  # drops obstore's S3 client while the interpreter runs (see bot.cli.main)
    except SettingsError as error:
        print(f"invoice-backups serve: {error}", file=sys.stderr)
        return 2
    except StartupError as error:
        print(f"invoice-backups serve: {error}", file=sys.stderr)
        return 1
    return 0
