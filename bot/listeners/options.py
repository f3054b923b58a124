"""The invoice search behind the modal's multi_external_select (block_suggestion)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.blocks.modal import CALLBACK_ID, INVOICES_ACTION_ID, selected_project_id
from bot.blocks.options import OPTIONS_LIMIT, invoice_option_groups
from bot.listeners.forms import unsealed
from bot.listeners.guard import settled, user_of
from bot.services import Services
from commands.access import search_invoice_options

log = logging.getLogger(__name__)


async def load_invoice_options(ack: AsyncAck, body: dict[str, Any], services: Services) -> None:
    """Answer with the invoices of the project chosen in the modal (its ``view.state``) that
    match the typed text and that the user may see, grouped by billing period."""
    user_id = user_of(body)
    view = await unsealed(body.get("view") or {}, user_id, services.seal, CALLBACK_ID)
    project_id = selected_project_id(view) if view is not None else None
    if project_id is None:
        await ack(options=[])
        return
    try:
        identity = await services.identities.resolve(user_id)
        query = str(body.get("value") or "")
        menu = await search_invoice_options(
            identity.requester, project_id, query, limit=OPTIONS_LIMIT, count_periods=True
        )
    except Exception:
        log.exception("invoice search failed")
        await ack(options=[])
        return
    if not menu.options:
        await ack(options=[])
        return
    await ack(option_groups=invoice_option_groups(menu))


def register(app: AsyncApp, services: Services) -> None:
    """Listen to options loads of the invoice select."""

    async def on_invoice_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        await load_invoice_options(ack, body, services)

    app.options(INVOICES_ACTION_ID)(settled(on_invoice_options))
