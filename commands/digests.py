"""Weekly digests: schedules (create, list, pause, delete), when they fire, and what each run
compiles.

A schedule belongs to a project admin (the owner). At each run the owner's access is checked
again; if they lost it, the schedule pauses and the run says why. Fire times follow a cron
trigger in the schedule's time zone, so daylight-saving changes keep the wall-clock time. The
bot turns a fire time into one job keyed by (schedule, fire time), which is what makes a run
exactly-once across processes. A digest leaves private contracts out unless its owner included
them when scheduling (the Slack form first names who in the channel would see them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from commands import audit
from commands.access import (
    AccessDenied,
    ProjectChoice,
    Requester,
    compilable_invoices,
    compile_access,
    projects_of,
    role_on_project,
)
from commands.labels import billing_period_label, status_label
from commands.manage_access import InvalidChange
from pdf.formatting import format_period
from storage.models import INVOICE_STATUSES, BillingPeriod, Project
from storage.schedules import DEFAULT_STATUSES, SELECTIONS, Schedule

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CRON_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SELECTION_LABELS = {
    "open_period": "invoices of the open billing period",
    "last_7_days": "invoices updated in the last 7 days",
}
MISSED_RUN_GRACE = timedelta(hours=6)
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class ScheduleSpec:
    """What a user asks for when creating a schedule."""

    project_id: int
    channel_id: str
    weekday: int
    time_of_day: str
    timezone: str
    selection: str = "open_period"
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    skip_empty: bool = False
    include_private: bool = False  # private contracts too (the owner was warned who sees them)


@dataclass(frozen=True)
class ScheduleView:
    """A stored schedule as plain data."""

    id: int
    project_id: int
    project_name: str
    owner_key: str
    owner_slack_user_id: str | None
    channel_id: str
    weekday: int
    time_of_day: str
    timezone: str
    selection: str
    statuses: tuple[str, ...]
    skip_empty: bool
    paused: bool
    paused_reason: str | None
    include_private: bool = False

    def describe(self) -> str:
        """``"Mondays at 08:00 (America/Toronto) · invoices of the open billing period · …"``."""
        statuses = ", ".join(status_label(s) for s in self.statuses) or "any status"
        state = f" · paused: {self.paused_reason or 'by its owner'}" if self.paused else ""
        private = " · includes private contracts" if self.include_private else ""
        return (
            f"{WEEKDAYS[self.weekday]}s at {self.time_of_day} ({self.timezone}) · "
            f"{SELECTION_LABELS.get(self.selection, self.selection)} · {statuses}{private}{state}"
        )


def validate_spec(spec: ScheduleSpec) -> dict[str, str]:
    """Problems with a spec, by field name (empty when valid)."""
    problems: dict[str, str] = {}
    if not 0 <= spec.weekday <= 6:
        problems["weekday"] = "Choose a day of the week."
    if not TIME_OF_DAY.match(spec.time_of_day):
        problems["time_of_day"] = "Use a 24-hour time like 08:00."
    if not spec.timezone:  # CronTrigger(timezone="") would silently use the host's zone
        problems["timezone"] = "Choose a time zone."
    else:
        try:
            CronTrigger(timezone=spec.timezone)
        except Exception:
            problems["timezone"] = f"Unknown time zone {spec.timezone!r}."
    if spec.selection not in SELECTIONS:
        problems["selection"] = "Choose which invoices to include."
    unknown = [status for status in spec.statuses if status not in INVOICE_STATUSES]
    if unknown:
        problems["statuses"] = f"Unknown statuses: {', '.join(unknown)}."
    if not spec.channel_id:
        problems["channel_id"] = "Choose a channel."
    return problems


def trigger_for(weekday: int, time_of_day: str, timezone: str) -> CronTrigger:
    """The APScheduler cron trigger of a schedule (wall-clock time in its own time zone)."""
    hour, minute = (int(part) for part in time_of_day.split(":"))
    return CronTrigger(
        day_of_week=CRON_WEEKDAYS[weekday], hour=hour, minute=minute, timezone=timezone
    )


def fire_times(schedule: ScheduleView, start: datetime, end: datetime) -> list[datetime]:
    """Fire times in ``(start, end]``, as aware datetimes in the schedule's time zone.

    A wall-clock time that happens twice (the hour repeated when daylight saving ends) fires once.
    """
    trigger = trigger_for(schedule.weekday, schedule.time_of_day, schedule.timezone)
    times: list[datetime] = []
    cursor = start.astimezone(UTC) + timedelta(microseconds=1)
    for _ in range(10_000):  # a weekly trigger: bounded by the window anyway
        moment = trigger.get_next_fire_time(None, cursor)
        if moment is None or moment.astimezone(UTC) > end.astimezone(UTC):
            break
        local = moment.replace(tzinfo=None)
        if not times or times[-1].replace(tzinfo=None) != local:
            times.append(moment)
        cursor = moment.astimezone(UTC) + timedelta(minutes=1)
    return times


def missed_fire_time(
    schedule: ScheduleView, now: datetime, grace: timedelta = MISSED_RUN_GRACE
) -> datetime | None:
    """The latest fire time within `grace` before `now`, if any: fired once on start-up
    (coalesced: older misses are dropped). Whether it already ran is the job key's business."""
    if schedule.paused:
        return None
    missed = fire_times(schedule, now - grace, now)
    return missed[-1] if missed else None


