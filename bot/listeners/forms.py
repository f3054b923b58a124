"""Sealing a modal's ``private_metadata`` when the bot opens it, and checking the seal on every
request that comes back from it (`bot.seal`). A view whose metadata does not verify for the
user sending it is refused: the submission shows `TAMPERED` and the attempt is audited.

`switch_project` is the one handler of a modal's project select (compile and access modals):
check the seal, rebuild the view for the chosen project, update it in place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners.guard import user_of
from bot.seal import MetadataSeal, TamperedMetadata
from commands import audit

log = logging.getLogger(__name__)

TAMPERED = (
    "I couldn't verify this form: it was changed, or opened for someone else. "
    "Close it and open it again with /compile-backups."
)


def sealed(view: View, user_id: str, seal: MetadataSeal) -> View:
    """``view`` with its metadata bound to ``user_id`` (the user it is opened for)."""
    view.private_metadata = seal.seal(view.private_metadata or "", user_id)
    return view


async def unsealed(
    view: dict[str, Any], user_id: str, seal: MetadataSeal, form: str
) -> dict[str, Any] | None:
    """``view`` with its plain metadata, or None (audited, logged) when the seal does not
    verify for ``user_id``; ``form`` names the modal (its callback id) for the audit."""
    try:
        plain = seal.open(view.get("private_metadata"), user_id)
    except TamperedMetadata as error:
        log.warning("refused %s form metadata from %s: %s", form, user_id, error)
        await audit.record(f"slack:{user_id}", "form.metadata", "refused", form=form)
        return None
    return {**view, "private_metadata": plain}


Rebuild = Callable[[str, dict[str, Any], Any], Awaitable[View | None]]


def chosen_value(body: dict[str, Any]) -> Any:
    """The value of the option chosen in the select that sent ``body`` (None when none)."""
    action = next(iter(body.get("actions") or []), {})
    return (action.get("selected_option") or {}).get("value")


async def switch_project(
    ack: AsyncAck,
    body: dict[str, Any],
    client: AsyncWebClient,
    seal: MetadataSeal,
    form: str,
    rebuild: Rebuild,
) -> None:
    """A modal's project select changed: ack, check the seal (`unsealed`, ``form`` is the
    modal's callback id), ``rebuild(user_id, view, chosen value)`` it and update it in place
    (views.update with its hash). A None rebuild leaves the view as it is; a newer change of the
    same view (``hash_conflict``) wins quietly."""
    await ack()
    user_id = user_of(body)
    view = await unsealed(body["view"], user_id, seal, form)
    if view is None:
        return
    rebuilt = await rebuild(user_id, view, chosen_value(body))
    if rebuilt is None:
        return
    try:
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=rebuilt)
    except SlackApiError as error:
        if error.response.get("error") != "hash_conflict":
            raise
        log.info("%s project switch superseded by a newer change of view %s", form, view["id"])
