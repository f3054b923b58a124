"""The Procore client and source tests run against the sample bundle
(`tests.storage.bundles.sample_bundle`): it overrides the demo world of the shared fake Procore
fixtures (`tests.procore.fixtures`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.procore.fake_procore import ProcoreWorld, world_from_bundle
from tests.storage.bundles import write_bundle


@pytest.fixture
def procore_world(tmp_path: Path) -> ProcoreWorld:
    """The sample bundle (`tests.storage.bundles.sample_bundle`) as a Procore world."""
    return world_from_bundle(write_bundle(tmp_path / "bundle"))
