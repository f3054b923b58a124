"""Logging: plain or JSON lines (``BACKUPS_LOG_FORMAT=json``), each carrying the request id, the
Slack user and the job id of the work it belongs to (context variables), and scrubbed of
anything that looks like a credential.

`bind` sets the context for the current task (asyncio copies it into the tasks it starts);
`install` configures the root logger once at start-up.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
SLACK_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar("slack_user", default=None)
JOB_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)
LOG_FORMATS = ("plain", "json")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"

# Slack tokens (xoxb-, xoxp-, xapp-, …), Slack signatures, bearer headers, and the signature /
# credential parameters of pre-signed URLs (S3, Slack file URLs).
_SECRETS = re.compile(
    r"(?P<token>\bx(?:ox[abposr]|app)-[A-Za-z0-9-]+)"
    r"|(?P<signature>\bv0=[0-9a-f]{16,})"
    r"|(?P<bearer>Bearer\s+\S+)"
    r"|(?P<query>(?:X-Amz-(?:Signature|Credential|Security-Token)|Signature|sig|token)=[^&\s\"']+)",
    re.IGNORECASE,
)


def new_request_id() -> str:
    """A short random id for one incoming request."""
    return uuid.uuid4().hex[:12]


@contextlib.contextmanager
def bind(
    *, request_id: str | None = None, slack_user: str | None = None, job_id: int | None = None
) -> Iterator[None]:
    """Within the block, log lines carry these values (those given; others keep theirs)."""
    tokens = []
    for variable, value in ((REQUEST_ID, request_id), (SLACK_USER, slack_user), (JOB_ID, job_id)):
        if value is not None:
            tokens.append((variable, variable.set(value)))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)  # type: ignore[attr-defined]


def set_slack_user(user_id: str | None) -> None:
    """Name the Slack user of the current request (from a listener, once it is known)."""
    if user_id:
        SLACK_USER.set(user_id)


def scrub(text: str) -> str:
    """``text`` with tokens, signatures and signed-URL parameters replaced by ``[redacted]``."""

    def hide(match: re.Match[str]) -> str:
        if match.group("query"):
            name = match.group("query").split("=", 1)[0]
            return f"{name}=[redacted]"
        return "[redacted]"

    return _SECRETS.sub(hide, text)


def _context() -> dict[str, object]:
    values = {
        "request_id": REQUEST_ID.get(),
        "slack_user": SLACK_USER.get(),
        "job_id": JOB_ID.get(),
    }
    return {key: value for key, value in values.items() if value is not None}


class ContextFilter(logging.Filter):
    """Adds the context (``record.context`` for plain lines, fields for JSON) and scrubs the
    message and any traceback text of credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context()
        record.log_context = context
        record.context = "".join(f" [{k}={v}]" for k, v in context.items())
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "log_context", _context()),
        }
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """The classic line, the context in brackets after the message; tracebacks scrubbed."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "context"):
            record.context = ""
        return scrub(super().format(record))


_FILTER = ContextFilter()


def context_filter() -> logging.Filter:
    """The one filter instance (for handlers other than the root's, e.g. in tests)."""
    return _FILTER


def install(level: str, log_format: str = "plain") -> None:
    """Configure the root logger: one stderr handler, the context filter, the chosen format."""
    handler = logging.StreamHandler()
    handler.addFilter(_FILTER)
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
