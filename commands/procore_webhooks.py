"""Procore webhooks: take a delivery, re-read what it names, keep the hooks registered.

Receiving (`parse_delivery`, `receive_delivery`; never calls Procore):
- A delivery is Procore's v2.0 payload (notes §7): ``id, ulid, timestamp, metadata, user_id,
  company_id, project_id, api_version, event_type, resource_name, resource_id``. Malformed JSON,
  a missing or malformed field, an event other than create/update/delete or a resource this
  app does not follow raise `DeliveryRejected` (one line).
- It is stored once (dedupe on ``ulid``, else the event ``id``, else resource + event +
  timestamp; DOC plan_your_app/webhooks.md: "track processed events by ``ulid`` or event
  ``id``"): a duplicate changes
  nothing. Otherwise it asks its project for a re-read of one resource (`RESOURCES`: an invoice,
  a commitment, or the project's directory; company-level user and vendor events ask every
  Procore project) and queues the project's next re-read pass (job kind ``procore_webhook``).

Re-reading (`run_pass`, the job's work): reads each resource asked for once it had no delivery
for ``debounce`` seconds (or ``max_wait`` seconds after its oldest unread delivery), however
many deliveries asked; a delivery whose event came before a read began asks nothing more
(`storage.webhooks.CLOCK_SKEW`), so one change is read once however late its deliveries come,
through the shared client (its pacing and 429 handling), and applies them as one partial
snapshot; until nothing is due. Each due re-read is claimed by one pass (passes of the same
project may overlap). What Procore answers now wins, whatever order the deliveries came in. A
``delete`` event, or a 404 on the re-read, deletes the row; a directory re-read deletes the
project's users Procore no longer lists. The project's sync bookkeeping is left as it was: a
pass is not a sync, so the periodic incremental sync still looks back as far as it did.

Registration (`install_hooks`, `hooks_status`, `remove_hooks`): one hook per scope (the company,
or each Procore project stored) in `NAMESPACE`, pointing at the bot with the ``Authorization``
destination header, and one trigger per followed resource and event (`wanted_triggers`).
Running install twice registers nothing twice; it re-activates a hook Procore disabled and
removes our `RETIRED_TRIGGERS`. Procore shows the hook's ``Authorization`` masked, so it is
compared by its last characters (`procore.api.authorization_shown_matches`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tortoise import timezone

from commands.apply_snapshot import SnapshotReport, apply_snapshot, stored_project_record
from procore import api
from procore.client import ProcoreClient
from procore.errors import ProcoreNotFound
from sources.procore import read_commitment, read_invoice, read_users
from sources.snapshot import (
    SOURCE_PROCORE,
    CommitmentRecord,
    Deletions,
    InvoiceRecord,
    ProjectSnapshot,
    UserRecord,
)
from storage import jobs, webhooks
from storage.models import Commitment, Project, ProjectUser
from storage.webhooks import PROCORE_WEBHOOK, DueRead, StoredDelivery, pass_job_key

log = logging.getLogger(__name__)

NAMESPACE = "invoice-backups"
EVENT_TYPES = ("create", "update", "delete")
INVOICE, COMMITMENT, USERS = "invoice", "commitment", "users"
# Procore resource name → (what is re-read, the Procore collection when the kind needs it).
RESOURCES: dict[str, tuple[str, str]] = {
    "Draw Requests": (INVOICE, ""),
    "Work Order Contracts": (COMMITMENT, "work_order_contracts"),
    "Purchase Order Contracts": (COMMITMENT, "purchase_order_contracts"),
    "Project Users": (USERS, ""),
    "Company Users": (USERS, ""),
    "Project Vendors": (USERS, ""),
    "Company Vendors": (USERS, ""),
}
COMPANY_LEVEL = frozenset({"Company Users", "Company Vendors"})
# DOC announcements/webhook_fanout_migration.md: since 2026-06-30 Procore sends no ``update``
# for Project Users / Project Vendors (their create and delete stay); the Company Users /
# Company Vendors ``update`` triggers (no ``project_id``: every project is re-read) replace them.
RETIRED_TRIGGERS = frozenset({("Project Users", "update"), ("Project Vendors", "update")})
MAX_BODY_BYTES = 64 * 1024
DEFAULT_DEBOUNCE_SECONDS = 0.5
DEFAULT_MAX_WAIT_SECONDS = 5.0
MIN_WAIT_SECONDS = 0.01


QUEUED_PASSES_REMEMBERED = 10_000


class DeliveryRejected(Exception):
    """A delivery this app cannot take; ``str(exc)`` is one line saying why."""


# ---------------------------------------------------------------------------------------------
# Receiving


@dataclass(frozen=True)
class Delivery:
    """A checked delivery."""

    ulid: str | None
    event_id: int | None
    timestamp: str
    sent_at: datetime | None
    company_id: int | None
    project_id: int | None
    resource_name: str
    resource_id: int
    event_type: str

    @property
    def dedupe_key(self) -> str:
        """The ``ulid``; without one the event ``id``; else resource + event + timestamp."""
        if self.ulid:
            return f"ulid:{self.ulid}"
        if self.event_id is not None:
            return f"event:{self.event_id}"
        return f"{self.resource_name}:{self.resource_id}:{self.event_type}:{self.timestamp}"


def _id(body: dict[str, Any], key: str, *, required: bool) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool):
        raise DeliveryRejected(f"{key} is not an id")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise DeliveryRejected(f"{key} {'missing' if value is None else 'is not an id'}")


def parse_delivery(raw: bytes) -> Delivery:
    """Check a delivery's body (see the module contract); `DeliveryRejected` if unusable."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DeliveryRejected("the body is not JSON") from None
    if not isinstance(body, dict):
        raise DeliveryRejected("the body is not a JSON object")
    resource_name = body.get("resource_name")
    if not isinstance(resource_name, str) or not resource_name:
        raise DeliveryRejected("resource_name missing")
    if resource_name not in RESOURCES:
        raise DeliveryRejected(f"resource {resource_name[:60]!r} is not followed")
    event_type = body.get("event_type")
    if event_type not in EVENT_TYPES:
        raise DeliveryRejected(f"event_type {str(event_type)[:20]!r} is not create/update/delete")
    resource_id = _id(body, "resource_id", required=True)
    project_id = _id(body, "project_id", required=resource_name not in COMPANY_LEVEL)
    company_id = _id(body, "company_id", required=False)
    try:
        event_id = _id(body, "id", required=False)
    except DeliveryRejected:
        event_id = None  # only a dedupe fallback: an odd one is ignored, not refused
    ulid = body.get("ulid")
    if ulid is not None and (not isinstance(ulid, str) or not 0 < len(ulid) <= 64):
        raise DeliveryRejected("ulid is not a string of 1 to 64 characters")
    timestamp = body.get("timestamp")
    if not isinstance(timestamp, str) or not 0 < len(timestamp) <= 64:
        raise DeliveryRejected("timestamp missing")
    try:
        sent_at: datetime | None = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        sent_at = None
    if sent_at is not None and sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    assert resource_id is not None
    return Delivery(
        ulid=ulid or None,
        event_id=event_id,
        timestamp=timestamp,
        sent_at=sent_at,
        company_id=company_id,
        project_id=project_id,
        resource_name=resource_name,
        resource_id=resource_id,
        event_type=str(event_type),
    )


