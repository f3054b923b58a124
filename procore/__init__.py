"""The Procore REST client: transport (`procore.client`), typed endpoint calls (`procore.api`)
and errors (`procore.errors`). aiohttp only: no ORM, no Slack, no environment reads; build one
`ProcoreClient` from a `ProcoreConfig` at start-up and pass it in.
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
