"""The offline source: unpack a bundle folder or .zip and validate everything into a complete
`ProjectSnapshot` (``source="bundle"``), without touching the database. `read_bundle` raises
`BundleError` naming file, record and field for every problem; `unpack_bundle` refuses zip
entries and files that escape the bundle. Bundle files come back as `FileRecord`s with a
``path`` inside the bundle (not yet stored). See `commands.import_bundle` for the whole contract.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from sources.money import parse_money
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
    ACCESS_LEVELS,
    BILLING_PERIOD_STATUSES,
    DICTIONARY_CHOICES,
    INVOICE_STATUSES,
)

PROJECT_FILE = "project.json"
BILLING_PERIODS_FILE = "billing_periods.json"
COMMITMENTS_FILE = "commitments.json"
USERS_FILE = "users.json"
REQUISITIONS_FILE = "requisitions.json"

# Summary and line-item keys that hold money or percentages; checked when they have a value.
SUMMARY_AMOUNT_KEYS: frozenset[str] = frozenset(
    {
        "original_contract_sum",
        "net_change_by_change_orders",
        "contract_sum_to_date",
        "total_completed_and_stored_to_date",
        "completed_work_retainage_percent",
        "completed_work_retainage_amount",
        "stored_materials_retainage_percent",
        "stored_materials_retainage_amount",
        "total_retainage",
        "total_earned_less_retainage",
        "less_previous_certificates_for_payment",
        "current_payment_due",
        "balance_to_finish_including_retainage",
        "previous_change_order_additions",
        "previous_change_order_deductions",
        "new_change_order_additions",
        "new_change_order_deductions",
        "positive_previous_change_order_item_total",
        "negative_previous_change_order_item_total",
        "positive_new_change_order_item_total",
        "negative_new_change_order_item_total",
    }
)
ITEM_AMOUNT_KEYS: frozenset[str] = frozenset(
    {
        "scheduled_value",
        "work_completed_from_previous_application",
        "work_completed_this_period",
        "materials_presently_stored",
        "total_completed_and_stored_to_date",
        "total_completed_and_stored_to_date_percent",
        "balance_to_finish",
        "work_completed_retainage_retained_this_period",
        "materials_stored_retainage_currently_retained",
        "total_retainage",
        "retainage",
    }
)
MAX_PROBLEMS_SHOWN = 20
CURRENT_PAYMENT_DUE_LIMIT = Decimal("1e14")  # DecimalField(max_digits=16, decimal_places=2)
IGNORED_TOP_LEVEL_NAMES = frozenset({"__MACOSX", ".DS_Store"})

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BundleError(Exception):
    """A bundle refused as a whole. ``problems``: one ``file[index].field: what`` line each."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        shown = list(self.problems[:MAX_PROBLEMS_SHOWN])
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"… and {len(self.problems) - MAX_PROBLEMS_SHOWN} more problems")
        super().__init__("\n".join(shown))


class _Invalid(Exception):
    """One bad field; caught per record and collected into a `BundleError`."""


# ---------------------------------------------------------------------------------------------
# Unpacking: folder or zip → the folder holding project.json


def unpack_bundle(source: Path, scratch: Path) -> Path:
    """The bundle's root folder: ``source`` itself, or a zip extracted under ``scratch``."""
    if source.is_dir():
        return _bundle_root(source.resolve(), source.name)
    if not source.is_file():
        raise BundleError(f"{source}: no such folder or file")
    if not zipfile.is_zipfile(source):
        raise BundleError(f"{source.name}: neither a folder nor a .zip file")
    target = scratch / "bundle"
    target.mkdir()
    _extract_zip(source, target)
    return _bundle_root(target.resolve(), source.name)


def _extract_zip(source: Path, target: Path) -> None:
    """Extract ``source`` into ``target``; refuse it whole if any entry could land outside.

    Entries are written one by one to the checked path (backslashes, as some Windows tools
    write them, count as separators), never through `ZipFile.extractall`.
    """
    try:
        with zipfile.ZipFile(source) as archive:
            entries = [
                (entry, _safe_entry_path(source.name, entry)) for entry in archive.infolist()
            ]
            _check_room(source.name, target, entries)
            for entry, relative in entries:
                _extract_entry(archive, entry, target / relative)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise BundleError(f"{source.name}: damaged zip file ({error})") from error