@dataclass(frozen=True)
class Received:
    """What `receive_delivery` did: ``duplicate`` (nothing else happened), or the passes
    (project id → job id) the delivery joined."""

    duplicate: bool
    passes: dict[int, int] = field(default_factory=dict)


async def receive_delivery(
    delivery: Delivery, queued_passes: dict[str, int] | None = None
) -> Received:
    """Store the delivery and queue the re-read passes it asks for (no Procore call; on
    PostgreSQL one statement per project, `storage.webhooks.store_delivery`); ``passes``: the
    passes it queued or joined (it wakes the worker).

    ``queued_passes`` (pass job key → job id), kept by the caller for one database, remembers
    the passes already queued, so a delivery joining one skips the queue lookup (a project's
    round only grows: a key is never reused)."""
    known = queued_passes if queued_passes is not None else {}
    kind, detail = RESOURCES[delivery.resource_name]
    if delivery.project_id is not None:
        project_ids = [delivery.project_id]
    else:
        project_ids = list(
            await Project.filter(source=SOURCE_PROCORE).order_by("id").values_list("id", flat=True)
        )
    target_id = 0 if kind == USERS else delivery.resource_id
    passes: dict[int, int] = {}
    for index, project_id in enumerate(project_ids or [None]):
        stored = StoredDelivery(
            dedupe_key=delivery.dedupe_key if index == 0 else f"{delivery.dedupe_key}#{project_id}",
            ulid=delivery.ulid,
            company_id=delivery.company_id,
            project_id=project_id,
            resource_name=delivery.resource_name,
            resource_id=delivery.resource_id,
            event_type=delivery.event_type,
            sent_at=delivery.sent_at,
            kind=kind,
            target_id=target_id,
            detail=detail,
        )
        outcome = await webhooks.store_delivery(stored)
        if not outcome.stored:
            if index == 0:
                return Received(duplicate=True)
            continue
        if project_id is None or not outcome.requested:
            continue
        if outcome.pass_job_checked:  # PostgreSQL: the same statement queued it when missing
            if outcome.pass_job_id is not None:
                passes[project_id] = outcome.pass_job_id
            continue
        key = pass_job_key(project_id, outcome.round)
        if key in known:
            passes[project_id] = known[key]
            continue
        enqueued = await jobs.enqueue(key, {"project_id": project_id}, kind=PROCORE_WEBHOOK)
        if len(known) >= QUEUED_PASSES_REMEMBERED:
            known.clear()
        known[key] = enqueued.job.id
        passes[project_id] = enqueued.job.id
    return Received(duplicate=False, passes=passes)


