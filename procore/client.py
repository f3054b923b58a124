"""The Procore HTTP transport: token, company header, pagination, rate-limit pacing, retries,
file downloads.

Contract:
- Auth is the client-credentials grant (a developer-managed service account). The token is
  cached until shortly before ``expires_in``; a 401 mints a new one once and retries; one mint
  runs at a time. A second 401 raises `ProcoreAuthError`.
- Every API call carries ``Procore-Company-Id``. Lists are read page by page (``page``,
  ``per_page``) following the ``Link`` header's ``rel="next"`` until it is absent.
- Rate limits: every answer's ``X-Rate-Limit-*`` headers feed a pacer that spreads the
  remaining budget over the time to the reset once it runs low, and sends nothing while it is 0.
  A 429 waits until ``X-Rate-Limit-Reset`` (plus jitter); a 503 waits ``Retry-After``; other
  5xx, timeouts and connection resets back off exponentially (capped, with jitter). Retries are
  bounded (`ProcoreConfig.max_attempts`, ``max_retry_seconds``, ``max_slowdown_seconds``); past
  the bound `ProcoreUnavailable` is raised. At most ``max_concurrency`` requests run at once.
- 403 naming a project → `ProjectNotReachable`; other 403 → `ProcoreForbidden`; 404 →
  `ProcoreNotFound`.
- Files (`ProcoreClient.download`) follow redirects by hand and send the bearer token only to the
  API host and ``https://*.procore.com``; never to any other host.
- Logs name the method and the URL path only: never a secret, a token, or a query string
  (signed URLs carry their signature there).

Checked against Procore's own docs (``procore/documentation`` @06dad9d, "DOC"):
- CONFIRMED DOC oauth/oauth_client_credentials.md, oauth/oauth_endpoints.md: ``POST
  {login}/oauth/token`` with form fields ``grant_type=client_credentials``, ``client_id``,
  ``client_secret``; answer ``{access_token, token_type: "bearer", expires_in: 5400,
  created_at}``; no refresh token. Hosts: DOC platform_concepts/development_environments.md.
- CONFIRMED DOC tutorials/tutorial_mpz.md (and the FAQ): ``Procore-Company-Id`` on every call
  (``company_id`` stays in the query where an endpoint takes it); ids may exceed 32 bits.
- CONFIRMED DOC plan_your_app/pagination.md: ``page`` (1-based), ``per_page`` (keep ≤ 2,000),
  ``Link`` first/prev/next/last (no ``next`` on the last page), ``Total``, ``Per-Page``.
  DOC announcements/new_rest_v2_version.md: v2.0 lists default to 10 and allow 100.
- CONFIRMED DOC plan_your_app/rate_limiting.md: ``X-Rate-Limit-Limit/-Remaining/-Reset`` (Unix
  seconds) report the closer of the hourly and 10-second limits; 429 → wait until the reset
  (api_essentials/troubleshooting.md: or ``Retry-After``), with jitter; 503 → ``Retry-After``.
- CONFIRMED DOC api_essentials/error_reference.md: 401 = missing, expired or invalid token;
  403 = no permission for the tool or project, or "App is not connected to this company"
  (disconnected under App Management: `ProcoreAuthError`, every project is affected).
- CONFIRMED DOC best_practices/secure_file_access_tips.md: file URLs want the bearer token,
  redirect to other hosts (AWS), must get it only on ``*.procore.com``; follow 301/302/303/
  307/308 by hand, at most 5; assume no fixed host names.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

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

logger = logging.getLogger("procore")

COMPANY_HEADER = "Procore-Company-Id"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
EXPIRED_FILE_STATUSES = frozenset({401, 403, 404, 410})
DOWNLOAD_CHUNK_BYTES = 64 * 1024
TRANSIENT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


@dataclass
class RequestStats:
    """Counters for benches and metrics, updated by every request the client sends.

    ``requests`` counts (endpoint template, outcome) pairs; the outcome is the HTTP status, or
    ``timeout``/``connection`` when no answer came. ``wait_seconds`` is the time slept pacing,
    backing off and honouring 429/503.
    """

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    rate_limited: int = 0
    unavailable: int = 0
    retries: int = 0
    token_mints: int = 0
    wait_seconds: float = 0.0
    pacing_seconds: float = 0.0

    @property
    def total_requests(self) -> int:
        """Every request sent, token mints and file downloads included."""
        return sum(self.requests.values())

    def by_endpoint(self) -> Counter[str]:
        """Requests per endpoint template, all outcomes together."""
        totals: Counter[str] = Counter()
        for (endpoint, _outcome), count in self.requests.items():
            totals[endpoint] += count
        return totals


@dataclass(frozen=True)
class DownloadedFile:
    """A file written to ``path`` (a new file in the caller's folder) with its SHA-256 (hex)."""

    path: Path
    sha256: str
    byte_size: int


@dataclass(frozen=True)
class _Answer:
    body: Any
    headers: CIMultiDictProxy[str]
    next_url: str | None


class _Pacer:
    """Spreads requests so the rate limit the headers report is never crossed."""

    def __init__(self, reserve: int, jitter_seconds: float, stats: RequestStats) -> None:
        self.reserve = max(1, reserve)
        self.jitter_seconds = jitter_seconds
        self.stats = stats
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.paused_until = 0.0
        self.next_send = 0.0
        self.in_flight = 0
        self.probing = True  # the budget is unknown: send one call at a time until an answer
        self.lock = asyncio.Lock()
        self.answered = asyncio.Event()

    async def before_send(self) -> None:
        """Wait until sending one request stays within the budget, then count it as sent."""
        async with self.lock:
            while True:
                now = time.time()
                delay = self._delay(now)
                if delay <= 0 and self.probing and self.in_flight > 0:
                    # Budget unknown (first call, new window): one call at a time until an
                    # answer tells the limit.
                    self.answered.clear()
                    await self.answered.wait()
                    self.stats.pacing_seconds += time.time() - now
                    continue
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
                self.stats.wait_seconds += delay
                self.stats.pacing_seconds += delay
            if self.remaining is not None:
                self.remaining -= 1
            self.in_flight += 1

    def _delay(self, now: float) -> float:
        if now < self.paused_until:
            return self.paused_until - now
        if self.remaining is None or self.reset_at is None:
            return 0.0
        if now >= self.reset_at:
            self.remaining = None
            self.probing = True
            return 0.0
        if self.remaining <= 0:
            return self.reset_at - now + random.uniform(0, self.jitter_seconds)
        if self.remaining <= self.reserve:
            if now < self.next_send:
                return self.next_send - now
            self.next_send = now + (self.reset_at - now) / self.remaining
        return 0.0

    def after_answer(self, headers: Mapping[str, str] | None) -> None:
        """Read the ``X-Rate-Limit-*`` headers of an answer (None: no answer came)."""
        self.in_flight -= 1
        self.probing = False
        self.answered.set()
        if headers is None:
            return
        try:
            remaining = int(headers["X-Rate-Limit-Remaining"])
            reset_at = float(headers["X-Rate-Limit-Reset"])
        except (KeyError, ValueError):
            return
        if self.reset_at is None or self.remaining is None or abs(reset_at - self.reset_at) > 0.5:
            # A new window (or the other limit is now the closer one): trust the header, minus
            # the requests still in flight, which it may not count yet.
            self.reset_at = reset_at
            self.remaining = remaining - self.in_flight
            self.next_send = 0.0
        else:
            self.remaining = min(self.remaining, remaining)

    def pause_until(self, moment: float) -> None:
        """Send nothing before ``moment`` (Unix seconds): a 429 or a 503 told us to wait."""
        self.paused_until = max(self.paused_until, moment)


class _RetryBudget:
    """One request's retry allowance: transient failures and slow-down waits, both bounded."""

    def __init__(self, config: ProcoreConfig, stats: RequestStats, what: str) -> None:
        self.config = config
        self.stats = stats
        self.what = what
        self.attempts = 1
        self.backoff_spent = 0.0
        self.slowdown_spent = 0.0

    async def after_transient(self, outcome: str) -> None:
        """Back off after a 5xx, timeout or reset; raise `ProcoreUnavailable` past the bound."""
        config = self.config
        delay = min(
            config.backoff_cap_seconds, config.backoff_base_seconds * 2 ** (self.attempts - 1)
        )
        delay = delay / 2 + random.uniform(0, delay / 2)
        if (
            self.attempts >= config.max_attempts
            or self.backoff_spent + delay > config.max_retry_seconds
        ):
            raise ProcoreUnavailable(
                f"Procore kept failing on {self.what} ({outcome}) after {self.attempts} attempts"
            )
        logger.warning("Procore %s on %s; retry in %.1f s", outcome, self.what, delay)
        self.attempts += 1
        self.backoff_spent += delay
        await self._sleep(delay)

    async def slow_down(self, delay: float, outcome: str) -> None:
        """Wait as Procore asked (429/503); raise `ProcoreUnavailable` past the bound."""
        delay = max(0.0, delay)
        if self.slowdown_spent + delay > self.config.max_slowdown_seconds:
            raise ProcoreUnavailable(
                f"Procore kept asking to slow down on {self.what} ({outcome}) for "
                f"{self.slowdown_spent:.0f} s"
            )
        logger.info("Procore %s on %s; waiting %.1f s", outcome, self.what, delay)
        self.slowdown_spent += delay
        await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        self.stats.retries += 1
        self.stats.wait_seconds += delay
        await asyncio.sleep(delay)


def _path_of(url: str | URL) -> str:
    """The path of a URL, for logs and messages (no host, no query: signatures live there)."""
    return urlsplit(str(url)).path or "/"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _project_reason(project_id: int, status_path: str) -> str:
    return (
        f"Procore answered 403 for project {project_id} ({status_path}): a Procore company admin "
        "must add this project to the service account's permitted projects (App Management → "
        "the app → Permitted Projects) and grant it read access to Commitments and Directory "
        "(and the Commitments tool must be enabled in the project)"
    )


class ProcoreClient:
    """One Procore company, reached with one service account. Use as an async context manager
    (or call `close`); safe to share between concurrent tasks.

    ``stats`` holds the request counters (`RequestStats`).
    """

    def __init__(
        self, config: ProcoreConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``clock``: the seconds that decide when the token is renewed (tests move it)."""
        self.config = config
        self._clock = clock
        self.stats = RequestStats()
        self._api = urlsplit(config.api_url.rstrip("/"))
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._proven_token: str | None = None  # the last token that got a 2xx answer
        self._token_refresh_at = 0.0
        self._token_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(max(1, config.max_concurrency))
        self._pacer = _Pacer(config.pace_reserve, config.jitter_seconds, self.stats)

    async def __aenter__(self) -> ProcoreClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def company_id(self) -> int:
        """The Procore company every call is made for."""
        return self.config.company_id

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.request_timeout_seconds),
                raise_for_status=False,
            )
        return self._session

    # -- token --------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        token = self._token
        if token is not None and self._clock() < self._token_refresh_at:
            return token
        async with self._token_lock:
            if self._token is None or self._clock() >= self._token_refresh_at:
                await self._mint_token()
            assert self._token is not None
            return self._token

    async def _drop_token(self, rejected: str) -> None:
        """Forget ``rejected`` (unless another task already replaced it): the next call mints a
        new token right before it is sent."""
        async with self._token_lock:
            if self._token == rejected:
                self._token = None

    async def _mint_token(self) -> None:
        """Client-credentials grant; the lock is held by the caller."""
        config = self.config
        endpoint = "POST /oauth/token"
        budget = _RetryBudget(config, self.stats, endpoint)
        form = {
            "grant_type": "client_credentials",
            "client_id": config.client_id,
            "client_secret": config.client_secret,
        }
        while True:
            try:
                async with self._http().post(config.token_endpoint, data=form) as response:
                    self._count(endpoint, str(response.status))
                    if response.status == 200:
                        body = await response.json(content_type=None)
                        break
                    status = response.status
            except TRANSIENT_ERRORS as error:
                self._count(endpoint, _outcome_of(error))
                await budget.after_transient(_outcome_of(error))
                continue
            if status in (400, 401, 403):
                raise ProcoreAuthError(
                    f"Procore refused the service account's credentials (HTTP {status} from "
                    f"{_path_of(config.token_endpoint)} on {urlsplit(config.token_endpoint).netloc}"
                    "): check the client id and secret, that the app is installed in "
                    f"company {config.company_id}, and whether this account mints tokens on the "
                    "login host or the API host (the token URL)"
                )
            if status == 429 or status >= 500:
                await budget.after_transient(str(status))
                continue
            raise ProcoreAuthError(f"Procore's token endpoint answered HTTP {status}")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProcoreAuthError("Procore's token endpoint answered without an access_token")
        try:
            lifetime = float(body.get("expires_in") or 5400)
        except (TypeError, ValueError):
            lifetime = 5400.0
        margin = min(config.token_refresh_margin_seconds, lifetime / 10)
        self._token = token
        self._token_refresh_at = self._clock() + lifetime - margin
        self.stats.token_mints += 1
        logger.info("Procore token minted for company %s", config.company_id)

    # -- API calls ----------------------------------------------------------------------------

    def _api_url(self, path_or_url: str) -> URL:
        """An API path (``/rest/...``) or a full URL on the API host (a ``Link`` next URL)."""
        if path_or_url.startswith("/"):
            return URL(f"{self.config.api_url.rstrip('/')}{path_or_url}")
        parts = urlsplit(path_or_url)
        if (parts.scheme, parts.netloc) != (self._api.scheme, self._api.netloc):
            raise ProcoreDataError(f"Procore pointed to another host for {_path_of(path_or_url)}")
        return _as_url(path_or_url)

    async def get(
        self,
        path: str,
        *,
        endpoint: str,
        params: Params | None = None,
        project_id: int | None = None,
    ) -> Any:
        """The JSON body of ``GET path`` (a v2.0 ``{"data": …}`` is returned as is).

        ``endpoint`` is the template the stats count (``GET /rest/v1.1/requisitions/{id}``);
        ``project_id`` makes a 403 a `ProjectNotReachable` for that project.
        """
        answer = await self._request(
            "GET", path, endpoint=endpoint, params=params, project_id=project_id
        )
        return answer.body

    async def send(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        json_body: Any = None,
        params: Params | None = None,
        project_id: int | None = None,
    ) -> Any:
        """The JSON body (None when empty) of ``method path`` with ``json_body`` as JSON: the
        writes (``POST``/``PATCH``/``DELETE``), paced and retried like `get`."""
        answer = await self._request(
            method,
            path,
            endpoint=endpoint,
            params=params,
            project_id=project_id,
            json_body=json_body,
        )
        return answer.body

    async def get_list(
        self,
        path: str,
        *,
        endpoint: str,
        params: Params | None = None,
        project_id: int | None = None,
        per_page: int | None = None,
    ) -> list[Any]:
        """Every entry of a paginated list: ``page=1&per_page=N`` then each ``Link`` next.

        ``per_page`` defaults to the v1.x maximum; v2.0 ``{"data": [...]}`` pages are unwrapped.
        """
        query = list(_param_pairs(params))
        query += [("page", "1"), ("per_page", str(per_page or self.config.per_page_v1))]
        entries: list[Any] = []
        target: str = path
        current: Params | None = query
        while True:
            answer = await self._request(
                "GET", target, endpoint=endpoint, params=current, project_id=project_id
            )
            page = answer.body
            if isinstance(page, dict) and isinstance(page.get("data"), list):
                page = page["data"]
            if not isinstance(page, list):
                raise ProcoreDataError(f"Procore answered {endpoint} with something not a list")
            entries.extend(page)
            if answer.next_url is None or not page:
                return entries
            target, current = answer.next_url, None

    async def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        endpoint: str,
        params: Params | None,
        project_id: int | None,
        json_body: Any = None,
    ) -> _Answer:
        url = self._api_url(path_or_url)
        query = list(_param_pairs(params)) if params is not None else None
        budget = _RetryBudget(self.config, self.stats, endpoint)
        renewals = 0
        while True:
            async with self._slots:
                await self._pacer.before_send()
                answered: Mapping[str, str] | None = None
                try:
                    # The token is taken after pacing: the wait may outlast it.
                    token = await self._access_token()
                    headers = {
                        "Authorization": f"Bearer {token}",
                        COMPANY_HEADER: str(self.config.company_id),
                        "Accept": "application/json",
                    }
                    async with self._http().request(
                        method, url, params=query, headers=headers, json=json_body
                    ) as response:
                        answered = response.headers
                        status = response.status
                        self._count(endpoint, str(status))
                        logger.debug("Procore %s %s → %s", method, url.path, status)
                        if 200 <= status < 300:
                            self._proven_token = token
                            body = await _json_body(response, endpoint)
                            next_link = response.links.get("next")
                            next_url = str(next_link["url"]) if next_link else None
                            return _Answer(body, response.headers, next_url)
                        retry_after = _retry_after(response.headers)
                        reset_at = _float_header(response.headers, "X-Rate-Limit-Reset")
                        detail = " ".join((await response.text())[:200].split())
                except TRANSIENT_ERRORS as error:
                    self._count(endpoint, _outcome_of(error))
                    status = 0
                    detail = _outcome_of(error)
                finally:
                    self._pacer.after_answer(answered)
            if status == 0:
                await budget.after_transient(detail)
            elif status == 401:
                # The first 401 drops the token; another one is fatal unless that token had
                # worked before (it expired meanwhile), within the attempt bound.
                if renewals and (
                    token != self._proven_token or renewals >= self.config.max_attempts
                ):
                    raise ProcoreAuthError(
                        f"Procore answered 401 to {endpoint} with a fresh token: the token is not "
                        f"accepted for company {self.config.company_id} (check the client id and "
                        "secret, the login host, and that the app is installed in the company)"
                    )
                renewals += 1
                await self._drop_token(token)
            elif status == 403:
                if "not connected" in detail.lower():
                    # DOC api_essentials/error_reference.md, additional_resources/faq.md.
                    raise ProcoreAuthError(
                        f"Procore answered 403 to {endpoint}: the app is not connected to company "
                        f"{self.config.company_id} (a Procore company admin must reconnect it: "
                        "Company Admin → App Management)"
                    )
                if project_id is not None:
                    raise ProjectNotReachable(
                        project_id, _project_reason(project_id, endpoint), endpoint
                    )
                raise ProcoreForbidden(
                    endpoint,
                    f"Procore answered 403 to {endpoint}: the service account lacks permission "
                    "for this tool (a Procore admin must grant it in the app's permissions)",
                )
            elif status == 404:
                raise ProcoreNotFound(f"Procore has nothing at {endpoint} ({url.path}): 404")
            elif status == 429:
                self.stats.rate_limited += 1
                wait = (reset_at - time.time()) if reset_at is not None else None
                if wait is None:
                    wait = (
                        retry_after if retry_after is not None else self.config.backoff_cap_seconds
                    )
                wait = max(0.0, wait) + random.uniform(0, self.config.jitter_seconds)
                self._pacer.pause_until(time.time() + wait)
                await budget.slow_down(wait, "429")
            elif status == 503 and retry_after is not None:
                self.stats.unavailable += 1
                self._pacer.pause_until(time.time() + retry_after)
                await budget.slow_down(retry_after, "503")
            elif status >= 500:
                await budget.after_transient(str(status))
            else:
                raise ProcoreError(f"Procore answered {status} to {endpoint}: {detail}")

    # -- files --------------------------------------------------------------------------------

    def _sends_token_to(self, url: str) -> bool:
        """True for the API host itself and for ``https://*.procore.com``; nothing else."""
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) == (self._api.scheme, self._api.netloc):
            return True
        host = (parts.hostname or "").lower().rstrip(".")
        return parts.scheme == "https" and (host == "procore.com" or host.endswith(".procore.com"))

    async def download(self, url: str, dest_dir: Path, max_bytes: int) -> DownloadedFile:
        """Stream a file URL into a new file in ``dest_dir``, hashing it on the way.

        Redirects are followed by hand (at most ``max_redirects``, else `TooManyRedirects`);
        the bearer token goes only where `_sends_token_to` allows. More than ``max_bytes`` →
        `FileTooLarge` (nothing kept); 401/403/404/410 → `FileUrlExpired` (re-read the invoice
        for a fresh URL). The caller owns the returned file.
        """
        endpoint = "GET file"
        budget = _RetryBudget(self.config, self.stats, endpoint)
        current = url
        hops = 0
        renewed = False
        while True:
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https"):
                raise ProcoreError(f"Procore file URL with scheme {parts.scheme!r} refused")
            trusted = self._sends_token_to(current)
            headers: dict[str, str] = {}
            token = ""
            if trusted:
                token = await self._access_token()
                headers = {
                    "Authorization": f"Bearer {token}",
                    COMPANY_HEADER: str(self.config.company_id),
                }
            async with self._slots:
                try:
                    async with self._http().get(
                        _as_url(current), headers=headers, allow_redirects=False
                    ) as response:
                        status = response.status
                        self._count(endpoint, str(status))
                        logger.debug("Procore file %s %s → %s", parts.hostname, parts.path, status)
                        if status in REDIRECT_STATUSES:
                            location = response.headers.get("Location")
                            if not location:
                                raise ProcoreError(
                                    f"file redirect without Location at {parts.path}"
                                )
                            hops += 1
                            if hops > self.config.max_redirects:
                                raise TooManyRedirects(
                                    f"file URL {parts.path} redirected more than "
                                    f"{self.config.max_redirects} times"
                                )
                            current = urljoin(current, location)
                            continue
                        if status == 200:
                            return await _save_stream(response, dest_dir, max_bytes, parts.path)
                        retry_after = _retry_after(response.headers)
                except TRANSIENT_ERRORS as error:
                    self._count(endpoint, _outcome_of(error))
                    await budget.after_transient(_outcome_of(error))
                    continue
            if status == 401 and trusted and not renewed:
                renewed = True
                await self._drop_token(token)
            elif status in EXPIRED_FILE_STATUSES:
                raise FileUrlExpired(
                    f"file URL {parts.path} on {parts.hostname} answered {status} (expired or "
                    "revoked)"
                )
            elif status in (429, 503):
                wait = retry_after if retry_after is not None else self.config.backoff_cap_seconds
                if status == 429:
                    self.stats.rate_limited += 1
                await budget.slow_down(wait, str(status))
            elif status >= 500:
                await budget.after_transient(str(status))
            else:
                raise ProcoreError(f"file URL {parts.path} answered {status}")

    def _count(self, endpoint: str, outcome: str) -> None:
        self.stats.requests[(endpoint, outcome)] += 1


def _as_url(text: str) -> URL:
    """A URL as the server wrote it (signatures depend on the exact bytes), quoted only when it
    holds characters a URL cannot (spaces, non-ASCII)."""
    if text.isascii() and not any(char.isspace() for char in text):
        return URL(text, encoded=True)
    return URL(text)


def _outcome_of(error: BaseException) -> str:
    return "timeout" if isinstance(error, TimeoutError) else "connection"


def _float_header(headers: Mapping[str, str], name: str) -> float | None:
    try:
        value = float(headers[name])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _param_pairs(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    pairs = params.items() if isinstance(params, Mapping) else params
    return [(key, _param_text(value)) for key, value in pairs]


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _json_body(response: aiohttp.ClientResponse, endpoint: str) -> Any:
    text = await response.text()
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ProcoreDataError(f"Procore answered {endpoint} with invalid JSON") from error


async def _save_stream(
    response: aiohttp.ClientResponse, dest_dir: Path, max_bytes: int, path: str
) -> DownloadedFile:
    """Write the body to a new file in ``dest_dir`` while hashing; refuse past ``max_bytes``."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise FileTooLarge(
            f"file {path} is {declared:,} bytes, more than the {max_bytes:,} cap",
            byte_size=declared,
            max_bytes=max_bytes,
        )
    os.makedirs(dest_dir, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=dest_dir, prefix="procore-", suffix=".download")
    target = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as output:
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(
                        f"file {path} is more than the {max_bytes:,}-byte cap",
                        byte_size=None,
                        max_bytes=max_bytes,
                    )
                digest.update(chunk)
                output.write(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    return DownloadedFile(path=target, sha256=digest.hexdigest(), byte_size=size)
