"""The bot's settings, read once from the environment.

`Settings.from_env` either returns complete, valid settings or raises `SettingsError` whose
message is one line naming the variable; `bot.server.run_serve` prints it and exits with 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from procore import ProcoreConfig
from storage.blobs import DEFAULT_CACHE_MB, StoreConfig
from storage.db import data_dir

DEFAULT_PORT = 3000
DEFAULT_WORKERS = 2
MAX_WORKERS = 32
DEFAULT_MAX_INVOICES = 100
DEFAULT_SHUTDOWN_GRACE_SECONDS = 20.0
DEFAULT_JOB_LEASE_SECONDS = 60.0
DEFAULT_JOB_POLL_SECONDS = 2.0
DEFAULT_RETENTION_DAYS = 30
DEFAULT_SLACK_TIMEOUT_SECONDS = 30.0
DEFAULT_PROCORE_API_URL = "https://api.procore.com"
DEFAULT_PROCORE_LOGIN_URL = "https://login.procore.com"
DEFAULT_PROCORE_SYNC_MINUTES = 15
PROCORE_CREDENTIALS = ("PROCORE_CLIENT_ID", "PROCORE_CLIENT_SECRET", "PROCORE_COMPANY_ID")
PROCORE_OPTIONAL = ("PROCORE_API_URL", "PROCORE_LOGIN_URL", "PROCORE_SYNC_MINUTES")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("PLAIN", "JSON")
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class SettingsError(Exception):
    """A setting is missing or malformed; ``str(exc)`` is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything `bot.server` needs to run; the database comes from storage.db (DATABASE_URL)."""

    bot_token: str
    signing_secret: str
    app_token: str | None = None
    api_url: str | None = None
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    workers: int = DEFAULT_WORKERS
    max_invoices: int = DEFAULT_MAX_INVOICES
    shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS
    log_level: str = "INFO"
    backups_secret: str | None = (
        None  # BACKUPS_SECRET: seals modal metadata without a signing secret
    )
    log_format: str = "plain"  # BACKUPS_LOG_FORMAT: plain lines, or one JSON object per line
    owners: frozenset[str] = frozenset()  # Slack user ids that manage access on every project
    job_lease_seconds: float = DEFAULT_JOB_LEASE_SECONDS  # a hung process's jobs resume after it
    job_poll_seconds: float = DEFAULT_JOB_POLL_SECONDS  # how often idle workers look for jobs
    retention_days: int = DEFAULT_RETENTION_DAYS  # compiled PDFs are deleted after this
    # One Slack Web API request (or upload) that has not answered by then is given up and retried
    slack_timeout_seconds: float = DEFAULT_SLACK_TIMEOUT_SECONDS
    procore: ProcoreSettings | None = None  # None: no Procore (bundle imports only)
    # The Authorization value Procore's webhook deliveries carry (None: no webhook endpoint).
    procore_webhook_secret: str | None = field(default=None, repr=False)
    store: StoreConfig | None = None  # the object store; None: the local data folder
    # False: this process answers Slack (and webhooks) and queues jobs; other processes run them
    run_jobs: bool = True

    @property
    def socket_mode(self) -> bool:
        """True when SLACK_APP_TOKEN is set: events arrive over a WebSocket, not HTTP."""
        return self.app_token is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raise `SettingsError` on the first bad one."""
        env = _Env(os.environ if environ is None else environ)
        app_token = env.optional("SLACK_APP_TOKEN")
        if app_token is not None and not app_token.startswith("xapp-"):
            raise SettingsError(
                "SLACK_APP_TOKEN must be an app-level token starting with xapp- "
                "(Basic Information → App-Level Tokens, scope connections:write)"
            )
        bot_token = env.required(
            "SLACK_BOT_TOKEN", "the bot token (xoxb-…) from OAuth & Permissions"
        )
        if not bot_token.startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        if app_token is None:
            signing_secret = env.required(
                "SLACK_SIGNING_SECRET",
                "the Signing Secret from Basic Information → App Credentials",
            )
        else:
            signing_secret = env.optional("SLACK_SIGNING_SECRET") or ""
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            api_url=_api_url(env.optional("SLACK_API_URL")),
            host=env.optional("HOST") or "0.0.0.0",
            port=env.integer("PORT", DEFAULT_PORT, 0, 65535),
            workers=env.integer("BACKUPS_WORKERS", DEFAULT_WORKERS, 1, MAX_WORKERS),
            max_invoices=env.integer("BACKUPS_MAX_INVOICES", DEFAULT_MAX_INVOICES, 1, 100),
            shutdown_grace_seconds=env.number(
                "BACKUPS_SHUTDOWN_GRACE_SECONDS", DEFAULT_SHUTDOWN_GRACE_SECONDS, 0, 600
            ),
            log_level=env.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
            backups_secret=env.optional("BACKUPS_SECRET"),
            log_format=env.choice("BACKUPS_LOG_FORMAT", "PLAIN", LOG_FORMATS).lower(),
            owners=_owners(env.optional("BACKUPS_OWNERS")),
            job_lease_seconds=env.number(
                "BACKUPS_JOB_LEASE_SECONDS", DEFAULT_JOB_LEASE_SECONDS, 2, 3600
            ),
            job_poll_seconds=env.number(
                "BACKUPS_JOB_POLL_SECONDS", DEFAULT_JOB_POLL_SECONDS, 0.05, 60
            ),
            retention_days=retention_days_from_env(env),
            slack_timeout_seconds=env.number(
                "BACKUPS_SLACK_TIMEOUT_SECONDS", DEFAULT_SLACK_TIMEOUT_SECONDS, 1, 300
            ),
            procore=procore_settings_from_env(env),
            procore_webhook_secret=webhook_secret_from_env(env),
            store=store_config_from_env(data_dir(), env.environ),
            run_jobs=env.choice("BACKUPS_RUN_JOBS", "TRUE", ("TRUE", "FALSE")) == "TRUE",
        )


