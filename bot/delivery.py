"""Posting where the user asked, or by DM when the bot can't post there (and saying why);
each message at most once, whatever Slack's faults.

A post (or an upload completion) whose request timed out or whose connection was reset may have
been done by Slack all the same, so it is never simply sent again: `exactly_once` first looks for
it — messages carry their key in Slack message metadata (``event_type`` `POST_EVENT`), looked up
with conversations.history / conversations.replies — and sends it again only when it is not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.common import Message
from bot.blocks.messages import fallback_note
from storage.blobs import BlobMissing, BlobStore, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

POST_EVENT = "invoice_backups_post"  # the metadata event type of every keyed message
ONCE_TRIES = 5  # attempts of one side effect (each with the client's own retries) before failing
LOOKUP_WINDOW_SECONDS = 600  # how far back conversations.history is read for a keyed message
_STATUS = re.compile(r"status: (\d+)")


def transient(error: BaseException) -> bool:
    """True for what may go away on its own: a timeout, a broken connection, a 429 or a 5xx
    (after the client's own retries); False for Slack's considered answers (``not_in_channel``,
    an upload refused with a 4xx)."""
    if isinstance(error, TimeoutError | aiohttp.ClientError):
        return True
    if isinstance(error, UploadFailed):
        return error.transient
    if isinstance(error, SlackApiError):
        status = int(getattr(error.response, "status_code", 200) or 200)
        return status == 429 or status >= 500
    if isinstance(error, SlackRequestError):
        found = _STATUS.search(str(error))
        return found is not None and (int(found.group(1)) == 429 or int(found.group(1)) >= 500)
    return False


def _maybe_done(error: BaseException) -> bool:
    """True when Slack may have done the request although it failed (no answer came)."""
    return isinstance(error, TimeoutError | aiohttp.ClientError)


def _described(error: BaseException) -> str:
    """A short reason for the log, never a URL (upload URLs are signed)."""
    if isinstance(error, SlackApiError):
        return f"Slack said {error.response.get('error')} (HTTP {error.response.status_code})"
    found = _STATUS.search(str(error)) if isinstance(error, SlackRequestError) else None
    return f"HTTP {found.group(1)}" if found else type(error).__name__


async def exactly_once(
    do: Callable[[], Awaitable[T]],
    find: Callable[[], Awaitable[T | None]],
    what: str,
    tries: int = ONCE_TRIES,
) -> T:
    """Do a Slack side effect once: ``do()`` it; after a `transient` failure try again, but when
    Slack may have done it (a timeout, a reset connection) return what ``find()`` finds of it
    instead, if anything. Raises the last error after ``tries`` attempts, and at once an error
    that is not transient."""
    unsure = False
    for attempt in range(1, tries + 1):
        try:
            if unsure:
                found = await find()
                if found is not None:
                    log.info("%s: it went through after all", what)
                    return found
                unsure = False
            return await do()
        except Exception as error:
            if not transient(error) or attempt == tries:
                raise
            unsure = unsure or _maybe_done(error)
            log.warning("%s: %s; trying again (%d/%d)", what, _described(error), attempt, tries)
            await asyncio.sleep(0.25 * attempt)
    raise AssertionError("unreachable")


def _metadata(key: str) -> dict[str, Any]:
    return {"event_type": POST_EVENT, "event_payload": {"key": key}}


def _has_key(message: dict[str, Any], key: str) -> bool:
    metadata = message.get("metadata") or {}
    return (
        metadata.get("event_type") == POST_EVENT
        and (metadata.get("event_payload") or {}).get("key") == key
    )


async def find_message(
    client: AsyncWebClient, channel: str, key: str, thread_ts: str | None, since: float
) -> str | None:
    """The ts of the message posted with ``key`` in ``channel`` (in the thread ``thread_ts``,
    else at the top level since ``since``, a Unix time), or None."""
    if thread_ts is not None:
        response = await client.conversations_replies(
            channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
        )
    else:
        response = await client.conversations_history(
            channel=channel,
            oldest=f"{since - LOOKUP_WINDOW_SECONDS:.6f}",
            include_all_metadata=True,
            limit=200,
        )
    for message in response.get("messages") or []:
        if _has_key(message, key):
            return str(message["ts"])
    return None


async def post_once(
    client: AsyncWebClient,
    channel: str,
    message: Message,
    key: str,
    thread_ts: str | None = None,
) -> tuple[str, str]:
    """Post ``message`` in ``channel`` (in the thread ``thread_ts``) exactly once, whatever
    the faults: ``key`` (unique to this message, e.g. ``job:12:parent``) marks it in its
    metadata, and a post that may have gone through is looked up before it is sent again.
    Returns (channel id, ts). Slack's refusals (e.g. ``not_in_channel``) raise `SlackApiError`."""
    since = time.time()
    thread = {"thread_ts": thread_ts} if thread_ts is not None else {}

    async def do() -> tuple[str, str]:
        response = await client.chat_postMessage(
            channel=channel, metadata=_metadata(key), **thread, **message.as_kwargs()
        )
        return str(response["channel"]), str(response["ts"])

    async def find() -> tuple[str, str] | None:
        ts = await find_message(client, channel, key, thread_ts, since)
        return (channel, ts) if ts is not None else None

    return await exactly_once(do, find, f"posting {key}")


async def file_in_thread(client: AsyncWebClient, channel: str, thread_ts: str) -> str | None:
    """The id of the first file shared in the thread ``thread_ts`` of ``channel``, or None."""
    response = await client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
    for message in response.get("messages") or []:
        for file in message.get("files") or []:
            if file.get("id"):
                return str(file["id"])
    return None


# chat.postMessage errors meaning "not here", for which a DM to the requester is the answer.
FALLBACK_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}
)


