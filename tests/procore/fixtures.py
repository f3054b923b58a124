"""The fake Procore for every test directory (a pytest plugin, listed in ``tests/conftest.py``):
a world, the fake serving it over real HTTP, a client with short waits, and the bot's
``PROCORE_*`` settings (and process environment) pointing at the fake.

``procore_world`` is the demo project (`commands.demo`); a directory or module that wants
another world overrides that one fixture (``tests/procore/conftest.py`` serves the sample
bundle)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.settings import ProcoreSettings
from procore.client import ProcoreClient, ProcoreConfig
from tests.procore.fake_procore import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProcore,
    ProcoreWorld,
    world_from_bundle,
)


def client_config(fake: FakeProcore, **overrides: object) -> ProcoreConfig:
    """A config for ``fake`` (token minted on the fake's own host) with test-sized waits."""
    config = ProcoreConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        company_id=fake.world.company_id,
        api_url=fake.url,
        login_url=fake.url,
        jitter_seconds=0.05,
        backoff_base_seconds=0.05,
        backoff_cap_seconds=0.4,
        max_retry_seconds=5.0,
        max_slowdown_seconds=30.0,
        request_timeout_seconds=10.0,
    )
    return replace(config, **overrides)  # type: ignore[arg-type]


def procore_settings(fake: FakeProcore, sync_minutes: int = 0) -> ProcoreSettings:
    """The bot's PROCORE_* pointing at ``fake``; no scheduled sync unless ``sync_minutes``."""
    return ProcoreSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        company_id=fake.world.company_id,
        api_url=fake.url,
        login_url=fake.url,
        sync_minutes=sync_minutes,
    )


def procore_environment(fake: FakeProcore) -> dict[str, str]:
    """The PROCORE_* variables of a bot or CLI process pointing at ``fake``."""
    return {
        "PROCORE_CLIENT_ID": CLIENT_ID,
        "PROCORE_CLIENT_SECRET": CLIENT_SECRET,
        "PROCORE_COMPANY_ID": str(fake.world.company_id),
        "PROCORE_API_URL": fake.url,
        "PROCORE_LOGIN_URL": fake.url,
    }


@pytest.fixture
def procore_world(demo_bundle: Path) -> ProcoreWorld:
    """The demo project as a Procore world (the test's own: it may change it)."""
    return world_from_bundle(demo_bundle)


@pytest.fixture
async def fake_procore(procore_world: ProcoreWorld) -> AsyncIterator[FakeProcore]:
    """The fake Procore serving ``procore_world``, generous rate limits; closed after the test."""
    async with FakeProcore(procore_world) as fake:
        yield fake


@pytest.fixture
async def procore_client(fake_procore: FakeProcore) -> AsyncIterator[ProcoreClient]:
    """A client for the fake (see `client_config`)."""
    async with ProcoreClient(client_config(fake_procore)) as client:
        yield client
