"""Fixtures for the Procore client and source: a fake Procore (`tests.procore.fake_procore`)
serving the sample bundle's data over real HTTP, and a client pointed at it with short waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from procore.client import ProcoreClient, ProcoreConfig
from tests.procore.fake_procore import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProcore,
    ProcoreWorld,
    world_from_bundle,
)
from tests.storage.bundles import write_bundle


@pytest.fixture
def world(tmp_path: Path) -> ProcoreWorld:
    """The sample bundle (`tests.storage.bundles.sample_bundle`) as a Procore world."""
    return world_from_bundle(write_bundle(tmp_path / "bundle"))


@pytest.fixture
async def fake_procore(world: ProcoreWorld) -> AsyncIterator[FakeProcore]:
    """The fake Procore serving ``world``, generous rate limits; closed after the test."""
    fake = FakeProcore(world)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


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


@pytest.fixture
async def procore_client(fake_procore: FakeProcore) -> AsyncIterator[ProcoreClient]:
    """A client for the fake (see `client_config`)."""
    async with ProcoreClient(client_config(fake_procore)) as client:
        yield client
