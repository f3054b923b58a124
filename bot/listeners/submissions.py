"""Answering a modal submission that cannot go through: an error shown under a field; and
`submission_listener`, the one Bolt listener that hands a submission to its handler.

A refusal (`AccessDenied` and the like) is shown as it is; a temporary problem (Slack could not
say who the user is or did not answer, the database did not answer) asks to submit again.
Anything else is a bug and is left to propagate.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery import transient
from bot.errors import is_database_error
from bot.identity import IdentityUnavailable
from bot.listeners.guard import Listener
from bot.services import Services

log = logging.getLogger(__name__)

TRY_AGAIN = (
    "I couldn't do that just now (a temporary problem on my side). Submit again in a minute."
)


def plain(text: str) -> str:
    """Input-block errors are plain text: drop mrkdwn emphasis."""
    return text.replace("*", "")


def is_temporary(error: BaseException) -> bool:
    """True for problems that go away by themselves: identity lookups, Slack's faults (a
    timeout, a reset, a 429 or 5xx after the client's retries) and database outages."""
    return isinstance(error, IdentityUnavailable) or transient(error) or is_database_error(error)


async def ack_field_error(ack: AsyncAck, block_id: str, text: str) -> None:
    """Keep the modal open with `text` under the input `block_id`."""
    await ack(response_action="errors", errors={block_id: plain(text)})


async def ack_temporary_problem(
    ack: AsyncAck, error: BaseException, block_id: str, context: str
) -> bool:
    """If `error` is temporary, say so under `block_id` and return True; else return False."""
    if not is_temporary(error):
        return False
    log.warning("%s: temporary problem: %s", context, error)
    await ack(response_action="errors", errors={block_id: TRY_AGAIN})
    return True


SubmitModal = Callable[
    [AsyncAck, dict[str, Any], dict[str, Any], AsyncWebClient, Services, str | None],
    Awaitable[None],
]


def submission_listener(submit: SubmitModal, services: Services) -> Listener:
    """The Bolt listener of a modal's submission: ``submit(ack, body, view, client, services,
    bot_user_id)`` with the app's ``services`` and the bot's user id from Bolt's context."""

    async def on_submit(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await submit(ack, body, view, client, services, context.bot_user_id)

    return on_submit