def job_key(schedule_id: int, fire_time: datetime) -> str:
    """The idempotency key of one run: one job per (schedule, fire time), across processes."""
    return f"digest:{schedule_id}:{fire_time.astimezone(UTC).strftime('%Y-%m-%dT%H:%MZ')}"


def _view(schedule: Schedule, project_name: str) -> ScheduleView:
    return ScheduleView(
        id=schedule.id,
        project_id=schedule.project_id,
        project_name=project_name,
        owner_key=schedule.owner_key,
        owner_slack_user_id=schedule.owner_slack_user_id,
        channel_id=schedule.channel_id,
        weekday=schedule.weekday,
        time_of_day=schedule.time_of_day,
        timezone=schedule.timezone,
        selection=schedule.selection,
        statuses=tuple(schedule.statuses or ()),
        skip_empty=schedule.skip_empty,
        paused=schedule.paused,
        paused_reason=schedule.paused_reason,
        include_private=bool(schedule.include_private),
    )


async def _views(schedules: list[Schedule]) -> list[ScheduleView]:
    names = dict(
        await Project.filter(id__in={s.project_id for s in schedules}).values_list("id", "name")
    )
    return [_view(schedule, names.get(schedule.project_id, "")) for schedule in schedules]


def owner_of(schedule: Schedule) -> Requester:
    """The requester a run compiles as."""
    return Requester(
        key=schedule.owner_key,
        email=schedule.owner_email,
        display_name=schedule.owner_name,
        slack_user_id=schedule.owner_slack_user_id,
    )


async def create_schedule(requester: Requester, spec: ScheduleSpec) -> ScheduleView:
    """Create a schedule owned by `requester`, a project admin. Raises `AccessDenied` or
    `InvalidChange` (message lists the problems)."""
    access = await compile_access(requester, spec.project_id)
    if not access.role.is_admin:
        await audit.record(requester.key, "digest.create", "refused", project_id=spec.project_id)
        raise access.denial()
    problems = validate_spec(spec)
    if problems:
        raise InvalidChange(" ".join(problems.values()))
    schedule = await Schedule.create(
        project_id=spec.project_id,
        owner_key=requester.key,
        owner_slack_user_id=requester.slack_user_id,
        owner_email=requester.email,
        owner_name=requester.display_name,
        channel_id=spec.channel_id,
        weekday=spec.weekday,
        time_of_day=spec.time_of_day,
        timezone=spec.timezone,
        selection=spec.selection,
        statuses=list(spec.statuses),
        skip_empty=spec.skip_empty,
        include_private=spec.include_private,
    )
    await _audit_succeeded(
        requester, "digest.create", schedule, include_private=spec.include_private
    )
    return _view(schedule, access.project.name)


async def schedulable_projects(requester: Requester) -> list[ProjectChoice]:
    """Projects where the requester may create schedules (project admin), by name."""
    choices: list[ProjectChoice] = []
    for project in await projects_of(requester):
        if (await role_on_project(requester, project.id)).is_admin:
            choices.append(ProjectChoice(project.id, project.name, project.project_number))
    return choices


async def schedules_of(requester: Requester) -> list[ScheduleView]:
    """The schedules the requester owns."""
    return await _views(await Schedule.filter(owner_key=requester.key).order_by("id"))


async def active_schedules() -> list[ScheduleView]:
    """Every schedule that is not paused (what the scheduler loads)."""
    return await _views(await Schedule.filter(paused=False).order_by("id"))


async def get_schedule(schedule_id: int) -> ScheduleView | None:
    """One schedule, or None."""
    schedule = await Schedule.get_or_none(id=schedule_id)
    return (await _views([schedule]))[0] if schedule else None


async def _owned_schedule(requester: Requester, schedule_id: int, action: str) -> Schedule:
    schedule = await Schedule.get_or_none(id=schedule_id)
    if schedule is not None and (
        schedule.owner_key == requester.key
        or (await role_on_project(requester, schedule.project_id)).is_admin
    ):
        return schedule
    await audit.record(requester.key, action, "refused", schedule=schedule_id)
    raise AccessDenied("Only the schedule's owner or a project admin can change that schedule.")


async def _audit_succeeded(
    requester: Requester, action: str, schedule: Schedule, **details: Any
) -> None:
    """Audit ``action`` by ``requester`` on ``schedule`` as succeeded: its project, its id
    (``schedule``) and ``details``."""
    await audit.record(
        requester.key,
        action,
        "succeeded",
        project_id=schedule.project_id,
        schedule=schedule.id,
        **details,
    )


