"""Answering a user privately: the command's response_url, else chat.postEphemeral."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.blocks.common import Message
from bot.blocks.messages import temporary_problem_message
from bot.listeners.guard import MalformedRequest
from bot.listeners.submissions import is_temporary

log = logging.getLogger(__name__)


async def answer_privately(
    client: AsyncWebClient, payload: dict[str, Any], message: Message
) -> None:
    """Show ``message`` only to the user behind ``payload`` (a slash command or interaction).

    The response_url works in any conversation, even where the bot is not a member; without one
    (or when it fails) chat.postEphemeral is used.
    """
    response_url = payload.get("response_url")
    if response_url:
        response = await AsyncWebhookClient(response_url).send(
            response_type="ephemeral", replace_original=False, **message.as_kwargs()
        )
        if response.status_code == 200:
            return
        log.warning(
            "response_url answered %s; falling back to chat.postEphemeral", response.status_code
        )
    user = payload.get("user_id") or (payload.get("user") or {}).get("id")
    channel = payload.get("channel_id") or (payload.get("channel") or {}).get("id")
    await client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())


def log_open_failure(error: BaseException, form: str) -> None:
    """Log why ``form`` could not be opened: one line for Slack's refusals, malformed requests
    and temporary problems, a traceback only for a bug."""
    if isinstance(error, SlackApiError | MalformedRequest) or is_temporary(error):
        log.warning("cannot open %s: %s", form, error)
    else:
        log.error("cannot open %s", form, exc_info=error)


async def report_open_failure(
    client: AsyncWebClient, payload: dict[str, Any], error: BaseException, form: str
) -> None:
    """A form could not be opened: log why (`log_open_failure`) and tell the user privately
    that it is a temporary problem (`form` says which, e.g. "the access form")."""
    log_open_failure(error, form)
    await answer_privately(client, payload, temporary_problem_message(f"open {form}"))