@dataclass(frozen=True)
class Posted:
    """Where a message landed, and (for a fallback) the note shown to the user."""

    channel: str
    ts: str
    note: str | None = None


async def open_dm(client: AsyncWebClient, user_id: str) -> str:
    """The id of the bot's DM with ``user_id`` (conversations.open)."""
    response = await client.conversations_open(users=user_id)
    return str(response["channel"]["id"])


async def post_with_dm_fallback(
    client: AsyncWebClient,
    channel_id: str,
    user_id: str,
    build: Callable[[str | None], Message],
    key: str,
    explain: Callable[[str, str], str] = fallback_note,
) -> Posted:
    """Post ``build(None)`` in ``channel_id`` once (`post_once` with ``key``); when Slack says
    the bot can't post there, post ``build(note)`` in a DM to ``user_id`` instead, ``note``
    saying why (``explain(channel_id, error)``). Other errors propagate."""
    try:
        channel, ts = await post_once(client, channel_id, build(None), key)
        return Posted(channel, ts)
    except SlackApiError as error:
        code = str(error.response.get("error"))
        if code not in FALLBACK_ERRORS:
            raise
    note = explain(channel_id, code)
    dm_channel = await open_dm(client, user_id)
    channel, ts = await post_once(client, dm_channel, build(note), key)
    return Posted(channel, ts, note)


async def posting_problem(client: AsyncWebClient, channel_id: str) -> str | None:
    """Why the bot could not post in ``channel_id``, as conversations.info tells it before
    anything is posted: ``"not_in_channel"`` (``is_member`` false), ``"channel_not_found"`` (a
    private channel it isn't in), ``"is_archived"``; None when it can (or Slack can't say: the
    post itself falls back to a DM then)."""
    try:
        response = await client.conversations_info(channel=channel_id)
    except SlackApiError as error:
        code = str(error.response.get("error"))
        return code if code in FALLBACK_ERRORS else None
    channel = response.get("channel") or {}
    if channel.get("is_archived"):
        return "is_archived"
    if channel.get("is_member") is False:
        return "not_in_channel"
    return None


MEMBER_PAGES_LIMIT = 50  # conversations.members pages (of up to 1,000) read before giving up


