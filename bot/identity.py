"""Who a Slack user is, for the permission checks: users.info → `Requester`, cached with a TTL.

Project users are matched by e-mail (``profile.email``, needs the ``users:read.email`` scope).
Concurrent lookups of one user share a single users.info call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands.access import Requester

DEFAULT_TTL_SECONDS = 600.0
DEFAULT_MAX_ENTRIES = 10_000


class IdentityUnavailable(Exception):
    """Slack would not tell who the user is (unknown user, or the API failed)."""


@dataclass(frozen=True)
class SlackIdentity:
    """A Slack user as the use cases see them, plus their time zone (for file names)."""

    requester: Requester
    timezone: str
    is_bot: bool = False


def identity_from_user(user: dict[str, Any]) -> SlackIdentity:
    """Build the identity from a users.info ``user`` object."""
    profile = user.get("profile") or {}
    user_id = str(user["id"])
    email = (profile.get("email") or "").strip() or None
    name = (
        profile.get("display_name")
        or profile.get("real_name")
        or user.get("real_name")
        or user.get("name")
        or user_id
    )
    return SlackIdentity(
        requester=Requester(
            key=f"slack:{user_id}", email=email, display_name=str(name), slack_user_id=user_id
        ),
        timezone=str(user.get("tz") or "UTC"),
        is_bot=bool(user.get("is_bot")),
    )


class IdentityResolver:
    """Resolves Slack user ids to identities; entries live ``ttl_seconds`` (LRU-bounded)."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, SlackIdentity]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[SlackIdentity]] = {}

    async def resolve(self, user_id: str) -> SlackIdentity:
        """The identity of ``user_id``; raises `IdentityUnavailable` when Slack can't say."""
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > self._clock():
            self._cache.move_to_end(user_id)
            return cached[1]
        pending = self._pending.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[SlackIdentity] = asyncio.get_running_loop().create_future()
        self._pending[user_id] = future
        try:
            identity = await self._fetch(user_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._pending[user_id]
        future.set_result(identity)
        self._remember(user_id, identity)
        return identity

    def forget(self, user_id: str) -> None:
        """Drop a cached identity (e.g. after a profile change event)."""
        self._cache.pop(user_id, None)

    async def _fetch(self, user_id: str) -> SlackIdentity:
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as error:
            raise IdentityUnavailable(
                f"users.info failed for {user_id}: {error.response.get('error')}"
            ) from error
        user = response.get("user")
        if not isinstance(user, dict) or "id" not in user:
            raise IdentityUnavailable(f"users.info returned no user for {user_id}")
        return identity_from_user(user)

    def _remember(self, user_id: str, identity: SlackIdentity) -> None:
        self._cache[user_id] = (self._clock() + self._ttl, identity)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
