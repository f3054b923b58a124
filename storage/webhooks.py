"""Procore webhook deliveries and the re-reads they ask for.

Contract:
- `WebhookDelivery`: one row per delivery received, unique on ``dedupe_key`` (the ``ulid``, or
  resource + event + timestamp when Procore sent none). `store_delivery` says ``stored=False``
  for a key already stored: a duplicate, acknowledged and ignored.
- `WebhookResource`: one row per (project, kind, resource id) that deliveries asked to re-read.
  ``requested`` counts the deliveries that asked; ``applied`` is the ``requested`` value the last
  applied re-read covered. A re-read is due while ``requested > applied``; a pass claims it
  (``claimed``, at ``claimed_at``) so that an overlapping pass does not read it too; a claim
  older than `STALE_CLAIM` (its process died) no longer counts. ``pending_since``: when the
  oldest request no pass has claimed came (the coalescing window's cap counts from it).
- PostgreSQL: `store_delivery` is one statement (`_PG_STORE`), committed durably before the
  delivery is acknowledged; it also queues the pass job when missing.
- A delivery whose event (its ``timestamp``) happened at least `CLOCK_SKEW` before the
  resource's last claim asks nothing (``requested=False``): the read of that claim started
  after the change, so it already shows it (a burst's late deliveries, Procore's delayed
  ones). Its row is stored all the same (dedupe, last delivery).
- `WebhookProject`: per project, ``round`` counts the re-read passes that ended (`next_round`);
  the job of the next pass is keyed by it (`pass_job_key`), so every delivery before a pass's
  last look joins that one job, and a delivery arriving after it queues exactly one more.
Ids are Procore ids (64-bit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import connections, fields, timezone
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from storage.jobs import pg_insert_new_job, pg_notify_new_job
from storage.schema import CONNECTION

PROCORE_WEBHOOK = "procore_webhook"  # the job kind of a re-read pass
STALE_CLAIM = timedelta(minutes=10)
# How far Procore's clock (a delivery's ``timestamp``) may be ahead of ours: a delivery counts
# as shown by a read only when its event came at least this long before the read's claim.
CLOCK_SKEW = timedelta(milliseconds=250)


class WebhookDelivery(Model):
    """A delivery as received (after the checks)."""

    id = fields.IntField(primary_key=True)
    dedupe_key = fields.CharField(max_length=255, unique=True)
    ulid = fields.CharField(max_length=64, null=True)
    company_id = fields.BigIntField(null=True)
    project_id = fields.BigIntField(null=True)
    resource_name = fields.CharField(max_length=64)
    resource_id = fields.BigIntField()
    event_type = fields.CharField(max_length=16)
    sent_at = fields.DatetimeField(null=True)  # the payload's ``timestamp``
    received_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "webhook_deliveries"


class WebhookResource(Model):
    """One resource deliveries asked to re-read; ``kind`` is ``invoice``, ``commitment`` or
    ``users`` (resource id 0: the project's whole directory); ``detail`` the Procore collection
    (``work_order_contracts``…) when the kind needs it."""

    id = fields.IntField(primary_key=True)
    project_id = fields.BigIntField()
    kind = fields.CharField(max_length=16)
    resource_id = fields.BigIntField()
    detail = fields.CharField(max_length=40, default="")
    last_event = fields.CharField(max_length=16, default="")
    requested = fields.IntField(default=0)
    claimed = fields.IntField(default=0)  # ``requested`` when a pass last took it
    claimed_at = fields.DatetimeField(null=True)
    applied = fields.IntField(default=0)
    last_delivery_at = fields.DatetimeField(null=True)
    pending_since = fields.DatetimeField(null=True)  # the oldest unclaimed request's time

    class Meta:
        table = "webhook_resources"
        unique_together = (("project_id", "kind", "resource_id"),)


class WebhookProject(Model):
    """A project's re-read passes: ``round`` passes started; the last delivery's time."""

    project_id = fields.BigIntField(primary_key=True, generated=False)
    round = fields.IntField(default=0)  # the passes that ended (`next_round`)
    last_delivery_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_projects"


@dataclass(frozen=True)
class StoredDelivery:
    """What a delivery asks: re-read ``kind``/``resource_id`` (``detail``) of ``project_id``."""

    dedupe_key: str
    ulid: str | None
    company_id: int | None
    project_id: int | None  # None: a company-level delivery no project follows
    resource_name: str
    resource_id: int
    event_type: str
    sent_at: datetime | None
    kind: str
    target_id: int
    detail: str


def pass_job_key(project_id: int, round_number: int) -> str:
    """The job key of a project's next re-read pass."""
    return f"{_pass_job_prefix(project_id)}{round_number}"


def _pass_job_prefix(project_id: int | None) -> str:
    return f"{PROCORE_WEBHOOK}:{project_id}:"


@dataclass(frozen=True)
class Stored:
    """What `store_delivery` did: ``stored`` (False: a duplicate, nothing changed);
    ``requested``: a re-read was asked (False: none is needed, see the module contract);
    ``round``: the project's current round (the pass the request joins)."""

    stored: bool
    requested: bool
    round: int
    # PostgreSQL: the statement also queued the pass job when it was missing (``pass_job_id``:
    # the job it created; None: it existed already, or nothing was asked).
    pass_job_checked: bool = False
    pass_job_id: int | None = None


# PostgreSQL: the pass job of `_PG_STORE`, the row `storage.jobs.enqueue` writes (its key: the
# prefix $15 and the project's round).
_PG_QUEUE_PASS = pg_insert_new_job(
    kind="$14", key="$15 || project.round::text", payload="$16", now="$9", source="project, request"
)

# PostgreSQL: the whole of `store_delivery` in one statement (the hot path of the endpoint).
# The read request and the project row are written only when the delivery row was new; the
# request only when no claim's read already shows the event ($13: the event's time plus
# `CLOCK_SKEW`); the round comes back from the project row as this statement left it, and the
# pass job of that round is queued when missing (`_PG_QUEUE_PASS`, with the NOTIFY `enqueue`
# sends, when the statement commits). It commits durably before Procore is answered: a
# delivery acknowledged is never lost, even to a database crash.
_PG_STORE = f"""
WITH delivery AS (
    INSERT INTO webhook_deliveries (dedupe_key, ulid, company_id, project_id, resource_name,
                                    resource_id, event_type, sent_at, received_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
), request AS (
    INSERT INTO webhook_resources AS r (project_id, kind, resource_id, detail, last_event,
                                        requested, claimed, applied, last_delivery_at,
                                        pending_since)
    SELECT $4, $10, $11, $12, $7, 1, 0, 0, $9, $9 FROM delivery WHERE $4::bigint IS NOT NULL
    ON CONFLICT (project_id, kind, resource_id) DO UPDATE
        SET requested = r.requested + 1, last_event = EXCLUDED.last_event,
            detail = EXCLUDED.detail, last_delivery_at = EXCLUDED.last_delivery_at,
            pending_since = CASE WHEN r.requested > r.claimed AND r.requested > r.applied
                                 THEN r.pending_since ELSE EXCLUDED.pending_since END
        WHERE $13::timestamptz IS NULL OR r.claimed_at IS NULL OR $13::timestamptz > r.claimed_at
    RETURNING 1
), project AS (
    INSERT INTO webhook_projects (project_id, round, last_delivery_at)
    SELECT $4, 0, $9 FROM delivery WHERE $4::bigint IS NOT NULL
    ON CONFLICT (project_id) DO UPDATE SET last_delivery_at = EXCLUDED.last_delivery_at
    RETURNING round
), job AS (
    {_PG_QUEUE_PASS}
)
SELECT (SELECT count(*) FROM delivery) AS stored, (SELECT count(*) FROM request) AS requested,
       (SELECT max(round) FROM project) AS round, (SELECT max(id) FROM job) AS job_id,
       (SELECT count({pg_notify_new_job("job.kind")}) FROM job) AS notified
"""


async def store_delivery(delivery: StoredDelivery) -> Stored:
    """Record the delivery and, unless a claimed read already shows its event, its re-read
    request (one statement on PostgreSQL)."""
    connection = connections.get(CONNECTION)
    now = timezone.now()
    shown_after = delivery.sent_at + CLOCK_SKEW if delivery.sent_at is not None else None
    if connection.capabilities.dialect == "postgres":
        _, rows = await connection.execute_query(
            _PG_STORE,
            [
                delivery.dedupe_key,
                delivery.ulid,
                delivery.company_id,
                delivery.project_id,
                delivery.resource_name,
                delivery.resource_id,
                delivery.event_type,
                delivery.sent_at,
                now,
                delivery.kind,
                delivery.target_id,
                delivery.detail,
                shown_after,
                PROCORE_WEBHOOK,
                _pass_job_prefix(delivery.project_id),
                json.dumps({"project_id": delivery.project_id}),
            ],
        )
        row = rows[0]
        return Stored(
            bool(row["stored"]),
            bool(row["requested"]),
            int(row["round"] or 0),
            pass_job_checked=True,
            pass_job_id=int(row["job_id"]) if row["job_id"] is not None else None,
        )
    for attempt in range(3):
        try:
            async with in_transaction():
                await WebhookDelivery.create(
                    dedupe_key=delivery.dedupe_key,
                    ulid=delivery.ulid,
                    company_id=delivery.company_id,
                    project_id=delivery.project_id,
                    resource_name=delivery.resource_name,
                    resource_id=delivery.resource_id,
                    event_type=delivery.event_type,
                    sent_at=delivery.sent_at,
                )
                requested = False
                if delivery.project_id is not None:
                    requested = await _request_read(delivery, delivery.project_id, now, shown_after)
            break
        except IntegrityError:
            if await WebhookDelivery.exists(dedupe_key=delivery.dedupe_key):
                return Stored(stored=False, requested=False, round=0)
            if attempt == 2:
                raise
            # A concurrent first delivery for the same resource created its row: again, now
            # as an update.
    if delivery.project_id is None:
        return Stored(stored=True, requested=False, round=0)
    # Read after the request is counted: a pass that ended before sees the request, or this
    # reads its new round (then one more pass runs).
    project = await WebhookProject.get(project_id=delivery.project_id)
    return Stored(stored=True, requested=requested, round=project.round)


async def _request_read(
    delivery: StoredDelivery, project_id: int, now: datetime, shown_after: datetime | None
) -> bool:
    """SQLite: `_PG_STORE`'s request and project rows; whether a re-read was asked."""
    if not await WebhookProject.filter(project_id=project_id).update(last_delivery_at=now):
        await WebhookProject.create(project_id=project_id, last_delivery_at=now)
    row = await WebhookResource.get_or_none(
        project_id=project_id, kind=delivery.kind, resource_id=delivery.target_id
    )
    if row is None:
        await WebhookResource.create(
            project_id=project_id,
            kind=delivery.kind,
            resource_id=delivery.target_id,
            detail=delivery.detail,
            last_event=delivery.event_type,
            requested=1,
            last_delivery_at=now,
            pending_since=now,
        )
        return True
    if shown_after is not None and row.claimed_at is not None and shown_after <= row.claimed_at:
        return False
    waiting = row.requested > row.claimed and row.requested > row.applied
    await WebhookResource.filter(id=row.id).update(
        requested=F("requested") + 1,
        last_event=delivery.event_type,
        detail=delivery.detail,
        last_delivery_at=now,
        pending_since=row.pending_since if waiting else now,
    )
    return True


@dataclass(frozen=True)
class DueRead:
    """A re-read a pass makes: the row, and the ``requested`` value it covers."""

    row_id: int
    kind: str
    resource_id: int
    detail: str
    last_event: str
    covers: int


def _claimable(project_id: int, now: datetime) -> Q:
    return (
        Q(project_id=project_id)
        & Q(requested__gt=F("applied"))
        & (
            Q(requested__gt=F("claimed"))
            | Q(claimed_at__isnull=True)
            | Q(claimed_at__lt=now - STALE_CLAIM)
        )
    )


@dataclass(frozen=True)
class Waiting:
    """A re-read no pass holds: its resource's last delivery, and its oldest unclaimed one."""

    last_delivery_at: datetime
    pending_since: datetime


async def waiting_reads(project_id: int) -> list[Waiting]:
    """The project's re-reads that no pass has claimed."""
    rows = await WebhookResource.filter(_claimable(project_id, timezone.now())).values_list(
        "last_delivery_at", "pending_since"
    )
    return [
        Waiting(last, pending or last)
        for last, pending in rows
        if last is not None  # always set by `store_delivery`
    ]


async def claim_reads(
    project_id: int, *, quiet_since: datetime | None, pending_before: datetime | None = None
) -> list[DueRead]:
    """Claim the project's re-reads no other pass holds whose last delivery came before
    ``quiet_since`` or whose oldest unclaimed one came before ``pending_before`` (None for
    both: all of them)."""
    now = timezone.now()
    due = _claimable(project_id, now)
    if quiet_since is not None:
        timely = Q(last_delivery_at__lte=quiet_since)
        if pending_before is not None:
            timely |= Q(pending_since__lte=pending_before)
        due &= timely
    ids = await WebhookResource.filter(due).values_list("id", flat=True)
    if not ids:
        return []
    # One conditional update claims them; the rows stamped with this claim's time are ours.
    await WebhookResource.filter(Q(id__in=list(ids)) & due).update(
        claimed=F("requested"), claimed_at=now
    )
    rows = await WebhookResource.filter(id__in=list(ids), claimed_at=now).order_by("id")
    return [
        DueRead(row.id, row.kind, row.resource_id, row.detail, row.last_event, row.claimed)
        for row in rows
    ]


async def next_round(project_id: int) -> None:
    """A pass is about to end: later deliveries queue the next pass (`pass_job_key`)."""
    await WebhookProject.filter(project_id=project_id).update(round=F("round") + 1)


async def release(reads: list[DueRead]) -> None:
    """The pass failed: its claims go, so the next pass re-reads these."""
    for read in reads:
        await WebhookResource.filter(id=read.row_id, claimed=read.covers).update(
            claimed=F("applied"), claimed_at=None
        )


async def mark_applied(reads: list[DueRead]) -> None:
    """The re-reads were applied: each row's ``applied`` moves up to what its read covered."""
    for read in reads:
        await WebhookResource.filter(id=read.row_id, applied__lt=read.covers).update(
            applied=read.covers
        )


async def last_delivery() -> WebhookDelivery | None:
    """The last delivery received, from any project."""
    return await WebhookDelivery.all().order_by("-id").first()


async def delivery_count() -> int:
    """How many deliveries were received (duplicates not counted)."""
    return await WebhookDelivery.all().count()


async def pending_reads() -> int:
    """How many resources wait for a re-read."""
    return await WebhookResource.filter(requested__gt=F("applied")).count()
