"""`eventually`: returns the first truthy value, fails with a named AssertionError at the
deadline, and lets the condition's own errors through."""

from __future__ import annotations

import asyncio

import pytest

from tests.waiting import eventually


async def test_returns_the_first_truthy_value_of_a_plain_or_async_condition() -> None:
    calls: list[int] = []

    def ready_on_third_call() -> list[int]:
        calls.append(1)
        return calls if len(calls) >= 3 else []

    assert await eventually(ready_on_third_call, 5, every=0) == [1, 1, 1]

    async def answer() -> str:
        await asyncio.sleep(0)
        return "yes"

    assert await eventually(answer, 5) == "yes"


async def test_fails_at_the_deadline_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"not within 0.1 s: the job \(last: 0\)"):
        await eventually(lambda: 0, 0.1, every=0.01, what="the job")


async def test_a_condition_that_hangs_is_cut_at_the_deadline() -> None:
    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    with pytest.raises(AssertionError, match="not within"):
        await eventually(hangs, 0.1)


async def test_the_conditions_own_error_ends_the_wait_at_once() -> None:
    def broken() -> bool:
        raise TimeoutError("the condition's own")

    with pytest.raises(TimeoutError, match="the condition's own"):
        await eventually(broken, 60)
