"""The compile modal: switching project (views.update) and submitting (validate, enqueue, close)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.audience import private_audience
from bot.backup_job import BackupJobPayload, enqueue_backup, submission_key
from bot.blocks.messages import destination_text
from bot.blocks.modal import (
    CALLBACK_ID,
    DELIVER_BY_DM,
    DELIVER_HERE_ANYWAY,
    DELIVERY_BLOCK_ID,
    PROJECT_ACTION_ID,
    PROJECT_BLOCK_ID,
    ModalMetadata,
    ModalSelection,
    compile_modal,
    private_audience_warning,
    read_selection,
    selected_project_id,
    selected_project_label,
    selection_errors,
    too_many_error,
    unavailable_error,
    whole_period_error,
)
from bot.delivery import open_dm, posting_problem
from bot.listeners.forms import TAMPERED, sealed, switch_project, unsealed
from bot.listeners.guard import int64, settled, user_of
from bot.listeners.submissions import (
    ack_field_error,
    ack_temporary_problem,
    submission_listener,
)
from bot.services import Services
from commands.access import (
    AccessDenied,
    ProjectChoice,
    check_selection,
    compilable_projects,
)

log = logging.getLogger(__name__)


NO_DM = "I couldn't open a direct message with you just now. Submit again in a minute."


class _PrivateAudience(Exception):
    """The backup would show private contracts to people outside their lists; says who."""


async def _destination(
    client: AsyncWebClient,
    services: Services,
    selection: ModalSelection,
    invoice_ids: tuple[int, ...],
    metadata: ModalMetadata,
    bot_user_id: str | None,
) -> str:
    """Where the backup goes: the user's DM when they chose it; else the conversation where
    they typed the command, unless private contracts would be shown there to members outside
    their private lists and the user did not say to post anyway (`_PrivateAudience`). When
    Slack won't list the members, the bot can't post there either and the post falls back to
    the user's DM."""
    if selection.delivery == DELIVER_BY_DM:
        return await open_dm(client, metadata.user_id)
    if selection.delivery == DELIVER_HERE_ANYWAY:
        return metadata.channel_id
    assert selection.project_id is not None
    try:
        outsiders = await private_audience(
            client,
            services,
            selection.project_id,
            metadata.channel_id,
            invoice_ids=invoice_ids,
            bot_user_id=bot_user_id,
        )
    except SlackApiError as error:
        log.info("members of %s unreadable: %s", metadata.channel_id, error.response.get("error"))
        return metadata.channel_id
    if outsiders:
        raise _PrivateAudience(private_audience_warning(outsiders))
    return metadata.channel_id


def _metadata(view: dict[str, Any] | None) -> ModalMetadata | None:
    """The compile modal's (unsealed) metadata, or None when it is not the bot's."""
    if view is None:
        return None
    try:
        return ModalMetadata.parse(view.get("private_metadata") or "")
    except ValueError:
        return None


async def submit_compile_modal(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
    bot_user_id: str | None = None,
) -> None:
    """Check the form was opened for this user (sealed metadata), validate the choice (errors
    shown on the fields), then queue one job and close the modal."""
    user_id = user_of(body)
    opened = await unsealed(view, user_id, services.seal, CALLBACK_ID)
    metadata = _metadata(opened)
    if opened is None or metadata is None or metadata.user_id != user_id:
        await ack_field_error(ack, PROJECT_BLOCK_ID, TAMPERED)
        return
    selection = read_selection(opened)
    errors = selection_errors(selection, services.max_invoices)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    assert selection.project_id is not None
    try:
        identity = await services.identities.resolve(user_id)
        checked = await check_selection(
            identity.requester,
            selection.project_id,
            list(selection.invoice_ids),
            list(selection.period_ids),
        )
    except AccessDenied as denied:
        await ack_field_error(ack, PROJECT_BLOCK_ID, str(denied))
        return
    except Exception as error:
        if await ack_temporary_problem(ack, error, selection.invoices_block_id, "submission"):
            return
        raise
    visible, wholes = checked.visible_invoice_ids, checked.whole_periods
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
    try:
        destination = await _destination(
            client, services, selection, invoice_ids, metadata, bot_user_id
        )
    except _PrivateAudience as warning:
        await ack_field_error(ack, DELIVERY_BLOCK_ID, str(warning))
        return
    except SlackApiError as error:
        log.warning("cannot open the requester's DM: %s", error.response.get("error"))
        await ack_field_error(ack, DELIVERY_BLOCK_ID, NO_DM)
        return
    except Exception as error:
        if await ack_temporary_problem(ack, error, selection.invoices_block_id, "delivery"):
            return
        raise
    payload = BackupJobPayload(
        channel_id=destination,
        user_id=user_id,
        project_id=selection.project_id,
        project_label=selected_project_label(opened) or f"project {selection.project_id}",
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


async def compile_modal_view(
    client: AsyncWebClient,
    services: Services,
    projects: list[ProjectChoice],
    selected: ProjectChoice | None,
    metadata: ModalMetadata,
    *,
    is_dm: bool = False,
) -> View:
    """The compile modal for ``metadata.user_id``, sealed, saying where the PDF will go: the
    conversation of ``metadata``, checked now (`posting_problem`), or the user's DM with the bot
    (``is_dm``: nothing to check). The one path by which the modal is built (slash command, App
    Home button, project switch)."""
    problem = None if is_dm else await posting_problem(client, metadata.channel_id)
    modal = compile_modal(
        projects,
        selected,
        metadata,
        max_invoices=services.max_invoices,
        destination=destination_text(metadata.channel_id, problem, is_dm=is_dm),
    )
    return sealed(modal, metadata.user_id, services.seal)


async def _switched_modal(
    client: AsyncWebClient, services: Services, user_id: str, view: dict[str, Any], chosen: Any
) -> View | None:
    """The compile modal rebuilt for the project chosen in its select (None: leave it)."""
    metadata = _metadata(view)
    if metadata is None or metadata.user_id != user_id:
        return None
    project_id = int64(chosen, "project") if chosen else selected_project_id(view)
    identity = await services.identities.resolve(user_id)
    projects = await compilable_projects(identity.requester)
    if not projects:
        return None
    selected = next((project for project in projects if project.id == project_id), None)
    return await compile_modal_view(client, services, projects, selected, metadata)


def register(app: AsyncApp, services: Services) -> None:
    """Listen to the modal's submission and its project select."""

    async def on_project_change(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        async def rebuild(user_id: str, view: dict[str, Any], chosen: Any) -> View | None:
            return await _switched_modal(client, services, user_id, view, chosen)

        await switch_project(ack, body, client, services.seal, CALLBACK_ID, rebuild)

    app.view(CALLBACK_ID)(settled(submission_listener(submit_compile_modal, services)))
    app.action(PROJECT_ACTION_ID)(settled(on_project_change))
