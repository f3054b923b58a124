"""The Procore source: reads a project through `procore.api` and maps Procore's JSON to the
plain-data records of `sources.snapshot`.

Public functions:
- `read_project(client, project_id, since=…)`: the eager lists (project, billing periods,
  commitments with invoice contacts and private lists, users with their Commitments level,
  requisition headers). ``since=None`` → a full snapshot (``complete=True``); a datetime → only
  what Procore says changed since then (``filters[updated_at]``), ``complete=False``. Users are
  always read whole (OAS lists ``filters[updated_at]`` on project users too, but a whole read
  is one page and also shows who left). Invoices come without their detail
  (``items``/``summary_text`` None: read lazily).
- `read_invoice(client, project_id, invoice_id)`: one invoice with its detail (G703 lines and
  summary text) and fresh attachment URLs.
- `read_invoice_headers(client, project_id, ids)`: several invoices' headers in one request per
  2,000 ids (the freshness check before compiling).
- `download_invoice_files(...)`: an invoice's attachments and signed PDF, re-reading the
  invoice once when a file URL has expired.

Fail closed: a private commitment whose list cannot be read gets ``private_list=None``; a user
whose Commitments level cannot be told gets ``access_known=False`` and level ``"none"``.
`signed_pdf_of` holds the DocuSign guess, `procore.api.read_private_list` and
`procore.api.commitments_access_level` the other two.

Errors: `procore.errors.ProjectNotReachable` when the project answers 403; `ProcoreDataError`
naming the record when a field this source needs is missing or malformed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from procore import api
from procore.client import DownloadedFile, ProcoreClient
from procore.errors import FileUrlExpired, ProcoreDataError, ProcoreForbidden
from sources.money import parse_money
from sources.snapshot import (
    SOURCE_PROCORE,
    AttachmentRecord,
    BillingPeriodRecord,
    CommitmentRecord,
    FileRecord,
    InvoiceRecord,
    ProjectRecord,
    ProjectSnapshot,
    UserRecord,
)

# Incremental reads start this much before ``since``: Procore's clock and ours may differ.
SINCE_OVERLAP = timedelta(minutes=5)
CENT = Decimal("0.01")
CURRENT_PAYMENT_DUE_LIMIT = Decimal("1e14")  # the cents column: max_digits=16, decimal_places=2
COMMITMENT_KINDS = ("work_order_contracts", "purchase_order_contracts")
# GUESS (see `signed_pdf_of`): words in the file name of DocuSign's completed document.
SIGNED_FILENAME_HINTS = ("signed", "docusign", "completed")


async def read_project(
    client: ProcoreClient, project_id: int, *, since: datetime | None
) -> ProjectSnapshot:
    """One project as Procore gives it now (see the module docstring for full vs incremental).

    ``as_of`` is when the reads began: pass it as ``since`` next time.
    """
    as_of = datetime.now(UTC)
    updated_at = (
        api.updated_between(since - SINCE_OVERLAP, as_of + timedelta(days=1))
        if since is not None
        else None
    )
    project = project_record(await api.show_project(client, project_id))
    (
        periods,
        work_orders,
        purchase_orders,
        active_users,
        inactive_users,
        levels,
        requisitions,
    ) = await _all(
        api.list_billing_periods(client, project_id, updated_at=updated_at),
        *(
            api.list_commitments(client, project_id, kind, updated_at=updated_at)
            for kind in COMMITMENT_KINDS
        ),
        api.list_project_users(client, project_id),
        api.list_project_users(client, project_id, inactive=True),
        _template_levels(client),
        api.list_requisitions(client, project_id, updated_at=updated_at),
    )
    commitment_data = work_orders + purchase_orders
    private_lists = await _private_lists(client, project_id, commitment_data)
    users = _user_records(active_users, inactive_users, levels)
    return ProjectSnapshot(
        project=project,
        billing_periods=tuple(billing_period_record(entry) for entry in periods),
        commitments=tuple(
            commitment_record(entry, private_lists.get(entry.get("id")))
            for entry in commitment_data
        ),
        users=tuple(users),
        invoices=tuple(invoice_record(entry) for entry in requisitions),
        complete=since is None,
        source=SOURCE_PROCORE,
        as_of=as_of,
    )


async def read_invoice(client: ProcoreClient, project_id: int, invoice_id: int) -> InvoiceRecord:
    """One invoice with its detail (``items`` = G703 lines, ``summary_text``) and fresh file
    URLs: the ``view=extended`` show, plus the ``/detail`` lines when the show's items lack them
    (see `_g703_lines`)."""
    data = await api.show_requisition(client, project_id, invoice_id, view="extended")
    items = await _g703_lines(client, project_id, invoice_id, data.get("items"))
    summary_text = data.get("summary_text")
    return invoice_record(
        data, items=items, summary_text=summary_text if isinstance(summary_text, dict) else {}
    )


async def read_invoice_headers(
    client: ProcoreClient, project_id: int, invoice_ids: Iterable[int]
) -> list[InvoiceRecord]:
    """The current headers (status, summary, attachments, ``updated_at``) of these invoices,
    without detail; an id Procore no longer has is simply absent from the answer."""
    wanted = sorted(set(invoice_ids))
    found: list[InvoiceRecord] = []
    step = client.config.per_page_v1
    for start in range(0, len(wanted), step):
        batch = wanted[start : start + step]
        found += [
            invoice_record(entry)
            for entry in await api.list_requisitions(client, project_id, ids=batch)
        ]
    return found


async def read_commitment(
    client: ProcoreClient, project_id: int, kind: str, commitment_id: int
) -> CommitmentRecord:
    """One commitment (``kind``: one of `COMMITMENT_KINDS`) with its invoice contacts and, when
    private, its private list (None when unreadable: fail closed). `ProcoreNotFound` when
    Procore no longer has it."""
    data = await api.show_commitment(client, project_id, kind, commitment_id)
    private_lists = await _private_lists(client, project_id, [data])
    return commitment_record(data, private_lists.get(data.get("id")))


async def read_users(client: ProcoreClient, project_id: int) -> list[UserRecord]:
    """Every user of the project (active and inactive) with their Commitments level: the whole
    directory, so a user absent from it is no longer in the project."""
    active, inactive, levels = await _all(
        api.list_project_users(client, project_id),
        api.list_project_users(client, project_id, inactive=True),
        _template_levels(client),
    )
    return _user_records(active, inactive, levels)


def _user_records(
    active: list[dict[str, Any]],
    inactive: list[dict[str, Any]],
    levels: dict[int, str | None] | None,
) -> list[UserRecord]:
    users: dict[int, UserRecord] = {}
    for entries, is_active in ((active, None), (inactive, False)):
        for entry in entries:
            user = user_record(entry, levels, is_active=is_active)
            users.setdefault(user.user_id, user)  # listed in both (a race): the active one
    return list(users.values())


@dataclass(frozen=True)
class InvoiceFiles:
    """An invoice's downloaded files: attachments by attachment id, and the signed PDF."""

    invoice: InvoiceRecord
    attachments: dict[int, DownloadedFile]
    signed_pdf: DownloadedFile | None


