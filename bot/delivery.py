"""Posting where the user asked, or by DM when the bot can't post there (and saying why)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.messages import Message, fallback_note
from storage.blobs import BlobMissing, BlobStore, StoreError

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
) -> Posted:
    """Post ``build(None)`` in ``channel_id``; when Slack says the bot can't post there, post
    ``build(note)`` in a DM to ``user_id`` instead, ``note`` saying why. Other errors propagate."""
    try:
        response = await client.chat_postMessage(channel=channel_id, **build(None).as_kwargs())
        return Posted(str(response["channel"]), str(response["ts"]))
    except SlackApiError as error:
        code = str(error.response.get("error"))
        if code not in FALLBACK_ERRORS:
            raise
    note = fallback_note(channel_id, code)
    dm_channel = await open_dm(client, user_id)
    response = await client.chat_postMessage(channel=dm_channel, **build(note).as_kwargs())
    return Posted(str(response["channel"]), str(response["ts"]), note)


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


class UploadFailed(Exception):
    """The upload URL did not take the file; ``str(exc)`` is the short reason."""


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
    `UploadFailed` when the upload URL refuses, `SlackApiError` when Slack refuses."""
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
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300),
        ) as response:
            if response.status != 200:
                raise UploadFailed(f"HTTP {response.status}")
    except aiohttp.ClientError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, StoreError):
            raise cause from None
        raise UploadFailed(f"the upload did not go through ({type(error).__name__})") from None
    finally:
        await chunks.aclose()
        if client.session is None:
            await session.close()
    completed = await client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"], "title": title}], channel_id=channel, thread_ts=thread_ts
    )
    return str(completed["files"][0]["id"])
