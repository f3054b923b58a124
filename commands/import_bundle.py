"""Import a project bundle (a folder or a .zip of it; see domain.md "The bundle") into the database.

Contract of `import_bundle`:

* **All or nothing.** Phase 1 reads and validates the whole bundle without touching the database
  (types, ISO dates, money, statuses, access levels, duplicate ids, commitment references, files
  present and inside the bundle). Any problem raises `BundleError`, whose message names the file,
  the record and the field (``requisitions.json[3].period_id: not an integer``), one line per
  problem. Phase 2 copies the files into the blob store, then writes every row in one
  transaction; if anything fails there, the transaction rolls back and the database is as before.
  Blobs stored before a failure stay: they are content-addressed, so they are harmless and are
  reused by the next attempt.
* **Upsert by Procore id** (project users by ``(project, user id)``). A row is written only if a
  value differs, so importing the same bundle twice changes nothing, not even ``updated_at``.
* **A bundle is a complete snapshot of its project.** Billing periods, commitments, users,
  invoices and attachments of that project that the bundle no longer holds are deleted. Keeping
  them would be worse: a user removed from the project (or whose access was lowered to nothing)
  would keep the rights they had, and invoices deleted in Procore would still be offered for
  compiling. Past `Backup` rows keep their ``invoice_ids`` as plain JSON, so they are unaffected.
  Blobs are never deleted here (another invoice or project may share them); collecting unused
  blobs is a separate maintenance task. Because absence means deletion, all five JSON files are
  required: a missing ``requisitions.json`` is an error, not "no invoices".
* **Project settings** (``settings.invoice_contacts_may_compile``, ``settings.dictionary``) are
  written only when the bundle gives them; otherwise what the project's admins chose is kept.
* An id that already belongs to another project is refused (`BundleError`): one bundle cannot
  take over another project's rows.
* ``period_id`` may name a billing period the bundle lacks: that is the compile step's rule, not
  an import error.

Bundle rules beyond the Procore fields: at most one billing period is ``open``; a period's
``end_date`` is not before its ``start_date``; a file ``url`` is a relative path inside the bundle
(no ``..``, not absolute, no symlink out of it); money is a string such as ``"1,234.50"``
(``$`` and a leading ``-`` allowed, ``%`` for percentages) or a JSON number, never NaN.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.transactions import in_transaction

from commands.bundle_reading import (
    AttachmentRecord,
    BillingPeriodRecord,
    Bundle,
    BundleError,
    CommitmentRecord,
    InvoiceRecord,
    ProjectRecord,
    UserRecord,
    read_bundle,
    unpack_bundle,
)
from storage.blobs import BlobStore
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


# ---------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class KindChanges:
    """What an import did to one kind of row. ``in_bundle``: how many the bundle holds."""

    in_bundle: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def changed(self) -> bool:
        """True if any row was created, updated or deleted."""
        return bool(self.created or self.updated or self.deleted)


@dataclass(frozen=True)
class ImportReport:
    """The outcome of `import_bundle`: per kind (see `KINDS`), counts and changes."""

    project_id: int
    project_name: str
    project_number: str
    changes: dict[str, KindChanges]

    @property
    def counts(self) -> dict[str, int]:
        """How many rows of each kind the bundle holds."""
        return {kind: self.changes[kind].in_bundle for kind in KINDS}

    @property
    def unchanged(self) -> bool:
        """True if the database already held exactly this bundle."""
        return not any(changes.changed for changes in self.changes.values())

    def render(self) -> str:
        """A short human summary, one line per kind."""
        number = f" ({self.project_number})" if self.project_number else ""
        lines = [f"Imported {self.project_name}{number}, Procore project {self.project_id}:"]
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
            lines.append(f"  {kind.replace('_', ' ')}: {changes.in_bundle} ({detail})")
        if self.unchanged:
            lines.append("Nothing changed: the database already held this bundle.")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The use case


async def import_bundle(source: Path, blobs: BlobStore) -> ImportReport:
    """Validate the bundle at ``source`` (folder or .zip), store its files in ``blobs`` and
    upsert its project in one transaction. Raises `BundleError` and writes nothing on a bad bundle.
    """
    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        root = await asyncio.to_thread(unpack_bundle, source, Path(scratch))
        bundle = await asyncio.to_thread(read_bundle, root)
        stored = await _store_files(bundle, blobs)
        changes = await _write(bundle, stored)
    project = bundle.project
    return ImportReport(
        project_id=project.id,
        project_name=project.name,
        project_number=project.project_number,
        changes=changes,
    )


# ---------------------------------------------------------------------------------------------
# Phase 2: blobs, then rows in one transaction


@dataclass(frozen=True)
class StoredFile:
    """A bundle file once in the blob store."""

    sha256: str
    byte_size: int


async def _store_files(bundle: Bundle, blobs: BlobStore) -> dict[Path, StoredFile]:
    """Copy every bundle file into ``blobs`` (once per content); returns them by path."""
    stored: dict[Path, StoredFile] = {}
    for bundle_file in bundle.files():
        if bundle_file.path in stored:
            continue
        sha256 = await blobs.put_file(bundle_file.path)
        byte_size = (await asyncio.to_thread(bundle_file.path.stat)).st_size
        stored[bundle_file.path] = StoredFile(sha256=sha256, byte_size=byte_size)
    return stored


@dataclass
class _Tally:
    in_bundle: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def frozen(self) -> KindChanges:
        return KindChanges(self.in_bundle, self.created, self.updated, self.unchanged, self.deleted)


ModelT = TypeVar("ModelT", bound=Model)

# The project's child rows: kind, model, the key rows are matched by. Parents come first.
CHILD_TABLES: tuple[tuple[str, type[Model], str], ...] = (
    ("billing_periods", BillingPeriod, "id"),
    ("commitments", Commitment, "id"),
    ("users", ProjectUser, "user_id"),
    ("invoices", Invoice, "id"),
    ("attachments", Attachment, "id"),
)


async def _write(bundle: Bundle, stored: dict[Path, StoredFile]) -> dict[str, KindChanges]:
    """Upsert the bundle's rows and delete the project's rows it lacks, in one transaction."""
    tallies = {kind: _Tally() for kind in KINDS}
    wanted = _wanted_rows(bundle, stored)
    async with in_transaction():
        await _refuse_foreign_ids(bundle)
        await _sync_project(bundle.project, tallies["projects"])
        existing = await _existing_rows(bundle.project.id)
        for kind, model, key in CHILD_TABLES:
            await _upsert(model, wanted[kind], _by(existing[kind], key), tallies[kind])
        # Children before parents, after the upserts (a row may have moved to a kept parent).
        for kind, model, key in reversed(CHILD_TABLES):
            await _delete_absent(model, existing[kind], key, wanted[kind], tallies[kind])
    return {kind: tally.frozen() for kind, tally in tallies.items()}


def _wanted_rows(
    bundle: Bundle, stored: dict[Path, StoredFile]
) -> dict[str, dict[Any, dict[str, Any]]]:
    """The column values the bundle asks for, per kind, by matching key."""
    project_id = bundle.project.id
    return {
        "billing_periods": {
            period.id: _period_values(project_id, period) for period in bundle.billing_periods
        },
        "commitments": {
            commitment.id: _commitment_values(project_id, commitment)
            for commitment in bundle.commitments
        },
        "users": {user.user_id: _user_values(project_id, user) for user in bundle.users},
        "invoices": {
            invoice.id: _invoice_values(project_id, invoice, stored) for invoice in bundle.invoices
        },
        "attachments": {
            attachment.id: _attachment_values(invoice.id, attachment, stored)
            for invoice in bundle.invoices
            for attachment in invoice.attachments
        },
    }


async def _existing_rows(project_id: int) -> dict[str, list[Any]]:
    """The project's rows in the database now, per kind."""
    return {
        "billing_periods": await BillingPeriod.filter(project_id=project_id),
        "commitments": await Commitment.filter(project_id=project_id),
        "users": await ProjectUser.filter(project_id=project_id),
        "invoices": await Invoice.filter(project_id=project_id),
        "attachments": await Attachment.filter(invoice__project_id=project_id),
    }


