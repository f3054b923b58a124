"""Settings, identity cache and the parent-message updater, each alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.blocks.messages import JobHeadline, Phase
from bot.identity import IdentityResolver, IdentityUnavailable, identity_from_user
from bot.listeners.guard import signature_problem
from bot.parent import ParentMessage
from bot.settings import Settings, SettingsError
from tests.slack.conftest import SIGNING_SECRET
from tests.slack.slack_driver import slack_signature
from tests.waiting import JOB_PATIENCE

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.port == 3000 and settings.workers == 2 and not settings.socket_mode
    assert settings.api_url is None and settings.max_invoices == 100


def test_socket_mode_needs_no_signing_secret_and_api_url_gets_a_slash() -> None:
    settings = Settings.from_env(
        {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "SLACK_API_URL": "http://x/api"}
    )
    assert settings.socket_mode and settings.api_url == "http://x/api/"


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({**BASE, "PORT": "70000"}, "PORT"),
        ({**BASE, "PORT": "-1"}, "PORT"),
        ({**BASE, "BACKUPS_WORKERS": "two"}, "BACKUPS_WORKERS"),
        ({**BASE, "BACKUPS_MAX_INVOICES": "500"}, "BACKUPS_MAX_INVOICES"),
        ({**BASE, "BACKUPS_SHUTDOWN_GRACE_SECONDS": "-1"}, "BACKUPS_SHUTDOWN_GRACE_SECONDS"),
        ({**BASE, "LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_settings_name_the_variable_in_one_line(
    environment: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environment)
    assert str(raised.value).startswith(variable) and "\n" not in str(raised.value)


class FakeUsersClient:
    """Just users.info, counting calls, slow enough for lookups to overlap."""

    def __init__(self) -> None:
        self.calls = 0

    async def users_info(self, user: str) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0.01)
        return {"user": {"id": user, "tz": "Europe/Paris", "profile": {"email": "a@b.c"}}}


async def test_identity_is_cached_shared_between_concurrent_lookups_and_expires() -> None:
    now = [0.0]
    client = FakeUsersClient()
    resolver = IdentityResolver(client, ttl_seconds=60, clock=lambda: now[0])  # type: ignore[arg-type]
    first, second = await asyncio.gather(resolver.resolve("U1"), resolver.resolve("U1"))
    assert first == second and client.calls == 1
    assert first.requester.key == "slack:U1" and first.requester.email == "a@b.c"
    assert first.timezone == "Europe/Paris"
    await resolver.resolve("U1")
    assert client.calls == 1
    now[0] = 61
    await resolver.resolve("U1")
    assert client.calls == 2


def test_identity_without_email_or_names() -> None:
    identity = identity_from_user({"id": "U9", "profile": {}})
    assert identity.requester.email is None and identity.requester.display_name == "U9"
    assert identity.timezone == "UTC"


async def test_identity_unavailable_when_slack_has_no_user() -> None:
    class NoUser:
        async def users_info(self, user: str) -> dict[str, Any]:
            return {"ok": True}

    with pytest.raises(IdentityUnavailable):
        await IdentityResolver(NoUser()).resolve("U1")  # type: ignore[arg-type]


class RecordingChat:
    def __init__(self) -> None:
        self.updates: list[str] = []
        self.second_update = asyncio.Event()

    async def chat_update(self, channel: str, ts: str, text: str, blocks: list) -> None:
        self.updates.append(text)
        if len(self.updates) == 2:
            self.second_update.set()


async def test_progress_is_throttled_latest_wins_and_phases_are_immediate() -> None:
    chat = RecordingChat()
    parent = ParentMessage(chat, "C", "1.1", JobHeadline(5, "P", "U"), None, min_interval=0.2)  # type: ignore[arg-type]
    await parent.show(Phase.RUNNING)
    for step in range(1, 6):
        await parent.progress(f"invoice {step} of 5: SC-00{step} Vendor")
    assert len(chat.updates) == 1  # progress never waits for Slack
    await asyncio.wait_for(chat.second_update.wait(), JOB_PATIENCE)
    await parent.show(Phase.UPLOADING)
    await parent.close()
    assert len(chat.updates) == 3
    assert "Starting" in chat.updates[0]
    assert "Invoice 5 of 5: SC-005 Vendor" in chat.updates[1]
    assert "Uploading" in chat.updates[2]


def test_the_object_store_settings() -> None:
    local = Settings.from_env(BASE).store
    assert local is not None and local.s3_bucket is None and local.cache_mb == 1024
    s3 = Settings.from_env(
        {
            **BASE,
            "BACKUPS_S3_BUCKET": "invoice-files",
            "BACKUPS_S3_ENDPOINT": "https://s3.example.com",
            "BACKUPS_S3_REGION": "eu-west-3",
            "BACKUPS_CACHE_MB": "256",
        }
    ).store
    assert s3 is not None
    assert (s3.s3_bucket, s3.s3_endpoint, s3.s3_region, s3.cache_mb) == (
        "invoice-files",
        "https://s3.example.com",
        "eu-west-3",
        256,
    )


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({**BASE, "BACKUPS_S3_BUCKET": "b", "BACKUPS_S3_ENDPOINT": "s3"}, "BACKUPS_S3_ENDPOINT"),
        ({**BASE, "BACKUPS_CACHE_MB": "1"}, "BACKUPS_CACHE_MB"),
    ],
)
def test_bad_store_settings_name_the_variable(environment: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environment)
    assert str(raised.value).startswith(variable)


def test_the_signature_window_is_five_minutes_each_way() -> None:
    body = b"command=%2Fbackup&text=help"
    sent = 1_800_000_000

    def problem(now: float) -> str | None:
        signature = slack_signature(SIGNING_SECRET, str(sent), body.decode())
        return signature_problem(SIGNING_SECRET, body, str(sent), signature, now)

    assert problem(sent) is None
    assert problem(sent + 300) is None and problem(sent - 300) is None
    assert problem(sent + 301) == "stale" and problem(sent - 301) == "stale"
