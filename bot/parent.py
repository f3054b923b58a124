"""Keeping a job's parent message current with chat.update, without flooding Slack.

`show` (phase changes) sends at once and waits; `progress` (frequent, from the compile) never
blocks the compile: it records the latest text and a background pump sends it, at most one
update per ``min_interval`` seconds, latest state wins. Updates are best effort: a failed
chat.update is logged, never fatal to the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.messages import JobHeadline, Phase, parent_message

log = logging.getLogger(__name__)

State = tuple[Phase, str | None]


class ParentMessage:
    """The parent message of one job, at ``channel``/``ts``."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        ts: str,
        headline: JobHeadline,
        note: str | None,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self.ts = ts
        self._client = client
        self._headline = headline
        self._note = note
        self._min_interval = min_interval
        self._clock = clock
        self._desired: State | None = None
        self._sent: State | None = None
        self._sent_at = float("-inf")
        self._lock = asyncio.Lock()
        self._pump: asyncio.Task[None] | None = None

    async def show(self, phase: Phase, progress: str | None = None) -> None:
        """Show ``phase`` now (waits for the update)."""
        self._desired = (phase, progress)
        await self._send_desired()

    async def finish(self, phase: Phase, included: int) -> None:
        """Show the final ``phase``, saying how many invoices the backup holds (waits)."""
        self._headline = replace(self._headline, included=included)
        self._sent = None  # the headline changed: send even if the phase did not
        await self.show(phase)

    async def progress(self, text: str) -> None:
        """Report compile progress ("rendering 3/5"); returns at once. A `ProgressCallback`."""
        self._desired = (Phase.RUNNING, text)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._pump_latest())

    async def close(self) -> None:
        """Stop the background pump (pending progress is dropped)."""
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def _pump_latest(self) -> None:
        while self._desired != self._sent:
            wait = self._sent_at + self._min_interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._send_desired()

    async def _send_desired(self) -> None:
        async with self._lock:
            state = self._desired
            if state is None or state == self._sent:
                return
            phase, progress = state
            message = parent_message(self._headline, phase, progress, self._note)
            try:
                await self._client.chat_update(
                    channel=self.channel, ts=self.ts, **message.as_kwargs()
                )
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
                reason = error.response.get("error") if isinstance(error, SlackApiError) else error
                log.warning(
                    "could not update parent message %s/%s: %s", self.channel, self.ts, reason
                )
            self._sent = state
            self._sent_at = self._clock()