def _safe_entry_path(archive_name: str, entry: zipfile.ZipInfo) -> PurePosixPath:
    """The relative path of a zip entry; `BundleError` if it is absolute, has ``..`` or a link."""
    name = entry.filename.replace("\\", "/")
    path = PurePosixPath(name)
    problem = None
    if "\x00" in name:
        problem = "has a NUL in its name"
    elif path.is_absolute() or re.match(r"[A-Za-z]:", name):
        problem = "is an absolute path"
    elif ".." in path.parts:
        problem = "escapes the bundle (..)"
    elif stat.S_ISLNK(entry.external_attr >> 16):
        problem = "is a symbolic link"
    if problem:
        raise BundleError(f"{archive_name}: entry {entry.filename!r} {problem}")
    return path


def _check_room(
    archive_name: str, target: Path, entries: list[tuple[zipfile.ZipInfo, PurePosixPath]]
) -> None:
    """Refuse a zip that would not fit on the disk once extracted (a zip bomb, say)."""
    needed = sum(entry.file_size for entry, _ in entries)
    free = shutil.disk_usage(target).free
    if needed > free:
        raise BundleError(
            f"{archive_name}: needs {needed:,} bytes once extracted, only {free:,} free"
        )


def _extract_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, destination: Path) -> None:
    if entry.filename.endswith(("/", "\\")):
        destination.mkdir(parents=True, exist_ok=True)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(entry) as packed, destination.open("wb") as unpacked:
        shutil.copyfileobj(packed, unpacked, 1024 * 1024)


def _bundle_root(directory: Path, label: str) -> Path:
    """The folder holding project.json: ``directory`` or its single sub-folder."""
    if (directory / PROJECT_FILE).is_file():
        return directory
    children = [child for child in directory.iterdir() if child.name not in IGNORED_TOP_LEVEL_NAMES]
    if len(children) == 1 and children[0].is_dir() and (children[0] / PROJECT_FILE).is_file():
        return children[0].resolve()
    raise BundleError(f"{label}: no {PROJECT_FILE} at the top level or inside a single folder")


# ---------------------------------------------------------------------------------------------
# Reading JSON fields


