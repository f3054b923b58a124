"""Who in a Slack conversation would see private contracts: its members (conversations.members),
resolved to requesters (users.info, cached), checked by `commands.audience` against the private
lists. Bots and the bot itself are not an audience."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery import channel_members
from bot.identity import IdentityUnavailable
from bot.services import Services
from commands.access import Requester
from commands.audience import outside_private_lists, private_commitment_ids

log = logging.getLogger(__name__)


async def private_audience(
    client: AsyncWebClient,
    services: Services,
    project_id: int,
    channel_id: str,
    *,
    invoice_ids: Iterable[int] | None = None,
    bot_user_id: str | None = None,
) -> list[str]:
    """Display names of the members of ``channel_id`` who are not on the private list of every
    private contract concerned (the project's, or those of ``invoice_ids``); empty when none
    is private. A member Slack can't describe counts as outside (named by id). Raises
    `SlackApiError` when the member list can't be read."""
    private = await private_commitment_ids(project_id, invoice_ids)
    if not private:
        return []
    audience: list[Requester] = []
    unknown: list[str] = []
    for member in await channel_members(client, channel_id):
        if member == bot_user_id:
            continue
        try:
            identity = await services.identities.resolve(member)
        except (IdentityUnavailable, SlackApiError) as error:
            log.info("channel member %s unknown to users.info: %s", member, error)
            unknown.append(member)
            continue
        if not identity.is_bot:
            audience.append(identity.requester)
    outsiders = await outside_private_lists(project_id, private, audience)
    return [requester.display_name for requester in outsiders] + unknown
