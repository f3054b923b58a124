"""Waiting in tests for something the code under test does in the background: poll a condition
until it holds, with a deadline. Never a fixed sleep: a sleep is too short on a busy machine and
too long on an idle one. (`FakeSlack.wait_for` is the same idea for what the fake Slack records,
woken by each request instead of polling.)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# How long a test waits for a background job before calling it lost. Far above what a job takes,
# even on a shared 2-core machine with a busy loop per core and other suites running (a first
# compile there, process pool start included, took over 60 s): a passing test never waits for
# the deadline, only a broken one does.
JOB_PATIENCE = 240.0


async def eventually(
    condition: Callable[[], Awaitable[T] | T],
    within: float,
    *,
    every: float = 0.05,
    what: str | None = None,
) -> T:
    """Call ``condition`` (plain or async) every ``every`` seconds until it returns something
    truthy, and return that. After ``within`` seconds (a call in progress included), fail with
    an AssertionError naming ``what`` and the last value. An exception from ``condition`` ends the
    wait at once: catch inside it whatever is expected while waiting."""
    last: object = None
    deadline = asyncio.timeout(within)
    try:
        async with deadline:
            while True:
                value = condition()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value  # type: ignore[return-value]
                last = value
                await asyncio.sleep(every)
    except TimeoutError:
        if not deadline.expired():
            raise  # the condition's own
    raise AssertionError(f"not within {within} s: {what or repr(condition)} (last: {last!r})")
