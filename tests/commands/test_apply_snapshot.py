"""The one writer (`apply_snapshot`) on SQLite and PostgreSQL: complete vs partial snapshots,
None keeps what is stored, nothing changes twice, foreign ids refused, fail-closed fields."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from snapshots import (
    ADMIN,
    LISTED,
    OTHER_PROJECT_ID,
    PROJECT_ID,
    STANDARD,
    attachment,
    base_snapshot,
    commitment,
    invoice,
    partial_snapshot,
    user,
    with_invoice,
)
from tortoise import connections

from commands.access import (
    AccessDenied,
    check_selection,
    compile_access,
    project_access,
    search_invoice_options,
)
from commands.apply_snapshot import KINDS, SnapshotRefused, apply_snapshot
from sources.snapshot import SOURCE_PROCORE, BillingPeriodRecord, Deletions, ProjectRecord
from storage.models import Attachment, BillingPeriod, Commitment, Invoice, Project, ProjectUser
from tests.storage.bundles import dump_database

AS_OF = datetime(2026, 4, 1, 12, 30, tzinfo=UTC)


async def ids(model: type, **filters: object) -> list[int]:
    return sorted(int(i) for i in await model.filter(**filters).values_list("id", flat=True))


async def test_a_complete_snapshot_deletes_the_rows_it_lacks(database: str) -> None:
    await apply_snapshot(base_snapshot())
    smaller = base_snapshot()
    smaller = replace(
        smaller,
        invoices=smaller.invoices[:1],
        users=smaller.users[:2],
        billing_periods=smaller.billing_periods[1:],
    )

    report = await apply_snapshot(smaller)

    assert report.changes["invoices"].deleted == 1
    assert report.changes["attachments"].deleted == 1
    assert report.changes["users"].deleted == 1
    assert report.changes["billing_periods"].deleted == 1
    assert await ids(Invoice) == [7001]
    assert await ids(Attachment) == [60001, 60002]
    assert await ProjectUser.filter(project_id=PROJECT_ID).count() == 2


async def test_a_partial_snapshot_never_deletes_what_it_did_not_see(database: str) -> None:
    await apply_snapshot(base_snapshot())
    first = base_snapshot().invoices[0]
    partial = partial_snapshot(
        invoices=(replace(first, status="under_review"),),
    )

    report = await apply_snapshot(partial)

    assert report.changes["invoices"].updated == 1
    assert all(report.changes[kind].deleted == 0 for kind in KINDS)
    assert await ids(Invoice) == [7001, 7002]
    assert await ids(Attachment) == [60001, 60002, 60003]
    assert await ids(Commitment) == [501, 502]
    assert await ids(BillingPeriod) == [801, 802]
    assert await ProjectUser.filter(project_id=PROJECT_ID).count() == 3
    assert (await Invoice.get(id=7001)).status == "under_review"
    assert report.render().startswith("Imported Quay Street Lofts (QS-1), Procore project")


async def test_a_partial_snapshot_deletes_the_ids_it_names(database: str) -> None:
    await apply_snapshot(base_snapshot())
    await apply_snapshot(
        replace(
            base_snapshot(),
            commitments=(*base_snapshot().commitments, commitment(503, private=False)),
            invoices=(*base_snapshot().invoices, invoice(7003, 503)),
        )
    )
    partial = partial_snapshot(
        deleted=Deletions(
            invoice_ids=frozenset({7002}),
            commitment_ids=frozenset({503}),
            user_ids=frozenset({9002}),
            billing_period_ids=frozenset({801}),
        ),
    )

    report = await apply_snapshot(partial)

    assert await ids(Invoice) == [7001]
    assert await ids(Attachment) == [60001, 60002]
    assert await ids(Commitment) == [501, 502]
    assert await ids(BillingPeriod) == [802]
    assert sorted(await ProjectUser.all().values_list("user_id", flat=True)) == [9001, 9003]
    # 7002 by name and 7003 with its deleted commitment.
    assert report.changes["invoices"].deleted == 2
    assert report.changes["attachments"].deleted == 1
    assert report.changes["commitments"].deleted == 1


async def test_deleted_ids_of_another_project_are_left_alone(database: str) -> None:
    await apply_snapshot(base_snapshot())
    other = partial_snapshot(
        project=ProjectRecord(OTHER_PROJECT_ID, "Other", "OT-1", 1, "Other Co"),
        deleted=Deletions(invoice_ids=frozenset({7001}), user_ids=frozenset({9001})),
    )

    report = await apply_snapshot(other)

    assert report.changes["invoices"].deleted == 0
    assert await ids(Invoice) == [7001, 7002]
    assert await ProjectUser.filter(project_id=PROJECT_ID, user_id=9001).exists()


async def test_an_invoice_in_a_partial_snapshot_brings_its_whole_attachment_list(
    database: str,
) -> None:
    await apply_snapshot(base_snapshot())
    first = base_snapshot().invoices[0]
    partial = partial_snapshot(
        invoices=(replace(first, attachments=first.attachments[:1]),),
    )

    report = await apply_snapshot(partial)

    assert await ids(Attachment) == [60001, 60003]
    assert report.changes["attachments"].deleted == 1


async def test_none_keeps_what_is_stored(database: str) -> None:
    await apply_snapshot(base_snapshot())
    stored = await Invoice.get(id=7001)
    first = base_snapshot().invoices[0]
    not_read = replace(
        first,
        items=None,
        summary_text=None,
        attachments=(
            attachment(60001, 0, "a.pdf", None),  # same file, bytes not read this time
            attachment(60002, 1, "b-renamed.pdf", None),  # another file: old bytes are wrong
            attachment(60004, 2, "d.pdf", None),  # new, not downloaded yet
        ),
    )
    partial = partial_snapshot(
        project=replace(
            base_snapshot().project, invoice_contacts_may_compile=None, dictionary=None
        ),
        invoices=(not_read,),
    )
    await Project.filter(id=PROJECT_ID).update(invoice_contacts_may_compile=False)

    report = await apply_snapshot(partial)

    after = await Invoice.get(id=7001)
    assert after.items == stored.items == [{"item_number": "1", "scheduled_value": "1000.00"}]
    assert after.summary_text == stored.summary_text == {"contractor": "Acme"}
    assert report.changes["invoices"].unchanged == 1
    kept = await Attachment.get(id=60001)
    assert (kept.sha256, kept.byte_size) == ("a" * 64, 100)
    renamed = await Attachment.get(id=60002)
    assert (renamed.filename, renamed.sha256, renamed.byte_size) == ("b-renamed.pdf", None, None)
    new = await Attachment.get(id=60004)
    assert (new.sha256, new.byte_size) == (None, None)
    project = await Project.get(id=PROJECT_ID)
    assert project.invoice_contacts_may_compile is False  # chosen here, not overwritten
    assert project.dictionary["commitments"] == "Subcontracts"


@pytest.mark.parametrize("complete", [True, False])
@pytest.mark.parametrize("as_of", [None, AS_OF])
async def test_applying_the_same_snapshot_twice_changes_nothing(
    database: str, complete: bool, as_of: datetime | None
) -> None:
    snapshot = base_snapshot(complete=complete, as_of=as_of, source=SOURCE_PROCORE)
    snapshot = with_invoice(snapshot, 7001, source_updated_at=AS_OF - timedelta(hours=1))
    await apply_snapshot(snapshot)
    before = await dump_database()

    report = await apply_snapshot(snapshot)

    assert report.unchanged
    assert all(report.changes[kind].unchanged == report.changes[kind].in_snapshot for kind in KINDS)
    assert "Nothing changed: the database already held this data." in report.render()
    assert await dump_database() == before


async def test_a_change_touches_only_its_row(database: str) -> None:
    await apply_snapshot(base_snapshot())
    before = dict(await Invoice.all().values_list("id", "updated_at"))

    report = await apply_snapshot(with_invoice(base_snapshot(), 7002, status="approved_as_noted"))

    assert (report.changes["invoices"].updated, report.changes["invoices"].unchanged) == (1, 1)
    after = dict(await Invoice.all().values_list("id", "updated_at"))
    assert after[7001] == before[7001] and after[7002] > before[7002]


async def test_ids_of_another_project_are_refused_and_nothing_is_written(database: str) -> None:
    await apply_snapshot(base_snapshot())
    before = await dump_database()
    other = base_snapshot(
        project=ProjectRecord(OTHER_PROJECT_ID, "Other", "OT-1", 1, "Other Co"),
        billing_periods=(),
        commitments=(commitment(601, private=False),),
        invoices=(invoice(7001, 601, attachment(60003, 0, "x.pdf", "d" * 64)),),
    )

    with pytest.raises(SnapshotRefused) as refused:
        await apply_snapshot(other)

    assert refused.value.problems == (
        f"requisition 7001.id: 7001 already belongs to project {PROJECT_ID}",
        f"attachment 60003.id: 60003 already belongs to project {PROJECT_ID}",
    )
    assert await dump_database() == before
    assert not await Project.filter(id=OTHER_PROJECT_ID).exists()


async def test_a_partial_invoice_of_an_unknown_commitment_is_refused(database: str) -> None:
    await apply_snapshot(base_snapshot())
    before = await dump_database()
    partial = partial_snapshot(invoices=(invoice(7009, 599),))

    with pytest.raises(SnapshotRefused, match="requisition 7009.commitment_id: commitment 599"):
        await apply_snapshot(partial)

    assert await dump_database() == before


async def test_detail_and_sync_times(database: str) -> None:
    read_at = datetime(2026, 3, 31, 8, 0, tzinfo=timezone(timedelta(hours=-4)))
    snapshot = with_invoice(
        base_snapshot(source=SOURCE_PROCORE, as_of=AS_OF), 7001, source_updated_at=read_at
    )
    await Project.create(
        id=PROJECT_ID,
        name="Quay Street Lofts",
        company_id=1,
        company_name="Builder Co",
        unreachable_reason="not on the permitted list",
    )
    await apply_snapshot(snapshot)

    stored = await Invoice.get(id=7001)
    assert stored.source_updated_at.replace(tzinfo=UTC) == read_at
    assert stored.detail_updated_at.replace(tzinfo=UTC) == read_at
    project = await Project.get(id=PROJECT_ID)
    assert (project.source, project.unreachable_reason) == ("procore", None)
    assert project.synced_at.replace(tzinfo=UTC) == AS_OF
    assert project.full_synced_at.replace(tzinfo=UTC) == AS_OF

    # Procore says the invoice changed; its detail was not re-read: the stored one is stale.
    changed_at = read_at + timedelta(hours=2)
    later = AS_OF + timedelta(minutes=15)
    partial = partial_snapshot(
        source=SOURCE_PROCORE,
        as_of=later,
        invoices=(
            replace(
                snapshot.invoices[0], source_updated_at=changed_at, items=None, summary_text=None
            ),
        ),
    )
    await apply_snapshot(partial)

    stored = await Invoice.get(id=7001)
    assert stored.source_updated_at.replace(tzinfo=UTC) == changed_at
    assert stored.detail_updated_at.replace(tzinfo=UTC) == read_at
    project = await Project.get(id=PROJECT_ID)
    assert project.synced_at.replace(tzinfo=UTC) == later
    assert project.full_synced_at.replace(tzinfo=UTC) == AS_OF


async def test_a_bundle_without_time_sets_the_detail_time_once(database: str) -> None:
    await apply_snapshot(base_snapshot())
    first = await Invoice.get(id=7001)
    assert first.detail_updated_at is not None and first.source_updated_at is None
    synced = (await Project.get(id=PROJECT_ID)).synced_at
    assert synced is not None

    await apply_snapshot(base_snapshot())
    assert (await Invoice.get(id=7001)).detail_updated_at == first.detail_updated_at
    assert (await Project.get(id=PROJECT_ID)).synced_at == synced

    new_items = [{"item_number": "1", "scheduled_value": "1200.00"}]
    await apply_snapshot(with_invoice(base_snapshot(), 7001, items=new_items))
    assert (await Invoice.get(id=7001)).detail_updated_at > first.detail_updated_at


async def test_an_unreadable_private_list_fails_closed(database: str) -> None:
    unreadable = base_snapshot()
    unreadable = replace(
        unreadable,
        commitments=(
            unreadable.commitments[0],
            replace(unreadable.commitments[1], private_list=None),
        ),
    )
    await apply_snapshot(unreadable)

    stored = await Commitment.get(id=502)
    assert (stored.private_list, stored.private_list_known) == ([], False)
    project = await Project.get(id=PROJECT_ID)
    for requester in (ADMIN, LISTED):
        access = await project_access(requester, project)
        assert 502 not in access.visible_commitment_ids
        assert 502 not in access.compilable_commitment_ids
    assert (await check_selection(ADMIN, PROJECT_ID, [7001, 7002], [])).visible_invoice_ids == {
        7001
    }
    assert [
        o.invoice_id for o in (await search_invoice_options(ADMIN, PROJECT_ID, "")).options
    ] == [7001]

    # Readable again: the list is stored and the contract is back for its admins and list.
    await apply_snapshot(base_snapshot())
    stored = await Commitment.get(id=502)
    assert stored.private_list_known and stored.private_list[0]["id"] == 9003
    assert (await check_selection(ADMIN, PROJECT_ID, [7001, 7002], [])).visible_invoice_ids == {
        7001,
        7002,
    }
    assert 502 in (await project_access(LISTED, project)).visible_commitment_ids


async def test_a_user_whose_level_is_unknown_has_no_access(database: str) -> None:
    unknown = base_snapshot()
    unknown = replace(
        unknown,
        users=(
            user(9001, "Dana", "dana@gc.example", "admin", known=False),
            *unknown.users[1:],
        ),
    )
    await apply_snapshot(unknown)

    stored = await ProjectUser.get(project_id=PROJECT_ID, user_id=9001)
    assert (stored.commitments_access, stored.access_known) == ("none", False)
    with pytest.raises(AccessDenied):
        await compile_access(ADMIN, PROJECT_ID)
    access = await project_access(ADMIN, await Project.get(id=PROJECT_ID))
    assert access.visible_commitment_ids == frozenset()
    # A standard user still sees the public contract; nobody is named as an admin to ask.
    standard = await project_access(STANDARD, await Project.get(id=PROJECT_ID))
    assert standard.visible_commitment_ids == frozenset({501})
    assert standard.admins == ()


async def _index_texts() -> dict[int, str]:
    connection = connections.get("default")
    _, rows = await connection.execute_query("SELECT invoice_id, search_text FROM invoice_search")
    return {int(row["invoice_id"]): str(row["search_text"]) for row in rows}


async def _spoil_index_of(invoice_id: int) -> None:
    """Make one entry's text stale behind the writer's back (a rewrite would mend it)."""
    connection = connections.get("default")
    mark = "$1" if connection.capabilities.dialect == "postgres" else "?"
    await connection.execute_query(
        f"UPDATE invoice_search SET search_text = 'stale' WHERE invoice_id = {mark}", [invoice_id]
    )


async def test_a_partial_snapshot_refreshes_only_the_search_entries_it_touched(
    database: str,
) -> None:
    await apply_snapshot(base_snapshot())
    await _spoil_index_of(7002)
    first = base_snapshot().invoices[0]
    partial = partial_snapshot(
        invoices=(replace(first, status="under_review"),),
    )

    await apply_snapshot(partial)

    texts = await _index_texts()
    assert texts[7002] == "stale"  # not read, not rewritten
    assert "review" in texts[7001]
    found = await search_invoice_options(ADMIN, PROJECT_ID, "under review")
    assert [option.invoice_id for option in found.options] == [7001]

    # A commitment's new vendor name reaches its invoices' entries (and only theirs).
    renamed = replace(base_snapshot().commitments[0], vendor_name="Zephyr Glass")
    await apply_snapshot(partial_snapshot(commitments=(renamed,)))
    texts = await _index_texts()
    assert "zephyr" in texts[7001] and texts[7002] == "stale"

    await apply_snapshot(
        replace(base_snapshot(), commitments=(renamed, *base_snapshot().commitments[1:]))
    )
    assert "stale" not in (await _index_texts()).values()  # a complete snapshot: every entry


async def test_a_partial_snapshot_with_a_new_invoice_places_it_in_the_menu(database: str) -> None:
    """New and moved invoices get their place between the others; no other entry is written
    (a spoiled entry stays spoiled: the project was not rewritten)."""
    await apply_snapshot(base_snapshot())
    await _spoil_index_of(7002)
    newest = replace(invoice(7003, 501), number=2, invoice_number="INV-7003")
    older = replace(invoice(7004, 501), period_id=801, invoice_number="INV-7004")
    await apply_snapshot(partial_snapshot(invoices=(newest, older)))
    menu = await search_invoice_options(ADMIN, PROJECT_ID, "")
    assert [option.invoice_id for option in menu.options] == [7003, 7001, 7002, 7004]
    assert (await _index_texts())[7002] == "stale"
    found = await search_invoice_options(ADMIN, PROJECT_ID, "INV-7003")
    assert [option.invoice_id for option in found.options] == [7003]

    moved = replace(newest, period_id=801)  # its place in the menu changes
    await apply_snapshot(partial_snapshot(invoices=(moved,)))
    menu = await search_invoice_options(ADMIN, PROJECT_ID, "")
    assert [option.invoice_id for option in menu.options] == [7001, 7002, 7003, 7004]
    texts = await _index_texts()
    assert texts[7002] == "stale"
    # It left its old period's search and is found in the new one's.
    march = await search_invoice_options(ADMIN, PROJECT_ID, "march 2026")
    assert 7003 not in [option.invoice_id for option in march.options]
    february = await search_invoice_options(ADMIN, PROJECT_ID, "february 2026")
    assert 7003 in [option.invoice_id for option in february.options]


async def test_a_new_period_moves_its_invoices_without_rewriting_the_project(
    database: str,
) -> None:
    """An invoice whose period was missing moves when the period appears; when no
    ``menu_order`` is free between two neighbours, the project is rewritten (and right)."""
    await apply_snapshot(base_snapshot())
    orphan = replace(invoice(7003, 501), period_id=803, invoice_number="INV-7003")
    await apply_snapshot(partial_snapshot(invoices=(orphan,)))
    menu = await search_invoice_options(ADMIN, PROJECT_ID, "")
    assert [option.invoice_id for option in menu.options][-1] == 7003  # missing period: last
    await _spoil_index_of(7002)
    april = BillingPeriodRecord(803, 3, date(2026, 4, 1), date(2026, 4, 30), None, "open")
    await apply_snapshot(partial_snapshot(billing_periods=(april,)))
    menu = await search_invoice_options(ADMIN, PROJECT_ID, "")
    assert [option.invoice_id for option in menu.options][0] == 7003  # newest period first
    assert (await _index_texts())[7002] == "stale"
    found = await search_invoice_options(ADMIN, PROJECT_ID, "april")
    assert [option.invoice_id for option in found.options] == [7003]

    # No room left between two neighbours (consecutive values, as before spacing): the whole
    # project is rewritten, in order.
    connection = connections.get("default")
    for place, option in enumerate(menu.options, start=10_000_001):
        await connection.execute_query(
            f"UPDATE invoice_search SET menu_order = {place} WHERE invoice_id = {option.invoice_id}"
        )
    wedged = replace(invoice(7005, 501), number=2, invoice_number="INV-7005")
    await apply_snapshot(partial_snapshot(invoices=(wedged,)))
    menu = await search_invoice_options(ADMIN, PROJECT_ID, "")
    ids_in_menu = [option.invoice_id for option in menu.options]
    assert ids_in_menu.index(7005) < ids_in_menu.index(7001)
    assert "stale" not in (await _index_texts()).values()
