"""Building the Bolt `AsyncApp` and its Web API client."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.listeners import register_listeners
from bot.listeners.guard import register_guard
from bot.metrics import SLACK_CALLS, SLACK_RETRIES
from bot.services import Services
from bot.settings import Settings

APP_NAME = "invoice-backups"


# Calls that must not be sent again when Slack may have done them (a timeout, a connection
# reset): a second post would be a second message, a second completion a second file. The
# callers look them up first instead (`bot.delivery.exactly_once`).
NOT_REPEATABLE = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "files.completeUploadExternal"}
)
UPLOAD = "(upload)"  # the label of the upload URL files.getUploadURLExternal hands out
MAX_RETRY_AFTER = 300.0  # seconds: a longer Retry-After holds the method's other calls no longer


def _method_of(request: HttpRequest) -> str:
    """``chat.postMessage`` from ``https://slack.com/api/chat.postMessage`` (no query string);
    `UPLOAD` for the upload URL (its path is a signed token, never a label)."""
    path = request.url.split("?", 1)[0].rstrip("/")
    if "/api/" not in path:
        return UPLOAD
    return path.rsplit("/", 1)[-1] or "unknown"


class RateLimitGate:
    """Slack's rate limits are per method: after a 429 for a method, every call of that method
    (not only the one refused) waits out its ``Retry-After``."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def block(self, method: str, seconds: float) -> None:
        """No call of ``method`` starts in the next ``seconds``."""
        until = time.monotonic() + seconds
        self._until[method] = max(until, self._until.get(method, 0.0))

    async def wait(self, method: str) -> None:
        """Return when ``method`` may be called."""
        for _ in range(100):  # each 429 while waiting pushes the end further; bounded
            left = self._until.get(method, 0.0) - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(left)


class _CountedRetries:
    """Counts each retry a handler decides on, in `SLACK_RETRIES` (method, `reason`); a retry
    waits for its method's `RateLimitGate` too (``gate``, shared by the client's handlers)."""

    reason = "other"
    gate: RateLimitGate | None = None

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        handler: Any = super()
        await handler.prepare_for_next_attempt_async(
            state=state, request=request, response=response, error=error
        )
        if self.gate is not None:
            await self.gate.wait(_method_of(request))

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        handler: Any = super()
        retrying = bool(
            await handler.can_retry_async(
                state=state, request=request, response=response, error=error
            )
        )
        if retrying:
            SLACK_RETRIES.labels(_method_of(request), self.reason).inc()
        return retrying


class CountedRateLimitRetries(_CountedRetries, AsyncRateLimitErrorRetryHandler):
    """Retries a 429 after its Retry-After, counted as ``ratelimited``; the method's other
    calls wait too (``gate``)."""

    reason = "ratelimited"

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is not None:
            values = {k.lower(): v for k, v in response.headers.items()}.get("retry-after")
            value = values[0] if isinstance(values, list) and values else values
            try:
                seconds = float(value) if value is not None else 1.0
            except ValueError:
                seconds = 1.0
            if self.gate is not None:
                self.gate.block(_method_of(request), min(max(seconds, 0.0), MAX_RETRY_AFTER))
        await super().prepare_for_next_attempt_async(
            state=state, request=request, response=response, error=error
        )


class CountedServerErrorRetries(_CountedRetries, AsyncServerErrorRetryHandler):
    """Retries a 500 or 503, counted as ``server_error``."""

    reason = "server_error"


class CountedConnectionRetries(_CountedRetries, AsyncConnectionErrorRetryHandler):
    """Retries a connection reset, a dropped connection or a timeout, counted as
    ``connection_error`` — except for `NOT_REPEATABLE` methods, which Slack may have done."""

    reason = "connection_error"

    def __init__(self, max_retry_count: int) -> None:
        super().__init__(
            max_retry_count=max_retry_count,
            error_types=[
                aiohttp.ServerConnectionError,  # includes ServerDisconnectedError, timeouts
                aiohttp.ClientOSError,  # [Errno 104] Connection reset by peer
                TimeoutError,  # the session's total timeout
            ],
        )

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _method_of(request) in NOT_REPEATABLE:
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


