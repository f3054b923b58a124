"""A fake Procore REST API: an aiohttp server on 127.0.0.1 (a free port) serving a mutable,
in-memory `ProcoreWorld`, plus a second server (``localhost``, another port) standing in for
the file storage that attachment URLs redirect to.

Shapes, paths, query parameters and field names follow ``/work/shared/procore-api.md``:
- ``POST /oauth/token`` (client credentials, form fields); tokens expire server-side after
  ``token_valid_seconds`` (default: the ``expires_in`` told) or on `FakeProcore.expire_tokens`.
- Every ``/rest/...`` call needs a valid bearer token (else 401) and ``Procore-Company-Id``
  (else 400); a `FakeProject` with ``forbidden`` answers 403.
- Lists paginate with ``page``/``per_page`` (capped at 2000 on v1.x, 100 on v2.0) and answer
  ``Link`` (first/prev/next/last), ``Total`` and ``Per-Page``; v2.0 wraps in ``{"data": …}``.
- Rate limits: an hourly and a spike window (`RateLimit`), both counted on every ``/rest``
  call; the headers report the closer one; over either → 429.
- `FakeProcore.inject` makes the next matching calls answer 429, 503 + ``Retry-After``, 500,
  or drop the connection.
- Attachment URLs point at ``/storage/files/…`` on the API host (like storage.procore.com);
  that redirects to the storage server, which records whether ``Authorization`` reached it.
  `ProcoreWorld.storage_hops` adds redirects there; `expire_file_urls` makes old URLs 403.
- ``requests`` and ``storage_hits`` log every call for counting.

`world_from_bundle` serves a bundle folder (`tests/storage/bundles.py`, `commands/demo.py`) in
Procore's shapes; `synthetic_world` builds a large project for request-count checks.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-do-not-log"
MAX_PER_PAGE_V1 = 2000
MAX_PER_PAGE_V2 = 100
HEADER_ONLY_KEYS = ("items", "item_packages", "summary_text", "tax_summary", "detail_lines")
WEBHOOK_RESOURCES = (
    "Draw Requests",
    "Work Order Contracts",
    "Purchase Order Contracts",
    "Project Users",
    "Company Users",
    "Project Vendors",
    "Company Vendors",
    "Budget Snapshots",
)


def iso_now(offset_seconds: float = 0.0) -> str:
    """Now (plus an offset) as Procore writes timestamps: UTC ISO 8601 with ``Z``."""
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class FakeProject:
    """One project of the world. ``requisitions`` hold everything a show can answer (header,
    ``summary``, ``summary_text``, ``detail_lines`` = G703 lines, ``attachments`` with a
    ``file_key`` each); ``accessors`` maps a commitment id to its private list as the v2.0 show
    answers it (absent: the field is missing)."""

    id: int
    name: str
    project_number: str = ""
    forbidden: bool = False
    billing_periods: list[dict[str, Any]] = field(default_factory=list)
    work_order_contracts: list[dict[str, Any]] = field(default_factory=list)
    purchase_order_contracts: list[dict[str, Any]] = field(default_factory=list)
    accessors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    requisitions: dict[int, dict[str, Any]] = field(default_factory=dict)
    updated_at: str = field(default_factory=iso_now)

    def commitment(self, commitment_id: int) -> dict[str, Any]:
        """The work order or purchase order contract with this id."""
        return next(
            entry
            for entry in self.work_order_contracts + self.purchase_order_contracts
            if entry["id"] == commitment_id
        )


@dataclass
class ProcoreWorld:
    """Everything the fake serves; tests change it between calls."""

    company_id: int
    company_name: str = "Fake GC"
    projects: dict[int, FakeProject] = field(default_factory=dict)
    permission_templates: list[dict[str, Any]] = field(default_factory=list)
    permission_templates_forbidden: bool = False
    disconnected: bool = False  # App Management disconnected the app: every call answers 403
    files: dict[str, bytes] = field(default_factory=dict)
    my_tools: list[dict[str, Any]] = field(default_factory=list)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    token_expires_in: int = 5400
    token_valid_seconds: float | None = None
    extended_items_have_g703: bool = True
    storage_hops: int = 1
    chunked_files: bool = False  # files sent chunked, without Content-Length
    file_url_generation: int = 1
    # Webhooks: hook id → hook (``project_id`` None: company scope), hook id → triggers.
    hooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    triggers: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    webhook_resources: tuple[str, ...] = WEBHOOK_RESOURCES

    def add_project(self, project: FakeProject) -> FakeProject:
        """Add (or replace) a project and return it."""
        self.projects[project.id] = project
        return project

    def expire_file_urls(self) -> None:
        """Every attachment URL handed out so far now answers 403 (as an expired signature)."""
        self.file_url_generation += 1


def touch(record: dict[str, Any], offset_seconds: float = 0.0) -> None:
    """Mark a record as changed now (its ``updated_at``)."""
    record["updated_at"] = iso_now(offset_seconds)


@dataclass
class RateLimit:
    """A fixed window: ``limit`` calls per ``seconds``."""

    limit: int
    seconds: float
    started: float = 0.0
    used: int = 0

    def roll(self, now: float) -> None:
        if now >= self.started + self.seconds:
            self.started = now
            self.used = 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def reset_at(self) -> int:
        return math.ceil(self.started + self.seconds)


@dataclass
class Fault:
    """An injected answer for the next ``times`` calls whose path contains ``path_contains``."""

    kind: str  # "429", "503", "500", "502", "reset", "slow"
    times: int
    path_contains: str | None
    retry_after: float
    delay: float = 0.0  # "slow": seconds before the (otherwise normal) answer


@dataclass
class LoggedRequest:
    """One call the API server answered."""

    method: str
    path: str
    query: MultiDictProxy[str]
    status: int
    at: float
    authorization: str | None
    company_header: str | None


@dataclass
class StorageHit:
    """One call that reached the storage server."""

    path: str
    authorization: str | None
    at: float


class FakeProcore:
    """The two servers. ``url`` is the API (and login) host, ``storage_url`` the file host."""

    def __init__(
        self,
        world: ProcoreWorld,
        *,
        hourly: tuple[int, float] = (3600, 3600.0),
        spike: tuple[int, float] = (1000, 10.0),
    ) -> None:
        self.world = world
        self.hourly = RateLimit(*hourly)
        self.spike = RateLimit(*spike)
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self.storage_hits: list[StorageHit] = []
        self.tokens: dict[str, float] = {}
        self.issued_tokens: list[str] = []
        self.answered_429 = 0
        self.url = ""
        self.storage_url = ""
        self._runners: list[web.AppRunner] = []
        self._token_numbers = itertools.count(1)
        self._hook_ids = itertools.count(900_000_000_001)
        self._trigger_ids = itertools.count(910_000_000_001)

    # -- control ------------------------------------------------------------------------------

    def set_limits(
        self, *, hourly: tuple[int, float] | None = None, spike: tuple[int, float] | None = None
    ) -> None:
        """Change the rate-limit windows (fresh windows start)."""
        if hourly is not None:
            self.hourly = RateLimit(*hourly)
        if spike is not None:
            self.spike = RateLimit(*spike)

    def inject(
        self,
        kind: str,
        *,
        times: int = 1,
        path_contains: str | None = None,
        retry_after: float = 1,
        delay: float = 5,
    ) -> None:
        """The next ``times`` matching API calls answer ``kind``: ``"429"`` (Reset in
        ``retry_after`` s), ``"503"`` (with ``Retry-After``), ``"500"``, ``"502"``,
        ``"reset"`` (connection dropped without an answer) or ``"slow"`` (the normal answer,
        ``delay`` seconds late: past a client's request timeout)."""
        self.faults.append(Fault(kind, times, path_contains, retry_after, delay))

    def expire_tokens(self) -> None:
        """Every token issued so far is now rejected with 401."""
        self.tokens.clear()

    def api_requests(self, path_contains: str = "") -> list[LoggedRequest]:
        """Logged ``/rest`` calls (token calls excluded) whose path contains the text."""
        return [
            entry
            for entry in self.requests
            if entry.path.startswith("/rest") and path_contains in entry.path
        ]

    def clear_logs(self) -> None:
        """Forget the request logs (between phases of a test)."""
        self.requests.clear()
        self.storage_hits.clear()

    # -- servers ------------------------------------------------------------------------------

    async def start(self) -> None:
        api = web.Application(middlewares=[self._middleware])
        api.router.add_post("/oauth/token", self._token)
        api.router.add_get("/rest/v1.0/projects", self._projects)
        api.router.add_get("/rest/v1.0/projects/{project_id}", self._project)
        api.router.add_get(
            "/rest/v1.0/projects/{project_id}/billing_periods", self._billing_periods
        )
        api.router.add_get("/rest/v1.0/work_order_contracts", self._work_order_contracts)
        api.router.add_get("/rest/v1.0/purchase_order_contracts", self._purchase_order_contracts)
        api.router.add_get(
            "/rest/v2.0/companies/{company_id}/projects/{project_id}/commitment_contracts/{id}",
            self._commitment_contract_v2,
        )
        api.router.add_get("/rest/v1.0/projects/{project_id}/users", self._users)
        api.router.add_get("/rest/v1.0/projects/{project_id}/users/inactive", self._users)
        api.router.add_get(
            "/rest/v1.0/companies/{company_id}/permission_templates", self._permission_templates
        )
        api.router.add_get("/rest/v1.1/requisitions", self._requisitions)
        api.router.add_get("/rest/v1.1/requisitions/{id}", self._requisition)
        api.router.add_get("/rest/v1.0/requisitions/{id}/detail", self._requisition_detail)
        api.router.add_get("/rest/v1.0/settings/permissions", self._settings_permissions)
        api.router.add_get("/rest/v1.0/work_order_contracts/{id}", self._commitment_show)
        api.router.add_get("/rest/v1.0/purchase_order_contracts/{id}", self._commitment_show)
        for scope in (
            "/rest/v2.0/companies/{company_id}",
            "/rest/v2.0/companies/{company_id}/projects/{project_id}",
        ):
            hooks = f"{scope}/webhooks/hooks"
            api.router.add_get(hooks, self._hooks)
            api.router.add_post(hooks, self._hook_create)
            api.router.add_patch(hooks + "/{hook_id}", self._hook_update)
            api.router.add_delete(hooks + "/{hook_id}", self._hook_delete)
            api.router.add_get(hooks + "/{hook_id}/triggers", self._triggers)
            api.router.add_post(hooks + "/{hook_id}/triggers/bulk", self._triggers_create)
            api.router.add_delete(hooks + "/{hook_id}/triggers/bulk", self._triggers_delete)
        api.router.add_get(
            "/rest/v2.0/companies/{company_id}/webhooks/resources", self._webhook_resources
        )
        api.router.add_get("/storage/files/{key:.+}", self._storage_redirect)
        storage = web.Application()
        storage.router.add_get("/s3/{key:.+}", self._storage_file)
        api_port, storage_port = [await self._listen(app) for app in (api, storage)]
        self.url = f"http://127.0.0.1:{api_port}"
        self.storage_url = f"http://localhost:{storage_port}"

    async def _listen(self, app: web.Application) -> int:
        """Serve ``app`` on 127.0.0.1, on a port the OS chooses (bound at once: no other process
        can take it in between); return the port."""
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.append(runner)
        return int(runner.addresses[0][1])

    async def close(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> FakeProcore:
        """``async with FakeProcore(world) as fake``: started on entry, closed on exit."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the gate every call passes -----------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        try:
            response = await self._answer(request, handler)
        except web.HTTPException as error:
            response = web.Response(status=error.status, text=error.text, headers=error.headers)
        self.requests.append(
            LoggedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                status=response.status,
                at=time.time(),
                authorization=request.headers.get("Authorization"),
                company_header=request.headers.get("Procore-Company-Id"),
            )
        )
        return response

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if not request.path.startswith("/rest"):
            return await handler(request)
        fault = self._take_fault(request.path)
        if fault is not None and fault.kind == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=599)  # never sent: the connection is gone
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)  # the server being slow, not a test waiting
            fault = None
        if not self._authorized(request):
            return _error(401, "invalid or expired access token")
        if request.headers.get("Procore-Company-Id") != str(self.world.company_id):
            return _error(400, "Procore-Company-Id header missing or wrong")
        if self.world.disconnected:  # DOC api_essentials/error_reference.md
            return _error(403, "App is not connected to this company")
        now = time.time()
        for window in (self.hourly, self.spike):
            window.roll(now)
        closest = min((self.hourly, self.spike), key=lambda window: window.remaining)
        if fault is not None and fault.kind == "429":
            self.answered_429 += 1
            return _error(
                429,
                "rate limit exceeded",
                {
                    "X-Rate-Limit-Limit": str(closest.limit),
                    "X-Rate-Limit-Remaining": "0",
                    "X-Rate-Limit-Reset": str(math.ceil(now + fault.retry_after)),
                },
            )
        if fault is not None and fault.kind == "503":
            return _error(503, "service unavailable", {"Retry-After": f"{fault.retry_after:g}"})
        if fault is not None:
            return _error(int(fault.kind), "internal error")
        if closest.remaining <= 0:
            self.answered_429 += 1
            return _error(429, "rate limit exceeded", _limit_headers(closest))
        for window in (self.hourly, self.spike):
            window.used += 1
        closest = min((self.hourly, self.spike), key=lambda window: window.remaining)
        try:
            response = await handler(request)
        except web.HTTPException as error:
            response = web.Response(status=error.status, text=error.text, headers=error.headers)
        response.headers.update(_limit_headers(closest))
        return response

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and (fault.path_contains is None or fault.path_contains in path):
                fault.times -= 1
                return fault
        return None

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        expires = self.tokens.get(header.removeprefix("Bearer "))
        return expires is not None and time.time() < expires

    # -- token --------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.world.client_id,
            self.world.client_secret,
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"fake-token-{next(self._token_numbers)}-{secrets.token_hex(8)}"
        valid = self.world.token_valid_seconds
        self.tokens[token] = time.time() + (
            valid if valid is not None else self.world.token_expires_in
        )
        self.issued_tokens.append(token)
        return web.json_response(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.world.token_expires_in,
                "created_at": int(time.time()),
            }
        )

    # -- lookups ------------------------------------------------------------------------------

    def _project_of(self, request: web.Request) -> FakeProject:
        raw = request.match_info.get("project_id") or request.query.get("project_id")
        try:
            project = self.world.projects[int(raw or "")]
        except (KeyError, ValueError):
            raise _http_error(404, "project not found") from None
        if project.forbidden:
            raise _http_error(403, "You do not have access to this project")
        return project

    def _requisition_of(self, request: web.Request) -> dict[str, Any]:
        project = self._project_of(request)
        try:
            return project.requisitions[int(request.match_info["id"])]
        except (KeyError, ValueError):
            raise _http_error(404, "requisition not found") from None

    # -- endpoints ----------------------------------------------------------------------------

    async def _projects(self, request: web.Request) -> web.Response:
        if request.query.get("company_id") != str(self.world.company_id):
            raise _http_error(400, "company_id required")
        return _page(request, [self._project_json(p) for p in self.world.projects.values()])

    async def _project(self, request: web.Request) -> web.Response:
        return web.json_response(self._project_json(self._project_of(request)))

    def _project_json(self, project: FakeProject) -> dict[str, Any]:
        return {
            "id": project.id,
            "name": project.name,
            "project_number": project.project_number,
            "company": {"id": self.world.company_id, "name": self.world.company_name},
            "active": True,
            "updated_at": project.updated_at,
        }

    async def _billing_periods(self, request: web.Request) -> web.Response:
        project = self._project_of(request)
        periods = _filter_updated(request, project.billing_periods)
        return _page(request, sorted(periods, key=lambda period: period["position"]))

    async def _work_order_contracts(self, request: web.Request) -> web.Response:
        return self._commitments(request, self._project_of(request).work_order_contracts)

    async def _purchase_order_contracts(self, request: web.Request) -> web.Response:
        return self._commitments(request, self._project_of(request).purchase_order_contracts)

    def _commitments(self, request: web.Request, entries: list[dict[str, Any]]) -> web.Response:
        extended = request.query.get("view") == "extended"
        shown = []
        for entry in _filter_updated(request, entries):
            entry = copy.deepcopy(entry)
            if not extended:
                entry.pop("invoice_contacts", None)
            shown.append(entry)
        return _page(request, shown)

    async def _commitment_contract_v2(self, request: web.Request) -> web.Response:
        project = self._project_of(request)
        try:
            commitment = project.commitment(int(request.match_info["id"]))
        except (StopIteration, ValueError):
            raise _http_error(404, "commitment not found") from None
        data: dict[str, Any] = {
            "id": str(commitment["id"]),
            "number": commitment["number"],
            "title": commitment["title"],
            "private": commitment["private"],
            "type": commitment.get("type", "WorkOrderContract"),
        }
        if request.query.get("view") == "extended" and commitment["id"] in project.accessors:
            data["accessors"] = copy.deepcopy(project.accessors[commitment["id"]])
        return web.json_response({"data": data})

    async def _users(self, request: web.Request) -> web.Response:
        project = self._project_of(request)
        inactive = request.path.endswith("/inactive")
        users = [user for user in project.users if bool(user.get("is_active", True)) != inactive]
        if request.query.get("view", "compact") == "compact":
            users = [{"id": user["id"], "name": user["name"]} for user in users]
        return _page(request, users)

    async def _permission_templates(self, request: web.Request) -> web.Response:
        if self.world.permission_templates_forbidden:
            raise _http_error(403, "You do not have access to the Directory")
        templates = copy.deepcopy(self.world.permission_templates)
        if request.query.get("view") != "with_permissions":
            for template in templates:
                template.pop("user_access_levels", None)
        return _page(request, templates)

    async def _requisitions(self, request: web.Request) -> web.Response:
        project = self._project_of(request)
        entries = list(project.requisitions.values())
        wanted = {int(value) for value in request.query.getall("filters[id][]", [])}
        if wanted:
            entries = [entry for entry in entries if entry["id"] in wanted]
        entries = _filter_updated(request, entries)
        shown = [self._requisition_json(entry, "default") for entry in entries]
        return _page(request, sorted(shown, key=lambda entry: entry["id"]), default_per_page=30)

    async def _requisition(self, request: web.Request) -> web.Response:
        requisition = self._requisition_of(request)
        return web.json_response(
            self._requisition_json(requisition, request.query.get("view", "default"))
        )

    async def _requisition_detail(self, request: web.Request) -> web.Response:
        return web.json_response(copy.deepcopy(self._requisition_of(request)["detail_lines"]))

    def _requisition_json(self, requisition: dict[str, Any], view: str) -> dict[str, Any]:
        shown = {
            key: copy.deepcopy(value)
            for key, value in requisition.items()
            if key not in HEADER_ONLY_KEYS
        }
        shown["attachments"] = [
            self._attachment_json(entry) for entry in requisition["attachments"]
        ]
        if view in ("extended", "items"):
            lines = copy.deepcopy(requisition["detail_lines"])
            if not self.world.extended_items_have_g703:
                lines = [{"id": line["id"], "position": line.get("position")} for line in lines]
            shown["items"] = lines
            shown["item_packages"] = []
        if view in ("extended", "header_only"):
            shown["summary_text"] = copy.deepcopy(requisition.get("summary_text") or {})
        return shown

    def _attachment_json(self, attachment: dict[str, Any]) -> dict[str, Any]:
        key = attachment["file_key"]
        return {
            "id": attachment["id"],
            "filename": attachment["filename"],
            "content_type": attachment["content_type"],
            "url": (
                f"{self.url}/storage/files/{quote(key)}?companyId={self.world.company_id}"
                f"&sig={self._signature(key)}"
            ),
        }

    def _signature(self, key: str) -> str:
        return hashlib.sha256(f"{self.world.file_url_generation}:{key}".encode()).hexdigest()[:24]

    async def _settings_permissions(self, request: web.Request) -> web.Response:
        self._project_of(request)
        return web.json_response({"tools": copy.deepcopy(self.world.my_tools)})

    async def _commitment_show(self, request: web.Request) -> web.Response:
        project = self._project_of(request)
        kind = request.path.split("/")[3]
        entries = getattr(project, kind)
        try:
            wanted = int(request.match_info["id"])
            return web.json_response(
                copy.deepcopy(next(entry for entry in entries if entry["id"] == wanted))
            )
        except (StopIteration, ValueError):
            raise _http_error(404, "commitment not found") from None

    # -- webhooks -----------------------------------------------------------------------------

    def _hook_scope(self, request: web.Request) -> int | None:
        if request.match_info["company_id"] != str(self.world.company_id):
            raise _http_error(404, "company not found")
        if "project_id" in request.match_info:
            return self._project_of(request).id
        return None

    def _hook_of(self, request: web.Request) -> dict[str, Any]:
        scope = self._hook_scope(request)
        try:
            hook = self.world.hooks[int(request.match_info["hook_id"])]
        except (KeyError, ValueError):
            raise _http_error(404, "hook not found") from None
        if hook["project_id"] != scope:
            raise _http_error(404, "hook not found")
        return hook

    def _hook_json(self, hook: dict[str, Any]) -> dict[str, Any]:
        """A hook as Procore's v2.0 shows it (OAS ``…WebhooksHooksGet``): string ids, a
        ``status``, its ``trigger_count`` and the ``Authorization`` header masked to its last 5
        characters."""
        shown = copy.deepcopy(hook)
        shown["id"] = str(hook["id"])
        shown["company_id"] = str(self.world.company_id)
        shown["project_id"] = str(hook["project_id"]) if hook["project_id"] is not None else None
        shown["trigger_count"] = len(self.world.triggers.get(hook["id"], []))
        headers = shown.get("destination_headers") or {}
        if isinstance(headers.get("Authorization"), str):
            secret = headers["Authorization"]
            headers["Authorization"] = "*" * max(0, len(secret) - 5) + secret[-5:]
        return shown

    def _trigger_json(self, hook: dict[str, Any], trigger: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(trigger["id"]),
            "webhook_hook_id": str(hook["id"]),
            "resource_name": trigger["resource_name"],
            "event_type": trigger["event_type"],
            "company_id": str(self.world.company_id),
            "project_id": str(hook["project_id"]) if hook["project_id"] is not None else None,
        }

    async def _hooks(self, request: web.Request) -> web.Response:
        scope = self._hook_scope(request)
        namespace = request.query.get("namespace")
        shown = [
            self._hook_json(hook)
            for hook in self.world.hooks.values()
            if hook["project_id"] == scope and namespace in (None, hook["namespace"])
        ]
        return _page(request, shown, default_per_page=10)

    async def _hook_create(self, request: web.Request) -> web.Response:
        scope = self._hook_scope(request)
        body = await _json_object(request)
        for key in ("namespace", "destination_url"):
            if not isinstance(body.get(key), str):
                raise _http_error(400, f"{key} is required")
        hook_id = next(self._hook_ids)
        self.world.hooks[hook_id] = {
            "id": hook_id,
            "project_id": scope,
            "status": "active",
            "namespace": body["namespace"],
            "destination_url": body["destination_url"],
            "destination_headers": dict(body.get("destination_headers") or {}),
            "payload_version": body.get("payload_version", "v2.0"),
        }
        self.world.triggers[hook_id] = []
        return web.json_response({"data": self._hook_json(self.world.hooks[hook_id])}, status=201)

    async def _hook_update(self, request: web.Request) -> web.Response:
        hook = self._hook_of(request)
        body = await _json_object(request)
        if body.get("status", "active") not in ("active", "disabled"):
            raise _http_error(400, "status must be active or disabled")
        for key in ("destination_url", "destination_headers", "payload_version", "status"):
            if key in body:
                hook[key] = copy.deepcopy(body[key])
        return web.json_response({"data": self._hook_json(hook)})

    async def _hook_delete(self, request: web.Request) -> web.Response:
        hook = self._hook_of(request)
        del self.world.hooks[hook["id"]]
        self.world.triggers.pop(hook["id"], None)
        return web.Response(status=204)

    async def _triggers(self, request: web.Request) -> web.Response:
        hook = self._hook_of(request)
        shown = [self._trigger_json(hook, trigger) for trigger in self.world.triggers[hook["id"]]]
        return _page(request, shown, default_per_page=10)

    async def _triggers_create(self, request: web.Request) -> web.Response:
        """OAS ``…TriggersBulkPost``: the body is a JSON array of ``{resource_name,
        event_type}``, at most 500."""
        hook = self._hook_of(request)
        wanted = await _json_body(request)
        if not isinstance(wanted, list) or len(wanted) > 500:
            raise _http_error(400, "the body must be a JSON array of at most 500 triggers")
        created = []
        for entry in wanted:
            if (
                not isinstance(entry, dict)
                or entry.get("resource_name") not in self.world.webhook_resources
                or entry.get("event_type") not in ("create", "update", "delete")
            ):
                raise _http_error(400, f"invalid trigger {entry!r}")
            trigger = {
                "id": next(self._trigger_ids),
                "resource_name": entry["resource_name"],
                "event_type": entry["event_type"],
            }
            self.world.triggers[hook["id"]].append(trigger)
            created.append(self._trigger_json(hook, trigger))
        return web.json_response({"data": created}, status=201)

    async def _triggers_delete(self, request: web.Request) -> web.Response:
        """OAS ``…TriggersBulkDelete``: the body is a JSON array of trigger ids (strings)."""
        hook = self._hook_of(request)
        ids = await _json_body(request)
        if not isinstance(ids, list) or not all(isinstance(value, str) for value in ids):
            raise _http_error(400, "the body must be a JSON array of trigger ids (strings)")
        kept = [t for t in self.world.triggers[hook["id"]] if str(t["id"]) not in ids]
        deleted = [str(t["id"]) for t in self.world.triggers[hook["id"]] if str(t["id"]) in ids]
        self.world.triggers[hook["id"]] = kept
        return web.json_response({"data": {"succeeded": deleted}})

    async def _webhook_resources(self, request: web.Request) -> web.Response:
        self._hook_scope(request)
        return web.json_response(
            {
                "data": [
                    {"name": name, "actions": ["create", "update", "delete"]}
                    for name in self.world.webhook_resources
                ]
            }
        )

    def hooks_for(
        self, resource_name: str, event_type: str, project_id: int | None
    ) -> list[dict[str, Any]]:
        """The hooks that would fire for this event: a trigger matches, in the company's scope
        or the project's."""
        fired = []
        for hook in self.world.hooks.values():
            if hook["project_id"] not in (None, project_id):
                continue
            if any(
                trigger["resource_name"] == resource_name and trigger["event_type"] == event_type
                for trigger in self.world.triggers.get(hook["id"], [])
            ):
                fired.append(hook)
        return fired

    async def deliver(
        self,
        resource_name: str,
        resource_id: int,
        event_type: str,
        *,
        project_id: int | None,
        ulid: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> list[int]:
        """Send the v2.0 delivery of this event to every hook it fires, with the hook's
        destination headers, as Procore does; the HTTP statuses answered."""
        statuses = []
        for hook in self.hooks_for(resource_name, event_type, project_id):
            payload = webhook_payload(
                self.world.company_id, project_id, resource_name, resource_id, event_type, ulid=ulid
            )
            statuses.append(
                await post_delivery(
                    hook["destination_url"], payload, hook["destination_headers"], session=session
                )
            )
        return statuses

    # -- files --------------------------------------------------------------------------------

    async def _storage_redirect(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if request.query.get("sig") != self._signature(key):
            return _error(403, "signature expired")
        if key not in self.world.files:
            return _error(404, "no such file")
        raise web.HTTPFound(
            f"{self.storage_url}/s3/{quote(key)}?hop=1&X-Amz-Signature={self._signature(key)}"
        )

    async def _storage_file(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        self.storage_hits.append(
            StorageHit(request.path, request.headers.get("Authorization"), time.time())
        )
        hop = int(request.query.get("hop", "1"))
        if hop < self.world.storage_hops:
            raise web.HTTPFound(
                f"/s3/{quote(key)}?hop={hop + 1}&X-Amz-Signature={self._signature(key)}"
            )
        if request.query.get("X-Amz-Signature") != self._signature(key):
            return _error(403, "Request has expired")
        content = self.world.files.get(key)
        if content is None:
            return _error(404, "NoSuchKey")
        if not self.world.chunked_files:
            return web.Response(body=content, content_type="application/octet-stream")
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(content), 4096):
            await response.write(content[start : start + 4096])
        await response.write_eof()
        return response


_delivery_numbers = itertools.count(1)


def webhook_payload(
    company_id: int,
    project_id: int | None,
    resource_name: str,
    resource_id: int,
    event_type: str,
    *,
    ulid: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """A v2.0 delivery body (notes §7); a fresh ``ulid`` unless given."""
    number = next(_delivery_numbers)
    return {
        "id": 700_000_000_000 + number,
        "ulid": ulid if ulid is not None else f"01J{secrets.token_hex(11).upper()}",
        "timestamp": timestamp or iso_now(),
        "metadata": {
            "source_user_id": 1,
            "source_project_id": project_id,
            "source_company_id": company_id,
            "source_application_id": None,
            "source_operation_id": None,
        },
        "user_id": 1,
        "company_id": company_id,
        "project_id": project_id,
        "api_version": "v2.0",
        "event_type": event_type,
        "resource_name": resource_name,
        "resource_id": resource_id,
    }


async def post_delivery(
    url: str,
    payload: Any,
    headers: dict[str, str],
    *,
    session: aiohttp.ClientSession | None = None,
) -> int:
    """POST one delivery (JSON, or ``bytes`` as they are) to ``url``; the HTTP status."""
    owned = session is None
    http = session or aiohttp.ClientSession()
    try:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        async with http.post(
            url, data=body, headers={"Content-Type": "application/json", **headers}
        ) as response:
            await response.read()
            return response.status
    finally:
        if owned:
            await http.close()


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise _http_error(400, "body must be JSON") from None


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise _http_error(400, "body must be a JSON object")
    return body


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"errors": message}, status=status, headers=headers)


def _http_error(status: int, message: str) -> web.HTTPException:
    kinds: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
    }
    return kinds[status](text=json.dumps({"errors": message}), content_type="application/json")


def _limit_headers(window: RateLimit) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": str(window.limit),
        "X-Rate-Limit-Remaining": str(window.remaining),
        "X-Rate-Limit-Reset": str(window.reset_at),
    }


def _filter_updated(request: web.Request, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``filters[updated_at]=A...B`` (inclusive), as Procore's range filters read."""
    wanted = request.query.get("filters[updated_at]")
    if not wanted:
        return list(entries)
    start_text, _, end_text = wanted.partition("...")
    try:
        start, end = _parse_time(start_text), _parse_time(end_text)
    except ValueError:
        raise _http_error(400, "filters[updated_at] must be a range A...B") from None
    return [entry for entry in entries if start <= _parse_time(entry["updated_at"]) <= end]


def _page(request: web.Request, entries: list[Any], *, default_per_page: int = 100) -> web.Response:
    """One page of ``entries`` with Link/Total/Per-Page; v2.0 paths wrap it in ``data``."""
    v2 = request.path.startswith("/rest/v2.0")
    cap = MAX_PER_PAGE_V2 if v2 else MAX_PER_PAGE_V1
    try:
        page = max(1, int(request.query.get("page", "1")))
        per_page = min(cap, max(1, int(request.query.get("per_page", str(default_per_page)))))
    except ValueError:
        raise _http_error(400, "page and per_page must be integers") from None
    last = max(1, math.ceil(len(entries) / per_page))
    shown = entries[(page - 1) * per_page : page * per_page]
    base = request.url

    def link(number: int, rel: str) -> str:
        return f'<{base.update_query(page=number, per_page=per_page)}>; rel="{rel}"'

    links = [link(1, "first"), link(last, "last")]
    if page > 1:
        links.append(link(page - 1, "prev"))
    if page < last:
        links.append(link(page + 1, "next"))
    headers = {"Link": ", ".join(links), "Total": str(len(entries)), "Per-Page": str(per_page)}
    return web.json_response({"data": shown} if v2 else shown, headers=headers)


# ---------------------------------------------------------------------------------------------
# Worlds


def template(template_id: int, name: str, commitments: Any) -> dict[str, Any]:
    """A permission template whose ``user_access_levels`` gives ``commitments`` (left out when
    None, for the 'cannot tell' case)."""
    levels: dict[str, Any] = {"directory": "read_only"}
    if commitments is not None:
        levels["commitments"] = commitments
    return {
        "id": template_id,
        "name": name,
        "project_specific": False,
        "type": "global",  # OAS: project_specific | company_tools | global
        "category": "internal",
        "user_access_levels": levels,
    }


TEMPLATE_IDS = {"none": 7700, "read_only": 7701, "standard": 7702, "admin": 7703}


def level_templates() -> list[dict[str, Any]]:
    """One template per Commitments level, ids `TEMPLATE_IDS`."""
    return [
        template(template_id, f"Commitments {level}", level)
        for level, template_id in TEMPLATE_IDS.items()
    ]


def user_json(
    user_id: int,
    name: str,
    email: str,
    *,
    level: str | None,
    is_active: bool = True,
    vendor: dict[str, Any] | None = None,
    template_id: int | None = None,
) -> dict[str, Any]:
    """A project user; the template is the level's (`TEMPLATE_IDS`) unless ``template_id``."""
    chosen = template_id if template_id is not None else TEMPLATE_IDS.get(level or "")
    first, _, last = name.partition(" ")
    return {
        "id": user_id,
        "name": name,
        "first_name": first,
        "last_name": last,
        "email_address": email,
        "job_title": None,
        "is_active": is_active,
        "is_employee": vendor is None,
        "vendor": vendor,
        "contact_id": None,
        "permission_template": (
            {"id": chosen, "name": f"Template {chosen}", "project_specific": False, "type": None}
            if chosen is not None
            else None
        ),
        "updated_at": iso_now(),
    }


def commitment_json(
    commitment_id: int,
    number: str,
    title: str,
    *,
    vendor_id: int | None,
    vendor_name: str,
    private: bool = False,
    status: str = "Approved",
    executed: bool = True,
    invoice_contacts: list[dict[str, Any]] | None = None,
    kind: str = "WorkOrderContract",
) -> dict[str, Any]:
    """A v1.0 work order / purchase order contract (extended view)."""
    return {
        "id": commitment_id,
        "number": number,
        "title": title,
        "status": status,
        "executed": executed,
        "private": private,
        "show_line_items_to_non_admins": False,
        "type": kind,
        "vendor": {"id": vendor_id, "company": vendor_name, "origin_id": None}
        if vendor_id is not None
        else None,
        "requisitions_are_enabled": True,
        "retainage_percent": "10.0",
        "invoice_contacts": [
            {
                "id": contact["id"],
                "login_information_id": contact["id"],
                "name": contact.get("name", ""),
                "email": contact.get("email", ""),
                "job_title": None,
                "vendor_name": vendor_name,
            }
            for contact in invoice_contacts or []
        ],
        "attachments": [],
        "deleted_at": None,
        "updated_at": iso_now(),
    }


def requisition_json(
    project_id: int,
    requisition_id: int,
    commitment: dict[str, Any],
    *,
    number: int,
    period_id: int,
    status: str,
    summary: dict[str, Any],
    summary_text: dict[str, Any] | None = None,
    detail_lines: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    invoice_number: str | None = None,
    requisition_start: str | None = None,
    requisition_end: str | None = None,
    billing_date: str | None = None,
    electronic_signature_id: int | None = None,
) -> dict[str, Any]:
    """A requisition as the fake keeps it; ``attachments``: [{id, filename, content_type,
    file_key}] (the fake turns ``file_key`` into a URL)."""
    vendor = commitment.get("vendor") or {}
    return {
        "id": requisition_id,
        "previous_requisition_id": None,
        "project_id": project_id,
        "commitment_id": commitment["id"],
        "commitment_type": commitment.get("type", "WorkOrderContract"),
        "contract_name": commitment["title"],
        "vendor_id": vendor.get("id"),
        "vendor_name": vendor.get("company"),
        "invoice_number": invoice_number,
        "number": number,
        "invoice_type": "progress",
        "contract_invoicing_method": "progressive",
        "period_id": period_id,
        "billing_date": billing_date,
        "requisition_start": requisition_start,
        "requisition_end": requisition_end,
        "status": status,
        "erp_status": None,
        "submitted_at": None,
        "payment_date": None,
        "percent_complete": "25.00%",
        "total_claimed_amount": summary.get("current_payment_due", "0.00"),
        "final": False,
        "deletable": False,
        "electronic_signature_id": electronic_signature_id,
        "summary": summary,
        "summary_text": summary_text or {},
        "detail_lines": detail_lines or [],
        "attachments": attachments or [],
        "created_by": {"id": 1, "name": "Fake Creator", "login": "creator@example.com"},
        "created_at": iso_now(-86400),
        "updated_at": iso_now(),
    }


SIGNED_ATTACHMENT_ID_BASE = 10**12


def world_from_bundle(folder: Path, *, company_id: int | None = None) -> ProcoreWorld:
    """A world serving a bundle folder's data in Procore's shapes (one project).

    Commitments numbered ``PO…`` become purchase orders, the rest work orders; each user's
    ``commitments_access`` becomes a permission template (`TEMPLATE_IDS`); a private list
    becomes the v2.0 ``accessors``; a ``signed_pdf`` becomes one more attachment (id
    ``SIGNED_ATTACHMENT_ID_BASE + requisition id``) with ``electronic_signature_id`` set,
    which is where `sources.procore.signed_pdf_of` looks for it.
    """

    def load(name: str) -> Any:
        return json.loads((folder / name).read_text(encoding="utf-8"))

    project_data = load("project.json")
    world = ProcoreWorld(
        company_id=company_id if company_id is not None else project_data["company"]["id"],
        company_name=project_data["company"].get("name") or "",
        permission_templates=level_templates(),
    )
    project = world.add_project(
        FakeProject(
            id=project_data["id"],
            name=project_data["name"],
            project_number=project_data.get("project_number") or "",
        )
    )
    for period in load("billing_periods.json"):
        project.billing_periods.append(
            {**period, "project_id": project.id, "created_at": iso_now(), "updated_at": iso_now()}
        )
    users = load("users.json")
    names = {user["id"]: user.get("name", "") for user in users}
    for user in users:
        vendor = user.get("vendor")
        project.users.append(
            user_json(
                user["id"],
                user.get("name", ""),
                user.get("email_address", ""),
                level=user["commitments_access"],
                is_active=user.get("is_active", True),
                vendor={"id": vendor["id"], "name": vendor.get("name")} if vendor else None,
            )
        )
    commitments = {}
    for entry in load("commitments.json"):
        vendor = entry.get("vendor") or {}
        purchase_order = str(entry["number"]).upper().startswith("PO")
        commitment = commitment_json(
            entry["id"],
            entry["number"],
            entry.get("title", ""),
            vendor_id=vendor.get("id"),
            vendor_name=vendor.get("name", ""),
            private=entry.get("private", False),
            status=entry.get("status", ""),
            executed=entry.get("executed", False),
            invoice_contacts=entry.get("invoice_contacts", []),
            kind="PurchaseOrderContract" if purchase_order else "WorkOrderContract",
        )
        if purchase_order:
            project.purchase_order_contracts.append(commitment)
        else:
            project.work_order_contracts.append(commitment)
        project.accessors[entry["id"]] = [
            {"id": str(member["id"]), "name": names.get(member["id"], ""), "login": member["email"]}
            for member in entry.get("private_list", [])
        ]
        commitments[entry["id"]] = commitment
    for entry in load("requisitions.json"):
        attachments = []
        for attachment in entry.get("attachments", []):
            key = f"{entry['id']}/{attachment['id']}/{attachment['filename']}"
            world.files[key] = (folder / attachment["url"]).read_bytes()
            attachments.append({**attachment, "file_key": key})
        signature_id = None
        signed = entry.get("signed_pdf")
        if signed:
            signature_id = entry["id"]
            key = f"{entry['id']}/signed/{signed['filename']}"
            world.files[key] = (folder / signed["url"]).read_bytes()
            attachments.append(
                {
                    "id": SIGNED_ATTACHMENT_ID_BASE + entry["id"],
                    "filename": signed["filename"],
                    "content_type": "application/pdf",
                    "file_key": key,
                }
            )
        project.requisitions[entry["id"]] = requisition_json(
            project.id,
            entry["id"],
            commitments[entry["commitment_id"]],
            number=entry["number"],
            period_id=entry["period_id"],
            status=entry["status"],
            summary=entry["summary"],
            summary_text=entry.get("summary_text"),
            detail_lines=entry.get("items"),
            attachments=attachments,
            invoice_number=entry.get("invoice_number"),
            requisition_start=entry.get("requisition_start"),
            requisition_end=entry.get("requisition_end"),
            billing_date=entry.get("billing_date"),
            electronic_signature_id=signature_id,
        )
    return world


def synthetic_world(
    *,
    project_id: int = 562949953421312,
    company_id: int = 562949953400001,
    invoices: int = 10_000,
    contracts: int = 250,
    private_every: int = 10,
    users: int = 120,
    periods: int = 24,
) -> ProcoreWorld:
    """A large project: ``contracts`` commitments (every ``private_every``-th private, a tenth
    of them purchase orders), ``invoices`` requisitions spread over them, each with one
    attachment (all sharing one small file), ``users`` users and ``periods`` billing periods."""
    world = ProcoreWorld(company_id=company_id, permission_templates=level_templates())
    world.files["shared/lien-waiver.pdf"] = b"%PDF-1.4\n% synthetic\n%%EOF\n"
    project = world.add_project(FakeProject(id=project_id, name="Big Tower", project_number="BT-1"))
    for index in range(periods):
        start = datetime(2025, 1, 1) + timedelta(days=31 * index)
        project.billing_periods.append(
            {
                "id": 880000 + index,
                "project_id": project_id,
                "position": index + 1,
                "start_date": start.date().isoformat(),
                "end_date": (start + timedelta(days=27)).date().isoformat(),
                "due_date": None,
                "status": "open" if index == periods - 1 else "closed",
                "created_at": iso_now(),
                "updated_at": iso_now(),
            }
        )
    levels = list(TEMPLATE_IDS)
    for index in range(users):
        project.users.append(
            user_json(
                5_000_000_000 + index,
                f"User {index}",
                f"user{index}@example.com",
                level=levels[index % len(levels)],
                is_active=index % 17 != 0,
            )
        )
    commitment_list = []
    for index in range(contracts):
        purchase_order = index % 10 == 9
        private = index % private_every == 0
        commitment = commitment_json(
            4_000_000_000 + index,
            f"{'PO' if purchase_order else 'SC'}-{index:03d}",
            f"Trade {index}",
            vendor_id=3_000_000 + index,
            vendor_name=f"Vendor {index}",
            private=private,
            invoice_contacts=[
                {"id": 5_000_000_000 + index % users, "name": "Contact", "email": "c@example.com"}
            ],
            kind="PurchaseOrderContract" if purchase_order else "WorkOrderContract",
        )
        (
            project.purchase_order_contracts if purchase_order else project.work_order_contracts
        ).append(commitment)
        project.accessors[commitment["id"]] = (
            [{"id": str(5_000_000_000 + index % users), "name": "U", "login": "u@example.com"}]
            if private
            else []
        )
        commitment_list.append(commitment)
    summary = {"current_payment_due": "12,345.67", "contract_sum_to_date": "1,000,000.00"}
    for index in range(invoices):
        commitment = commitment_list[index % contracts]
        requisition_id = 6_000_000_000 + index
        project.requisitions[requisition_id] = requisition_json(
            project_id,
            requisition_id,
            commitment,
            number=index // contracts + 1,
            period_id=880000 + (index // contracts) % periods,
            status="approved",
            summary=dict(summary),
            attachments=[
                {
                    "id": 7_000_000_000 + index,
                    "filename": "Lien waiver.pdf",
                    "content_type": "application/pdf",
                    "file_key": "shared/lien-waiver.pdf",
                }
            ],
            invoice_number=f"INV-{index}",
        )
    return world