async def channel_members(client: AsyncWebClient, channel_id: str) -> list[str]:
    """Every member of ``channel_id`` (conversations.members, all pages; scope
    ``channels:read`` / ``groups:read``). Raises `SlackApiError` when Slack won't say."""
    members: list[str] = []
    cursor: str | None = None
    for _ in range(MEMBER_PAGES_LIMIT):
        response = await client.conversations_members(channel=channel_id, limit=1000, cursor=cursor)
        members.extend(str(member) for member in response.get("members") or [])
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    return members


async def digest_channel_problem(
    client: AsyncWebClient, channel_id: str, owner_id: str
) -> str | None:
    """Why a digest of ``owner_id`` may not go to ``channel_id`` (None when it may): it must be
    a channel, not a direct message (``not_a_channel``); the bot must be able to post there
    (`posting_problem` codes); and the owner must be a member (``owner_not_member``). When
    Slack can't say, the answer is no (``channel_not_found``)."""
    if not channel_id.startswith(("C", "G")):
        return "not_a_channel"
    try:
        response = await client.conversations_info(channel=channel_id)
        channel = response.get("channel") or {}
        if channel.get("is_im") or channel.get("is_mpim"):
            return "not_a_channel"
        if channel.get("is_archived"):
            return "is_archived"
        if channel.get("is_member") is False:
            return "not_in_channel"
        members = await channel_members(client, channel_id)
    except SlackApiError as error:
        code = str(error.response.get("error"))
        return code if code in FALLBACK_ERRORS else "channel_not_found"
    return None if owner_id in members else "owner_not_member"


UPLOAD_RETRY_AFTER_CAP_SECONDS = 60.0


class UploadFailed(Exception):
    """The upload URL did not take the file; ``str(exc)`` is the short reason. ``transient``
    when it may take it on another try (a 429 or a 5xx)."""

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.transient = transient


def _retry_after(value: str | None) -> float:
    """Seconds a 429's ``Retry-After`` asks for (1 when absent or unreadable), capped."""
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), UPLOAD_RETRY_AFTER_CAP_SECONDS)


async def upload_to_thread(
    client: AsyncWebClient,
    store: BlobStore,
    key: str,
    *,
    channel: str,
    thread_ts: str,
    filename: str,
    title: str,
) -> str:
    """Share the object ``key`` of ``store`` in a thread (files.getUploadURLExternal, the
    upload URL, files.completeUploadExternal) and return the Slack file id. The bytes stream
    from the store to Slack, never whole in memory nor copied on disk.

    Raises `BlobMissing` when the object is not stored, `StoreError` when the store fails,
    `UploadFailed` when the upload URL refuses (after a 429, once its ``Retry-After`` has
    passed), `SlackApiError` when Slack refuses, and aiohttp's own error or `TimeoutError` when
    the connection breaks (Slack may then have the bytes: `exactly_once` looks before retrying)."""
    size = await store.object_size(key)
    if size is None:
        raise BlobMissing(f"{key} is not in the store")
    ticket = await client.files_getUploadURLExternal(filename=filename, length=size)
    chunks = store.read_chunks(key)
    session = client.session or aiohttp.ClientSession()
    try:
        async with session.post(
            str(ticket["upload_url"]),
            data=chunks,
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=client.timeout, sock_read=client.timeout
            ),
        ) as response:
            if response.status == 429:
                wait = _retry_after(response.headers.get("Retry-After"))
                await asyncio.sleep(wait)
                raise UploadFailed("HTTP 429", transient=True)
            if response.status != 200:
                raise UploadFailed(f"HTTP {response.status}", transient=response.status >= 500)
    except aiohttp.ClientError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, StoreError):
            raise cause from None
        raise
    finally:
        # After a broken connection aiohttp's writer may still be inside the generator: it is
        # then closed when that writer ends, not here.
        with contextlib.suppress(RuntimeError):
            await chunks.aclose()
        if client.session is None:
            await session.close()
    completed = await client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"], "title": title}], channel_id=channel, thread_ts=thread_ts
    )
    return str(completed["files"][0]["id"])
