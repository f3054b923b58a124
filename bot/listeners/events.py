"""Events API: the App Home tab."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import COMPILE_ACTION_ID, HomeData, home_view
from bot.blocks.messages import destination_text
from bot.blocks.modal import ModalMetadata, compile_modal
from bot.delivery import open_dm
from bot.home import WorkspaceUrl, home_of
from bot.identity import IdentityUnavailable
from bot.listeners.forms import sealed
from bot.listeners.guard import settled, user_of
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
    """The Home tab's *Compile a backup* button: the compile modal, its PDF sent by DM."""
    await ack()
    user_id = user_of(body)
    try:
        requester = (await services.identities.resolve(user_id)).requester
        projects = await compilable_projects(requester)
        if not projects:
            return  # the button is shown only to those who may compile; access changed since
        dm_channel = await open_dm(client, user_id)
        view = sealed(
            compile_modal(
                projects,
                projects[0] if len(projects) == 1 else None,
                ModalMetadata(dm_channel, user_id),
                max_invoices=services.max_invoices,
                destination=destination_text(dm_channel, None, is_dm=True),
            ),
            user_id,
            services.seal,
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)
    except Exception:
        log.exception("compile modal from the Home tab of %s", user_id)


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
