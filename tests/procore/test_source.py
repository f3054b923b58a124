"""The Procore source: what `read_project` and `read_invoice` make of the fake's data, the
fail-closed rules, incremental reads, and request counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from procore import api
from procore.client import ProcoreClient
from procore.errors import ProcoreDataError, ProjectNotReachable
from sources.procore import (
    invoice_record,
    read_invoice,
    read_invoice_headers,
    read_project,
    signed_pdf_of,
)
from sources.snapshot import SOURCE_PROCORE
from tests.procore.fake_procore import (
    FakeProcore,
    FakeProject,
    synthetic_world,
    template,
    touch,
    user_json,
)
from tests.procore.fixtures import client_config
from tests.storage.bundles import PROJECT_ID, sample_bundle


async def test_full_read_maps_the_bundle_data(procore_client: ProcoreClient) -> None:
    bundle = sample_bundle()
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    assert snapshot.complete is True
    assert snapshot.source == SOURCE_PROCORE
    assert snapshot.as_of is not None
    assert snapshot.project.id == PROJECT_ID
    assert (snapshot.project.name, snapshot.project.project_number) == (
        "Harbor View Tower",
        "HV-2026",
    )
    assert (snapshot.project.company_id, snapshot.project.company_name) == (
        bundle.project["company"]["id"],
        "Summit GC",
    )
    assert snapshot.project.dictionary is None  # Procore has no such setting: keep stored
    assert [(p.id, p.position, p.status) for p in snapshot.billing_periods] == [
        (801, 1, "closed"),
        (802, 2, "open"),
    ]
    assert str(snapshot.billing_periods[0].start_date) == "2026-09-01"
    assert snapshot.billing_periods[1].due_date is None
    commitments = {commitment.id: commitment for commitment in snapshot.commitments}
    assert commitments[501].invoice_contacts == [
        {"id": 9001, "name": "Mara Volt", "email": "mara@volt.example"}
    ]
    assert (commitments[501].private, commitments[501].private_list) == (False, [])
    assert (commitments[502].private, commitments[502].private_list) == (
        True,
        [{"id": 9002, "email": "pat@pipe.example"}],
    )
    assert (commitments[502].vendor_id, commitments[502].vendor_name) == (72, "Pipe & Co")
    users = {user.user_id: user for user in snapshot.users}
    assert {
        uid: (u.commitments_access, u.access_known, u.is_active) for uid, u in users.items()
    } == {
        9000: ("admin", True, True),
        9001: ("read_only", True, True),
        9002: ("standard", True, False),
    }
    assert users[9001].vendor_id == 71 and users[9001].vendor_name == "Volt Electric"
    invoices = {invoice.id: invoice for invoice in snapshot.invoices}
    assert invoices[7002].current_payment_due == Decimal("1234567.89")
    assert invoices[7003].period_id == 899
    assert invoices[7001].items is None and invoices[7001].summary_text is None
    assert invoices[7001].summary == bundle.requisition(7001)["summary"]
    assert [a.id for a in invoices[7001].attachments] == [60001]
    assert invoices[7001].attachments[0].file.url is not None
    assert invoices[7001].signed_pdf is not None
    assert invoices[7001].signed_pdf.filename == "INV-7001 signed.pdf"
    assert invoices[7002].signed_pdf is None
    assert invoices[7001].source_updated_at is not None


async def test_read_invoice_gives_the_detail_in_one_request(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    invoice = await read_invoice(procore_client, PROJECT_ID, 7002)
    bundle = sample_bundle().requisition(7002)
    assert invoice.has_detail
    assert invoice.items == bundle["items"]
    assert invoice.summary_text == bundle["summary_text"]
    assert invoice.current_payment_due == Decimal("1234567.89")
    assert len(fake_procore.api_requests()) == 1


async def test_read_invoice_falls_back_to_the_detail_lines(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.extended_items_have_g703 = False
    invoice = await read_invoice(procore_client, PROJECT_ID, 7002)
    assert invoice.items == sample_bundle().requisition(7002)["items"]
    assert [call.path for call in fake_procore.api_requests()] == [
        "/rest/v1.1/requisitions/7002",
        "/rest/v1.0/requisitions/7002/detail",
    ]


async def test_read_invoice_headers_batches_ids(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    headers = await read_invoice_headers(procore_client, PROJECT_ID, [7003, 7001, 424242])
    assert sorted(invoice.id for invoice in headers) == [7001, 7003]
    assert all(invoice.items is None for invoice in headers)
    assert len(fake_procore.api_requests()) == 1


async def test_incremental_read_holds_only_what_changed(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    project = fake_procore.world.projects[PROJECT_ID]
    old = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for record in (
        project.billing_periods
        + project.work_order_contracts
        + project.purchase_order_contracts
        + list(project.requisitions.values())
    ):
        record["updated_at"] = old
    since = datetime.now(UTC) - timedelta(hours=1)
    touch(project.requisitions[7002])
    project.requisitions[7002]["status"] = "approved"
    touch(project.work_order_contracts[1])  # SC-10, private
    snapshot = await read_project(procore_client, PROJECT_ID, since=since)
    assert snapshot.complete is False
    assert [invoice.id for invoice in snapshot.invoices] == [7002]
    assert snapshot.invoices[0].status == "approved"
    assert [commitment.id for commitment in snapshot.commitments] == [502]
    assert snapshot.billing_periods == ()
    assert len(snapshot.users) == 3  # users have no updated_at filter: always read whole
    requisition_call = fake_procore.api_requests("/rest/v1.1/requisitions")[0]
    start, _, end = requisition_call.query["filters[updated_at]"].partition("...")
    assert datetime.fromisoformat(start.replace("Z", "+00:00")) <= since
    assert datetime.fromisoformat(end.replace("Z", "+00:00")) > datetime.now(UTC)


async def test_unreadable_private_list_fails_closed(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    del fake_procore.world.projects[PROJECT_ID].accessors[502]  # the field is absent
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    commitments = {commitment.id: commitment for commitment in snapshot.commitments}
    assert commitments[502].private_list is None
    assert commitments[501].private_list == []


async def test_private_list_failing_with_an_error_fails_closed(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.inject("500", times=100, path_contains="/commitment_contracts/")
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    commitments = {commitment.id: commitment for commitment in snapshot.commitments}
    assert commitments[502].private_list is None


async def test_unknown_commitments_level_fails_closed(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    world = fake_procore.world
    world.permission_templates.append(template(7800, "No commitments entry", None))
    world.permission_templates.append(template(7801, "Odd level", {"name": "Super User"}))
    project = world.projects[PROJECT_ID]
    project.users += [
        user_json(9100, "No Entry", "a@example.com", level=None, template_id=7800),
        user_json(9101, "Odd Level", "b@example.com", level=None, template_id=7801),
        user_json(9102, "No Template", "c@example.com", level=None),
        user_json(9103, "Gone Template", "d@example.com", level=None, template_id=424242),
    ]
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    users = {user.user_id: user for user in snapshot.users}
    for user_id in (9100, 9101, 9102, 9103):
        assert (users[user_id].commitments_access, users[user_id].access_known) == ("none", False)
    assert (users[9000].commitments_access, users[9000].access_known) == ("admin", True)


async def test_templates_forbidden_makes_every_level_unknown(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.permission_templates_forbidden = True
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    assert {(user.commitments_access, user.access_known) for user in snapshot.users} == {
        ("none", False)
    }


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ({"commitments": "admin"}, "admin"),
        ({"Commitments": "Read Only"}, "read_only"),
        ({"commitments": {"id": 3, "name": "Standard"}}, "standard"),
        ({"commitments": "none"}, "none"),
        ({"commitments": "Read-only"}, "read_only"),  # DOC tutorial_user_permissions.md spelling
        ({"commitments": "owner"}, None),
        ({"directory": "admin"}, None),
        ("admin", None),
    ],
)
def test_commitments_access_level_mapping(levels: object, expected: str | None) -> None:
    assert api.commitments_access_level({"id": 1, "user_access_levels": levels}) == expected


def test_signed_pdf_guess() -> None:
    attachments = [
        {"id": 1, "filename": "Lien waiver.pdf", "content_type": "application/pdf", "url": "u1"},
        {"id": 2, "filename": "signed-INV-9.pdf", "content_type": "application/pdf", "url": "u2"},
    ]
    signed, rest = signed_pdf_of({"electronic_signature_id": 77, "attachments": attachments})
    assert signed is not None and signed.filename == "signed-INV-9.pdf" and signed.url == "u2"
    assert [entry["id"] for entry in rest] == [1]
    unsigned, rest = signed_pdf_of({"electronic_signature_id": None, "attachments": attachments})
    assert unsigned is None and len(rest) == 2
    nothing, rest = signed_pdf_of({"electronic_signature_id": 77, "attachments": attachments[:1]})
    assert nothing is None and len(rest) == 1


def test_a_legacy_g702_block_stands_in_for_a_missing_summary() -> None:
    # DOC tutorials/tutorial_requisitions.md shows a v1.0 answer with ``g702`` (same keys).
    base = {
        "id": 5,
        "number": 2,
        "commitment_id": 3,
        "period_id": 4,
        "status": "approved",
        "attachments": [],
    }
    legacy = invoice_record({**base, "g702": {"current_payment_due": "1,234.50"}})
    assert legacy.current_payment_due == Decimal("1234.50")
    assert legacy.summary == {"current_payment_due": "1,234.50"}
    both = invoice_record(
        {**base, "summary": {"current_payment_due": "7.00"}, "g702": {"current_payment_due": "1"}}
    )
    assert both.current_payment_due == Decimal("7.00")
    with pytest.raises(ProcoreDataError, match=r"requisition 5\.summary: missing"):
        invoice_record(base)


async def test_malformed_amount_names_the_requisition(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.projects[PROJECT_ID].requisitions[7003]["summary"]["current_payment_due"] = (
        "twelve"
    )
    with pytest.raises(ProcoreDataError) as raised:
        await read_project(procore_client, PROJECT_ID, since=None)
    assert "requisition 7003.summary.current_payment_due" in str(raised.value)


async def test_a_forbidden_project_is_not_reachable(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.add_project(FakeProject(id=2**45, name="Locked", forbidden=True))
    with pytest.raises(ProjectNotReachable) as raised:
        await read_project(procore_client, 2**45, since=None)
    assert "permitted projects" in raised.value.reason
    assert len((await read_project(procore_client, PROJECT_ID, since=None)).invoices) == 3


async def test_token_expiry_in_the_middle_of_a_read(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    await read_project(procore_client, PROJECT_ID, since=None)
    fake_procore.expire_tokens()
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    assert len(snapshot.invoices) == 3
    assert len(fake_procore.issued_tokens) == 2


async def test_tokens_expiring_during_a_paced_read_are_reminted(
    fake_procore: FakeProcore,
) -> None:
    fake_procore.world.token_valid_seconds = 0.6  # the client believes expires_in=5400
    fake_procore.set_limits(spike=(4, 1.0))
    async with ProcoreClient(client_config(fake_procore, pace_reserve=4)) as client:
        snapshot = await read_project(client, PROJECT_ID, since=None)
        assert client.stats.rate_limited == 0
    assert len(snapshot.invoices) == 3 and len(snapshot.users) == 3
    assert len(fake_procore.issued_tokens) >= 2
    assert 401 in [call.status for call in fake_procore.api_requests()]
    assert fake_procore.answered_429 == 0


async def test_first_sync_of_10000_invoices_stays_within_400_requests(tmp_path: Path) -> None:
    world = synthetic_world(invoices=10_000, contracts=250)
    fake = FakeProcore(world)
    await fake.start()
    try:
        async with ProcoreClient(client_config(fake)) as client:
            snapshot = await read_project(client, 562949953421312, since=None)
            first = client.stats.total_requests
            assert len(snapshot.invoices) == 10_000
            assert len(snapshot.commitments) == 250
            assert first <= 400
            project = world.projects[562949953421312]
            changed = list(project.requisitions.values())[:20]
            since = snapshot.as_of
            assert since is not None
            for requisition in changed:
                touch(requisition, offset_seconds=1)
            for commitment in project.work_order_contracts:  # nothing else changed
                commitment["updated_at"] = "2020-01-01T00:00:00Z"
            for period in project.billing_periods:
                period["updated_at"] = "2020-01-01T00:00:00Z"
            for requisition in project.requisitions.values():
                if requisition not in changed:
                    requisition["updated_at"] = "2020-01-01T00:00:00Z"
            for commitment in project.purchase_order_contracts:
                commitment["updated_at"] = "2020-01-01T00:00:00Z"
            incremental = await read_project(client, 562949953421312, since=since)
            assert len(incremental.invoices) == 20
            assert client.stats.total_requests - first <= 10
        assert fake.answered_429 == 0
    finally:
        await fake.close()
