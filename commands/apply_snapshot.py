"""The one writer: apply a `sources.snapshot.ProjectSnapshot` to the database.

Contract of `apply_snapshot` (whichever source made the snapshot):

* **One transaction.** Every row is written in one transaction; if anything fails, it rolls
  back and the database is as before. The writer never reads files: a file's bytes are in the
  blob store already (``FileRecord.sha256``) or not yet (None).
* **Foreign ids are refused.** An id of the snapshot that already belongs to another project
  raises `SnapshotRefused` naming the record (``requisitions.json[0].id: 7001 already belongs to
  project 42``) and nothing is written.
* **Upsert by Procore id** (project users by ``(project, user id)``). A row is written only if
  a value differs, so applying the same snapshot twice changes nothing, not even ``updated_at``.
* **None keeps what is stored**: an invoice's ``items``/``summary_text``, a file's
  ``sha256``/``byte_size`` (cleared instead when the file's name changed: the stored bytes were
  another file's), a project setting.
* **Complete vs partial.** A complete snapshot deletes the project's billing periods,
  commitments, users, invoices and attachments it lacks. A partial one deletes nothing but the
  ids in ``snapshot.deleted`` (with the invoices of a deleted commitment), and the attachments
  of an invoice it holds that the invoice's list lacks (an invoice's attachment list is always
  whole). Blobs are never deleted here.
* **Fail closed.** A commitment whose ``private_list`` is None is stored with an empty list and
  ``private_list_known=False``; a user with ``access_known=False`` is stored with access
  ``none``. `commands.access` then lets nobody see or compile through them.
* **Project bookkeeping** (not counted as a change, and not touching ``updated_at``):
  ``source``; ``synced_at`` (``as_of``; for a snapshot without ``as_of``, the time it last
  changed something), ``full_synced_at`` likewise for complete snapshots; ``unreachable_reason``
  cleared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from commands.invoice_search import refresh_invoice_search
from sources.snapshot import (
    SOURCE_BUNDLE,
    AttachmentRecord,
    BillingPeriodRecord,
    CommitmentRecord,
    FileRecord,
    InvoiceRecord,
    ProjectRecord,
    ProjectSnapshot,
    UserRecord,
)
from storage.models import (
    Attachment,
    BillingPeriod,
    Commitment,
    Invoice,
    Project,
    ProjectUser,
    normalize_email,
)

KINDS: tuple[str, ...] = (
    "projects",
    "billing_periods",
    "commitments",
    "users",
    "invoices",
    "attachments",
)


class SnapshotRefused(Exception):
    """A snapshot refused as a whole; ``problems``: one ``record.field: what`` line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


def stored_project_record(project: Project, *, where: str = "project") -> ProjectRecord:
    """``project`` as stored, for a partial snapshot that leaves it as it is: its settings
    (contacts, dictionary) None, so the writer keeps them; ``where`` names it in problems."""
    return ProjectRecord(
        id=project.id,
        name=project.name,
        project_number=project.project_number,
        company_id=project.company_id,
        company_name=project.company_name,
        where=where,
    )


# ---------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class KindChanges:
    """What applying a snapshot did to one kind of row. ``in_snapshot``: how many it holds."""

    in_snapshot: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def changed(self) -> bool:
        """True if any row was created, updated or deleted."""
        return bool(self.created or self.updated or self.deleted)


@dataclass(frozen=True)
class SnapshotReport:
    """The outcome of `apply_snapshot`: per kind (see `KINDS`), counts and changes."""

    project_id: int
    project_name: str
    project_number: str
    changes: dict[str, KindChanges]
    source: str = SOURCE_BUNDLE
    complete: bool = True

    @property
    def counts(self) -> dict[str, int]:
        """How many rows of each kind the snapshot holds."""
        return {kind: self.changes[kind].in_snapshot for kind in KINDS}

    @property
    def unchanged(self) -> bool:
        """True if the database already held exactly this snapshot."""
        return not any(changes.changed for changes in self.changes.values())

    def render(self) -> str:
        """A short human summary, one line per kind."""
        number = f" ({self.project_number})" if self.project_number else ""
        verb = "Imported" if self.source == SOURCE_BUNDLE else "Synced"
        lines = [f"{verb} {self.project_name}{number}, Procore project {self.project_id}:"]
        for kind in KINDS:
            changes = self.changes[kind]
            parts = [
                f"{count} {label}"
                for label, count in (
                    ("created", changes.created),
                    ("updated", changes.updated),
                    ("deleted", changes.deleted),
                )
                if count
            ]
            detail = ", ".join(parts) if parts else "unchanged"
            lines.append(f"  {kind.replace('_', ' ')}: {changes.in_snapshot} ({detail})")
        if self.unchanged:
            held = "this bundle" if self.source == SOURCE_BUNDLE else "this data"
            lines.append(f"Nothing changed: the database already held {held}.")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The writer