# ---------------------------------------------------------------------------------------------
# Re-reading


@dataclass(frozen=True)
class PassReport:
    """What a re-read pass did."""

    project_id: int
    reads: int
    deleted: int
    report: SnapshotReport | None

    def render(self) -> str:
        """One line, kept on the job."""
        if self.report is None:
            return f"project {self.project_id}: nothing to re-read"
        changed = sum(
            changes.created + changes.updated + changes.deleted
            for changes in self.report.changes.values()
        )
        return (
            f"project {self.project_id}: {self.reads} re-read(s), {self.deleted} deletion(s), "
            f"{changed} row(s) changed"
        )


async def _due_reads(project_id: int, debounce: float, max_wait: float) -> list[DueRead]:
    """Claim the project's re-reads once their resource had no delivery for ``debounce`` s, or
    its oldest unclaimed delivery came ``max_wait`` s ago; [] when none waits (the pass ends:
    the round moves on first, so a delivery after this last look queues the next pass)."""
    while True:
        now = timezone.now()
        due = await webhooks.claim_reads(
            project_id,
            quiet_since=now - timedelta(seconds=debounce),
            pending_before=now - timedelta(seconds=max_wait),
        )
        if due:
            return due
        waiting = await webhooks.waiting_reads(project_id)
        if not waiting:
            await webhooks.next_round(project_id)
            # A delivery stored before the round moved joined this pass: look once more.
            if not await webhooks.waiting_reads(project_id):
                return []
            continue
        now = timezone.now()
        ready_in = min(
            min(
                (read.last_delivery_at - now).total_seconds() + debounce,
                (read.pending_since - now).total_seconds() + max_wait,
            )
            for read in waiting
        )
        await asyncio.sleep(max(ready_in, MIN_WAIT_SECONDS))  # never a busy loop


_Record = TypeVar("_Record", InvoiceRecord, CommitmentRecord)


@dataclass
class _Reads:
    invoices: dict[int, InvoiceRecord] = field(default_factory=dict)
    commitments: dict[int, CommitmentRecord] = field(default_factory=dict)
    users: list[UserRecord] | None = None
    deleted_invoices: set[int] = field(default_factory=set)
    deleted_commitments: set[int] = field(default_factory=set)
    deleted_users: set[int] = field(default_factory=set)
    count: int = 0


async def run_pass(
    client: ProcoreClient,
    project_id: int,
    *,
    debounce: float = DEFAULT_DEBOUNCE_SECONDS,
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
) -> PassReport:
    """Re-read the project's due resources, each once it had no delivery for ``debounce`` s
    (or ``max_wait`` s after its oldest unclaimed one), until none waits (see the module
    contract). Procore errors propagate (the re-reads stay due: the next delivery's pass
    retries them)."""
    total = PassReport(project_id, 0, 0, None)
    while True:
        due = await _due_reads(project_id, debounce, max_wait)
        if not due:
            return total
        try:
            done = await _apply_reads(client, project_id, due)
        except BaseException:
            await webhooks.release(due)
            await webhooks.next_round(project_id)  # this job is over: the next delivery queues one
            raise
        total = PassReport(
            project_id, total.reads + done.reads, total.deleted + done.deleted, done.report
        )


