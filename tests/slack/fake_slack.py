"""A fake Slack Web API: an aiohttp server on a free port, reached through SLACK_API_URL.

It implements the methods the bot calls (auth.test, users.info, views.open/update/publish,
chat.postMessage/update/postEphemeral, conversations.open/info/members/history/replies,
files.getUploadURLExternal, the upload URL itself, files.completeUploadExternal), the response_url
of slash commands, and Socket Mode (apps.connections.open and the WebSocket, on which
`send_envelope` pushes requests). It records every call (method, arguments, what it answered) and
the uploaded bytes, and can be told to fail: a 429 with Retry-After, ``not_in_channel`` for a
channel, an upload refused — or, with a `FaultStorm`, faults at random in every method.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from socket import SO_LINGER, SOL_SOCKET
from typing import Any

from aiohttp import web

from tests.waiting import JOB_PATIENCE

BOT_USER_ID = "UBOT"
TEAM_ID = "T0001"


@dataclass
class Call:
    """One request to the fake, as received and as answered."""

    method: str
    args: dict[str, Any]
    status: int
    ok: bool
    error: str | None = None


@dataclass
class Message:
    """A message posted with chat.postMessage, and its later versions (chat.update)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    versions: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # Slack message metadata (event_type, event_payload)

    @property
    def all_text(self) -> str:
        """The fallback text and every text in the blocks, for assertions."""
        return self.text + "\n" + json.dumps(self.blocks, ensure_ascii=False)


@dataclass
class Upload:
    """A file uploaded through the v2 flow."""

    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    channel: str | None = None
    thread_ts: str | None = None
    title: str | None = None
    completed: bool = False
    shares: list[tuple[str, str | None, str]] = field(default_factory=list)  # channel, thread, ts


@dataclass
class View:
    """A modal opened (and updated) through the fake."""

    id: str
    hash: str
    view: dict[str, Any]
    trigger_id: str
    user_id: str | None
    updates: int = 0


FAULT_KINDS = ("timeout", "429", "reset", "500", "503")
UPLOAD_METHOD = "(upload)"  # how the upload URL is named in `Call` and `Fault`


@dataclass(frozen=True)
class Fault:
    """One fault the storm injected. ``done``: Slack did the call before the fault (a timeout
    or a reset after the work: the classic trap for a retry)."""

    method: str
    kind: str
    done: bool
    at: float  # time.monotonic() when it was answered (or the hang began)
    fingerprint: str
    retry_after: int | None = None


