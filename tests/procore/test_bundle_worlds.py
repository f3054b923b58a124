"""The fake serves a bundle in Procore's shapes, and the Procore source reads back exactly the
bundle's data: project, periods, commitments (contacts, private lists), users and levels,
invoices with detail, attachments and signed PDF, file bytes. This is what lets a later test
compare a sync with an import of the same bundle."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from commands.demo import write_demo_bundle
from procore.client import ProcoreClient
from sources.procore import download_invoice_files, read_invoice, read_project
from tests.procore.fake_procore import FakeProcore, world_from_bundle
from tests.procore.fixtures import client_config
from tests.storage.bundles import write_bundle


def _optional_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@pytest.mark.parametrize(
    "write", [write_bundle, write_demo_bundle], ids=["sample bundle", "demo bundle"]
)
async def test_source_reads_back_the_bundle(tmp_path: Path, write: Callable[[Path], Path]) -> None:
    folder = write(tmp_path / "bundle")

    def load(name: str) -> Any:
        return json.loads((folder / name).read_text(encoding="utf-8"))

    project_json = load("project.json")
    world = world_from_bundle(folder)
    fake = FakeProcore(world)
    await fake.start()
    try:
        async with ProcoreClient(client_config(fake)) as client:
            snapshot = await read_project(client, project_json["id"], since=None)
            invoices = {
                invoice.id: invoice
                for invoice in [
                    await read_invoice(client, project_json["id"], entry.id)
                    for entry in snapshot.invoices
                ]
            }
            files = {
                invoice_id: await download_invoice_files(
                    client, project_json["id"], invoice, tmp_path / "downloads", 10**8
                )
                for invoice_id, invoice in invoices.items()
            }
    finally:
        await fake.close()

    assert (snapshot.project.id, snapshot.project.name, snapshot.project.project_number) == (
        project_json["id"],
        project_json["name"],
        project_json.get("project_number", ""),
    )
    assert [
        (p.id, p.position, p.start_date.isoformat(), p.end_date.isoformat(), p.status)
        for p in snapshot.billing_periods
    ] == [
        (p["id"], p["position"], p["start_date"], p["end_date"], p["status"])
        for p in sorted(load("billing_periods.json"), key=lambda p: p["position"])
    ]
    assert sorted(
        (
            c.id,
            c.number,
            c.title,
            c.status,
            c.executed,
            c.private,
            c.vendor_id,
            c.vendor_name,
            c.invoice_contacts,
            c.private_list,
        )
        for c in snapshot.commitments
    ) == sorted(
        (
            c["id"],
            c["number"],
            c.get("title", ""),
            c.get("status", ""),
            c.get("executed", False),
            c.get("private", False),
            (c.get("vendor") or {}).get("id"),
            (c.get("vendor") or {}).get("name", ""),
            c.get("invoice_contacts", []),
            c.get("private_list", []),
        )
        for c in load("commitments.json")
    )
    assert sorted(
        (
            u.user_id,
            u.name,
            u.email_address,
            u.is_active,
            u.vendor_id,
            u.vendor_name,
            u.commitments_access,
            u.access_known,
        )
        for u in snapshot.users
    ) == sorted(
        (
            u["id"],
            u.get("name", ""),
            u.get("email_address", ""),
            u.get("is_active", True),
            (u.get("vendor") or {}).get("id"),
            (u.get("vendor") or {}).get("name"),
            u["commitments_access"],
            True,
        )
        for u in load("users.json")
    )
    requisitions = load("requisitions.json")
    assert sorted(invoices) == sorted(entry["id"] for entry in requisitions)
    for entry in requisitions:
        invoice = invoices[entry["id"]]
        assert (
            invoice.number,
            invoice.invoice_number,
            invoice.commitment_id,
            invoice.period_id,
            invoice.status,
            invoice.requisition_start,
            invoice.requisition_end,
            invoice.billing_date,
        ) == (
            entry["number"],
            entry.get("invoice_number"),
            entry["commitment_id"],
            entry["period_id"],
            entry["status"],
            _optional_date(entry.get("requisition_start")),
            _optional_date(entry.get("requisition_end")),
            _optional_date(entry.get("billing_date")),
        ), entry["id"]
        assert invoice.summary == entry["summary"]
        assert invoice.summary_text == entry["summary_text"]
        assert invoice.items == entry["items"]
        assert invoice.current_payment_due == Decimal(
            entry["summary"]["current_payment_due"].replace(",", "")
        )
        assert [
            (a.id, a.position, a.content_type, a.file.filename) for a in invoice.attachments
        ] == [
            (a["id"], position, a["content_type"], a["filename"])
            for position, a in enumerate(entry["attachments"])
        ]
        downloaded = files[entry["id"]]
        for attachment in entry["attachments"]:
            got = downloaded.attachments[attachment["id"]].path.read_bytes()
            assert got == (folder / attachment["url"]).read_bytes()
        signed = entry.get("signed_pdf")
        if signed:
            assert invoice.signed_pdf is not None
            assert invoice.signed_pdf.filename == signed["filename"]
            assert downloaded.signed_pdf is not None
            assert downloaded.signed_pdf.path.read_bytes() == (folder / signed["url"]).read_bytes()
        else:
            assert invoice.signed_pdf is None and downloaded.signed_pdf is None
    assert any(entry.get("signed_pdf") for entry in requisitions)