class _Fields:
    """Typed access to one JSON object; a bad field raises `_Invalid` naming where it is."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise _Invalid(f"{where}: not an object")
        self.data: dict[str, Any] = value
        self.where = where

    def at(self, key: str) -> str:
        """``file[index].key``"""
        return f"{self.where}.{key}"

    def _present(self, key: str) -> Any:
        value = self.data.get(key)
        if value is None:
            raise _Invalid(f"{self.at(key)}: {'null' if key in self.data else 'missing'}")
        return value

    def integer(self, key: str) -> int:
        value = self._present(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"{self.at(key)}: not an integer")
        return value

    def optional_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def text(self, key: str, default: str | None = None) -> str:
        if default is not None and self.data.get(key) is None:
            return default
        value = self._present(key)
        if not isinstance(value, str):
            raise _Invalid(f"{self.at(key)}: not a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def boolean(self, key: str, default: bool | None = None) -> bool:
        if default is not None and self.data.get(key) is None:
            return default
        value = self._present(key)
        if not isinstance(value, bool):
            raise _Invalid(f"{self.at(key)}: not true or false")
        return value

    def date(self, key: str) -> date:
        value = self._present(key)
        if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
            raise _Invalid(f"{self.at(key)}: not an ISO date (YYYY-MM-DD)")
        try:
            return date.fromisoformat(value)
        except ValueError as error:
            raise _Invalid(f"{self.at(key)}: not a valid date ({error})") from error

    def optional_date(self, key: str) -> date | None:
        return None if self.data.get(key) is None else self.date(key)

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise _Invalid(f"{self.at(key)}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def money(self, key: str) -> Decimal:
        value = self._present(key)
        try:
            return parse_money(value, percent="percent" in key)
        except ValueError as error:
            raise _Invalid(f"{self.at(key)}: {value!r} is {error}") from error

    def nested(self, key: str) -> _Fields:
        return _Fields(self._present(key), self.at(key))

    def optional_nested(self, key: str) -> _Fields | None:
        return None if self.data.get(key) is None else self.nested(key)

    def records(self, key: str) -> list[_Fields]:
        """A list of objects; missing or null reads as empty."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _Invalid(f"{self.at(key)}: not a list")
        return [_Fields(entry, f"{self.at(key)}[{index}]") for index, entry in enumerate(value)]

    def json_object(self, key: str) -> dict[str, Any]:
        """A JSON object as stored (numbers as exact strings); missing or null reads as {}."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _Invalid(f"{self.at(key)}: not an object")
        return _json_safe(value)

    def check_amounts(self, keys: frozenset[str]) -> None:
        """Every key among ``keys`` that has a value (not null, not "") must be an amount."""
        for key in sorted(keys & self.data.keys()):
            if self.data[key] not in (None, ""):
                self.money(key)


def _json_safe(value: Any) -> Any:
    """JSON as parsed with Decimal floats → plain JSON types, Decimals as exact strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [_json_safe(entry) for entry in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _load_json(root: Path, filename: str) -> Any:
    """The parsed content of a bundle file; floats come back as Decimal."""
    path = root / filename
    if not path.is_file():
        raise _Invalid(f"{filename}: missing from the bundle")
    if not path.resolve().is_relative_to(root):
        raise _Invalid(f"{filename}: escapes the bundle")
    try:
        return json.loads(path.read_bytes(), parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise _Invalid(
            f"{filename}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from error
    except (UnicodeDecodeError, ValueError) as error:
        raise _Invalid(f"{filename}: invalid JSON: {error}") from error


def _bundle_file(root: Path, fields: _Fields, key: str, filename: str) -> FileRecord:
    """The file a ``url`` names: a relative path that stays inside the bundle and exists.

    Backslashes count as separators (bundles made on Windows).
    """
    url = fields.text(key)
    where = fields.at(key)
    relative = PurePosixPath(url.replace("\\", "/"))
    if not url.strip() or "\x00" in url:
        raise _Invalid(f"{where}: {url!r} is not a relative file path")
    if relative.is_absolute() or re.match(r"[A-Za-z]:", url):
        raise _Invalid(f"{where}: {url!r} is absolute; it must be relative to the bundle")
    if ".." in relative.parts:
        raise _Invalid(f"{where}: {url!r} escapes the bundle")
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise _Invalid(f"{where}: {url!r} escapes the bundle (symbolic link)")
    if not path.is_file():
        raise _Invalid(f"{where}: file {url!r} not found in the bundle")
    return FileRecord(filename=filename, path=path)


# ---------------------------------------------------------------------------------------------
# Phase 1: parsing each file

Record = TypeVar("Record")


def _read_list(
    root: Path, filename: str, parse: Callable[[_Fields], Record], problems: list[str]
) -> list[Record]:
    """Parse every entry of a JSON list file; bad entries add to ``problems``."""
    try:
        content = _load_json(root, filename)
    except _Invalid as invalid:
        problems.append(str(invalid))
        return []
    if not isinstance(content, list):
        problems.append(f"{filename}: not a JSON list")
        return []
    records: list[Record] = []
    for index, entry in enumerate(content):
        try:
            records.append(parse(_Fields(entry, f"{filename}[{index}]")))
        except _Invalid as invalid:
            problems.append(str(invalid))
    return records


def _parse_project(fields: _Fields) -> ProjectRecord:
    company = fields.nested("company")
    settings = fields.optional_nested("settings")
    may_compile: bool | None = None
    dictionary: dict[str, str] | None = None
    if settings is not None:
        if settings.data.get("invoice_contacts_may_compile") is not None:
            may_compile = settings.boolean("invoice_contacts_may_compile")
        chosen = settings.optional_nested("dictionary")
        if chosen is not None:
            dictionary = _parse_dictionary(chosen)
    return ProjectRecord(
        id=fields.integer("id"),
        name=fields.text("name"),
        project_number=fields.text("project_number", default=""),
        company_id=company.integer("id"),
        company_name=company.text("name", default=""),
        invoice_contacts_may_compile=may_compile,
        dictionary=dictionary,
        where=PROJECT_FILE,
    )


def _parse_dictionary(fields: _Fields) -> dict[str, str]:
    """A complete dictionary: given names, defaults for the tools not mentioned."""
    unknown = sorted(fields.data.keys() - DICTIONARY_CHOICES.keys())
    if unknown:
        raise _Invalid(
            f"{fields.at(unknown[0])}: unknown tool; expected one of "
            f"{', '.join(DICTIONARY_CHOICES)}"
        )
    return {
        tool: fields.choice(tool, names) if fields.data.get(tool) is not None else names[0]
        for tool, names in DICTIONARY_CHOICES.items()
    }


def _parse_billing_period(fields: _Fields) -> BillingPeriodRecord:
    start_date = fields.date("start_date")
    end_date = fields.date("end_date")
    if end_date < start_date:
        raise _Invalid(f"{fields.at('end_date')}: {end_date} is before start_date {start_date}")
    return BillingPeriodRecord(
        where=fields.where,
        id=fields.integer("id"),
        position=fields.integer("position"),
        start_date=start_date,
        end_date=end_date,
        due_date=fields.optional_date("due_date"),
        status=fields.choice("status", BILLING_PERIOD_STATUSES),
    )


def _parse_commitment(fields: _Fields) -> CommitmentRecord:
    vendor = fields.optional_nested("vendor")
    return CommitmentRecord(
        where=fields.where,
        id=fields.integer("id"),
        number=fields.text("number"),
        title=fields.text("title", default=""),
        status=fields.text("status", default=""),
        executed=fields.boolean("executed", default=False),
        private=fields.boolean("private", default=False),
        vendor_id=vendor.optional_integer("id") if vendor else None,
        vendor_name=vendor.text("name", default="") if vendor else "",
        invoice_contacts=[
            {
                "id": contact.integer("id"),
                "name": contact.text("name", default=""),
                "email": contact.text("email", default=""),
            }
            for contact in fields.records("invoice_contacts")
        ],
        private_list=[
            {"id": member.integer("id"), "email": member.text("email", default="")}
            for member in fields.records("private_list")
        ],
    )


def _parse_user(fields: _Fields) -> UserRecord:
    vendor = fields.optional_nested("vendor")
    return UserRecord(
        where=fields.where,
        user_id=fields.integer("id"),
        name=fields.text("name", default=""),
        email_address=fields.text("email_address", default=""),
        is_active=fields.boolean("is_active", default=True),
        vendor_id=vendor.optional_integer("id") if vendor else None,
        vendor_name=vendor.optional_text("name") if vendor else None,
        commitments_access=fields.choice("commitments_access", ACCESS_LEVELS),
        access_known=True,
    )


def _invoice_parser(root: Path) -> Callable[[_Fields], InvoiceRecord]:
    def parse(fields: _Fields) -> InvoiceRecord:
        invoice_id = fields.integer("id")
        summary_fields = fields.nested("summary")
        summary_fields.check_amounts(SUMMARY_AMOUNT_KEYS)
        current_payment_due = _current_payment_due(summary_fields)
        items = fields.records("items")
        for item in items:
            item.check_amounts(ITEM_AMOUNT_KEYS)
        signed_pdf = fields.optional_nested("signed_pdf")
        return InvoiceRecord(
            where=fields.where,
            id=invoice_id,
            number=fields.integer("number"),
            invoice_number=fields.optional_text("invoice_number"),
            commitment_id=fields.integer("commitment_id"),
            period_id=fields.integer("period_id"),
            requisition_start=fields.optional_date("requisition_start"),
            requisition_end=fields.optional_date("requisition_end"),
            billing_date=fields.optional_date("billing_date"),
            status=fields.choice("status", INVOICE_STATUSES),
            summary=fields.json_object("summary"),
            summary_text=fields.json_object("summary_text"),
            items=[_json_safe(item.data) for item in items],
            current_payment_due=current_payment_due,
            attachments=tuple(
                _parse_attachment(root, attachment, position)
                for position, attachment in enumerate(fields.records("attachments"))
            ),
            signed_pdf=(
                _bundle_file(root, signed_pdf, "url", signed_pdf.text("filename"))
                if signed_pdf is not None
                else None
            ),
        )

    return parse


def _current_payment_due(summary: _Fields) -> Decimal:
    """``summary.current_payment_due``, which must fit the cents column."""
    amount = summary.money("current_payment_due")
    where = summary.at("current_payment_due")
    if amount != amount.quantize(Decimal("0.01")):
        raise _Invalid(f"{where}: more than 2 decimal places")
    if abs(amount) >= CURRENT_PAYMENT_DUE_LIMIT:
        raise _Invalid(f"{where}: too large")
    return amount.quantize(Decimal("0.01"))


def _parse_attachment(root: Path, fields: _Fields, position: int) -> AttachmentRecord:
    filename = fields.text("filename")
    return AttachmentRecord(
        where=fields.where,
        id=fields.integer("id"),
        position=position,
        content_type=fields.text("content_type", default=""),
        file=_bundle_file(root, fields, "url", filename),
    )


def read_bundle(root: Path) -> ProjectSnapshot:
    """Parse and validate the bundle folder ``root`` into a complete snapshot; no database access.

    Raises `BundleError` listing every problem found.
    """
    root = root.resolve()
    problems: list[str] = []
    project = _read_project(root, problems)
    billing_periods = _read_list(root, BILLING_PERIODS_FILE, _parse_billing_period, problems)
    commitments = _read_list(root, COMMITMENTS_FILE, _parse_commitment, problems)
    users = _read_list(root, USERS_FILE, _parse_user, problems)
    invoices = _read_list(root, REQUISITIONS_FILE, _invoice_parser(root), problems)
    if problems or project is None:
        raise BundleError(problems)
    bundle = ProjectSnapshot(
        project=project,
        billing_periods=tuple(billing_periods),
        commitments=tuple(commitments),
        users=tuple(users),
        invoices=tuple(invoices),
        complete=True,
        source=SOURCE_BUNDLE,
    )
    problems.extend(_cross_check(bundle))
    if problems:
        raise BundleError(problems)
    return bundle


def _read_project(root: Path, problems: list[str]) -> ProjectRecord | None:
    try:
        return _parse_project(_Fields(_load_json(root, PROJECT_FILE), PROJECT_FILE))
    except _Invalid as invalid:
        problems.append(str(invalid))
        return None


def _cross_check(bundle: ProjectSnapshot) -> list[str]:
    """Rules across records: unique ids, known commitments, one open period."""
    problems: list[str] = []
    attachments = [attachment for invoice in bundle.invoices for attachment in invoice.attachments]
    for records, key in (
        (bundle.billing_periods, "id"),
        (bundle.commitments, "id"),
        (bundle.users, "user_id"),
        (bundle.invoices, "id"),
        (attachments, "id"),
    ):
        problems.extend(_duplicate_ids(records, key))
    commitment_ids = {commitment.id for commitment in bundle.commitments}
    for invoice in bundle.invoices:
        if invoice.commitment_id not in commitment_ids:
            problems.append(
                f"{invoice.where}.commitment_id: commitment {invoice.commitment_id} "
                f"is not in {COMMITMENTS_FILE}"
            )
    open_periods = [period for period in bundle.billing_periods if period.status == "open"]
    for period in open_periods[1:]:
        problems.append(
            f"{period.where}.status: a second open billing period "
            f"(already open: {open_periods[0].where})"
        )
    return problems


def _duplicate_ids(records: Sequence[Any], key: str) -> list[str]:
    """One problem per record whose id (attribute ``key``; ``id`` in the JSON) came before."""
    first_seen: dict[int, str] = {}
    problems = []
    for record in records:
        value = getattr(record, key)
        if value in first_seen:
            problems.append(f"{record.where}.id: duplicate id {value} (also {first_seen[value]})")
        else:
            first_seen[value] = record.where
    return problems