async def download_invoice_files(
    client: ProcoreClient,
    project_id: int,
    invoice: InvoiceRecord,
    dest_dir: Path,
    max_bytes: int,
) -> InvoiceFiles:
    """Download every attachment (and the signed PDF) of ``invoice`` into ``dest_dir``.

    When a file URL has expired (`FileUrlExpired`), the invoice is re-read once for fresh URLs
    and the missing files are tried again; a second expiry propagates. `FileTooLarge` and
    `TooManyRedirects` propagate (the caller triages them like bundle files). ``invoice`` in
    the answer is the one whose URLs were used last.
    """
    attachments: dict[int, DownloadedFile] = {}
    signed: DownloadedFile | None = None
    for attempt in range(2):
        try:
            for attachment in invoice.attachments:
                if attachment.id not in attachments:
                    attachments[attachment.id] = await _download(
                        client, attachment.file, dest_dir, max_bytes
                    )
            if invoice.signed_pdf is not None and signed is None:
                signed = await _download(client, invoice.signed_pdf, dest_dir, max_bytes)
            return InvoiceFiles(invoice, attachments, signed)
        except FileUrlExpired:
            if attempt == 1:
                raise
            fresh = await read_invoice_headers(client, project_id, [invoice.id])
            if not fresh:
                raise
            invoice = replace(fresh[0], items=invoice.items, summary_text=invoice.summary_text)
    raise AssertionError("unreachable")  # pragma: no cover


