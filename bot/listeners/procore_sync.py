"""``/compile-backups sync [project]``: a project admin (or a BACKUPS_OWNERS member) syncs a
project from Procore now. Without a project: every project the user manages. The sync runs as a
``procore_sync`` job (`bot.procore_sync_job`); the reply is ephemeral at once, the result is
posted in the channel when the job is done (by DM when the bot can't post there)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.blocks.common import Message
from bot.listeners.replies import answer_privately, report_open_failure
from bot.procore_sync_job import enqueue_requested_sync
from commands import audit
from commands.manage_access import manageable_projects

if TYPE_CHECKING:
    from bot.listeners.commands import CommandRequest

log = logging.getLogger(__name__)


async def request_sync(request: CommandRequest) -> None:
    """Ack at once; check the user may manage the project(s); queue the sync; say so privately."""
    await request.ack()
    services = request.services
    try:
        if services.procore is None:
            await answer_privately(
                request.client,
                request.payload,
                Message(
                    text="Procore is not connected: this bot reads bundle imports only "
                    "(whoever runs it sets the PROCORE_* settings to connect it)."
                ),
            )
            return
        requester = (await services.identities.resolve(request.user_id)).requester
        projects = await manageable_projects(requester, services.owners)
        wanted = request.argument.strip().casefold()
        if wanted:
            projects = [
                project
                for project in projects
                if wanted
                in (project.project_number.casefold(), str(project.id), project.name.casefold())
            ]
        if not projects:
            await audit.record(requester.key, "procore.sync", "refused")
            what = f"project {request.argument.strip()!r}" if wanted else "any project"
            await answer_privately(
                request.client,
                request.payload,
                Message(
                    text=f":no_entry: Only a project admin can sync {what} from Procore now; "
                    "you are not an admin there (or there is no such project)."
                ),
            )
            return
        trigger = str(request.payload.get("trigger_id") or f"{request.user_id}:{wanted}")
        enqueued = await enqueue_requested_sync(
            trigger, [project.id for project in projects], request.channel_id, request.user_id
        )
        if enqueued.created:
            services.wake_worker()
            await audit.record(requester.key, "procore.sync", "queued", projects=len(projects))
        labels = ", ".join(project.label for project in projects)
        await answer_privately(
            request.client,
            request.payload,
            Message(
                text=f":arrows_counterclockwise: Syncing {labels} from Procore; the result "
                "will be posted here."
            ),
        )
    except Exception as error:
        await report_open_failure(request.client, request.payload, error, "the Procore sync")