@dataclass(frozen=True)
class ProcoreSettings:
    """The Procore service account (client credentials) and how often `serve` syncs."""

    client_id: str
    client_secret: str = field(repr=False)
    company_id: int
    api_url: str = DEFAULT_PROCORE_API_URL
    login_url: str = DEFAULT_PROCORE_LOGIN_URL
    sync_minutes: int = DEFAULT_PROCORE_SYNC_MINUTES  # 0: no scheduled sync

    def client_config(self) -> ProcoreConfig:
        """What `procore.ProcoreClient` is built from."""
        return ProcoreConfig(
            client_id=self.client_id,
            client_secret=self.client_secret,
            company_id=self.company_id,
            api_url=self.api_url,
            login_url=self.login_url,
        )


def procore_settings_from_env(
    environ: Mapping[str, str] | _Env | None = None,
) -> ProcoreSettings | None:
    """The PROCORE_* settings, all or none: None when none is set; `SettingsError` when only
    some credentials are set or a value is malformed."""
    env = environ if isinstance(environ, _Env) else _Env(os.environ if environ is None else environ)
    given = [name for name in PROCORE_CREDENTIALS + PROCORE_OPTIONAL if env.optional(name)]
    if not given:
        return None
    missing = [name for name in PROCORE_CREDENTIALS if not env.optional(name)]
    if missing:
        raise SettingsError(
            f"{missing[0]} is not set but {given[0]} is: set all of "
            f"{', '.join(PROCORE_CREDENTIALS)} (the Procore service account) or none"
        )
    return ProcoreSettings(
        client_id=env.required("PROCORE_CLIENT_ID", "the service account's client id"),
        client_secret=env.required("PROCORE_CLIENT_SECRET", "the service account's secret"),
        company_id=env.integer("PROCORE_COMPANY_ID", 0, 1, 2**63 - 1),
        api_url=_http_url("PROCORE_API_URL", env.optional("PROCORE_API_URL"))
        or DEFAULT_PROCORE_API_URL,
        login_url=_http_url("PROCORE_LOGIN_URL", env.optional("PROCORE_LOGIN_URL"))
        or DEFAULT_PROCORE_LOGIN_URL,
        sync_minutes=env.integer(
            "PROCORE_SYNC_MINUTES", DEFAULT_PROCORE_SYNC_MINUTES, 0, 7 * 24 * 60
        ),
    )


