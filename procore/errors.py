"""What the Procore client raises. Every message is one line a person can act on; none holds a
secret, a token or a signed URL."""

from __future__ import annotations


class ProcoreError(Exception):
    """Any failure talking to Procore."""


class ProcoreAuthError(ProcoreError):
    """The credentials do not work: the token call was refused, or an API call answered 401
    again with a freshly minted token (the app is not installed in the company)."""


class ProcoreForbidden(ProcoreError):
    """Procore answered 403 to a call that names no project (a company tool the account may
    not use, e.g. the Directory's permission templates)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(reason)


class ProjectNotReachable(ProcoreForbidden):
    """Procore answered 403 for a project: it is not on the service account's permitted
    projects, or the account lacks a tool permission there. ``reason`` says what the Procore
    admin must do."""

    def __init__(self, project_id: int, reason: str, path: str = "") -> None:
        self.project_id = project_id
        super().__init__(path, reason)


class ProcoreNotFound(ProcoreError):
    """Procore answered 404 (the record was deleted, or the path is wrong)."""


class ProcoreUnavailable(ProcoreError):
    """Procore kept failing (5xx, timeouts, resets, or slow-down answers) past the retry bound."""


class ProcoreDataError(ProcoreError):
    """Procore answered with data this source cannot read (a field missing or malformed)."""


class FileTooLarge(ProcoreError):
    """A file is larger than the size cap; nothing was kept. ``byte_size`` is its size when
    Procore's storage declared it (``Content-Length``), None when the download was cut off at
    the cap; ``max_bytes`` is the cap."""

    def __init__(self, message: str, *, byte_size: int | None, max_bytes: int) -> None:
        self.byte_size = byte_size
        self.max_bytes = max_bytes
        super().__init__(message)


class FileUrlExpired(ProcoreError):
    """A file URL answered 401/403/404/410: it expired or was revoked. Re-read the invoice once
    for fresh URLs and try again."""


class TooManyRedirects(ProcoreError):
    """A file URL redirected more times than allowed."""
