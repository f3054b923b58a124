"""Weekly digests in Slack: ``/compile-backups schedule`` (the modal and its submission),
``/compile-backups schedules`` (the list) and the list's buttons (run now, pause, resume, delete),
whether in that message or in the Home tab.

Thin: parse, authorise (the use cases in `commands.digests` decide), ack, hand off; after every
change the scheduler (`Services.schedules`) reloads that schedule.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.audience import private_audience
from bot.blocks.common import Message
from bot.blocks.digests import (
    no_admin_projects_message,
    run_started_text,
    schedule_created_message,
    schedules_message,
)
from bot.blocks.messages import COMMAND, access_denied_message, temporary_problem_message
from bot.blocks.schedule_modal import (
    CALLBACK_ID,
    CHANNEL_BLOCK_ID,
    PRIVATE_BLOCK_ID,
    PROJECT_BLOCK_ID,
    TIMEZONE_ACTION_ID,
    ScheduleModalMetadata,
    channel_problem_error,
    private_audience_error,
    read_schedule_form,
    schedule_modal,
    timezone_options,
)
from bot.blocks.schedules import (
    DELETE_ACTION,
    PAUSE_ACTION,
    RESUME_ACTION,
    RUN_NOW_ACTION,
)
from bot.delivery import digest_channel_problem, open_dm
from bot.digest_job import enqueue_digest, run_now_key
from bot.home import WorkspaceUrl
from bot.listeners.events import publish_home
from bot.listeners.forms import TAMPERED, sealed, unsealed
from bot.listeners.guard import settled, user_of
from bot.listeners.replies import answer_privately, report_open_failure
from bot.listeners.submissions import (
    ack_field_error,
    ack_temporary_problem,
    submission_listener,
)
from bot.services import Services
from commands import audit
from commands.access import AccessDenied, Requester
from commands.digests import (
    ScheduleView,
    authorize_run,
    create_schedule,
    delete_schedule,
    schedulable_projects,
    schedules_of,
    set_paused,
)
from commands.ids import parse_id
from commands.manage_access import InvalidChange

if TYPE_CHECKING:
    from bot.listeners.commands import CommandRequest

log = logging.getLogger(__name__)

STALE_BUTTON = "That button doesn't name a digest I know. Open /compile-backups schedules again."

# --- /compile-backups schedule -----------------------------------------------------------------


async def open_schedule_modal(request: CommandRequest) -> None:
    """Ack at once, then open the digest modal (projects where the user is admin, their time
    zone from users.info), or say why not."""
    await request.ack()
    try:
        identity = await request.services.identities.resolve(request.user_id)
        projects = await schedulable_projects(identity.requester)
        if not projects:
            await answer_privately(request.client, request.payload, no_admin_projects_message())
            return
        view = sealed(
            schedule_modal(
                projects,
                ScheduleModalMetadata(request.channel_id, request.user_id),
                timezone=identity.timezone,
            ),
            request.user_id,
            request.services.seal,
        )
        await request.client.views_open(trigger_id=request.trigger_id, view=view)
    except Exception as error:
        await report_open_failure(request.client, request.payload, error, "the digest form")


NOT_A_SCHEDULER = (
    "You can schedule digests only on projects where you have Admin on the Commitments tool. "
    "Choose one of the projects offered."
)


async def submit_schedule_modal(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
    bot_user_id: str | None = None,
) -> None:
    """Check, in this order, that the form was opened for this user, that it is complete, that
    the user may schedule on the project (before anything about the channel is looked up, so
    the form tells nobody else about channels), that the digest may go to the channel (a
    channel, the bot in it, the user a member) and, for private contracts, that the user knows
    who would see them; then create the schedule, close the modal, register it and confirm."""
    user_id = user_of(body)
    opened = await unsealed(view, user_id, services.seal, CALLBACK_ID)
    if opened is None:
        await ack_field_error(ack, PROJECT_BLOCK_ID, TAMPERED)
        return
    form = read_schedule_form(opened)
    if form.spec is None:
        await ack(response_action="errors", errors=form.errors)
        return
    spec = form.spec
    try:
        requester = (await services.identities.resolve(user_id)).requester
        allowed = {project.id for project in await schedulable_projects(requester)}
    except Exception as error:
        if await ack_temporary_problem(ack, error, PROJECT_BLOCK_ID, "digest submission"):
            return
        raise
    if spec.project_id not in allowed:
        await audit.record(requester.key, "digest.create", "refused", project_id=spec.project_id)
        await ack_field_error(ack, PROJECT_BLOCK_ID, NOT_A_SCHEDULER)
        return
    problem = await digest_channel_problem(client, spec.channel_id, user_id)
    if problem is not None:
        errors = {CHANNEL_BLOCK_ID: channel_problem_error(problem)}
        await ack(response_action="errors", errors=errors)
        return
    if spec.include_private and not form.private_audience_confirmed:
        try:
            outsiders = await private_audience(
                client, services, spec.project_id, spec.channel_id, bot_user_id=bot_user_id
            )
        except SlackApiError as error:
            log.warning("digest form: channel members unreadable: %s", error.response.get("error"))
            await ack_field_error(ack, CHANNEL_BLOCK_ID, channel_problem_error("channel_not_found"))
            return
        if outsiders:
            await ack_field_error(ack, PRIVATE_BLOCK_ID, private_audience_error(outsiders))
            return
    try:
        created = await create_schedule(requester, spec)
    except (AccessDenied, InvalidChange) as refusal:
        await ack_field_error(ack, PROJECT_BLOCK_ID, str(refusal))
        return
    except Exception as error:
        if await ack_temporary_problem(ack, error, PROJECT_BLOCK_ID, "digest submission"):
            return
        raise
    next_fire = await _register(services, created.id)
    await ack()
    confirmation = schedule_created_message(created, next_fire)
    try:
        await client.chat_postEphemeral(
            channel=spec.channel_id, user=user_id, **confirmation.as_kwargs()
        )
    except SlackApiError as error:
        log.info("digest confirmation by DM (ephemeral refused: %s)", error.response.get("error"))
        dm = await open_dm(client, user_id)
        await client.chat_postMessage(channel=dm, **confirmation.as_kwargs())


async def _register(services: Services, schedule_id: int) -> datetime | None:
    """Give a saved schedule its cron job before the modal closes (a database read and an
    APScheduler add: well within Slack's 3 s), so that a schedule the user sees saved is also
    live (a pause or delete clicked at once acts on a registered job); returns its next fire
    time. Should the read fail, the schedule stays saved and the next resync registers it."""
    if services.schedules is None:
        return None
    try:
        await services.schedules.refresh(schedule_id)
    except Exception as error:
        log.warning("schedule %s saved, registered at the next resync: %r", schedule_id, error)
        return None
    return services.schedules.next_fire_time(schedule_id)


async def load_timezone_options(ack: AsyncAck, body: dict[str, Any]) -> None:
    """The time zone search of the digest modal."""
    await ack(options=timezone_options(str(body.get("value") or "")))


# --- /compile-backups schedules and its buttons ------------------------------------------------


async def list_schedules(request: CommandRequest) -> None:
    """Ack at once, then show the user's schedules with their buttons (ephemeral)."""
    await request.ack()
    try:
        requester = (await request.services.identities.resolve(request.user_id)).requester
        message = schedules_message(await schedules_of(requester))
    except Exception as error:
        log.warning("%s schedules: %r", COMMAND, error)
        message = temporary_problem_message("list your digests")
    await answer_privately(request.client, request.payload, message)


async def _apply(
    action_id: str, requester: Requester, schedule_id: int, action_ts: str, services: Services
) -> str:
    """Do what the button says through `commands.digests`; returns what was done (mrkdwn)."""
    if action_id == RUN_NOW_ACTION:
        schedule = await authorize_run(requester, schedule_id)
        key = run_now_key(schedule_id, action_ts)
        enqueued = await enqueue_digest(schedule_id, datetime.now(UTC), key)
        if enqueued.created:
            services.wake_worker()
        return run_started_text(schedule)
    if action_id == DELETE_ACTION:
        await delete_schedule(requester, schedule_id)
        return f":wastebasket: Deleted digest #{schedule_id}."
    paused = action_id == PAUSE_ACTION
    changed: ScheduleView = await set_paused(requester, schedule_id, paused)
    verb = "Paused" if paused else "Resumed"
    return f"{verb} the digest of {changed.project_name} (#{schedule_id})."


async def on_schedule_button(
    ack: AsyncAck,
    body: dict[str, Any],
    client: AsyncWebClient,
    workspace: WorkspaceUrl,
    services: Services,
) -> None:
    """Run now / Pause / Resume / Delete: ack, apply, reload the schedule in the scheduler,
    then redraw where the click came from (the list message, or the Home tab)."""
    await ack()
    action = (body.get("actions") or [{}])[0]
    user_id = user_of(body)
    from_home = (body.get("container") or {}).get("type") == "view"
    schedule_id = parse_id(action.get("value"))
    if schedule_id is None:
        log.warning("schedule button %s without a schedule id", action.get("action_id"))
        await _tell(client, body, access_denied_message(STALE_BUTTON))
        return
    try:
        requester = (await services.identities.resolve(user_id)).requester
        notice = await _apply(
            str(action["action_id"]),
            requester,
            schedule_id,
            str(action.get("action_ts") or body.get("trigger_id") or ""),
            services,
        )
    except (AccessDenied, InvalidChange) as refusal:
        await _tell(client, body, access_denied_message(str(refusal)))
        return
    except Exception as error:
        log.warning("schedule button %s: %r", action.get("action_id"), error)
        await _tell(client, body, temporary_problem_message("change that digest"))
        return
    if services.schedules is not None:
        await services.schedules.refresh(schedule_id)
    if from_home:
        await publish_home({"tab": "home", "user": user_id}, client, workspace, services)
        return
    response_url = body.get("response_url")
    if response_url:
        message = schedules_message(await schedules_of(requester), notice)
        await AsyncWebhookClient(response_url).send(
            replace_original=True, response_type="ephemeral", **message.as_kwargs()
        )


async def _tell(client: AsyncWebClient, body: dict[str, Any], message: Message) -> None:
    """A private answer to a button click: next to the message, or by DM from the Home tab."""
    response_url = body.get("response_url")
    if response_url:
        await AsyncWebhookClient(response_url).send(
            replace_original=False, response_type="ephemeral", **message.as_kwargs()
        )
        return
    dm = await open_dm(client, user_of(body))
    await client.chat_postMessage(channel=dm, **message.as_kwargs())


def register(app: AsyncApp, services: Services) -> None:
    """Listen to the digest modal, its time zone search, and the schedule buttons."""

    workspace = WorkspaceUrl()

    async def on_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await on_schedule_button(ack, body, client, workspace, services)

    app.view(CALLBACK_ID)(settled(submission_listener(submit_schedule_modal, services)))
    app.options(TIMEZONE_ACTION_ID)(settled(load_timezone_options))
    for action_id in (RUN_NOW_ACTION, PAUSE_ACTION, RESUME_ACTION, DELETE_ACTION):
        app.action(action_id)(settled(on_button))
