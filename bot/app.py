"""Building the Bolt `AsyncApp` and its Web API client."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners import register_listeners
from bot.services import Services
from bot.settings import Settings

APP_NAME = "invoice-backups"


def build_web_client(settings: Settings, session: aiohttp.ClientSession | None) -> AsyncWebClient:
    """The Web API client: SLACK_API_URL (if set) as base URL, one shared HTTP session, and
    retries on rate limits (honouring Retry-After) and on Slack server errors."""
    options = {"base_url": settings.api_url} if settings.api_url else {}
    return AsyncWebClient(
        token=settings.bot_token,
        session=session,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
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
    register_listeners(app, services)
    return app