async def set_paused(requester: Requester, schedule_id: int, paused: bool) -> ScheduleView:
    """Pause or resume a schedule (its owner or a project admin)."""
    schedule = await _owned_schedule(requester, schedule_id, "digest.pause")
    schedule.paused = paused
    schedule.paused_reason = None
    await schedule.save(update_fields=["paused", "paused_reason", "updated_at"])
    await _audit_succeeded(requester, "digest.pause" if paused else "digest.resume", schedule)
    return (await _views([schedule]))[0]


async def delete_schedule(requester: Requester, schedule_id: int) -> None:
    """Delete a schedule (its owner or a project admin)."""
    schedule = await _owned_schedule(requester, schedule_id, "digest.delete")
    await schedule.delete()
    await _audit_succeeded(requester, "digest.delete", schedule)


async def authorize_run(requester: Requester, schedule_id: int) -> ScheduleView:
    """Allow a "run now" of a schedule (its owner or a project admin; not while paused). The run
    itself is planned, as the owner, when it runs. Raises `AccessDenied` or `InvalidChange`."""
    schedule = await _owned_schedule(requester, schedule_id, "digest.run_now")
    if schedule.paused:
        raise InvalidChange("This schedule is paused: resume it first, then run it.")
    await _audit_succeeded(requester, "digest.run_now", schedule)
    return (await _views([schedule]))[0]


@dataclass(frozen=True)
class DigestPlan:
    """What one run should do.

    `status`: ``ready`` (compile `invoice_ids` as `requester`), ``empty`` (nothing to include),
    ``owner_lost_access`` (schedule paused; tell the owner `message`), ``paused`` or ``gone``.
    """

    status: str
    schedule_id: int
    message: str
    headline: str = ""
    requester: Requester | None = None
    project_id: int | None = None
    channel_id: str | None = None
    timezone: str = "UTC"
    invoice_ids: tuple[int, ...] = ()
    skip_empty: bool = False


def _owner_lost_access(schedule: Schedule, owner: Requester, reason: str) -> DigestPlan:
    return DigestPlan(
        "owner_lost_access",
        schedule.id,
        f"I paused your weekly invoice backup (schedule #{schedule.id}) because {reason} "
        "Once you have that access again, press Resume (or use `/compile-backups schedules`); "
        "until then, delete it there or ask a project admin to set up their own.",
        requester=owner,
        project_id=schedule.project_id,
    )


async def plan_digest(schedule_id: int, fire_time: datetime) -> DigestPlan:
    """Decide what the run of `schedule_id` at `fire_time` compiles, checking the owner's access
    now (a lost access pauses the schedule)."""
    schedule = await Schedule.get_or_none(id=schedule_id)
    if schedule is None:
        return DigestPlan("gone", schedule_id, "The schedule no longer exists.")
    owner = owner_of(schedule)
    if schedule.paused and schedule.paused_reason:
        # Paused by a run that found the owner without access; a run resumed after a crash
        # must still tell the owner, so it answers the same way.
        return _owner_lost_access(schedule, owner, schedule.paused_reason)
    if schedule.paused:
        return DigestPlan("paused", schedule_id, "The schedule is paused.")
    try:
        access = await compile_access(owner, schedule.project_id)
        if not access.role.is_admin:
            raise access.denial()
    except AccessDenied as denial:
        schedule.paused = True
        schedule.paused_reason = f"you no longer may compile on the project. {denial}"[:500]
        await schedule.save(update_fields=["paused", "paused_reason", "updated_at"])
        await audit.record(
            owner.key,
            "digest.run",
            "owner_lost_access",
            project_id=schedule.project_id,
            schedule=schedule.id,
        )
        return _owner_lost_access(schedule, owner, schedule.paused_reason)
    invoices = compilable_invoices(access)
    if not schedule.include_private:  # a channel may hold people outside the private lists
        invoices = invoices.filter(commitment__private=False)
    if schedule.statuses:
        invoices = invoices.filter(status__in=list(schedule.statuses))
    headline = f"Weekly invoice backup · {access.project.name}"
    if schedule.selection == "open_period":
        period = await BillingPeriod.filter(project_id=schedule.project_id, status="open").first()
        if period is None:
            invoice_ids: list[int] = []
            headline += " · no open billing period"
        else:
            invoice_ids = await invoices.filter(period_id=period.id).values_list("id", flat=True)
            headline += " · " + billing_period_label(
                period.position, period.start_date, period.end_date
            )
    else:
        since = fire_time - timedelta(days=7)
        invoice_ids = await invoices.filter(updated_at__gte=since).values_list("id", flat=True)
        headline += f" · invoices updated {format_period(since.date(), fire_time.date())}"
    ids = tuple(sorted(int(invoice_id) for invoice_id in invoice_ids))
    return DigestPlan(
        "ready" if ids else "empty",
        schedule_id,
        "" if ids else f"{headline}: no invoices to include this week.",
        headline=headline,
        requester=owner,
        project_id=schedule.project_id,
        channel_id=schedule.channel_id,
        timezone=schedule.timezone,
        invoice_ids=ids,
        skip_empty=schedule.skip_empty,
    )