async def _apply_reads(client: ProcoreClient, project_id: int, due: list[DueRead]) -> PassReport:
    """Read each due resource once and apply them as one partial snapshot."""
    project = await Project.get_or_none(id=project_id)
    if project is None:
        await webhooks.mark_applied(due)  # a project this bot does not hold: nothing to do
        return PassReport(project_id, 0, 0, None)
    reads = _Reads()
    await asyncio.gather(*(_reread(client, project_id, read, reads) for read in due))
    await _read_missing_commitments(client, project_id, reads)
    if reads.users is not None:
        listed = {user.user_id for user in reads.users}
        stored = await ProjectUser.filter(project_id=project_id).values_list("user_id", flat=True)
        reads.deleted_users |= {int(user_id) for user_id in stored if user_id not in listed}
    snapshot = ProjectSnapshot(
        project=stored_project_record(project, where=f"project {project.id}"),
        commitments=tuple(reads.commitments.values()),
        users=tuple(reads.users or ()),
        invoices=tuple(reads.invoices.values()),
        complete=False,
        source=SOURCE_PROCORE,
        as_of=project.synced_at,  # a pass is not a sync: the bookkeeping stays
        deleted=Deletions(
            invoice_ids=frozenset(reads.deleted_invoices),
            commitment_ids=frozenset(reads.deleted_commitments),
            user_ids=frozenset(reads.deleted_users),
        ),
    )
    report = await apply_snapshot(snapshot)
    await webhooks.mark_applied(due)
    deleted = len(reads.deleted_invoices) + len(reads.deleted_commitments)
    return PassReport(project_id, reads.count, deleted + len(reads.deleted_users), report)


async def _reread(client: ProcoreClient, project_id: int, read: DueRead, reads: _Reads) -> None:
    if read.kind == INVOICE:
        await _read_or_deleted(
            read,
            reads,
            lambda: read_invoice(client, project_id, read.resource_id),
            reads.invoices,
            reads.deleted_invoices,
        )
    elif read.kind == COMMITMENT:
        await _read_or_deleted(
            read,
            reads,
            lambda: read_commitment(client, project_id, read.detail, read.resource_id),
            reads.commitments,
            reads.deleted_commitments,
        )
    else:
        reads.count += 1
        reads.users = await read_users(client, project_id)


async def _read_or_deleted(
    read: DueRead,
    reads: _Reads,
    read_record: Callable[[], Awaitable[_Record]],
    found: dict[int, _Record],
    deleted: set[int],
) -> None:
    """One resource of ``read``: deleted (its last event, or a 404 when read) → its id in
    ``deleted``; else ``read_record()`` (counted in ``reads.count``) into ``found`` by id."""
    if read.last_event == "delete":
        deleted.add(read.resource_id)
        return
    reads.count += 1
    try:
        found[read.resource_id] = await read_record()
    except ProcoreNotFound:
        deleted.add(read.resource_id)


async def _read_missing_commitments(client: ProcoreClient, project_id: int, reads: _Reads) -> None:
    """An invoice on a commitment the project does not hold yet (a new contract whose own
    delivery has not come): read that commitment too, so the invoice can be stored."""
    wanted = {invoice.commitment_id for invoice in reads.invoices.values()} - set(reads.commitments)
    if not wanted:
        return
    stored = set(
        await Commitment.filter(project_id=project_id, id__in=list(wanted)).values_list(
            "id", flat=True
        )
    )
    for commitment_id in sorted(wanted - stored):
        for kind in ("work_order_contracts", "purchase_order_contracts"):
            reads.count += 1
            try:
                reads.commitments[commitment_id] = await read_commitment(
                    client, project_id, kind, commitment_id
                )
                break
            except ProcoreNotFound:
                continue
        else:  # the commitment is gone: so are its invoices
            for invoice_id in [
                invoice.id
                for invoice in reads.invoices.values()
                if invoice.commitment_id == commitment_id
            ]:
                del reads.invoices[invoice_id]


# ---------------------------------------------------------------------------------------------
# Registration


def wanted_triggers() -> set[tuple[str, str]]:
    """Every (resource name, event type) this app follows (`RETIRED_TRIGGERS` left out)."""
    return {(name, event) for name in RESOURCES for event in EVENT_TYPES} - RETIRED_TRIGGERS


@dataclass(frozen=True)
class HookState:
    """One registered hook: its scope (None: the company), URL and triggers."""

    project_id: int | None
    hook_id: int
    destination_url: str
    triggers: int
    missing_triggers: int
    authorization_matches: bool
    active: bool = True  # Procore disables a hook after repeated failed deliveries


async def _scopes(client: ProcoreClient, scope: str) -> list[int | None]:
    if scope == "company":
        return [None]
    return list(
        await Project.filter(source=SOURCE_PROCORE, company_id=client.company_id)
        .order_by("id")
        .values_list("id", flat=True)
    )


