"""Building the Bolt `AsyncApp` and its Web API client."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
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


def _method_of(request: HttpRequest) -> str:
    """``chat.postMessage`` from ``https://slack.com/api/chat.postMessage`` (no query string)."""
    return request.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "unknown"


class _CountedRetries:
    """Counts each retry a handler decides on, in `SLACK_RETRIES` (method, `reason`)."""

    reason = "other"

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
    """Retries a 429 after its Retry-After, counted as ``ratelimited``."""

    reason = "ratelimited"


class CountedServerErrorRetries(_CountedRetries, AsyncServerErrorRetryHandler):
    """Retries a 500 or 503, counted as ``server_error``."""

    reason = "server_error"


class InstrumentedWebClient(AsyncWebClient):
    """The Web API client, counting every call's final outcome in `SLACK_CALLS` by method:
    ``ok``, ``ratelimited`` (429 after the retries), ``server_error`` (5xx), ``client_error``
    (Slack's ``ok: false``), ``connection_error``."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
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
    """The retry policy of every Web API call: 429 (Retry-After honoured) and 5xx, counted."""
    return [
        CountedRateLimitRetries(max_retry_count=3),
        CountedServerErrorRetries(max_retry_count=2),
    ]


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
    )
    register_guard(app, wrap_client=instrumented)  # Bolt's per-request clients count too
    register_listeners(app, services)
    return app
