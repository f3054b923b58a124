"""``/compile-backups``: help, subcommands, and opening the compile modal.

The first word picks a subcommand from `SUBCOMMANDS`; anything else is a project name or number
to preselect (no match → help). ``access`` opens the manage-access modal (`bot.listeners.access`);
``schedule`` and ``schedules`` set up and list weekly digests (`bot.listeners.schedules`);
``sync`` syncs a project from Procore now (`bot.listeners.procore_sync`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.messages import (
    COMMAND,
    closest_projects,
    help_message,
    project_suggestion_message,
)
from bot.blocks.modal import ModalMetadata
from bot.blocks.text import shorten
from bot.listeners.access import open_access_modal
from bot.listeners.guard import settled, trigger_of
from bot.listeners.procore_sync import request_sync
from bot.listeners.replies import answer_privately, report_open_failure
from bot.listeners.schedules import list_schedules, open_schedule_modal
from bot.listeners.views import compile_modal_view
from bot.services import Services
from bot.standing import compile_refusal, dictionary_of
from commands.access import compilable_projects, match_project

log = logging.getLogger(__name__)

ARGUMENT_SHOWN = 80  # characters of an unmatched argument quoted back
HELP_LOOKUP_SECONDS = 1.0  # the help is the ack itself: don't let the tool-name lookup delay it


@dataclass(frozen=True)
class CommandRequest:
    """One invocation of the slash command, as a subcommand handler sees it."""

    ack: AsyncAck
    client: AsyncWebClient
    payload: dict[str, Any]
    argument: str
    services: Services

    @property
    def user_id(self) -> str:
        return str(self.payload["user_id"])

    @property
    def channel_id(self) -> str:
        return str(self.payload["channel_id"])

    @property
    def trigger_id(self) -> str:
        """The trigger to open a modal with; `MalformedRequest` when the command has none."""
        return trigger_of(self.payload)


Subcommand = Callable[[CommandRequest], Awaitable[None]]


async def show_help(request: CommandRequest) -> None:
    """``/compile-backups help``: usage, as the (ephemeral) ack itself, naming the tool as the
    user's project does (the default name when that takes too long)."""
    tool = "Commitments"
    try:
        identity = await asyncio.wait_for(
            request.services.identities.resolve(request.user_id), HELP_LOOKUP_SECONDS
        )
        names = await asyncio.wait_for(dictionary_of(identity.requester), HELP_LOOKUP_SECONDS)
        tool = names["commitments"]
    except Exception as error:  # the help must come anyway
        log.info("help without the project's tool name: %r", error)
    await request.ack(**help_message(tool=tool).as_kwargs())


async def open_compile_modal(request: CommandRequest) -> None:
    """Ack at once, then open the modal (or explain why not) within the trigger's 3 seconds."""
    await request.ack()
    try:
        identity = await request.services.identities.resolve(request.user_id)
        requester = identity.requester
        projects = await compilable_projects(requester)
        if not projects:
            refusal = await compile_refusal(requester, request.services.owners)
            await answer_privately(request.client, request.payload, refusal)
            return
        selected = projects[0] if len(projects) == 1 else None
        if request.argument:
            selected = await match_project(requester, request.argument)
            if selected is None:
                typed = {
                    project.label: project.project_number or project.name for project in projects
                }
                closest = closest_projects(request.argument, list(typed))
                await answer_privately(
                    request.client,
                    request.payload,
                    project_suggestion_message(
                        shorten(request.argument, ARGUMENT_SHOWN),
                        [(label, typed[label]) for label in closest],
                    ),
                )
                return
        view = await compile_modal_view(
            request.client,
            request.services,
            projects,
            selected,
            ModalMetadata(request.channel_id, request.user_id),
        )
        await request.client.views_open(trigger_id=request.trigger_id, view=view)
    except Exception as error:
        await report_open_failure(request.client, request.payload, error, "the backup form")


SUBCOMMANDS: dict[str, Subcommand] = {
    "help": show_help,
    "access": open_access_modal,
    "schedule": open_schedule_modal,
    "schedules": list_schedules,
    "sync": request_sync,
}


def parse(text: str) -> tuple[Subcommand, str]:
    """The handler for the command text and its argument."""
    stripped = " ".join(text.split())
    word, _, rest = stripped.partition(" ")
    handler = SUBCOMMANDS.get(word.lower())
    if handler is not None:
        return handler, rest
    return open_compile_modal, stripped


def register(app: AsyncApp, services: Services) -> None:
    """Listen to the slash command."""

    async def on_compile_backups(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        handler, argument = parse(str(command.get("text") or ""))
        await handler(CommandRequest(ack, client, command, argument, services))

    app.command(COMMAND)(settled(on_compile_backups))