def _chunks(values: Sequence[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


async def _refuse_foreign_ids(bundle: Bundle) -> None:
    """Raise `BundleError` if an id of the bundle already belongs to another project."""
    project_id = bundle.project.id
    problems: list[str] = []
    owned: tuple[tuple[type[Model], Sequence[Any], str], ...] = (
        (BillingPeriod, bundle.billing_periods, "project_id"),
        (Commitment, bundle.commitments, "project_id"),
        (Invoice, bundle.invoices, "project_id"),
        (
            Attachment,
            [attachment for invoice in bundle.invoices for attachment in invoice.attachments],
            "invoice__project_id",
        ),
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
        raise BundleError(problems)


async def _sync_project(project: ProjectRecord, tally: _Tally) -> None:
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
        "private_list": commitment.private_list,
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
        "commitments_access": user.commitments_access,
    }


def _invoice_values(
    project_id: int, invoice: InvoiceRecord, stored: dict[Path, StoredFile]
) -> dict[str, Any]:
    signed_pdf = invoice.signed_pdf
    return {
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
        "summary_text": invoice.summary_text,
        "items": invoice.items,
        "current_payment_due": invoice.current_payment_due,
        "signed_pdf_filename": signed_pdf.filename if signed_pdf else None,
        "signed_pdf_sha256": stored[signed_pdf.path].sha256 if signed_pdf else None,
    }


def _attachment_values(
    invoice_id: int, attachment: AttachmentRecord, stored: dict[Path, StoredFile]
) -> dict[str, Any]:
    stored_file = stored[attachment.file.path]
    return {
        "id": attachment.id,
        "invoice_id": invoice_id,
        "position": attachment.position,
        "filename": attachment.file.filename,
        "content_type": attachment.content_type,
        "sha256": stored_file.sha256,
        "byte_size": stored_file.byte_size,
    }


def _by(rows: Sequence[ModelT], key: str) -> dict[Any, ModelT]:
    return {getattr(row, key): row for row in rows}


def _same(current: Any, wanted: Any) -> bool:
    """Equal as stored: JSON compared by its canonical text (so 1 differs from true)."""
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
    tally.in_bundle = len(wanted)
    new_rows: list[ModelT] = []
    for key, values in wanted.items():
        row = existing.get(key)
        if row is None:
            new_rows.append(model(**values))
            tally.created += 1
            continue
        changed = [name for name, value in values.items() if not _same(getattr(row, name), value)]
        if not changed:
            tally.unchanged += 1
            continue
        for name in changed:
            setattr(row, name, values[name])
        await row.save(update_fields=changed + _auto_now_fields(model))
        tally.updated += 1
    if new_rows:
        await model.bulk_create(new_rows)


async def _delete_absent(
    model: type[ModelT],
    existing: Sequence[ModelT],
    key: str,
    wanted: dict[Any, dict[str, Any]],
    tally: _Tally,
) -> None:
    """Delete the rows of ``existing`` whose ``key`` the bundle no longer holds."""
    stale = [row.pk for row in existing if getattr(row, key) not in wanted]
    for ids in _chunks(stale):
        await model.filter(pk__in=ids).delete()
    tally.deleted = len(stale)
