"""Digest schedules: fire times (time zones, DST), missed runs, and what a run compiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from demo_requesters import ADMIN, STANDARD

from commands import digests
from commands.access import AccessDenied
from commands.digests import ScheduleSpec, ScheduleView
from commands.manage_access import InvalidChange
from storage.models import Invoice, ProjectUser
from storage.schedules import Schedule

TORONTO = ZoneInfo("America/Toronto")


def view(weekday: int = 6, time_of_day: str = "08:00", paused: bool = False) -> ScheduleView:
    return ScheduleView(
        id=1,
        project_id=1,
        project_name="P",
        owner_key="k",
        owner_slack_user_id=None,
        channel_id="C1",
        weekday=weekday,
        time_of_day=time_of_day,
        timezone="America/Toronto",
        selection="open_period",
        statuses=(),
        skip_empty=False,
        paused=paused,
        paused_reason=None,
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),  # DST starts Mar 8
        (datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)),  # ends Nov 1
    ],
)
def test_sunday_8am_keeps_wall_clock_across_dst(start: datetime, end: datetime) -> None:
    times = digests.fire_times(view(), start, end)
    assert len(times) == 2
    local = [moment.astimezone(TORONTO) for moment in times]
    assert [(m.weekday(), m.hour, m.minute) for m in local] == [(6, 8, 0), (6, 8, 0)]
    offsets = {m.utcoffset() for m in local}
    assert len(offsets) == 2  # one fire on each side of the change
    real_gap = times[1].astimezone(UTC) - times[0].astimezone(UTC)
    assert real_gap in (timedelta(hours=167), timedelta(hours=169))


def test_ambiguous_hour_fires_once() -> None:
    times = digests.fire_times(
        view(time_of_day="01:30"),
        datetime(2026, 10, 31, tzinfo=UTC),
        datetime(2026, 11, 2, 12, tzinfo=UTC),
    )
    assert len(times) == 1
    assert times[0].astimezone(TORONTO).hour == 1


def test_missed_run_within_grace_fires_once_and_not_after() -> None:
    fire = datetime(2026, 11, 22, 8, 0, tzinfo=TORONTO)
    assert digests.missed_fire_time(view(), fire + timedelta(hours=2)) == fire
    assert digests.missed_fire_time(view(), fire + timedelta(hours=7)) is None
    assert digests.missed_fire_time(view(paused=True), fire + timedelta(hours=1)) is None
    # Two weeks down: only the latest run, and only if within grace.
    assert digests.missed_fire_time(view(), fire + timedelta(days=7, hours=1)) == fire + timedelta(
        days=7
    )
    assert digests.job_key(1, fire) == digests.job_key(1, fire.astimezone(UTC))
    assert digests.job_key(1, fire) != digests.job_key(1, fire + timedelta(days=7))


def test_spec_validation() -> None:
    spec = ScheduleSpec(1, "", 9, "25:00", "Mars/Olympus", "whenever", ("paid",))
    assert set(digests.validate_spec(spec)) == {
        "weekday",
        "time_of_day",
        "timezone",
        "selection",
        "statuses",
        "channel_id",
    }
    assert digests.validate_spec(ScheduleSpec(1, "C1", 0, "08:00", "America/Toronto")) == {}


async def test_runs_compile_the_open_period_as_the_owner(demo_project: int) -> None:
    with pytest.raises(AccessDenied):
        await digests.create_schedule(STANDARD, ScheduleSpec(demo_project, "C1", 0, "08:00", "UTC"))
    with pytest.raises(InvalidChange):
        await digests.create_schedule(ADMIN, ScheduleSpec(demo_project, "C1", 0, "8am", "UTC"))
    created = await digests.create_schedule(
        ADMIN,
        ScheduleSpec(demo_project, "C1", 0, "08:00", "America/Toronto", statuses=()),
    )
    assert [s.id for s in await digests.schedules_of(ADMIN)] == [created.id]
    assert "Mondays at 08:00" in created.describe()

    fire = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    plan = await digests.plan_digest(created.id, fire)
    assert plan.status == "ready"
    assert plan.invoice_ids == (9022,)  # the open period (Nov) holds SC-010 #2
    assert "Billing period 4 (Nov 1–30, 2026)" in plan.headline
    assert plan.requester is not None and plan.requester.key == ADMIN.key

    filtered = await digests.create_schedule(
        ADMIN, ScheduleSpec(demo_project, "C1", 0, "08:00", "UTC", statuses=("approved",))
    )
    empty = await digests.plan_digest(filtered.id, fire)
    assert empty.status == "empty" and "no invoices" in empty.message

    recent = await digests.create_schedule(
        ADMIN,
        ScheduleSpec(demo_project, "C1", 0, "08:00", "UTC", selection="last_7_days", statuses=()),
    )
    now = datetime.now(UTC)
    await Invoice.filter(project_id=demo_project).update(updated_at=now - timedelta(days=10))
    await Invoice.filter(id__in=[9001, 9003]).update(updated_at=now - timedelta(days=2))
    plan = await digests.plan_digest(recent.id, now)
    assert set(plan.invoice_ids) == {9001, 9003}


async def test_owner_losing_access_pauses_the_schedule(demo_project: int) -> None:
    created = await digests.create_schedule(
        ADMIN, ScheduleSpec(demo_project, "C1", 4, "17:00", "UTC")
    )
    await ProjectUser.filter(project_id=demo_project, user_id=1).update(
        commitments_access="standard"
    )
    plan = await digests.plan_digest(created.id, datetime.now(UTC))
    assert plan.status == "owner_lost_access"
    assert "paused" in plan.message and "Admin" in plan.message
    stored = await Schedule.get(id=created.id)
    assert stored.paused and stored.paused_reason
    # A run resumed after a crash still tells the owner; a user's pause is a plain pause.
    again = await digests.plan_digest(created.id, datetime.now(UTC))
    assert again.status == "owner_lost_access" and again.message == plan.message
    await digests.set_paused(ADMIN, created.id, True)
    assert (await digests.plan_digest(created.id, datetime.now(UTC))).status == "paused"
    assert [s.id for s in await digests.active_schedules()] == []


async def test_pause_resume_delete_need_owner_or_admin(demo_project: int) -> None:
    created = await digests.create_schedule(
        ADMIN, ScheduleSpec(demo_project, "C1", 2, "09:30", "UTC")
    )
    with pytest.raises(AccessDenied):
        await digests.set_paused(STANDARD, created.id, True)
    paused = await digests.set_paused(ADMIN, created.id, True)
    assert paused.paused
    assert not (await digests.set_paused(ADMIN, created.id, False)).paused
    with pytest.raises(AccessDenied):
        await digests.delete_schedule(STANDARD, created.id)
    await digests.delete_schedule(ADMIN, created.id)
    assert await digests.get_schedule(created.id) is None
    assert (await digests.plan_digest(created.id, datetime.now(UTC))).status == "gone"


async def test_run_now_and_schedulable_projects(demo_project: int) -> None:
    assert [p.id for p in await digests.schedulable_projects(ADMIN)] == [demo_project]
    assert await digests.schedulable_projects(STANDARD) == []
    created = await digests.create_schedule(
        ADMIN, ScheduleSpec(demo_project, "C1", 2, "09:30", "UTC")
    )
    assert (await digests.authorize_run(ADMIN, created.id)).id == created.id
    with pytest.raises(AccessDenied):
        await digests.authorize_run(STANDARD, created.id)
    await digests.set_paused(ADMIN, created.id, True)
    with pytest.raises(InvalidChange):
        await digests.authorize_run(ADMIN, created.id)


def test_a_blank_time_zone_is_refused() -> None:
    # CronTrigger(timezone="") silently takes the host's zone.
    problems = digests.validate_spec(ScheduleSpec(1, "C1", 0, "08:00", ""))
    assert problems == {"timezone": "Choose a time zone."}