@dataclass
class _Tally:
    in_snapshot: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    # Which rows changed how (for the search index): key → changed field names; deleted pks.
    created_keys: set[Any] = field(default_factory=set)
    updated_fields: dict[Any, list[str]] = field(default_factory=dict)
    deleted_keys: set[Any] = field(default_factory=set)

    def frozen(self) -> KindChanges:
        return KindChanges(
            self.in_snapshot, self.created, self.updated, self.unchanged, self.deleted
        )


ModelT = TypeVar("ModelT", bound=Model)
Rows = dict[str, list[Any]]
Wanted = dict[str, dict[Any, dict[str, Any]]]

# The project's child rows: kind, model, the key rows are matched by. Parents come first.
CHILD_TABLES: tuple[tuple[str, type[Model], str], ...] = (
    ("billing_periods", BillingPeriod, "id"),
    ("commitments", Commitment, "id"),
    ("users", ProjectUser, "user_id"),
    ("invoices", Invoice, "id"),
    ("attachments", Attachment, "id"),
)


async def apply_snapshot(snapshot: ProjectSnapshot) -> SnapshotReport:
    """Write ``snapshot`` to the database in one transaction (see the module contract).

    Raises `SnapshotRefused` (and writes nothing) when an id belongs to another project or an
    invoice of a partial snapshot names a commitment that is neither in it nor stored.
    """
    tallies = {kind: _Tally() for kind in KINDS}
    synced_at = _utc(snapshot.as_of) or datetime.now(UTC)
    project_id = snapshot.project.id
    async with in_transaction() as connection:
        await _refuse_foreign_ids(snapshot)
        if not snapshot.complete:
            await _refuse_unknown_commitments(snapshot)
        stored_project = await _sync_project(snapshot.project, tallies["projects"])
        existing = await _existing_rows(snapshot)
        wanted = _wanted_rows(snapshot, existing, synced_at)
        for kind, model, key in CHILD_TABLES:
            await _upsert(model, wanted[kind], _by(existing[kind], key), tallies[kind])
        stale = _stale_rows(snapshot, existing, wanted)
        # Children before parents, after the upserts (a row may have moved to a kept parent).
        for kind, model, _key in reversed(CHILD_TABLES):
            await _delete_absent(model, stale[kind], tallies[kind])
        changed = any(tally.frozen().changed for tally in tallies.values())
        await _record_sync(snapshot, stored_project, changed, synced_at)
        if changed:  # in the same transaction: the search never sees rows its index lacks
            touched, placed = await _touched_invoices(snapshot, tallies)
            await refresh_invoice_search(project_id, connection, touched, placed)
    project = snapshot.project
    return SnapshotReport(
        project_id=project_id,
        project_name=project.name,
        project_number=project.project_number,
        changes={kind: tally.frozen() for kind, tally in tallies.items()},
        source=snapshot.source,
        complete=snapshot.complete,
    )


# Changes that can move an invoice in the menu's order (`commands.invoice_search.menu_sort_key`).
_ORDER_FIELDS = {
    "invoices": {"number", "period_id", "commitment_id", "project_id"},
    "commitments": {"number"},
    "billing_periods": {"position"},
}
# Changes that alter the search text of the invoices of a commitment or a billing period.
_TEXT_FIELDS = {
    "commitments": {"number", "title", "vendor_name"},
    "billing_periods": {"position", "start_date", "end_date"},
}