class InstrumentedWebClient(AsyncWebClient):
    """The Web API client, counting every call's final outcome in `SLACK_CALLS` by method:
    ``ok``, ``ratelimited`` (429 after the retries), ``server_error`` (5xx), ``client_error``
    (Slack's ``ok: false``), ``connection_error``."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        for handler in self.retry_handlers:
            if isinstance(handler, _CountedRetries) and handler.gate is not None:
                await handler.gate.wait(api_method)
                break
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            status = int(getattr(error.response, "status_code", 200) or 200)
            outcome = (
                "ratelimited"
                if status == 429
                else "server_error"
                if status >= 500
                else "client_error"
            )
            SLACK_CALLS.labels(api_method, outcome).inc()
            raise
        except (aiohttp.ClientError, TimeoutError, OSError):
            SLACK_CALLS.labels(api_method, "connection_error").inc()
            raise
        SLACK_CALLS.labels(api_method, "ok").inc()
        return response


def instrumented(client: AsyncWebClient) -> InstrumentedWebClient:
    """``client`` (e.g. the one Bolt builds for each request) as an `InstrumentedWebClient`:
    same token, base URL, session, headers, logger and retry handlers."""
    if isinstance(client, InstrumentedWebClient):
        return client
    return InstrumentedWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        session=client.session,
        trust_env_in_session=client.trust_env_in_session,
        headers=client.headers,
        team_id=client.default_params.get("team_id"),
        logger=client.logger,
        retry_handlers=client.retry_handlers,
    )


def slack_retry_handlers() -> list[AsyncRetryHandler]:
    """The retry policy of every Web API call (and the upload URL), each retry counted: 429
    (Retry-After honoured, for the whole method), 500/503, and connection resets or timeouts of
    the calls that may be repeated. At most 3 retries a call in all (the attempt count is
    shared by the handlers)."""
    handlers: list[_CountedRetries] = [
        CountedRateLimitRetries(max_retry_count=3),
        CountedServerErrorRetries(max_retry_count=3),
        CountedConnectionRetries(max_retry_count=3),
    ]
    gate = RateLimitGate()
    for handler in handlers:
        handler.gate = gate
    return [handler for handler in handlers if isinstance(handler, AsyncRetryHandler)]


def build_web_client(settings: Settings, session: aiohttp.ClientSession | None) -> AsyncWebClient:
    """The Web API client: SLACK_API_URL (if set) as base URL, one shared HTTP session,
    retries on rate limits (honouring Retry-After) and on Slack server errors, and every call
    and retry counted (`bot.metrics`)."""
    options = {"base_url": settings.api_url} if settings.api_url else {}
    return InstrumentedWebClient(
        token=settings.bot_token,
        session=session,
        retry_handlers=slack_retry_handlers(),
        logger=logging.getLogger("bot.slack_api"),
        **options,
    )


class _TokenComesWithTheClient(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the
    client's token wins; that is intended here (the same token), so drop that one warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_TOKEN_FILTER = _TokenComesWithTheClient()


def build_app(settings: Settings, client: AsyncWebClient, services: Services) -> AsyncApp:
    """The Bolt app with every listener registered. The bot token comes with ``client``; Bolt
    calls auth.test once, on the first request, not at construction."""
    logging.getLogger("bot.bolt").addFilter(_TOKEN_FILTER)  # once: addFilter dedupes
    app = AsyncApp(
        name=APP_NAME,
        client=client,
        signing_secret=settings.signing_secret,
        logger=logging.getLogger("bot.bolt"),
        # Bolt answers when the listener returns; `settled` returns at the ack and carries the
        # rest on in a task, so acks wait neither for the work nor for Bolt's 10 ms ack polling.
        process_before_response=True,
    )
    register_guard(app, wrap_client=instrumented)  # Bolt's per-request clients count too
    register_listeners(app, services)
    return app
