"""The Procore REST client: transport (`procore.client`), typed endpoint calls (`procore.api`)
and errors (`procore.errors`). aiohttp only: no ORM, no Slack, no environment reads; build one
`ProcoreClient` from a `ProcoreConfig` at start-up and pass it in::

    config = ProcoreConfig(client_id=..., client_secret=..., company_id=...)
    async with ProcoreClient(config) as client:
        projects = await procore.api.list_projects(client)
        snapshot = await sources.procore.read_project(client, project_id, since=None)
    client.stats.total_requests  # counters for benches and metrics

The mapping to snapshot records lives in `sources.procore`.
"""

from procore.client import DownloadedFile, ProcoreClient, ProcoreConfig, RequestStats
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
