"""Events API: the App Home tab."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import HomeData, home_view
from bot.home import WorkspaceUrl, home_of
from bot.identity import IdentityUnavailable
from bot.listeners.guard import settled
from bot.services import Services

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


def register(app: AsyncApp, services: Services) -> None:
    """Listen to app_home_opened."""
    workspace = WorkspaceUrl()

    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        await publish_home(event, client, workspace, services)

    app.event("app_home_opened")(settled(on_home_opened))