async def _touched_invoices(
    snapshot: ProjectSnapshot, tallies: dict[str, _Tally]
) -> tuple[set[int] | None, set[int]]:
    """The invoices whose search entry the applied changes may alter, and those of them that
    are new or may have moved in the menu's order (they need a new place): the arguments of
    `refresh_invoice_search`. A complete snapshot: None (the whole project), none placed."""
    if snapshot.complete:
        return None, set()
    invoices = tallies["invoices"]
    placed = set(invoices.created_keys) | {
        key
        for key, fields in invoices.updated_fields.items()
        if _ORDER_FIELDS["invoices"] & set(fields)
    }
    touched = set(invoices.updated_fields) | placed
    project_id = snapshot.project.id
    for kind, column in (("commitments", "commitment_id"), ("billing_periods", "period_id")):
        tally = tallies[kind]
        moving = {
            key for key, fields in tally.updated_fields.items() if _ORDER_FIELDS[kind] & set(fields)
        }
        # A period that appeared or went moves its invoices (from or to "missing").
        moving |= set(tally.created_keys) | set(tally.deleted_keys)
        texts = {
            key for key, fields in tally.updated_fields.items() if _TEXT_FIELDS[kind] & set(fields)
        }
        for owners, moved in ((sorted(moving), True), (sorted(texts - moving), False)):
            for ids in _chunks(owners):
                found = await Invoice.filter(
                    project_id=project_id, **{f"{column}__in": ids}
                ).values_list("id", flat=True)
                touched.update(found)
                if moved:
                    placed.update(found)
    return touched, placed