class FaultStorm:
    """Faults at random in every call of the Web API and the upload URL, up to ``budget``:
    429 with ``Retry-After``, 500, 503, timeouts (a hang of ``hang_seconds``, longer than the
    bot's timeout) and connection resets (TCP RST), the last two half of the time after doing
    the work. Each method's faults cycle through `FAULT_KINDS` (its first call always fails, so
    every method called gets one), further calls fail with probability ``rate``; the same
    request (method and arguments) fails at most ``max_per_request`` times in all, so a client
    that retries gets through (and so do identical requests sent side by side). Records every
    fault and every call's arrival."""

    def __init__(
        self,
        budget: int,
        *,
        rate: float = 0.8,
        max_per_request: int = 2,
        hang_seconds: float = 3.0,
        retry_after: int = 1,
        seed: int = 0,
    ) -> None:
        self.budget = budget
        self.rate = rate
        self.max_per_request = max_per_request
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after
        self.faults: list[Fault] = []
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic time, method, fingerprint)
        self._random = random.Random(seed)
        self._per_request: Counter[str] = Counter()
        self._per_method: Counter[str] = Counter()

    def decide(self, method: str, fingerprint: str) -> Fault | None:
        """The fault for this call, or None to answer it normally."""
        now = time.monotonic()
        self.arrivals.append((now, method, fingerprint))
        first = method not in self._per_method
        if (
            len(self.faults) >= self.budget
            or self._per_request[fingerprint] >= self.max_per_request
            or (not first and self._random.random() >= self.rate)
        ):
            return None
        number = self._per_method[method]
        self._per_method[method] += 1
        self._per_request[fingerprint] += 1
        kind = FAULT_KINDS[number % len(FAULT_KINDS)]
        done = kind in ("timeout", "reset") and (number // len(FAULT_KINDS)) % 2 == 0
        retry_after = self.retry_after if kind == "429" else None
        fault = Fault(method, kind, done, now, fingerprint, retry_after)
        self.faults.append(fault)
        return fault

    def by_kind(self) -> Counter[str]:
        """Faults injected by kind (``timeout (done)`` apart from ``timeout``)."""
        return Counter(f"{f.kind} (done)" if f.done else f.kind for f in self.faults)

    def by_method(self) -> Counter[str]:
        """Faults injected by method."""
        return Counter(f.method for f in self.faults)

    def retry_after_gaps(self) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """For each 429: (method, seconds) until the same request came again, and until any
        call of that method came (each compared with its Retry-After by the caller)."""
        same: list[tuple[str, float]] = []
        method_wide: list[tuple[str, float]] = []
        for fault in self.faults:
            if fault.kind != "429":
                continue
            later = [a for a in self.arrivals if a[0] > fault.at and a[1] == fault.method]
            if later:
                method_wide.append((fault.method, later[0][0] - fault.at))
            again = [a for a in later if a[2] == fault.fingerprint]
            if again:
                same.append((fault.method, again[0][0] - fault.at))
        return same, method_wide


def _fingerprint(method: str, request: web.Request, raw: bytes) -> str:
    return hashlib.sha1(method.encode() + request.query_string.encode() + raw).hexdigest()


def _reset(request: web.Request) -> None:
    """Drop the connection with a TCP RST (the client sees "connection reset by peer")."""
    transport = request.transport
    if transport is None:
        return
    raw_socket = transport.get_extra_info("socket")
    if raw_socket is not None:
        raw_socket.setsockopt(SOL_SOCKET, SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class FakeSlack:
    """The fake server. `start` it, point the bot at `api_url`, then inspect what it recorded."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.messages: list[Message] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.uploads: dict[str, Upload] = {}
        self.views: dict[str, View] = {}
        self.published: list[dict[str, Any]] = []
        self._failures: dict[str, list[tuple[int, int | None]]] = {}
        self._denied_channels: dict[str, str] = {}
        self.channel_members: dict[str, list[str]] = {}
        self._upload_refusal: int | None = None
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._changed = asyncio.Condition()
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self.answering = 0  # HTTP requests being answered now (Socket Mode connections aside)
        self.storm: FaultStorm | None = None  # `start_storm`
        self._last_ts = 0.0

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1, on a free port."""
        app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[self._counted])
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop listening (closing any Socket Mode connection)."""
        for socket in list(self.sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for SLACK_API_URL."""
        return f"{self.base_url}/api/"

    def response_url(self, key: str) -> str:
        """A response_url for a slash command; what is posted there lands in `ephemerals`."""
        return f"{self.base_url}/response/{key}"

    # --- programming the fake ---------------------------------------------------------------

    def add_user(
        self, user_id: str, email: str | None, name: str, tz: str = "America/New_York"
    ) -> None:
        """A workspace member users.info knows."""
        profile: dict[str, Any] = {"real_name": name, "display_name": name.split()[0]}
        if email is not None:
            profile["email"] = email
        self.users[user_id] = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name.lower().replace(" ", "."),
            "real_name": name,
            "tz": tz,
            "profile": profile,
        }

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls to ``method`` answer 429 with ``Retry-After``."""
        self._failures[method] = [(429, retry_after)] * times

    def server_error(self, method: str, *, status: int = 503, times: int = 1) -> None:
        """The next ``times`` calls to ``method`` answer ``status`` (nothing done)."""
        self._failures[method] = [(status, None)] * times

    def deny_channel(self, channel: str, error: str = "not_in_channel") -> None:
        """chat.postMessage (and uploads) in ``channel`` fail with ``error``."""
        self._denied_channels[channel] = error

    def allow_channel(self, channel: str) -> None:
        """Undo `deny_channel`: the bot is a member of ``channel`` again."""
        self._denied_channels.pop(channel, None)

    def set_channel_members(self, channel: str, user_ids: list[str]) -> None:
        """conversations.members of ``channel`` lists the bot and ``user_ids`` (unset channels
        list the bot and every workspace member)."""
        self.channel_members[channel] = [BOT_USER_ID, *user_ids]

    def refuse_uploads(self, status: int = 403) -> None:
        """The upload URL answers ``status`` instead of taking the bytes."""
        self._upload_refusal = status

    def accept_uploads(self) -> None:
        """Undo `refuse_uploads`."""
        self._upload_refusal = None

    def start_storm(self, storm: FaultStorm) -> FaultStorm:
        """Inject ``storm``'s faults into every call from now on (see `FaultStorm`)."""
        self.storm = storm
        return storm

    async def _faulty(
        self,
        fault: Fault,
        request: web.Request,
        args: dict[str, Any],
        perform: Callable[[], Awaitable[web.Response]],
    ) -> web.Response:
        """Answer a call with ``fault`` (doing the work first when it is a ``done`` one)."""
        storm = self.storm
        assert storm is not None
        await self._record(Call(fault.method, args, 0, False, f"fault:{fault.kind}"))
        if fault.kind == "429":
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        if fault.kind in ("500", "503"):
            error = "fatal_error" if fault.kind == "500" else "service_unavailable"
            return web.json_response({"ok": False, "error": error}, status=int(fault.kind))
        answer = await perform() if fault.done else None
        if fault.kind == "reset":
            _reset(request)
            return answer or web.Response(status=503)
        await asyncio.sleep(storm.hang_seconds)  # the client has given up by then
        return answer or web.Response(status=503)

    # --- reading what happened --------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """Every call of ``method``, in order (including refused ones)."""
        return [call for call in self.calls if call.method == method]

    def api_calls(self) -> list[Call]:
        """Every Web API call, excluding the upload URL and response_url posts."""
        return [call for call in self.calls if not call.method.startswith("(")]

    def top_level_messages(self) -> list[Message]:
        """Messages that are not thread replies (parent messages)."""
        return [message for message in self.messages if message.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """Thread replies under ``thread_ts``."""
        return [
            message
            for message in self.messages
            if message.channel == channel and message.thread_ts == thread_ts
        ]

    def files_in_thread(self, channel: str, thread_ts: str) -> list[Upload]:
        """Completed uploads shared into a thread, once per share (a file shared twice is
        listed twice)."""
        return [
            upload
            for upload in self.uploads.values()
            for share in upload.shares
            if share[:2] == (channel, thread_ts)
        ]

    async def wait_for(self, condition: Callable[[], Any], within: float = JOB_PATIENCE) -> Any:
        """Wait until ``condition()`` is truthy (re-checked on every change `_notify` announces)
        and return it; TimeoutError after ``within`` seconds (a deadline for a lost event, far
        above what a busy machine takes)."""

        async def check() -> Any:
            async with self._changed:
                while not (value := condition()):
                    await self._changed.wait()
                return value

        return await asyncio.wait_for(check(), within)

    async def send_envelope(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Push a Socket Mode request (``slash_commands``, ``interactive``, ``events_api``) to
        the connected app and wait for its acknowledgement (``{"envelope_id", "payload"?}``)."""
        await self.wait_for(lambda: self.sockets)
        envelope_id = f"env-{next(self._ids)}"
        await self.sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return await self.wait_for(lambda: self.socket_acks.get(envelope_id))

    # --- HTTP handlers ---------------------------------------------------------------------

    @web.middleware
    async def _counted(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/socket":
            return await handler(request)
        self.answering += 1
        try:
            return await handler(request)
        finally:
            self.answering -= 1
            await self._notify()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.sockets.append(socket)
        await self._notify()
        await socket.send_json({"type": "hello", "num_connections": 1})
        try:
            async for message in socket:
                ack = json.loads(message.data)
                self.socket_acks[ack["envelope_id"]] = ack
                await self._record(Call("(socket ack)", ack, 200, True))
        finally:
            self.sockets.remove(socket)
            await self._notify()
        return socket

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        await self._notify()

    async def _notify(self) -> None:
        """Wake every `wait_for`: call after each change of what a condition can observe
        (recorded calls and what they stored, Socket Mode connections and acks, `answering`)."""
        async with self._changed:
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        if self.storm is not None:
            raw = json.dumps(args, sort_keys=True, default=str).encode()
            fault = self.storm.decide(method, _fingerprint(method, request, raw))
            if fault is not None:
                return await self._faulty(
                    fault, request, args, lambda: self._answered(method, args, request)
                )
        pending = self._failures.get(method)
        if pending:
            status, retry_after = pending.pop(0)
            error = "ratelimited" if status == 429 else "fatal_error"
            await self._record(Call(method, args, status, False, error))
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        return await self._answered(method, args, request)

    async def _answered(
        self, method: str, args: dict[str, Any], request: web.Request
    ) -> web.Response:
        token_kind = "xapp-" if method == "apps.connections.open" else "xoxb-"
        if not request.headers.get("Authorization", "").startswith(f"Bearer {token_kind}"):
            answer: dict[str, Any] = {"ok": False, "error": "not_authed"}
        else:
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            answer = handler(args) if handler else {"ok": False, "error": "unknown_method"}
        await self._record(Call(method, args, 200, bool(answer.get("ok")), answer.get("error")))
        return web.json_response(answer)

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        if self.storm is not None:
            fault = self.storm.decide(UPLOAD_METHOD, _fingerprint(UPLOAD_METHOD, request, data))
            if fault is not None:
                return await self._faulty(
                    fault, request, {"file_id": file_id}, lambda: self._stored(file_id, data)
                )
        return await self._stored(file_id, data)

    async def _stored(self, file_id: str, data: bytes) -> web.Response:
        upload = self.uploads.get(file_id)
        if self._upload_refusal is not None or upload is None:
            status = self._upload_refusal or 404
            await self._record(Call("(upload)", {"file_id": file_id}, status, False, "refused"))
            return web.Response(status=status, text="upload refused")
        upload.data = data
        await self._record(Call("(upload)", {"file_id": file_id, "bytes": len(data)}, 200, True))
        return web.Response(text=f"OK - {len(data)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        body["response_url_key"] = request.match_info["key"]
        self.ephemerals.append(body)
        await self._record(Call("(response_url)", body, 200, True))
        return web.Response(text="ok")

    # --- Web API methods -----------------------------------------------------------------

    def _next_ts(self) -> str:
        """A message ts as Slack makes them: the Unix time, unique, increasing."""
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": "Fake Workspace",
            "user": "invoice-backups",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": "BBOT",
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _json_arg(args.get("view"))
        trigger_id = str(args.get("trigger_id") or "")
        if not trigger_id:
            return {"ok": False, "error": "invalid_trigger_id"}
        view_id = f"V{next(self._ids):06d}"
        stored = View(view_id, f"h{next(self._ids)}", view, trigger_id, None)
        self.views[view_id] = stored
        return {"ok": True, "view": self._view_payload(stored)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        stored = self.views.get(str(args.get("view_id")))
        if stored is None:
            return {"ok": False, "error": "not_found"}
        if args.get("hash") and args["hash"] != stored.hash:
            return {"ok": False, "error": "hash_conflict"}
        stored.view = _json_arg(args.get("view"))
        stored.hash = f"h{next(self._ids)}"
        stored.updates += 1
        return {"ok": True, "view": self._view_payload(stored)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        self.published.append({"user_id": args.get("user_id"), "view": _json_arg(args["view"])})
        return {"ok": True, "view": {"id": f"V{next(self._ids):06d}"}}

    def _view_payload(self, stored: View) -> dict[str, Any]:
        return {
            **stored.view,
            "id": stored.id,
            "hash": stored.hash,
            "team_id": TEAM_ID,
            "state": {"values": {}},
        }

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        denied = self._denied_channels.get(channel)
        if denied:
            return {"ok": False, "error": denied}
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            text=str(args.get("text") or ""),
            blocks=_json_arg(args.get("blocks")) or [],
            thread_ts=args.get("thread_ts"),
            metadata=_json_arg(args.get("metadata")) or None,
        )
        self.messages.append(message)
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "message": {"text": message.text, "ts": message.ts},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages:
            if message.channel == args.get("channel") and message.ts == args.get("ts"):
                message.versions.append({"text": message.text, "blocks": message.blocks})
                message.text = str(args.get("text") or "")
                message.blocks = _json_arg(args.get("blocks")) or []
                return {"ok": True, "channel": message.channel, "ts": message.ts}
        return {"ok": False, "error": "message_not_found"}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel in self._denied_channels:
            return {"ok": False, "error": self._denied_channels[channel]}
        self.ephemerals.append({**args, "blocks": _json_arg(args.get("blocks")) or []})
        return {"ok": True, "message_ts": self._next_ts()}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "")
        if not users or "," in users:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "channel": {"id": f"D{users}"}}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every channel exists and has the bot as a member, except denied ones: ``not_in_channel``
        → ``is_member`` false, ``is_archived`` → archived, other errors → that error."""
        channel = str(args.get("channel") or "")
        denied = self._denied_channels.get(channel)
        if not channel or denied not in (None, "not_in_channel", "is_archived"):
            return {"ok": False, "error": denied or "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_channel": channel.startswith("C"),
                "is_group": channel.startswith("G"),
                "is_im": channel.startswith("D"),
                "is_mpim": False,
                "is_private": channel.startswith(("G", "D")),
                "is_archived": denied == "is_archived",
                "is_member": denied is None,
            },
        }

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        """Members of a channel (`set_channel_members`; default: the bot and every workspace
        member), two per page to exercise the cursor; denied channels answer their error."""
        channel = str(args.get("channel") or "")
        denied = self._denied_channels.get(channel)
        if not channel or denied not in (None, "not_in_channel", "is_archived"):
            return {"ok": False, "error": denied or "channel_not_found"}
        members = self.channel_members.get(channel, [BOT_USER_ID, *self.users])
        start = int(args.get("cursor") or 0)
        page = members[start : start + 2]
        more = start + 2 < len(members)
        return {
            "ok": True,
            "members": page,
            "response_metadata": {"next_cursor": str(start + 2) if more else ""},
        }

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first, after ``oldest``; metadata only with
        ``include_all_metadata``."""
        channel = str(args.get("channel") or "")
        oldest = float(args.get("oldest") or 0)
        found = [
            message
            for message in self.messages
            if message.channel == channel
            and message.thread_ts is None
            and float(message.ts) > oldest
        ]
        limit = int(args.get("limit") or 100)
        metadata = _truthy(args.get("include_all_metadata"))
        listed = [_listed(m, metadata) for m in reversed(found)][:limit]
        return {"ok": True, "messages": listed, "has_more": len(found) > limit}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, its replies and the files shared in it, oldest first."""
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        metadata = _truthy(args.get("include_all_metadata"))
        thread = [
            _listed(m, metadata)
            for m in self.messages
            if m.channel == channel and (m.ts == ts or m.thread_ts == ts)
        ]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        for upload in self.uploads.values():
            for share_channel, share_thread, share_ts in upload.shares:
                if (share_channel, share_thread) == (channel, ts):
                    thread.append(
                        {
                            "type": "message",
                            "ts": share_ts,
                            "thread_ts": ts,
                            "files": [{"id": upload.file_id, "name": upload.filename}],
                        }
                    )
        thread.sort(key=lambda message: float(message["ts"]))
        return {"ok": True, "messages": thread, "has_more": False}

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):06d}"
        self.uploads[file_id] = Upload(file_id, str(args.get("filename")), int(args["length"]))
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.base_url}/upload/{file_id}"}

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel_id")
        if channel in self._denied_channels:
            return {"ok": False, "error": self._denied_channels[channel]}
        shared = []
        for entry in _json_arg(args.get("files")) or []:
            upload = self.uploads.get(entry.get("id"))
            if upload is None or upload.data is None:
                return {"ok": False, "error": "file_not_found"}
            upload.title = entry.get("title")
            upload.channel = channel
            upload.thread_ts = args.get("thread_ts")
            upload.completed = True
            # Completing a file again shares it again: a second file in the thread.
            upload.shares.append((str(channel), upload.thread_ts, self._next_ts()))
            shared.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        return {"ok": True, "files": shared}


async def _arguments(request: web.Request) -> dict[str, Any]:
    """Query string, form fields and JSON body merged, as Slack accepts all three."""
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, Mapping):
                args.update(body)
        else:
            args.update(dict(await request.post()))
    return args


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _listed(message: Message, metadata: bool) -> dict[str, Any]:
    """``message`` as conversations.history/replies list it."""
    listed: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "ts": message.ts,
        "text": message.text,
    }
    if message.thread_ts is not None:
        listed["thread_ts"] = message.thread_ts
    if metadata and message.metadata:
        listed["metadata"] = message.metadata
    return listed


def _json_arg(value: Any) -> Any:
    """Arguments that may arrive as JSON strings (form posts) or as JSON values."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
