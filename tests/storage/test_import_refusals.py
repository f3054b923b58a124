"""Bad bundles are refused as a whole, with file[index].field, and the database stays as it was."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bundles import BundleData, dump_database, sample_bundle, write_bundle, zip_folder

from commands.import_bundle import import_bundle
from sources.bundle import BundleError
from sources.money import parse_money
from storage.blobs import LocalBlobStore
from storage.models import Project


@pytest.fixture
def blobs(data_dir: Path) -> LocalBlobStore:
    return LocalBlobStore(data_dir)


@dataclass(frozen=True)
class BadBundle:
    """A mutation of the sample data and/or of the written folder, and the expected message."""

    change_data: Callable[[BundleData], None] | None
    change_folder: Callable[[Path], None] | None
    message: str


def _set(path: str, value: object) -> Callable[[BundleData], None]:
    """Set a value by a path such as ``requisitions.0.summary.current_payment_due``."""

    def change(data: BundleData) -> None:
        name, *keys, last = path.split(".")
        target: Any = getattr(data, name)
        for key in keys:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = value

    return change


def _delete_key(path: str) -> Callable[[BundleData], None]:
    def change(data: BundleData) -> None:
        name, index, key = path.split(".")
        del getattr(data, name)[int(index)][key]

    return change


def _write_text(relative: str, text: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / relative).write_text(text)

    return change


def _remove(relative: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / relative).unlink()

    return change


def _duplicate_attachment_id(data: BundleData) -> None:
    data.requisitions[2]["attachments"][0]["id"] = data.requisitions[0]["attachments"][0]["id"]


def _second_open_period(data: BundleData) -> None:
    data.billing_periods[0]["status"] = "open"


BAD_BUNDLES = {
    "bad JSON": BadBundle(
        None,
        _write_text("requisitions.json", '[{"id": 7001,'),
        "requisitions.json: invalid JSON at line 1",
    ),
    "not a list": BadBundle(None, _write_text("users.json", "{}"), "users.json: not a JSON list"),
    "missing JSON file": BadBundle(
        None, _remove("commitments.json"), "commitments.json: missing from the bundle"
    ),
    "missing attachment file": BadBundle(
        None,
        _remove("files/7003/timesheets.pdf"),
        "requisitions.json[2].attachments[0].url: file 'files/7003/timesheets.pdf' not found",
    ),
    "missing signed PDF file": BadBundle(
        None,
        _remove("files/7001/signed.pdf"),
        "requisitions.json[0].signed_pdf.url: file 'files/7001/signed.pdf' not found",
    ),
    "unknown commitment": BadBundle(
        _set("requisitions.1.commitment_id", 999),
        None,
        "requisitions.json[1].commitment_id: commitment 999 is not in commitments.json",
    ),
    "bad money": BadBundle(
        _set("requisitions.0.summary.current_payment_due", "12.34.56"),
        None,
        "requisitions.json[0].summary.current_payment_due: '12.34.56' is not an amount",
    ),
    "bad money in another summary line": BadBundle(
        _set("requisitions.2.summary.total_retainage", "1,23,4.00"),
        None,
        "requisitions.json[2].summary.total_retainage",
    ),
    "bad money in a line item": BadBundle(
        _set("requisitions.0.items.1.scheduled_value", "lots"),
        None,
        "requisitions.json[0].items[1].scheduled_value: 'lots' is not an amount",
    ),
    "NaN money": BadBundle(
        _set("requisitions.1.summary.current_payment_due", "NaN"),
        None,
        "requisitions.json[1].summary.current_payment_due",
    ),
    "sub-cent payment due": BadBundle(
        _set("requisitions.1.summary.current_payment_due", "10.005"),
        None,
        "requisitions.json[1].summary.current_payment_due: more than 2 decimal places",
    ),
    "bad date": BadBundle(
        _set("billing_periods.1.end_date", "2026-13-01"),
        None,
        "billing_periods.json[1].end_date: not a valid date",
    ),
    "non-ISO date": BadBundle(
        _set("requisitions.2.billing_date", "30/09/2026"),
        None,
        "requisitions.json[2].billing_date: not an ISO date",
    ),
    "period ends before it starts": BadBundle(
        _set("billing_periods.0.end_date", "2026-08-01"),
        None,
        "billing_periods.json[0].end_date: 2026-08-01 is before start_date",
    ),
    "period id not an integer": BadBundle(
        _set("requisitions.2.period_id", "899"),
        None,
        "requisitions.json[2].period_id: not an integer",
    ),
    "true is not an integer": BadBundle(
        _set("requisitions.0.number", True),
        None,
        "requisitions.json[0].number: not an integer",
    ),
    "unknown invoice status": BadBundle(
        _set("requisitions.0.status", "paid"),
        None,
        "requisitions.json[0].status: 'paid' is not one of draft, under_review",
    ),
    "unknown period status": BadBundle(
        _set("billing_periods.0.status", "pending"),
        None,
        "billing_periods.json[0].status: 'pending' is not one of open, closed",
    ),
    "two open periods": BadBundle(
        _second_open_period,
        None,
        "billing_periods.json[1].status: a second open billing period",
    ),
    "unknown access level": BadBundle(
        _set("users.1.commitments_access", "owner"),
        None,
        "users.json[1].commitments_access: 'owner' is not one of none, read_only, standard, admin",
    ),
    "missing required field": BadBundle(
        _delete_key("commitments.0.number"), None, "commitments.json[0].number: missing"
    ),
    "null required field": BadBundle(
        _set("requisitions.1.commitment_id", None),
        None,
        "requisitions.json[1].commitment_id: null",
    ),
    "record not an object": BadBundle(
        _set("users.2", "pat@pipe.example"), None, "users.json[2]: not an object"
    ),
    "duplicate invoice id": BadBundle(
        _set("requisitions.1.id", 7001),
        None,
        "requisitions.json[1].id: duplicate id 7001 (also requisitions.json[0])",
    ),
    "duplicate attachment id": BadBundle(
        _duplicate_attachment_id,
        None,
        "requisitions.json[2].attachments[0].id: duplicate id 60001",
    ),
    "unknown dictionary name": BadBundle(
        _set("project.settings.dictionary.invoicing", "Billing"),
        None,
        "project.json.settings.dictionary.invoicing: 'Billing' is not one of",
    ),
    "missing project.json": BadBundle(
        None, _remove("project.json"), "no project.json at the top level"
    ),
}


@pytest.mark.parametrize("bad", BAD_BUNDLES.values(), ids=BAD_BUNDLES.keys())
async def test_a_bad_bundle_is_refused_and_changes_nothing(
    database: str, tmp_path: Path, blobs: LocalBlobStore, bad: BadBundle
) -> None:
    await import_bundle(write_bundle(tmp_path / "good"), blobs)
    before = await dump_database()
    data = sample_bundle()
    if bad.change_data:
        bad.change_data(data)
    folder = write_bundle(tmp_path / "bad", data)
    if bad.change_folder:
        bad.change_folder(folder)

    with pytest.raises(BundleError) as refused:
        await import_bundle(folder, blobs)

    assert bad.message in str(refused.value)
    assert await dump_database() == before


async def test_every_problem_is_reported_at_once(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    data = sample_bundle()
    data.requisitions[0]["status"] = "paid"
    data.requisitions[2]["period_id"] = "x"
    data.users[0]["is_active"] = "yes"

    with pytest.raises(BundleError) as refused:
        await import_bundle(write_bundle(tmp_path / "bad", data), blobs)

    assert refused.value.problems == (
        "users.json[0].is_active: not true or false",
        "requisitions.json[0].status: 'paid' is not one of draft, under_review, "
        "revise_and_resubmit, pending_owner_approval, approved_as_noted, approved",
        "requisitions.json[2].period_id: not an integer",
    )
    assert await Project.all().count() == 0


# --- Paths that escape the bundle ----------------------------------------------------------


def _pointing_at(url: str) -> BundleData:
    data = sample_bundle()
    data.requisitions[1]["attachments"][0]["url"] = url
    return data


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.pdf"
    path.write_bytes(b"%PDF-1.4 secret")
    return path


async def _refused(source: Path, blobs: LocalBlobStore, message: str) -> None:
    with pytest.raises(BundleError) as refused:
        await import_bundle(source, blobs)
    assert message in str(refused.value)
    assert await Project.all().count() == 0
    assert not list(blobs.root.glob("blobs/*/*/*"))


async def test_a_url_with_dot_dot_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore, secret: Path
) -> None:
    folder = write_bundle(tmp_path / "bundle", _pointing_at("../secret.pdf"))
    await _refused(
        folder, blobs, "requisitions.json[1].attachments[0].url: '../secret.pdf' escapes the bundle"
    )


async def test_a_hidden_dot_dot_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore, secret: Path
) -> None:
    folder = write_bundle(tmp_path / "bundle", _pointing_at("files/../../secret.pdf"))
    await _refused(folder, blobs, "escapes the bundle")


async def test_an_absolute_url_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore, secret: Path
) -> None:
    folder = write_bundle(tmp_path / "bundle", _pointing_at(str(secret)))
    await _refused(folder, blobs, "requisitions.json[1].attachments[0].url")
    folder = write_bundle(tmp_path / "bundle2", _pointing_at("/etc/passwd"))
    await _refused(folder, blobs, "'/etc/passwd' is absolute")


async def test_a_signed_pdf_url_escaping_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore, secret: Path
) -> None:
    data = sample_bundle()
    data.requisitions[0]["signed_pdf"]["url"] = "../secret.pdf"
    folder = write_bundle(tmp_path / "bundle", data)
    await _refused(folder, blobs, "requisitions.json[0].signed_pdf.url")


async def test_a_symlink_out_of_the_bundle_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore, secret: Path
) -> None:
    folder = write_bundle(tmp_path / "bundle", _pointing_at("files/innocent.pdf"))
    os.symlink(secret, folder / "files" / "innocent.pdf")
    await _refused(folder, blobs, "'files/innocent.pdf' escapes the bundle (symbolic link)")


async def test_a_symlinked_folder_out_of_the_bundle_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore, secret: Path
) -> None:
    folder = write_bundle(tmp_path / "bundle", _pointing_at("outside/secret.pdf"))
    os.symlink(tmp_path, folder / "outside")
    await _refused(folder, blobs, "escapes the bundle (symbolic link)")


async def test_a_symlink_inside_the_bundle_is_fine(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    folder = write_bundle(tmp_path / "bundle", _pointing_at("files/alias.jpg"))
    os.symlink(folder / "files" / "7002" / "site-photo.jpg", folder / "files" / "alias.jpg")
    report = await import_bundle(folder, blobs)
    assert report.counts["attachments"] == 3


@pytest.mark.parametrize("entry", ["../evil.txt", "bundle/../../evil.txt", "/tmp/evil.txt"])
async def test_a_zip_entry_escaping_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore, entry: str
) -> None:
    archive = zip_folder(write_bundle(tmp_path / "bundle"), tmp_path / "bundle.zip")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr(entry, b"owned")

    await _refused(archive, blobs, f"bundle.zip: entry {entry!r}")
    assert not (tmp_path / "evil.txt").exists()


async def test_a_zip_symlink_entry_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    archive = zip_folder(write_bundle(tmp_path / "bundle"), tmp_path / "bundle.zip")
    link = zipfile.ZipInfo("files/link.pdf")
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr(link, "/etc/passwd")

    await _refused(archive, blobs, "is a symbolic link")


async def test_a_zip_with_two_folders_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    folder = write_bundle(tmp_path / "bundle")
    archive = zip_folder(folder, tmp_path / "bundle.zip", inside="one")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("two/project.json", b"{}")

    await _refused(archive, blobs, "bundle.zip: no project.json at the top level")


async def test_a_file_that_is_not_a_zip_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    not_a_zip = tmp_path / "bundle.zip"
    not_a_zip.write_bytes(b"PK? no")
    await _refused(not_a_zip, blobs, "bundle.zip: neither a folder nor a .zip file")


# --- Money parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1,234.50", "1234.50"),
        ("-1,234,567.89", "-1234567.89"),
        ("$12", "12"),
        ("-$0.10", "-0.10"),
        (".5", "0.5"),
        ("1234567.891", "1234567.891"),
        (" 42 ", "42"),
        (7, "7"),
    ],
)
def test_parse_money_is_exact(text: str | int, amount: str) -> None:
    parsed = parse_money(text)
    assert parsed == type(parsed)(amount)
    assert str(parsed) == amount


@pytest.mark.parametrize(
    "text", ["", "-", "1,2", "12,34.00", "1.2.3", "NaN", "Infinity", "1e5", "ten", True, 1.5, None]
)
def test_parse_money_refuses_anything_else(text: object) -> None:
    with pytest.raises(ValueError):
        parse_money(text)


def test_percent_sign_only_for_percentages() -> None:
    assert str(parse_money("10.0%", percent=True)) == "10.0"
    with pytest.raises(ValueError):
        parse_money("10.0%")


async def test_a_damaged_zip_is_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    archive = zip_folder(write_bundle(tmp_path / "bundle"), tmp_path / "bundle.zip")
    content = bytearray(archive.read_bytes())
    start = content.index(b"PK\x03\x04") + 60
    content[start : start + 40] = b"\x00" * 40
    archive.write_bytes(bytes(content))

    await _refused(archive, blobs, "bundle.zip: damaged zip file")


async def test_backslashes_in_a_url_cannot_escape(
    database: str, tmp_path: Path, blobs: LocalBlobStore, secret: Path
) -> None:
    folder = write_bundle(tmp_path / "bundle", _pointing_at("..\\secret.pdf"))
    await _refused(folder, blobs, "escapes the bundle")