def _chunks(values: Sequence[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _attachments(snapshot: ProjectSnapshot) -> list[AttachmentRecord]:
    return [attachment for invoice in snapshot.invoices for attachment in invoice.attachments]


async def _refuse_foreign_ids(snapshot: ProjectSnapshot) -> None:
    """Raise `SnapshotRefused` if an id of the snapshot already belongs to another project."""
    project_id = snapshot.project.id
    problems: list[str] = []
    owned: tuple[tuple[type[Model], Sequence[Any], str], ...] = (
        (BillingPeriod, snapshot.billing_periods, "project_id"),
        (Commitment, snapshot.commitments, "project_id"),
        (Invoice, snapshot.invoices, "project_id"),
        (Attachment, _attachments(snapshot), "invoice__project_id"),
    )
    for model, records, owner in owned:
        where_by_id = {record.id: record.where for record in records}
        for ids in _chunks(list(where_by_id)):
            foreign = (
                await model.filter(id__in=ids)
                .exclude(**{owner: project_id})
                .values_list("id", owner)
            )
            for record_id, other_project_id in foreign:
                problems.append(
                    f"{where_by_id[record_id]}.id: {record_id} already belongs to "
                    f"project {other_project_id}"
                )
    if problems:
        raise SnapshotRefused(problems)


async def _refuse_unknown_commitments(snapshot: ProjectSnapshot) -> None:
    """A partial snapshot's invoices must name a commitment it holds or the project has."""
    given = {commitment.id for commitment in snapshot.commitments}
    referenced = {invoice.commitment_id for invoice in snapshot.invoices} - given
    deleted = snapshot.deleted.commitment_ids
    stored: set[int] = set()
    for ids in _chunks(sorted(referenced)):
        stored.update(
            await Commitment.filter(project_id=snapshot.project.id, id__in=ids).values_list(
                "id", flat=True
            )
        )
    problems = [
        f"{invoice.where}.commitment_id: commitment {invoice.commitment_id} is neither in the "
        "snapshot nor stored for the project"
        for invoice in snapshot.invoices
        if invoice.commitment_id not in given
        and (invoice.commitment_id not in stored or invoice.commitment_id in deleted)
    ]
    if problems:
        raise SnapshotRefused(problems)


async def _sync_project(project: ProjectRecord, tally: _Tally) -> Project:
    """Upsert the project row; returns it as stored now."""
    values: dict[str, Any] = {
        "name": project.name,
        "project_number": project.project_number,
        "company_id": project.company_id,
        "company_name": project.company_name,
    }
    if project.invoice_contacts_may_compile is not None:
        values["invoice_contacts_may_compile"] = project.invoice_contacts_may_compile
    if project.dictionary is not None:
        values["dictionary"] = project.dictionary
    existing = await Project.get_or_none(id=project.id)
    current = {project.id: existing} if existing is not None else {}
    await _upsert(Project, {project.id: {"id": project.id, **values}}, current, tally)
    return await Project.get(id=project.id)


async def _record_sync(
    snapshot: ProjectSnapshot, project: Project, changed: bool, synced_at: datetime
) -> None:
    """Write the project's sync bookkeeping, without counting it or touching ``updated_at``."""
    values: dict[str, Any] = {"source": snapshot.source, "unreachable_reason": None}
    if snapshot.as_of is not None or changed or project.synced_at is None:
        values["synced_at"] = synced_at
    if snapshot.complete and (
        snapshot.as_of is not None or changed or project.full_synced_at is None
    ):
        values["full_synced_at"] = synced_at
    differing = {
        name: value for name, value in values.items() if not _same(getattr(project, name), value)
    }
    if differing:
        await Project.filter(id=project.id).update(**differing)


async def _existing_rows(snapshot: ProjectSnapshot) -> Rows:
    """The project's rows the writer may touch, per kind: all of them for a complete snapshot;
    for a partial one, those it holds or deletes (and the attachments of its invoices)."""
    project_id = snapshot.project.id
    if snapshot.complete:
        return {
            "billing_periods": await BillingPeriod.filter(project_id=project_id),
            "commitments": await Commitment.filter(project_id=project_id),
            "users": await ProjectUser.filter(project_id=project_id),
            "invoices": await Invoice.filter(project_id=project_id),
            "attachments": await Attachment.filter(invoice__project_id=project_id),
        }
    deleted = snapshot.deleted
    invoice_ids = sorted({invoice.id for invoice in snapshot.invoices} | deleted.invoice_ids)
    attachment_ids = sorted(attachment.id for attachment in _attachments(snapshot))
    rows: Rows = {
        "billing_periods": await _rows_of(
            BillingPeriod,
            project_id,
            "id",
            {period.id for period in snapshot.billing_periods} | deleted.billing_period_ids,
        ),
        "commitments": await _rows_of(
            Commitment,
            project_id,
            "id",
            {commitment.id for commitment in snapshot.commitments} | deleted.commitment_ids,
        ),
        "users": await _rows_of(
            ProjectUser,
            project_id,
            "user_id",
            {user.user_id for user in snapshot.users} | deleted.user_ids,
        ),
        "invoices": await _rows_of(Invoice, project_id, "id", set(invoice_ids)),
    }
    known_invoices = {invoice.id for invoice in rows["invoices"]}
    for ids in _chunks(sorted(deleted.commitment_ids)):
        for invoice in await Invoice.filter(project_id=project_id, commitment_id__in=ids):
            if invoice.id not in known_invoices:
                rows["invoices"].append(invoice)
                known_invoices.add(invoice.id)
    attachments: dict[int, Attachment] = {}
    for ids in _chunks(sorted(known_invoices)):
        for attachment in await Attachment.filter(invoice_id__in=ids):
            attachments[attachment.id] = attachment
    for ids in _chunks(attachment_ids):
        for attachment in await Attachment.filter(invoice__project_id=project_id, id__in=ids):
            attachments[attachment.id] = attachment
    rows["attachments"] = list(attachments.values())
    return rows


async def _rows_of(
    model: type[ModelT], project_id: int, key: str, keys: Iterable[int]
) -> list[ModelT]:
    found: list[ModelT] = []
    for chunk in _chunks(sorted(keys)):
        found.extend(await model.filter(Q(project_id=project_id), Q(**{f"{key}__in": chunk})))
    return found


def _wanted_rows(snapshot: ProjectSnapshot, existing: Rows, synced_at: datetime) -> Wanted:
    """The column values the snapshot asks for, per kind, by matching key (given the stored
    rows, for the fields whose None means "keep")."""
    project_id = snapshot.project.id
    stored_invoices = _by(existing["invoices"], "id")
    stored_attachments = _by(existing["attachments"], "id")
    return {
        "billing_periods": {
            period.id: _period_values(project_id, period) for period in snapshot.billing_periods
        },
        "commitments": {
            commitment.id: _commitment_values(project_id, commitment)
            for commitment in snapshot.commitments
        },
        "users": {user.user_id: _user_values(project_id, user) for user in snapshot.users},
        "invoices": {
            invoice.id: _invoice_values(
                project_id, invoice, stored_invoices.get(invoice.id), synced_at
            )
            for invoice in snapshot.invoices
        },
        "attachments": {
            attachment.id: _attachment_values(
                invoice.id, attachment, stored_attachments.get(attachment.id)
            )
            for invoice in snapshot.invoices
            for attachment in invoice.attachments
        },
    }


def _stale_rows(snapshot: ProjectSnapshot, existing: Rows, wanted: Wanted) -> dict[str, list[Any]]:
    """Primary keys to delete, per kind (see the module contract)."""
    keys = {kind: key for kind, _model, key in CHILD_TABLES}
    if snapshot.complete:
        return {
            kind: [row.pk for row in existing[kind] if getattr(row, keys[kind]) not in wanted[kind]]
            for kind in keys
        }
    deleted = snapshot.deleted
    named = {
        "billing_periods": deleted.billing_period_ids,
        "commitments": deleted.commitment_ids,
        "users": deleted.user_ids,
    }
    stale = {
        kind: [row.pk for row in existing[kind] if getattr(row, keys[kind]) in named[kind]]
        for kind in named
    }
    gone_invoices = {
        invoice.id
        for invoice in existing["invoices"]
        if invoice.id in deleted.invoice_ids or invoice.commitment_id in deleted.commitment_ids
    }
    stale["invoices"] = sorted(gone_invoices)
    whole_lists = {invoice.id for invoice in snapshot.invoices}
    stale["attachments"] = [
        attachment.pk
        for attachment in existing["attachments"]
        if attachment.invoice_id in gone_invoices
        or (attachment.invoice_id in whole_lists and attachment.id not in wanted["attachments"])
    ]
    return stale


def _period_values(project_id: int, period: BillingPeriodRecord) -> dict[str, Any]:
    return {
        "id": period.id,
        "project_id": project_id,
        "position": period.position,
        "start_date": period.start_date,
        "end_date": period.end_date,
        "due_date": period.due_date,
        "status": period.status,
    }


def _commitment_values(project_id: int, commitment: CommitmentRecord) -> dict[str, Any]:
    return {
        "id": commitment.id,
        "project_id": project_id,
        "number": commitment.number,
        "title": commitment.title,
        "status": commitment.status,
        "executed": commitment.executed,
        "private": commitment.private,
        "vendor_id": commitment.vendor_id,
        "vendor_name": commitment.vendor_name,
        "invoice_contacts": commitment.invoice_contacts,
        "private_list": commitment.private_list if commitment.private_list is not None else [],
        "private_list_known": commitment.private_list is not None,
    }


def _user_values(project_id: int, user: UserRecord) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "user_id": user.user_id,
        "name": user.name,
        "email_address": user.email_address,
        "email_lower": normalize_email(user.email_address),
        "is_active": user.is_active,
        "vendor_id": user.vendor_id,
        "vendor_name": user.vendor_name,
        "commitments_access": user.commitments_access if user.access_known else "none",
        "access_known": user.access_known,
    }


def _invoice_values(
    project_id: int, invoice: InvoiceRecord, stored: Invoice | None, synced_at: datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": invoice.id,
        "project_id": project_id,
        "commitment_id": invoice.commitment_id,
        "number": invoice.number,
        "invoice_number": invoice.invoice_number,
        "period_id": invoice.period_id,
        "requisition_start": invoice.requisition_start,
        "requisition_end": invoice.requisition_end,
        "billing_date": invoice.billing_date,
        "status": invoice.status,
        "summary": invoice.summary,
        "current_payment_due": invoice.current_payment_due,
        "source_updated_at": _utc(invoice.source_updated_at),
    }
    detail = {
        name: value
        for name, value in (("summary_text", invoice.summary_text), ("items", invoice.items))
        if value is not None
    }
    values.update(detail)
    if detail:
        values["detail_updated_at"] = _detail_read_at(invoice, stored, detail, synced_at)
    signed_pdf = invoice.signed_pdf
    if signed_pdf is None:
        values.update(signed_pdf_filename=None, signed_pdf_sha256=None)
    else:
        values["signed_pdf_filename"] = signed_pdf.filename
        kept = stored.signed_pdf_filename if stored is not None else None
        values.update(_file_values(signed_pdf, kept, sha256="signed_pdf_sha256"))
    return values


def _detail_read_at(
    invoice: InvoiceRecord, stored: Invoice | None, detail: dict[str, Any], synced_at: datetime
) -> datetime | None:
    """``detail_updated_at`` for an invoice whose detail the snapshot holds: the source's
    ``updated_at``; without one (a bundle), the time the detail last changed."""
    if invoice.source_updated_at is not None:
        return _utc(invoice.source_updated_at)
    if (
        stored is None
        or stored.detail_updated_at is None
        or any(not _same(getattr(stored, name), value) for name, value in detail.items())
    ):
        return synced_at
    return stored.detail_updated_at


def _file_values(
    file: FileRecord, stored_filename: str | None, *, sha256: str, byte_size: str | None = None
) -> dict[str, Any]:
    """The blob columns of a file: as given, kept when the source did not read the bytes, or
    cleared when it did not and the file's name changed."""
    names = [sha256] + ([byte_size] if byte_size else [])
    if file.sha256 is not None:
        given = {sha256: file.sha256}
        if byte_size:
            given[byte_size] = file.byte_size
        return given
    if stored_filename is not None and stored_filename != file.filename:
        return dict.fromkeys(names)
    return {}


def _attachment_values(
    invoice_id: int, attachment: AttachmentRecord, stored: Attachment | None
) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "invoice_id": invoice_id,
        "position": attachment.position,
        "filename": attachment.file.filename,
        "content_type": attachment.content_type,
        **_file_values(
            attachment.file,
            stored.filename if stored is not None else None,
            sha256="sha256",
            byte_size="byte_size",
        ),
    }


