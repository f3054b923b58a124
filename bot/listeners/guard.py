"""The shape every Slack request must have before a listener sees it, and the answer to one
that does not (or to a listener that still fails).

`malformed_reason` checks what the listeners rely on (a user id on every interaction, a view
object on view payloads, actions as a list of objects, string fields where strings are due);
`bot.server` calls it on HTTP bodies after the signature check and the global middleware
(`register_guard`) calls it for Socket Mode. A malformed request gets a 400 and one log line,
never a listener run. Values inside a well-formed request (ids, numbers, metadata) are read with
`int64`, `slack_id` and friends, which raise `MalformedRequest`; the error handler turns that
into a 400 too, and any other failure into a quiet 200 after logging it as the bug it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body as bolt_parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import set_slack_user
from bot.metrics import REJECTED_REQUESTS
from commands.ids import parse_id

log = logging.getLogger(__name__)

MAX_REQUEST_AGE_SECONDS = 300
SLACK_USER_ID = re.compile(r"^[UWB][A-Z0-9]{1,30}$")
SLACK_CONVERSATION_ID = re.compile(r"^[CGDZ][A-Z0-9_]{1,40}$")
VIEW_TYPES = frozenset({"view_submission", "view_closed"})
USER_TYPES = frozenset(
    {"block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut"}
)
MALFORMED_ANSWER = "Malformed request: "


class MalformedRequest(ValueError):
    """A request that Slack would never send; ``str(exc)`` says what is wrong (no secrets)."""


def int64(value: Any, what: str) -> int:
    """A positive 64-bit id (`bot.ids.parse_id`); `MalformedRequest` otherwise."""
    number = parse_id(value)
    if number is None:
        raise MalformedRequest(f"{what} must be a positive 64-bit id")
    return number


def optional_int64(value: Any, what: str) -> int | None:
    """`int64`, or None for a missing or empty value."""
    if value is None or value == "":
        return None
    return int64(value, what)


def slack_id(value: Any, what: str = "user id") -> str:
    """A Slack user id (``U…``/``W…``); `MalformedRequest` otherwise."""
    if not isinstance(value, str) or not SLACK_USER_ID.match(value):
        raise MalformedRequest(f"{what} is not a Slack user id")
    return value


def conversation_id(value: Any, what: str = "channel id") -> str:
    """A Slack conversation id (``C…``, ``G…``, ``D…``); `MalformedRequest` otherwise."""
    if not isinstance(value, str) or not SLACK_CONVERSATION_ID.match(value):
        raise MalformedRequest(f"{what} is not a Slack conversation id")
    return value


def user_of(body: Mapping[str, Any]) -> str:
    """The id of the user behind an interaction (``user.id``) or a command (``user_id``)."""
    user = body.get("user")
    if isinstance(user, Mapping):
        return slack_id(user.get("id"))
    return slack_id(body.get("user_id") if "user_id" in body else user)


def trigger_of(body: Mapping[str, Any]) -> str:
    """The ``trigger_id`` a modal is opened with; `MalformedRequest` when there is none."""
    trigger = body.get("trigger_id")
    if not isinstance(trigger, str) or not trigger:
        raise MalformedRequest("trigger_id is missing")
    return trigger


def _is_str(value: Any, *, optional: bool = True) -> bool:
    return (optional and value is None) or isinstance(value, str)


def _objects(body: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        if body.get(key) is not None and not isinstance(body[key], Mapping):
            return f"{key} is not an object"
    return None


_STRING_STATE_FIELDS = (
    "value",
    "selected_user",
    "selected_conversation",
    "selected_channel",
    "selected_time",
    "selected_date",
)


def _option_problem(option: Any) -> str | None:
    if not isinstance(option, Mapping) or not isinstance(option.get("value"), str):
        return "an option without a string value"
    text = option.get("text")
    if text is not None and not (isinstance(text, Mapping) and _is_str(text.get("text"))):
        return "an option text is not a text object"
    return None


def _action_state_problem(state: Any) -> str | None:
    if not isinstance(state, Mapping):
        return "an input state is not an object"
    for key in _STRING_STATE_FIELDS:
        if not _is_str(state.get(key)):
            return f"{key} is not a string"
    if state.get("selected_option") is not None:
        problem = _option_problem(state["selected_option"])
        if problem:
            return problem
    options = state.get("selected_options")
    if options is not None:
        if not isinstance(options, list):
            return "selected_options is not a list"
        for option in options:
            problem = _option_problem(option)
            if problem:
                return problem
    return None


def _view_problem(view: Any) -> str | None:
    """The view must be an object with a string id, string metadata and hash, and a state
    whose every input is an object of the shapes Slack sends (options with string values)."""
    if not isinstance(view, Mapping):
        return "view is missing or not an object"
    if not isinstance(view.get("id"), str):
        return "view.id is missing"
    if not _is_str(view.get("private_metadata")) or not _is_str(view.get("hash")):
        return "view.private_metadata and view.hash must be strings"
    state = view.get("state")
    if state is None:
        return None
    values = state.get("values") if isinstance(state, Mapping) else None
    if values is None and isinstance(state, Mapping):
        return None
    if not isinstance(values, Mapping):
        return "view.state.values is not an object"
    for block in values.values():
        if not isinstance(block, Mapping):
            return "view.state.values holds a block that is not an object"
        for action_state in block.values():
            problem = _action_state_problem(action_state)
            if problem:
                return f"view.state: {problem}"
    return None


def malformed_reason(body: Any) -> str | None:
    """Why ``body`` (a parsed Slack request) is malformed, or None when its shape is sound."""
    if not isinstance(body, Mapping):
        return "the body is not an object"
    problem = _objects(body, "team", "enterprise", "channel", "container", "message", "event")
    if problem:
        return problem
    if "command" in body:
        for key in ("command", "user_id", "channel_id"):
            if not isinstance(body.get(key), str):
                return f"{key} is missing"
        if not _is_str(body.get("text")) or not _is_str(body.get("trigger_id")):
            return "text and trigger_id must be strings"
        if not SLACK_USER_ID.match(body["user_id"]):
            return "user_id is not a Slack user id"
        return None
    kind = body.get("type")
    if not isinstance(kind, str):
        return "type is missing"
    if kind in USER_TYPES:
        user = body.get("user")
        if not isinstance(user, Mapping) or not SLACK_USER_ID.match(str(user.get("id") or "")):
            return "user.id is missing or not a Slack user id"
    if kind in VIEW_TYPES or (kind in USER_TYPES and body.get("view") is not None):
        problem = _view_problem(body.get("view"))
        if problem:
            return problem
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "actions is missing or empty"
        for action in actions:
            if not isinstance(action, Mapping) or not isinstance(action.get("action_id"), str):
                return "each action needs an action_id"
            problem = _action_state_problem(action)
            if problem:
                return f"actions: {problem}"
    if kind == "block_suggestion" and not (
        isinstance(body.get("action_id"), str) and _is_str(body.get("value"))
    ):
        return "action_id and value must be strings"
    if kind == "event_callback" and not isinstance(body.get("event"), Mapping):
        return "event is missing"
    return None


def request_kind(body: Mapping[str, Any]) -> str:
    """``command``, ``block_actions``, ``view_submission``, … (a metric label)."""
    if "command" in body:
        return "command"
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind.isidentifier() and len(kind) < 40 else "other"


def rejection(reason: str, status: int = 400) -> BoltResponse:
    """The answer to a refused request (plain text, nothing echoed back)."""
    return BoltResponse(status=status, body=MALFORMED_ANSWER + reason)


def signature_problem(
    secret: str, raw_body: bytes, timestamp: str | None, signature: str | None, now: float
) -> str | None:
    """Why a request is not signed by Slack (None when it is): the timestamp must be digits,
    within five minutes of ``now``, and ``signature`` the ``v0=`` HMAC-SHA256 of
    ``v0:{timestamp}:{raw body}`` with the signing secret. Checked on the raw bytes, before any
    parsing."""
    if not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        return "bad_timestamp"
    if abs(now - int(timestamp)) > MAX_REQUEST_AGE_SECONDS:
        return "stale"
    if not signature:
        return "bad_signature"
    base = b"v0:" + timestamp.encode() + b":" + raw_body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return "bad_signature"
    return None


def parse_body(raw_body: bytes, content_type: str | None) -> dict[str, Any]:
    """The request as Bolt will read it (`slack_bolt.request.internals.parse_body`), checked:
    UTF-8, valid JSON where JSON is due, an object, of a sound shape. `MalformedRequest`
    otherwise."""
    try:
        text = raw_body.decode("utf-8")
        body = bolt_parse_body(text, content_type)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedRequest("the body is not valid form data or JSON") from error
    reason = malformed_reason(body)
    if reason is not None:
        raise MalformedRequest(reason)
    return body


async def _guard(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    reason = malformed_reason(body)
    if reason is not None:
        REJECTED_REQUESTS.labels("malformed").inc()
        log.warning("refused a malformed Slack request: %s", reason)
        return rejection(reason)
    with contextlib.suppress(MalformedRequest):  # events carry their user inside the event
        set_slack_user(user_of(body))
    return await next()


async def _on_error(
    error: Exception, body: dict[str, Any], response: BoltResponse | None
) -> BoltResponse | None:
    """A malformed value found by a listener: a 400 (one log line); any other failure is a bug,
    logged with its traceback and answered with an empty 200 rather than a 500. After the ack
    (``response`` None) the answer has gone already: only the log line remains."""
    _log_failure(error, body)
    if response is None:
        return None
    if isinstance(error, MalformedRequest):
        return rejection(str(error))
    return BoltResponse(status=200, body="")


Listener = Callable[..., Awaitable[Any]]


def _log_failure(error: Exception, body: Mapping[str, Any]) -> None:
    if isinstance(error, MalformedRequest):
        REJECTED_REQUESTS.labels("malformed").inc()
        log.warning("refused a malformed Slack request: %s", error)
    else:
        log.error("listener failed on a %s request", request_kind(body), exc_info=error)


def settled(listener: Listener) -> Listener:
    """``listener``, run so that Bolt can answer Slack the moment it acknowledges.

    The app runs with ``process_before_response=True``: Bolt answers when this wrapper returns.
    The wrapper runs ``listener`` in a task and returns as soon as it has called ``ack`` (or,
    for an event, which Bolt acknowledges itself, at once); the rest of the listener goes on in
    that task. So no acknowledgement waits for the work after it, and none waits for Bolt's
    10 ms ack polling either. A failure before the ack reaches `_on_error` (a 400, or a 200); a
    failure after it (or after Slack's 3 s) is logged here, in `_on_error`'s words: the answer
    has gone already."""

    @functools.wraps(listener)
    async def run(**kwargs: Any) -> Any:
        body: Mapping[str, Any] = kwargs.get("body") or {}
        bolt_ack = kwargs.get("ack")
        if bolt_ack is None:  # an event (Bolt acknowledges it) or a listener that never acks
            _start_after_ack(listener(**kwargs), body)
            return None
        # Done once the listener acked or ended; failed when it failed before acking.
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def ack(*args: Any, **ack_kwargs: Any) -> Any:
            answer = await bolt_ack(*args, **ack_kwargs)
            if not answered.done():
                answered.set_result(None)
            return answer

        async def work() -> None:
            try:
                await listener(**{**kwargs, "ack": ack})
            except Exception as error:
                if answered.done():
                    raise  # after the ack (or Slack's 3 s): logged by `_start_after_ack`
                answered.set_exception(error)  # before: Bolt's error handler answers it
            finally:
                if not answered.done():
                    answered.set_result(None)

        _start_after_ack(work(), body)
        done, _ = await asyncio.wait({answered}, timeout=ACK_DEADLINE_SECONDS)
        if not done:
            answered.cancel()  # from now on, every failure is logged
            return None
        answered.result()  # raises what failed before the ack
        return None

    return run


ACK_DEADLINE_SECONDS = 3.0  # Slack's own: past it, Bolt answers without the listener's ack
_WORK_AFTER_ACK: set[asyncio.Task[Any]] = set()  # referenced until done (asyncio keeps weak refs)


def _start_after_ack(work: Awaitable[Any], body: Mapping[str, Any]) -> None:
    """Run ``work`` in a task held until it ends; what it raises is logged (`_on_error`'s
    words)."""

    async def logged() -> None:
        try:
            await work
        except Exception as error:
            _log_failure(error, body)

    task = asyncio.ensure_future(logged())
    _WORK_AFTER_ACK.add(task)
    task.add_done_callback(_WORK_AFTER_ACK.discard)


async def work_after_acks_done() -> None:
    """Wait until the listeners' work after their acks has ended (for an orderly shutdown)."""
    while _WORK_AFTER_ACK:
        await asyncio.gather(*list(_WORK_AFTER_ACK), return_exceptions=True)


def register_guard(
    app: AsyncApp, wrap_client: Callable[[AsyncWebClient], AsyncWebClient] | None = None
) -> None:
    """Check every request's shape before the listeners (one middleware, which also hands
    the listeners ``wrap_client(client)`` instead of Bolt's per-request client, e.g. to count
    its calls), and answer listener failures."""

    async def guard(
        req: AsyncBoltRequest, body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        if wrap_client is not None:
            req.context["client"] = wrap_client(req.context.client)
        return await _guard(body, next)

    app.middleware(guard)
    app.error(_on_error)
