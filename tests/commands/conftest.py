"""Fixtures of the use-case tests: the demo bundle (`demo_bundle`, tests/conftest.py) imported into
a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.demo import PROJECT_ID
from commands.import_bundle import import_bundle
from storage.blobs import LocalBlobStore


@pytest.fixture
async def demo_project(database: str, data_dir: Path, demo_bundle: Path) -> int:
    await import_bundle(demo_bundle, LocalBlobStore(data_dir))
    return PROJECT_ID