def _by(rows: Sequence[ModelT], key: str) -> dict[Any, ModelT]:
    return {getattr(row, key): row for row in rows}


def _utc(moment: datetime | None) -> datetime | None:
    """A time as written: aware, in UTC (a naive one is taken as UTC, as the database gives it
    back without a zone)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _same(current: Any, wanted: Any) -> bool:
    """Equal as stored: JSON compared by its canonical text (so 1 differs from true), times
    compared in UTC."""
    if isinstance(wanted, datetime) and isinstance(current, datetime):
        return _utc(current) == _utc(wanted)
    if isinstance(wanted, dict | list):
        return json.dumps(current, sort_keys=True) == json.dumps(wanted, sort_keys=True)
    return bool(current == wanted)


def _auto_now_fields(model: type[Model]) -> list[str]:
    return [
        name
        for name, model_field in model._meta.fields_map.items()
        if getattr(model_field, "auto_now", False)
    ]


async def _upsert(
    model: type[ModelT],
    wanted: dict[Any, dict[str, Any]],
    existing: dict[Any, ModelT],
    tally: _Tally,
) -> None:
    """Create the rows of ``wanted`` that are not in ``existing``; save only changed fields."""
    tally.in_snapshot = len(wanted)
    new_rows: list[ModelT] = []
    for key, values in wanted.items():
        row = existing.get(key)
        if row is None:
            new_rows.append(model(**values))
            tally.created += 1
            tally.created_keys.add(key)
            continue
        changed = [name for name, value in values.items() if not _same(getattr(row, name), value)]
        if not changed:
            tally.unchanged += 1
            continue
        for name in changed:
            setattr(row, name, values[name])
        await row.save(update_fields=changed + _auto_now_fields(model))
        tally.updated += 1
        tally.updated_fields[key] = changed
    if new_rows:
        await model.bulk_create(new_rows)


async def _delete_absent(model: type[ModelT], stale: Sequence[Any], tally: _Tally) -> None:
    """Delete the rows whose primary keys are ``stale``."""
    for ids in _chunks(list(stale)):
        await model.filter(pk__in=ids).delete()
    tally.deleted = len(stale)
    tally.deleted_keys.update(stale)
