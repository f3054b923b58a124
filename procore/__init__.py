"""The Procore REST client: transport (`procore.client`), typed endpoint calls (`procore.api`)
and errors (`procore.errors`). aiohttp only: no ORM, no Slack, no environment reads; build one
`ProcoreClient` from a `ProcoreConfig` at start-up and pass it in::

    config = ProcoreConfig(client_id=..., client_secret=..., company_id=...)
    async with ProcoreClient(config) as client:
        projects = await procore.api.list_projects(client)
        snapshot = await sources.procore.read_project(client, project_id, since=None)
    client.stats.total_requests  # counters for benches and metrics

The mapping to snapshot records lives in `sources.procore`.

The client's names (`ProcoreClient`, `DownloadedFile`, `RequestStats`) load `procore.client`, and
with it aiohttp, on first use: a command that never calls Procore (``invoice-backups compile``
without Procore settings) imports only the settings and the errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procore.config import ProcoreConfig
from procore.errors import (
    FileTooLarge,
    FileUrlExpired,
    ProcoreAuthError,
    ProcoreDataError,
    ProcoreError,
    ProcoreForbidden,
    ProcoreNotFound,
    ProcoreUnavailable,
    ProjectNotReachable,
    TooManyRedirects,
)

__all__ = [
    "DownloadedFile",
    "FileTooLarge",
    "FileUrlExpired",
    "ProcoreAuthError",
    "ProcoreClient",
    "ProcoreConfig",
    "ProcoreDataError",
    "ProcoreError",
    "ProcoreForbidden",
    "ProcoreNotFound",
    "ProcoreUnavailable",
    "ProjectNotReachable",
    "RequestStats",
    "TooManyRedirects",
]

_CLIENT_NAMES = frozenset({"DownloadedFile", "ProcoreClient", "RequestStats"})

if TYPE_CHECKING:
    from procore.client import DownloadedFile, ProcoreClient, RequestStats


def __getattr__(name: str) -> Any:
    """The client's names, imported from `procore.client` when first asked for."""
    if name in _CLIENT_NAMES:
        from procore import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
