"""`ProcoreConfig`: what the Procore client needs, in a module that imports no HTTP library (the
settings build it at start-up even for commands that never call Procore)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProcoreConfig:
    """What the client needs; built once at start-up from the settings and passed in.

    ``token_url`` defaults to ``{login_url}/oauth/token`` (some accounts mint on the API host;
    set it then). The rest are tuning knobs with production defaults.
    """

    client_id: str
    client_secret: str = field(repr=False)
    company_id: int
    api_url: str = "https://api.procore.com"
    login_url: str = "https://login.procore.com"
    token_url: str | None = None
    max_concurrency: int = 8
    per_page_v1: int = 2000  # CONFIRMED DOC plan_your_app/pagination.md: at or below 2,000
    per_page_v2: int = 100  # CONFIRMED DOC announcements/new_rest_v2_version.md: max 100
    request_timeout_seconds: float = 60.0
    token_refresh_margin_seconds: float = 300.0
    max_attempts: int = 5  # per request, for 5xx, timeouts and connection resets
    max_retry_seconds: float = 120.0  # total backoff per request for those
    max_slowdown_seconds: float = 7200.0  # total 429/503 waiting per request
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0
    jitter_seconds: float = 1.0
    pace_reserve: int = 10  # below this many remaining requests, spread them to the reset
    max_redirects: int = 5

    @property
    def token_endpoint(self) -> str:
        """The URL tokens are minted at."""
        return self.token_url or f"{self.login_url.rstrip('/')}/oauth/token"