def _http_url(name: str, value: str | None) -> str | None:
    """An http(s) base URL without a trailing ``/``."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL such as https://host, got {value!r}")
    return value.rstrip("/")


MIN_WEBHOOK_SECRET_LENGTH = 24


def webhook_secret_from_env(environ: Mapping[str, str] | _Env | None = None) -> str | None:
    """PROCORE_WEBHOOK_SECRET: at least 24 characters, no spaces (None when unset)."""
    env = environ if isinstance(environ, _Env) else _Env(os.environ if environ is None else environ)
    secret = env.optional("PROCORE_WEBHOOK_SECRET")
    if secret is None:
        return None
    if len(secret) < MIN_WEBHOOK_SECRET_LENGTH or any(char.isspace() for char in secret):
        raise SettingsError(
            f"PROCORE_WEBHOOK_SECRET must be at least {MIN_WEBHOOK_SECRET_LENGTH} characters "
            "without spaces (e.g. the output of: openssl rand -hex 32)"
        )
    return secret


def retention_days_from_env(environ: Mapping[str, str] | _Env | None = None) -> int:
    """BACKUPS_RETENTION_DAYS (default 30, 1 to 3650); `SettingsError` when malformed."""
    env = environ if isinstance(environ, _Env) else _Env(os.environ if environ is None else environ)
    return env.integer("BACKUPS_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1, 3650)


def store_config_from_env(data_dir: Path, environ: Mapping[str, str] | None = None) -> StoreConfig:
    """Which object store to use: the S3 bucket BACKUPS_S3_BUCKET (with BACKUPS_S3_ENDPOINT for
    a non-AWS store, BACKUPS_S3_REGION; credentials the usual AWS way, read by the S3 client),
    else the folder ``data_dir``. BACKUPS_CACHE_MB bounds the local cache of S3 blobs."""
    env = _Env(os.environ if environ is None else environ)
    endpoint = env.optional("BACKUPS_S3_ENDPOINT")
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(
                "BACKUPS_S3_ENDPOINT must be an http(s) URL such as https://s3.example.com, "
                f"got {endpoint!r}"
            )
    return StoreConfig(
        data_dir=data_dir,
        s3_bucket=env.optional("BACKUPS_S3_BUCKET"),
        s3_endpoint=endpoint,
        s3_region=env.optional("BACKUPS_S3_REGION"),
        cache_mb=env.integer("BACKUPS_CACHE_MB", DEFAULT_CACHE_MB, 16, 1_000_000),
    )


def _owners(value: str | None) -> frozenset[str]:
    """BACKUPS_OWNERS: comma-separated Slack user ids (``U…`` or ``W…``)."""
    if value is None:
        return frozenset()
    owners = [part.strip() for part in value.split(",") if part.strip()]
    wrong = [owner for owner in owners if not SLACK_USER_ID.match(owner)]
    if wrong:
        raise SettingsError(
            "BACKUPS_OWNERS must be Slack user ids (U… or W…, from a profile's ⋮ → Copy member "
            f"ID) separated by commas, got {wrong[0]!r}"
        )
    return frozenset(owners)


def _api_url(value: str | None) -> str | None:
    """SLACK_API_URL as slack_sdk wants a base URL: http(s), ending with ``/``."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"SLACK_API_URL must be an http(s) URL such as https://slack.com/api/, got {value!r}"
        )
    return value if value.endswith("/") else value + "/"


class _Env:
    """Typed reads of environment variables; blank counts as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def optional(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def required(self, name: str, what: str) -> str:
        value = self.optional(name)
        if value is None:
            raise SettingsError(f"{name} is not set: set it to {what}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {raw}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.upper() not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw.upper()
