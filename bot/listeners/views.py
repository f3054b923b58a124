"""The compile modal: switching project (views.update) and submitting (validate, enqueue, close)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backup_job import BackupJobPayload, enqueue_backup, submission_key
from bot.blocks.messages import destination_text
from bot.blocks.modal import (
    CALLBACK_ID,
    PROJECT_ACTION_ID,
    PROJECT_BLOCK_ID,
    ModalMetadata,
    compile_modal,
    read_selection,
    selected_project_id,
    selected_project_label,
    selection_errors,
    too_many_error,
    unavailable_error,
    whole_period_error,
)
from bot.delivery import posting_problem
from bot.listeners.submissions import ack_field_error, ack_temporary_problem
from bot.services import Services
from commands.access import (
    AccessDenied,
    compilable_projects,
    visible_invoice_ids,
    whole_periods,
)

log = logging.getLogger(__name__)


async def submit_compile_modal(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], services: Services
) -> None:
    """Validate the choice (errors shown on the fields), then queue one job and close the modal."""
    selection = read_selection(view)
    errors = selection_errors(selection, services.max_invoices)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    assert selection.project_id is not None
    metadata = ModalMetadata.parse(view.get("private_metadata") or "")
    user_id = str(body["user"]["id"])
    try:
        identity = await services.identities.resolve(user_id)
        visible = await visible_invoice_ids(
            identity.requester, selection.project_id, list(selection.invoice_ids)
        )
        wholes = await whole_periods(
            identity.requester, selection.project_id, list(selection.period_ids)
        )
    except AccessDenied as denied:
        await ack_field_error(ack, PROJECT_BLOCK_ID, str(denied))
        return
    except Exception as error:
        if await ack_temporary_problem(ack, error, selection.invoices_block_id, "submission"):
            return
        raise
    missing = sum(1 for invoice_id in selection.invoice_ids if invoice_id not in visible)
    if missing:
        message = unavailable_error(missing, len(selection.invoice_ids))
        await ack(response_action="errors", errors={selection.invoices_block_id: message})
        return
    invoice_ids = tuple(
        dict.fromkeys([*selection.invoice_ids, *(i for whole in wholes for i in whole.invoice_ids)])
    )
    problem = whole_period_error(len(selection.period_ids) - len(wholes), len(invoice_ids))
    if problem is None and len(invoice_ids) > services.max_invoices:
        problem = too_many_error(len(invoice_ids), services.max_invoices)
    if problem:
        await ack(response_action="errors", errors={selection.invoices_block_id: problem})
        return
    payload = BackupJobPayload(
        channel_id=metadata.channel_id,
        user_id=user_id,
        project_id=selection.project_id,
        project_label=selected_project_label(view) or f"project {selection.project_id}",
        invoice_ids=invoice_ids,
        requester=identity.requester,
        timezone=identity.timezone,
    )
    try:
        enqueued = await enqueue_backup(submission_key(view["id"], view["hash"]), payload)
    except Exception as error:
        if await ack_temporary_problem(ack, error, selection.invoices_block_id, "queueing"):
            return
        raise
    await ack()
    if enqueued.created:
        services.wake_worker()


async def switch_project(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, services: Services
) -> None:
    """The project select changed: rebuild the modal for that project (views.update)."""
    await ack()
    view = body["view"]
    action = next(iter(body.get("actions") or []), {})
    chosen = (action.get("selected_option") or {}).get("value")
    project_id = int(chosen) if chosen else selected_project_id(view)
    identity = await services.identities.resolve(str(body["user"]["id"]))
    projects = await compilable_projects(identity.requester)
    if not projects:
        return
    selected = next((project for project in projects if project.id == project_id), None)
    metadata = ModalMetadata.parse(view.get("private_metadata") or "")
    problem = await posting_problem(client, metadata.channel_id)
    modal = compile_modal(
        projects,
        selected,
        metadata,
        max_invoices=services.max_invoices,
        destination=destination_text(metadata.channel_id, problem),
    )
    try:
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)
    except SlackApiError as error:
        if error.response.get("error") != "hash_conflict":
            raise
        log.info("project switch superseded by a newer change of view %s", view["id"])


def register(app: AsyncApp, services: Services) -> None:
    """Listen to the modal's submission and its project select."""

    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await submit_compile_modal(ack, body, view, services)

    async def on_project_change(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await switch_project(ack, body, client, services)

    app.view(CALLBACK_ID)(on_submit)
    app.action(PROJECT_ACTION_ID)(on_project_change)
