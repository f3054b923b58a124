"""``POST /procore/webhooks``: Procore's deliveries, checked, stored and queued in milliseconds.

Answers (never a 500, never a Procore call while the request waits):
- 401: the ``Authorization`` header is not PROCORE_WEBHOOK_SECRET (compared in constant time);
  nothing is read or stored.
- 413: the body is larger than `MAX_BODY_BYTES`.
- 400: not JSON, a missing or malformed field, an event or resource this app does not follow;
  one log line.
- 503: the database does not answer (Procore retries the delivery later); one log line.
- 200 ``{"ok": true, "duplicate": bool}``: stored (or a duplicate, ignored) and the re-read
  pass queued (`commands.procore_webhooks.receive_delivery`); the job worker is woken.

The job kind ``procore_webhook`` runs a project's re-read pass (`WebhookPassHandler`).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot import metrics
from bot.blocks.messages import Failure
from bot.errors import is_database_error
from bot.job_kinds import JobFailure, JobHandler, JobRun
from commands.apply_snapshot import SnapshotRefused
from commands.procore_webhooks import (
    DEFAULT_DEBOUNCE_SECONDS,
    DEFAULT_MAX_WAIT_SECONDS,
    MAX_BODY_BYTES,
    DeliveryRejected,
    parse_delivery,
    receive_delivery,
    run_pass,
)
from procore.client import ProcoreClient
from procore.errors import ProcoreError

log = logging.getLogger(__name__)

WEBHOOKS_PATH = "/procore/webhooks"


class WebhookEndpoint:
    """The aiohttp handler; ``wake`` is called after a pass was queued."""

    def __init__(self, secret: str, wake: Callable[[], None]) -> None:
        self._secret = secret.encode()
        self._wake = wake
        self._queued_passes: dict[str, int] = {}  # see `receive_delivery`

    async def handle(self, request: web.Request) -> web.Response:
        """Check, store and queue one delivery (see the module contract); timed and counted
        (`bot.metrics.WEBHOOK_SECONDS`, `bot.metrics.WEBHOOK_DELIVERIES`)."""
        started = time.perf_counter()
        resource, outcome = "unknown", "rejected"
        try:
            response, resource, outcome = await self._handle(request)
        finally:
            metrics.WEBHOOK_SECONDS.labels("answer").observe(time.perf_counter() - started)
            metrics.WEBHOOK_DELIVERIES.labels(resource, outcome).inc()
        return response

    async def _handle(self, request: web.Request) -> tuple[web.Response, str, str]:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning("Procore webhook refused: wrong or missing Authorization")
            return web.json_response({"error": "unauthorized"}, status=401), "unknown", "rejected"
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            log.warning("Procore webhook refused: body of %d bytes", request.content_length)
            return _too_large(), "unknown", "rejected"
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(16 * 1024):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                log.warning("Procore webhook refused: body over %d bytes", MAX_BODY_BYTES)
                return _too_large(), "unknown", "rejected"
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            delivery = parse_delivery(raw)
        except DeliveryRejected as error:
            log.warning("Procore webhook refused: %s", error)
            return web.json_response({"error": str(error)}, status=400), "unknown", "rejected"
        resource = delivery.resource_name  # one of `RESOURCES`: bounded
        stored_at = time.perf_counter()
        try:
            received = await receive_delivery(delivery, self._queued_passes)
        except Exception as error:
            if not is_database_error(error):
                log.error("Procore webhook not stored: %s", _one_line(error))
            else:
                log.warning("Procore webhook not stored (database): %s", _one_line(error))
            return web.json_response({"error": "try again later"}, status=503), resource, "failed"
        finally:
            metrics.WEBHOOK_SECONDS.labels("database").observe(time.perf_counter() - stored_at)
        if received.passes:
            self._wake()
        outcome = "duplicate" if received.duplicate else "accepted"
        return web.json_response({"ok": True, "duplicate": received.duplicate}), resource, outcome


def _too_large() -> web.Response:
    return web.json_response({"error": "body too large"}, status=413)


class WebhookPassHandler(JobHandler[None]):
    """The job kind ``procore_webhook``: run the project's re-read pass
    (`commands.procore_webhooks.run_pass`). A Procore failure or a refused snapshot fails the
    job with one log line; the re-reads stay due, so the next delivery's pass (or the periodic
    sync) catches up."""

    def __init__(
        self,
        client: ProcoreClient,
        *,
        debounce: float = DEFAULT_DEBOUNCE_SECONDS,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        self.client = client
        self.debounce = debounce
        self.max_wait = max_wait

    async def run(self, run: JobRun, work: None) -> str | None:
        project_id = int(run.job.payload["project_id"])
        try:
            report = await run_pass(
                self.client, project_id, debounce=self.debounce, max_wait=self.max_wait
            )
        except (ProcoreError, SnapshotRefused) as error:
            raise JobFailure(
                Failure.UNEXPECTED,
                f"project {project_id}: re-read failed, still due: {_one_line(error)}",
            ) from None
        return report.render()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__