async def _download(
    client: ProcoreClient, file: FileRecord, dest_dir: Path, max_bytes: int
) -> DownloadedFile:
    if not file.url:
        raise ProcoreDataError(f"file {file.filename!r} has no URL")
    return await client.download(file.url, dest_dir, max_bytes)


# ---------------------------------------------------------------------------------------------
# Reading helpers


async def _all(*calls: Awaitable[Any]) -> list[Any]:
    """Run the calls concurrently (the client bounds concurrency and pacing); the first
    failure cancels the others and is raised as itself."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _template_levels(client: ProcoreClient) -> dict[int, str | None] | None:
    """Permission template id → Commitments level (None: cannot tell); None when the account
    may not read the templates (every user's level is then unknown)."""
    try:
        templates = await api.list_permission_templates(client)
    except ProcoreForbidden:
        return None
    levels: dict[int, str | None] = {}
    for entry in templates:
        if isinstance(entry, dict) and _is_int(entry.get("id")):
            levels[entry["id"]] = api.commitments_access_level(entry)
    return levels


async def _private_lists(
    client: ProcoreClient, project_id: int, commitments: list[dict[str, Any]]
) -> dict[int, list[dict[str, Any]] | None]:
    """The private list of every private commitment (None: unreadable); others get []."""
    private_ids = [
        entry["id"] for entry in commitments if entry.get("private") and _is_int(entry.get("id"))
    ]
    lists = await _all(
        *(api.read_private_list(client, project_id, commitment_id) for commitment_id in private_ids)
    )
    return dict(zip(private_ids, lists, strict=True))


async def _g703_lines(
    client: ProcoreClient, project_id: int, invoice_id: int, items: Any
) -> list[Any]:
    """An invoice's G703 lines.

    OAS ``RestV11RequisitionsIdGet`` documents the extended view's ``items[]`` with the G703
    amounts (``scheduled_value``, ``work_completed_this_period``, …), so one request suffices.
    GUESS kept here: should a live answer lack them (no ``scheduled_value`` on an item), the
    lines come from ``GET /rest/v1.0/requisitions/{id}/detail`` instead (one more request).
    """
    if isinstance(items, list) and all(
        isinstance(item, dict) and "scheduled_value" in item for item in items
    ):
        return items
    return await api.requisition_detail(client, project_id, invoice_id)


# ---------------------------------------------------------------------------------------------
# Mapping Procore JSON → records (pure)


def signed_pdf_of(requisition: dict[str, Any]) -> tuple[FileRecord | None, list[dict[str, Any]]]:
    """The DocuSign-signed PDF of a requisition and the attachments that remain.

    GUESS (notes §3: the API gives only ``electronic_signature_id``; whether the signed file
    shows up in ``attachments[]`` is unconfirmed; DOC never mentions DocuSign and shows
    ``electronic_signature_id`` only on a payment application, erp_events_dictionary.md):
    when ``electronic_signature_id`` is set, the signed copy is the last PDF attachment whose
    file name contains one of `SIGNED_FILENAME_HINTS` (DocuSign names completed documents
    so); it is taken out of the attachments. No such attachment (or no signature id) → no
    signed PDF. Change only this function when a live account shows where the signed copy
    really is.
    """
    attachments = [
        entry for entry in requisition.get("attachments") or [] if isinstance(entry, dict)
    ]
    if requisition.get("electronic_signature_id") is None:
        return None, attachments
    candidates = [
        entry
        for entry in attachments
        if _is_pdf(entry)
        and any(hint in str(entry.get("filename", "")).lower() for hint in SIGNED_FILENAME_HINTS)
    ]
    if not candidates:
        return None, attachments
    signed = candidates[-1]
    rest = [entry for entry in attachments if entry is not signed]
    return FileRecord(
        filename=str(signed.get("filename") or "signed.pdf"), url=signed.get("url")
    ), rest


def _is_pdf(attachment: dict[str, Any]) -> bool:
    content_type = str(attachment.get("content_type") or "").lower()
    return content_type == "application/pdf" or str(
        attachment.get("filename", "")
    ).lower().endswith(".pdf")


def project_record(data: dict[str, Any]) -> ProjectRecord:
    """``GET /rest/v1.0/projects/{id}`` → `ProjectRecord` (Procore has no project settings:
    they stay None, i.e. keep what is stored)."""
    where = f"project {data.get('id')}"
    company = _object(data, "company", where)
    return ProjectRecord(
        id=_int(data, "id", where),
        name=_text(data, "name", where),
        project_number=str(data.get("project_number") or ""),
        company_id=_int(company, "id", f"{where}.company"),
        company_name=str(company.get("name") or ""),
        where=where,
    )


def billing_period_record(data: dict[str, Any]) -> BillingPeriodRecord:
    """A billing period of ``GET /rest/v1.0/projects/{id}/billing_periods``."""
    where = f"billing period {data.get('id')}"
    return BillingPeriodRecord(
        id=_int(data, "id", where),
        position=_int(data, "position", where),
        start_date=_date(data, "start_date", where),
        end_date=_date(data, "end_date", where),
        due_date=_optional_date(data, "due_date", where),
        status=_text(data, "status", where),
        where=where,
    )


def commitment_record(
    data: dict[str, Any], private_list: list[dict[str, Any]] | None
) -> CommitmentRecord:
    """A v1.0 work order / purchase order contract (extended view) and its private list
    (`procore.api.read_private_list`: None = unreadable). A contract that is not private has
    an empty list."""
    where = f"commitment {data.get('id')}"
    vendor = data.get("vendor") if isinstance(data.get("vendor"), dict) else {}
    private = bool(data.get("private"))
    contacts = []
    for contact in data.get("invoice_contacts") or []:
        if isinstance(contact, dict) and _is_int(contact.get("id")):
            contacts.append(
                {
                    "id": contact["id"],
                    "name": str(contact.get("name") or ""),
                    "email": str(contact.get("email") or ""),
                }
            )
    return CommitmentRecord(
        id=_int(data, "id", where),
        number=str(data.get("number") or ""),
        title=str(data.get("title") or ""),
        status=str(data.get("status") or ""),
        executed=bool(data.get("executed")),
        private=private,
        vendor_id=vendor.get("id") if _is_int(vendor.get("id")) else None,
        vendor_name=str(vendor.get("company") or vendor.get("name") or ""),
        invoice_contacts=contacts,
        private_list=private_list if private else [],
        where=where,
    )


def user_record(
    data: dict[str, Any], levels: dict[int, str | None] | None, *, is_active: bool | None
) -> UserRecord:
    """A project user; the Commitments level comes from the user's permission template
    (``levels`` from the templates; None = templates unreadable). A level that cannot be told
    gives ``access_known=False`` and ``"none"``. ``is_active`` overrides the field (the
    ``/users/inactive`` list)."""
    where = f"user {data.get('id')}"
    vendor = data.get("vendor") if isinstance(data.get("vendor"), dict) else None
    level: str | None = None
    if levels is not None:
        for key in ("permission_template", "company_permission_template"):
            chosen = data.get(key)
            if isinstance(chosen, dict) and _is_int(chosen.get("id")):
                level = levels.get(chosen["id"])
                break
    active = is_active if is_active is not None else data.get("is_active") is not False
    return UserRecord(
        user_id=_int(data, "id", where),
        name=str(data.get("name") or ""),
        email_address=str(data.get("email_address") or ""),
        is_active=active,
        vendor_id=vendor.get("id") if vendor and _is_int(vendor.get("id")) else None,
        vendor_name=str(vendor["name"]) if vendor and vendor.get("name") is not None else None,
        commitments_access=level or "none",
        access_known=level is not None,
        where=where,
    )


def invoice_record(
    data: dict[str, Any],
    *,
    items: list[Any] | None = None,
    summary_text: dict[str, Any] | None = None,
) -> InvoiceRecord:
    """A v1.1 requisition (list entry or show) → `InvoiceRecord`; ``items``/``summary_text``
    None when the detail was not read. Attachment files carry their URL, not yet their bytes."""
    where = f"requisition {data.get('id')}"
    summary = _summary(data, where)
    signed, attachments = signed_pdf_of(data)
    return InvoiceRecord(
        id=_int(data, "id", where),
        number=_int(data, "number", where),
        invoice_number=(
            str(data["invoice_number"]) if data.get("invoice_number") is not None else None
        ),
        commitment_id=_int(data, "commitment_id", where),
        period_id=_int(data, "period_id", where),
        requisition_start=_optional_date(data, "requisition_start", where),
        requisition_end=_optional_date(data, "requisition_end", where),
        billing_date=_optional_date(data, "billing_date", where),
        status=_text(data, "status", where),
        summary=summary,
        current_payment_due=_current_payment_due(summary, where),
        attachments=tuple(
            _attachment_record(entry, position, f"{where}.attachments[{position}]")
            for position, entry in enumerate(attachments)
        ),
        summary_text=summary_text,
        items=items,
        signed_pdf=signed,
        source_updated_at=_optional_time(data, "updated_at", where),
        where=where,
    )


def _summary(data: dict[str, Any], where: str) -> dict[str, Any]:
    """The G702 figures: v1.1's ``summary`` (OAS RestV11RequisitionsGet), else the legacy
    ``g702`` block with the same keys (DOC tutorials/tutorial_requisitions.md shows it in a v1.0
    answer)."""
    if not isinstance(data.get("summary"), dict) and isinstance(data.get("g702"), dict):
        return dict(data["g702"])
    return _object(data, "summary", where)


def _attachment_record(data: dict[str, Any], position: int, where: str) -> AttachmentRecord:
    filename = _text(data, "filename", where)
    return AttachmentRecord(
        id=_int(data, "id", where),
        position=position,
        content_type=str(data.get("content_type") or ""),
        file=FileRecord(filename=filename, url=data.get("url") or None),
        where=where,
    )


def _current_payment_due(summary: dict[str, Any], where: str) -> Decimal:
    """``summary.current_payment_due`` (not ``total_claimed_amount``, which is 0 on retainage
    releases), in cents."""
    value = summary.get("current_payment_due")
    try:
        amount = parse_money(value)
    except ValueError:
        raise ProcoreDataError(
            f"{where}.summary.current_payment_due: {value!r} is not an amount"
        ) from None
    if abs(amount) >= CURRENT_PAYMENT_DUE_LIMIT:
        raise ProcoreDataError(f"{where}.summary.current_payment_due: too large")
    return amount.quantize(CENT)


# ---------------------------------------------------------------------------------------------
# Field access: a missing or malformed field raises ProcoreDataError naming the record


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(data: dict[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():  # v2.0 sends ids as strings
        return int(value)
    raise ProcoreDataError(f"{where}.{key}: {value!r} is not an id")


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProcoreDataError(f"{where}.{key}: missing")
    return value


def _object(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProcoreDataError(f"{where}.{key}: missing")
    return value


def _date(data: dict[str, Any], key: str, where: str) -> date:
    value = _optional_date(data, key, where)
    if value is None:
        raise ProcoreDataError(f"{where}.{key}: missing")
    return value


def _optional_date(data: dict[str, Any], key: str, where: str) -> date | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ProcoreDataError(f"{where}.{key}: {value!r} is not a date") from None


def _optional_time(data: dict[str, Any], key: str, where: str) -> datetime | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ProcoreDataError(f"{where}.{key}: {value!r} is not a time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
