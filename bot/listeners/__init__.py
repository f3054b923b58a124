"""Bolt listeners, one module per surface. Each is thin: parse, authorise, ack, hand off."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import access, commands, events, options, schedules, views
from bot.services import Services


def register_listeners(app: AsyncApp, services: Services) -> None:
    """Attach every listener to ``app``."""
    commands.register(app, services)
    views.register(app, services)
    options.register(app, services)
    events.register(app, services)
    access.register(app, services)
    schedules.register(app, services)
