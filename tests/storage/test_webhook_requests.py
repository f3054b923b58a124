"""storage/webhooks.py on SQLite and PostgreSQL: which deliveries ask for a re-read, and when a
re-read is due (the coalescing window and its cap)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest
from tortoise import connections, timezone

from storage import jobs, webhooks
from storage.jobs import NOTIFY_CHANNEL, Job
from storage.webhooks import CLOCK_SKEW, PROCORE_WEBHOOK, StoredDelivery, WebhookResource

PROJECT = 562949953421312
INVOICE = 9001


def delivery(key: str, sent_at: datetime | None, resource_id: int = INVOICE) -> StoredDelivery:
    return StoredDelivery(
        dedupe_key=key,
        ulid=key,
        company_id=1,
        project_id=PROJECT,
        resource_name="Draw Requests",
        resource_id=resource_id,
        event_type="update",
        sent_at=sent_at,
        kind="invoice",
        target_id=resource_id,
        detail="",
    )


async def test_a_delivery_of_an_event_before_the_read_began_asks_nothing(database: str) -> None:
    first = await webhooks.store_delivery(delivery("a", timezone.now()))
    assert (first.stored, first.requested) == (True, True)
    assert not (await webhooks.store_delivery(delivery("a", timezone.now()))).stored  # duplicate
    [claimed] = await webhooks.claim_reads(PROJECT, quiet_since=None)
    row = await WebhookResource.get(id=claimed.row_id)
    assert row.claimed_at is not None
    late = await webhooks.store_delivery(delivery("b", row.claimed_at - CLOCK_SKEW))
    assert (late.stored, late.requested) == (True, False)  # the read began after its event
    assert not await webhooks.waiting_reads(PROJECT)
    skewed = await webhooks.store_delivery(delivery("c", row.claimed_at - CLOCK_SKEW / 2))
    assert skewed.requested  # within Procore's possible clock skew: read again
    no_time = await webhooks.store_delivery(delivery("d", None))
    assert no_time.requested
    assert (await WebhookResource.get(id=claimed.row_id)).requested == 3


async def test_a_resource_is_due_when_quiet_or_when_its_first_unread_delivery_is_old(
    database: str,
) -> None:
    await webhooks.store_delivery(delivery("a", timezone.now()))
    first = (await WebhookResource.get(resource_id=INVOICE)).pending_since
    await webhooks.store_delivery(delivery("b", timezone.now()))
    row = await WebhookResource.get(resource_id=INVOICE)
    assert row.pending_since == first and row.last_delivery_at >= first
    [waiting] = await webhooks.waiting_reads(PROJECT)
    assert (waiting.pending_since, waiting.last_delivery_at) == (first, row.last_delivery_at)
    tick = timedelta(microseconds=1)
    # Still receiving and not waiting long enough: not due.
    assert not await webhooks.claim_reads(
        PROJECT, quiet_since=first - tick, pending_before=first - tick
    )
    # Waiting since before the cap: due, even though deliveries keep coming.
    [claimed] = await webhooks.claim_reads(PROJECT, quiet_since=first - tick, pending_before=first)
    assert claimed.covers == 2
    # A delivery after the claim starts a new window.
    await webhooks.store_delivery(delivery("c", timezone.now() + CLOCK_SKEW))
    assert (await WebhookResource.get(resource_id=INVOICE)).pending_since > first


async def test_on_postgres_one_statement_queues_the_pass_once_per_round(database: str) -> None:
    """(On SQLite the caller queues it: `commands.procore_webhooks.receive_delivery`.)"""
    stored = [await webhooks.store_delivery(delivery(key, timezone.now())) for key in "abc"]
    keys = await Job.filter(kind=PROCORE_WEBHOOK).values_list("idempotency_key", flat=True)
    if connections.get("default").capabilities.dialect == "postgres":
        assert keys == [webhooks.pass_job_key(PROJECT, 0)]
        assert [s.pass_job_checked for s in stored] == [True, True, True]
        assert stored[0].pass_job_id is not None and stored[1].pass_job_id is None
    else:
        assert keys == [] and not any(s.pass_job_checked for s in stored)
    assert {s.round for s in stored} == {0}
    await webhooks.next_round(PROJECT)
    after = await webhooks.store_delivery(delivery("d", timezone.now(), resource_id=9002))
    assert after.round == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_on_postgres_the_statement_queues_the_job_enqueue_would(database: str) -> None:
    """The pass job `store_delivery` writes itself is the row `storage.jobs.enqueue` writes for
    the same key and payload, with the same NOTIFY."""
    notified: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    listener = await asyncpg.connect(database)
    try:
        await listener.add_listener(
            NOTIFY_CHANNEL, lambda _c, _p, channel, payload: notified.put_nowait((channel, payload))
        )
        stored = await webhooks.store_delivery(delivery("a", timezone.now()))
        by_statement = await Job.get(id=stored.pass_job_id)
        assert await asyncio.wait_for(notified.get(), 10) == (NOTIFY_CHANNEL, PROCORE_WEBHOOK)
        by_enqueue = (
            await jobs.enqueue("by-enqueue", {"project_id": PROJECT}, kind=PROCORE_WEBHOOK)
        ).job
        assert await asyncio.wait_for(notified.get(), 10) == (NOTIFY_CHANNEL, PROCORE_WEBHOOK)
    finally:
        await listener.close()
    by_enqueue = await Job.get(id=by_enqueue.id)  # as stored, not as created in Python
    assert by_statement.idempotency_key == webhooks.pass_job_key(PROJECT, stored.round)
    apart = {"id", "idempotency_key", "created_at", "updated_at"}
    columns = sorted(Job._meta.db_fields - apart)
    assert [getattr(by_statement, name) for name in columns] == [
        getattr(by_enqueue, name) for name in columns
    ]
    assert by_statement.created_at == by_statement.updated_at
