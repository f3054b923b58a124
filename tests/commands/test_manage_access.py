"""Managing access (links, settings, dictionary) and the audit trail, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from demo_requesters import ADMIN, STANDARD, STRANGER
from local_compile import compile_backup

from commands import audit, manage_access
from commands.access import AccessDenied, Requester, compilable_projects, search_invoice_options
from commands.manage_access import InvalidChange

OWNER = Requester(key="slack:UOWNER", email=None, display_name="Owner", slack_user_id="UOWNER")
OWNERS = frozenset({"UOWNER"})
SLACK_NOBODY = Requester(
    key="slack:UNEW", email="different@personal.example", display_name="New", slack_user_id="UNEW"
)


async def test_a_link_wins_over_email(demo_project: int) -> None:
    assert await compilable_projects(SLACK_NOBODY) == []
    message = await manage_access.link_slack_user(
        ADMIN, demo_project, "UNEW", "pm@example.com", OWNERS
    )
    assert "Dana Reyes" in message.confirmation
    assert [p.id for p in await compilable_projects(SLACK_NOBODY)] == [demo_project]
    assert len((await search_invoice_options(SLACK_NOBODY, demo_project, "")).options) == 8
    await manage_access.link_slack_user(ADMIN, demo_project, "UNEW", "3", OWNERS)  # read-only user
    assert await compilable_projects(SLACK_NOBODY) == []
    assert await manage_access.unlink_slack_user(ADMIN, demo_project, "UNEW", OWNERS)
    assert not await manage_access.unlink_slack_user(ADMIN, demo_project, "UNEW", OWNERS)


async def test_only_admins_and_owners_manage(demo_project: int) -> None:
    with pytest.raises(AccessDenied):
        await manage_access.roster(STANDARD, demo_project, OWNERS)
    with pytest.raises(AccessDenied):
        await manage_access.set_invoice_contacts_may_compile(STRANGER, demo_project, True, OWNERS)
    roster = await manage_access.roster(OWNER, demo_project, OWNERS)
    assert [line.name for line in roster][:2] == ["Ana Stone", "Dana Reyes"]
    ana = next(line for line in roster if line.name == "Ana Stone")
    assert ana.invoice_contact_of == ("SC-001",)
    assert [p.id for p in await manage_access.manageable_projects(OWNER, OWNERS)] == [demo_project]
    assert await manage_access.manageable_projects(STANDARD, OWNERS) == []
    # Owners manage access but do not get Commitments admin by that alone.
    with pytest.raises(AccessDenied):
        await compile_backup(OWNER, demo_project, [9001])


async def test_settings_and_dictionary(demo_project: int) -> None:
    await manage_access.set_invoice_contacts_may_compile(ADMIN, demo_project, True, OWNERS)
    settings = await manage_access.project_settings(ADMIN, demo_project, OWNERS)
    assert settings.invoice_contacts_may_compile
    names = await manage_access.set_dictionary(
        ADMIN, demo_project, {"commitments": "Subcontracts"}, OWNERS
    )
    assert names["commitments"] == "Subcontracts"
    with pytest.raises(AccessDenied) as refusal:
        await compile_backup(STANDARD, demo_project, [9001])
    assert "Subcontracts tool" in str(refusal.value)
    with pytest.raises(InvalidChange):
        await manage_access.set_dictionary(ADMIN, demo_project, {"commitments": "Deals"}, OWNERS)
    with pytest.raises(InvalidChange):
        await manage_access.link_slack_user(ADMIN, demo_project, "UX", "ghost@x.example", OWNERS)


async def test_audit_records_grants_refusals_and_changes(demo_project: int) -> None:
    await compile_backup(ADMIN, demo_project, [9001])
    with pytest.raises(AccessDenied):
        await compile_backup(STANDARD, demo_project, [9001])
    await manage_access.set_invoice_contacts_may_compile(ADMIN, demo_project, True, OWNERS)
    with pytest.raises(AccessDenied):
        await manage_access.roster(STANDARD, demo_project, OWNERS)

    lines = await audit.entries(project_id=demo_project)
    summary = [(line.actor, line.action, line.outcome) for line in lines]
    assert summary == [
        ("test:admin", "compile", "succeeded"),
        ("test:std", "compile", "refused"),
        ("test:admin", "access.setting", "succeeded"),
        ("test:std", "access.view", "refused"),
    ]
    assert lines[0].details["invoices"] == 1
    assert "compile" in lines[0].render()
    future = datetime.now(UTC) + timedelta(hours=1)
    assert await audit.entries(project_id=demo_project, since=future) == []
    assert await audit.entries(project_id=424242) == []


async def test_the_tie_out_setting_is_for_admins_turns_findings_into_stops_and_is_audited(
    demo_project: int,
) -> None:
    with pytest.raises(AccessDenied):
        await manage_access.set_tie_out_blocks(STANDARD, demo_project, True, OWNERS)
    assert not (await manage_access.project_settings(ADMIN, demo_project, OWNERS)).tie_out_blocks
    await manage_access.set_tie_out_blocks(ADMIN, demo_project, True, OWNERS)
    assert (await manage_access.project_settings(ADMIN, demo_project, OWNERS)).tie_out_blocks
    stopped = await compile_backup(ADMIN, demo_project, [9002, 9003])
    assert stopped.invoice_count == 1 and len(stopped.left_out_not_tying_out) == 1

    await manage_access.set_tie_out_blocks(OWNER, demo_project, False, OWNERS)
    flagged = await compile_backup(ADMIN, demo_project, [9002, 9003])
    assert flagged.invoice_count == 2 and len(flagged.not_tying_out) == 1

    settings_changes = [
        (line.actor, line.outcome, line.details)
        for line in await audit.entries(project_id=demo_project)
        if line.action == "access.setting"
    ]
    assert settings_changes == [
        ("test:std", "refused", {}),
        ("test:admin", "succeeded", {"tie_out_blocks": True, "before": False}),
        ("slack:UOWNER", "succeeded", {"tie_out_blocks": False, "before": True}),
    ]
