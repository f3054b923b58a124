"""storage/webhooks.py on SQLite and PostgreSQL: which deliveries ask for a re-read, and when a
re-read is due (the coalescing window and its cap)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise import connections, timezone

from storage import webhooks
from storage.jobs import Job
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
