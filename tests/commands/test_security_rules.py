"""The rules behind the security fixes, on both databases: links never escalate, refusals to
outsiders name nothing, digests leave private contracts out unless included, and who in an
audience is outside the private lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from demo_requesters import ADMIN, STANDARD, STRANGER, VIEWER, VOLT_CONTACT

from commands import audit, digests, manage_access
from commands.access import NOT_A_MEMBER, AccessDenied, Requester, compile_access
from commands.audience import outside_private_lists, private_commitment_ids
from commands.digests import ScheduleSpec
from commands.manage_access import InvalidChange
from storage.links import SlackLink
from storage.models import Invoice

OWNERS = frozenset({"UOWNER"})
OWNER = Requester(key="slack:UOWNER", email=None, display_name="Kim", slack_user_id="UOWNER")
SLACK_ADMIN = Requester(
    key="slack:UADMIN", email="pm@example.com", display_name="Dana", slack_user_id="UADMIN"
)
SC_002 = 302  # the demo's private commitment (Volt Electric; private list: Mara Volt)


async def test_nobody_links_their_own_slack_account(demo_project: int) -> None:
    for requester in (OWNER, SLACK_ADMIN):
        with pytest.raises(InvalidChange, match="your own Slack account"):
            await manage_access.link_slack_user(
                requester, demo_project, str(requester.slack_user_id), "3", OWNERS
            )
    assert await SlackLink.all().count() == 0
    refusals = [e for e in await audit.entries() if e.outcome == "refused"]
    assert [e.details["reason"] for e in refusals] == ["own_account", "own_account"]


async def test_nobody_links_an_account_to_more_rights_than_they_have(demo_project: int) -> None:
    # An owner outside the project has no rights there: no link to an admin (user 1), a
    # standard user (2), a read-only one (3), nor to Ana Stone (4), who sees SC-001 as its
    # invoice contact.
    for project_user in ("1", "pm@example.com", "2", "3", "4"):
        with pytest.raises(InvalidChange, match="more rights on this project than you"):
            await manage_access.link_slack_user(OWNER, demo_project, "UOTHER", project_user, OWNERS)
    # An admin may link to anyone, an admin included (equal rights).
    change = await manage_access.link_slack_user(SLACK_ADMIN, demo_project, "UOTHER", "4", OWNERS)
    assert change.slack_user_id == "UOTHER" and change.project_user_name == "Ana Stone"
    assert "Dana linked your Slack account to *Ana Stone*" in change.notice()
    # An admin may link to anyone, an admin included (equal rights).
    change = await manage_access.link_slack_user(SLACK_ADMIN, demo_project, "UOTHER", "1", OWNERS)
    assert change.project_user_name == "Dana Reyes"
    entries = [(e.action, e.outcome, e.details.get("before")) for e in await audit.entries()]
    assert entries[-2:] == [("access.link", "succeeded", None), ("access.link", "succeeded", 4)]
    assert [e.details["reason"] for e in await audit.entries() if e.outcome == "refused"] == [
        "more_rights_than_linker"
    ] * 5


async def test_an_owner_cannot_reach_a_private_contract_through_a_link(demo_project: int) -> None:
    """Mara Volt (user 5) is on SC-002's private list: an owner with no rights may not link."""
    with pytest.raises(InvalidChange):
        await manage_access.link_slack_user(OWNER, demo_project, "UOTHER", "5", OWNERS)


async def test_refusals_to_outsiders_name_nothing_and_members_learn_whom_to_ask(
    demo_project: int,
) -> None:
    with pytest.raises(AccessDenied) as outsider:
        await compile_access(STRANGER, demo_project)
    with pytest.raises(AccessDenied) as unknown:
        await compile_access(STRANGER, 987654321)
    assert str(outsider.value) == str(unknown.value) == NOT_A_MEMBER
    for secret in ("Riverside", "Dana Reyes", "2026-014"):
        assert secret not in NOT_A_MEMBER
    with pytest.raises(AccessDenied) as member:
        await compile_access(VIEWER, demo_project)
    assert "Riverside Medical Office Building" in str(member.value)
    assert "Dana Reyes" in str(member.value)
    with pytest.raises(AccessDenied) as managing:
        await manage_access.roster(STRANGER, demo_project, OWNERS)
    assert "Riverside" not in str(managing.value)


async def test_digests_leave_private_contracts_out_unless_included(demo_project: int) -> None:
    now = datetime.now(UTC)
    await Invoice.filter(project_id=demo_project).update(updated_at=now - timedelta(days=10))
    await Invoice.filter(id__in=[9001, 9011]).update(updated_at=now - timedelta(days=2))
    spec = ScheduleSpec(demo_project, "C1", 0, "08:00", "UTC", "last_7_days", statuses=())
    default = await digests.create_schedule(ADMIN, spec)
    assert not default.include_private
    assert (await digests.plan_digest(default.id, now)).invoice_ids == (9001,)
    included = await digests.create_schedule(
        ADMIN,
        ScheduleSpec(
            demo_project, "C1", 0, "08:00", "UTC", "last_7_days", statuses=(), include_private=True
        ),
    )
    assert "includes private contracts" in included.describe()
    assert (await digests.plan_digest(included.id, now)).invoice_ids == (9001, 9011)


async def test_who_is_outside_the_private_lists(demo_project: int) -> None:
    assert await private_commitment_ids(demo_project) == {SC_002}
    assert await private_commitment_ids(demo_project, [9001, 9002]) == frozenset()
    assert await private_commitment_ids(demo_project, [9001, 9012]) == {SC_002}
    audience = [ADMIN, STANDARD, VIEWER, VOLT_CONTACT, STRANGER]
    outsiders = await outside_private_lists(demo_project, frozenset({SC_002}), audience)
    assert outsiders == [STANDARD, VIEWER, STRANGER]
    assert await outside_private_lists(demo_project, frozenset(), audience) == []
