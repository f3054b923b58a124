"""Sealing a modal's ``private_metadata`` when the bot opens it, and checking the seal on every
request that comes back from it (`bot.seal`). A view whose metadata does not verify for the
user sending it is refused: the submission shows `TAMPERED` and the attempt is audited."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.models.views import View

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
