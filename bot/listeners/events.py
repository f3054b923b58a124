"""Events API: the App Home tab."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import COMPILE_ACTION_ID, HomeData, home_view
from bot.blocks.messages import temporary_problem_message
from bot.blocks.modal import ModalMetadata
from bot.delivery import open_dm
from bot.home import WorkspaceUrl, home_of
from bot.identity import IdentityUnavailable
from bot.listeners.guard import settled, trigger_of, user_of
from bot.listeners.replies import log_open_failure
from bot.listeners.views import compile_modal_view
from bot.services import Services
from commands.access import compilable_projects

log = logging.getLogger(__name__)

UNAVAILABLE = (
    "I couldn't read your projects just now (a temporary problem on my side). "
    "Open this tab again in a minute."
)


async def publish_home(
    event: dict[str, Any], client: AsyncWebClient, workspace: WorkspaceUrl, services: Services
) -> None:
    """Publish the user's Home tab (views.publish) when they open it."""
    user_id = event.get("user")
    if event.get("tab") != "home" or not isinstance(user_id, str) or not user_id:
        return
    try:
        requester = (await services.identities.resolve(user_id)).requester
        home = await home_of(requester, services.owners, await workspace.get(client))
    except IdentityUnavailable as error:
        log.warning("home tab of %s: %s", user_id, error)
        home = HomeData(email=None, problem=UNAVAILABLE)
    except Exception:
        log.exception("home tab of %s failed", user_id)
        home = HomeData(email=None, problem=UNAVAILABLE)
    await client.views_publish(user_id=user_id, view=home_view(home))


async def open_compile_modal_from_home(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, services: Services
) -> None:
    """The Home tab's *Compile a backup* button: the compile modal, its PDF sent by DM. A
    request without a user or a trigger is malformed (a 400 before the ack); a failure after it
    is logged (a traceback only for a bug) and told to the user in their DM when it can be."""
    user_id = user_of(body)
    trigger_id = trigger_of(body)
    await ack()
    dm_channel = None
    try:
        requester = (await services.identities.resolve(user_id)).requester
        projects = await compilable_projects(requester)
        if not projects:
            return  # the button is shown only to those who may compile; access changed since
        dm_channel = await open_dm(client, user_id)
        view = await compile_modal_view(
            client,
            services,
            projects,
            projects[0] if len(projects) == 1 else None,
            ModalMetadata(dm_channel, user_id),
            is_dm=True,
        )
        await client.views_open(trigger_id=trigger_id, view=view)
    except Exception as error:
        log_open_failure(error, "the backup form (App Home)")
        if dm_channel is not None:
            with contextlib.suppress(SlackApiError):
                problem = temporary_problem_message("open the backup form")
                await client.chat_postMessage(channel=dm_channel, **problem.as_kwargs())


def register(app: AsyncApp, services: Services) -> None:
    """Listen to app_home_opened and the Home tab's *Compile a backup* button."""
    workspace = WorkspaceUrl()

    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        await publish_home(event, client, workspace, services)

    app.event("app_home_opened")(settled(on_home_opened))

    async def on_compile_button(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await open_compile_modal_from_home(ack, body, client, services)

    app.action(COMPILE_ACTION_ID)(settled(on_compile_button))