async def install_hooks(
    client: ProcoreClient, url: str, secret: str, *, scope: str = "company"
) -> list[str]:
    """Create or update the hook of each scope (``company``: one for the company; ``projects``:
    one per Procore project stored) and its triggers; one line per change made."""
    changes: list[str] = []
    headers = {"Authorization": secret}
    for project_id in await _scopes(client, scope):
        where = "company" if project_id is None else f"project {project_id}"
        hooks = await api.list_hooks(client, project_id, namespace=NAMESPACE)
        ours = [hook for hook in hooks if hook.get("namespace") == NAMESPACE]
        if ours:
            hook = ours[0]
            hook_id = int(hook["id"])
            shown = (hook.get("destination_headers") or {}).get("Authorization")
            disabled = hook.get("status") == "disabled"
            if (
                hook.get("destination_url") != url
                or not api.authorization_shown_matches(shown, secret)
                or disabled
            ):
                await api.update_hook(
                    client, project_id, hook_id, destination_url=url, destination_headers=headers
                )
                changes.append(
                    f"{where}: hook {hook_id} "
                    + ("re-activated, " if disabled else "")
                    + f"now points at {url}"
                )
            for extra in ours[1:]:
                await api.delete_hook(client, project_id, int(extra["id"]))
                changes.append(f"{where}: duplicate hook {extra['id']} removed")
        else:
            hook = await api.create_hook(
                client,
                project_id,
                namespace=NAMESPACE,
                destination_url=url,
                destination_headers=headers,
            )
            hook_id = int(hook["id"])
            changes.append(f"{where}: hook {hook_id} created for {url}")
        existing = await api.list_triggers(client, project_id, hook_id)
        have = {(str(t.get("resource_name")), str(t.get("event_type"))) for t in existing}
        missing = sorted(wanted_triggers() - have)
        if missing:
            await api.create_triggers(client, project_id, hook_id, missing)
            changes.append(f"{where}: {len(missing)} trigger(s) added")
        retired = [
            trigger["id"]
            for trigger in existing
            if (str(trigger.get("resource_name")), str(trigger.get("event_type")))
            in RETIRED_TRIGGERS
        ]
        if retired:
            await api.delete_triggers(client, project_id, hook_id, retired)
            changes.append(f"{where}: {len(retired)} retired trigger(s) removed")
    return changes


async def hooks_status(
    client: ProcoreClient, secret: str | None, *, scope: str = "company"
) -> list[HookState]:
    """The hooks of `NAMESPACE` registered in each scope, with their triggers."""
    states: list[HookState] = []
    for project_id in await _scopes(client, scope):
        for hook in await api.list_hooks(client, project_id, namespace=NAMESPACE):
            if hook.get("namespace") != NAMESPACE:
                continue
            hook_id = int(hook["id"])
            triggers = await api.list_triggers(client, project_id, hook_id)
            have = {(str(t.get("resource_name")), str(t.get("event_type"))) for t in triggers}
            states.append(
                HookState(
                    project_id=project_id,
                    hook_id=hook_id,
                    destination_url=str(hook.get("destination_url") or ""),
                    triggers=len(triggers),
                    missing_triggers=len(wanted_triggers() - have),
                    authorization_matches=secret is not None
                    and api.authorization_shown_matches(
                        (hook.get("destination_headers") or {}).get("Authorization"), secret
                    ),
                    active=hook.get("status") != "disabled",
                )
            )
    return states


async def remove_hooks(client: ProcoreClient, *, scope: str = "company") -> list[str]:
    """Delete the hooks of `NAMESPACE` (and so their triggers) in each scope."""
    removed: list[str] = []
    for project_id in await _scopes(client, scope):
        for hook in await api.list_hooks(client, project_id, namespace=NAMESPACE):
            if hook.get("namespace") == NAMESPACE:
                await api.delete_hook(client, project_id, int(hook["id"]))
                where = "company" if project_id is None else f"project {project_id}"
                removed.append(f"{where}: hook {hook['id']} removed")
    return removed


@dataclass(frozen=True)
class DeliveryHealth:
    """The safety net's figures: the last delivery received, and the re-reads still due."""

    last_received_at: datetime | None
    last_resource: str | None
    received: int
    pending_reads: int

    def render(self) -> str:
        """One line for ``procore check``, ``webhooks status`` and App Home."""
        if self.last_received_at is None:
            return "Procore webhooks: no delivery received yet"
        moment = self.last_received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"Procore webhooks: last delivery {moment} ({self.last_resource}); "
            f"{self.received} received, {self.pending_reads} re-read(s) pending"
        )


async def delivery_health() -> DeliveryHealth:
    """The last delivery received and the re-reads still due."""
    last = await webhooks.last_delivery()
    return DeliveryHealth(
        last_received_at=last.received_at if last is not None else None,
        last_resource=(
            f"{last.resource_name} {last.resource_id} {last.event_type}"
            if last is not None
            else None
        ),
        received=await webhooks.delivery_count(),
        pending_reads=await webhooks.pending_reads(),
    )
