"""Events API: the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import home_view
from bot.services import Services


async def publish_home(event: dict[str, Any], client: AsyncWebClient) -> None:
    """Show the Home tab when a user opens it."""
    if event.get("tab") == "home":
        await client.views_publish(user_id=event["user"], view=home_view())


def register(app: AsyncApp, services: Services) -> None:
    """Listen to app_home_opened."""
    app.event("app_home_opened")(publish_home)
