"""Weekly digests end to end: the schedule modal, the schedules list and its buttons, runs fired
through the scheduler's cron job (with an injected clock: nobody sleeps for a week), missed runs
on start-up, exactly-once across two bot instances on one database, DST.

Everything runs on SQLite and PostgreSQL (the `database` fixture), against the fake Slack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tortoise import timezone
from tortoise.exceptions import DBConnectionError

from bot import scheduler as scheduler_module
from bot.digest_job import enqueue_digest, plan_digest_job
from bot.job_kinds import JobRun
from bot.job_work import CompileWork
from bot.scheduler import ScheduleRegistry
from bot.server import BotServer
from commands import digests
from commands.access import Requester
from commands.digests import ScheduleSpec, ScheduleView
from storage import jobs
from storage.jobs import DIGEST, Job, JobStatus
from storage.models import ProjectUser
from storage.schedules import Schedule
from tests.slack.conftest import DEMO_PROJECT, PM, VIEWER, bot_settings, finished_jobs
from tests.slack.fake_slack import TEAM_ID, FakeSlack
from tests.slack.slack_driver import Answer, SlackDriver
from tests.waiting import eventually

TORONTO = ZoneInfo("America/Toronto")
PM_REQUESTER = Requester("slack:U0PM", "pm@example.com", "Dana", PM)
HEADLINE = "Weekly invoice backup · Riverside Medical Office Building · Billing period 4"
SUNDAY = 6
# A Sunday 08:00 in Toronto, while the bot "runs" (the injected clock).
NOV_22 = datetime(2026, 11, 22, 8, 0, tzinfo=TORONTO)


class FakeClock:
    """The scheduler's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOV_22 - timedelta(days=2))


def start_bot(fake_slack: FakeSlack, clock: FakeClock) -> BotServer:
    return BotServer(
        bot_settings(fake_slack),
        worker_options={"poll_seconds": 0.2, "progress_interval": 0.2},
        scheduler_options={"clock": clock},
    )


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, demo_project: int, clock: FakeClock
) -> AsyncIterator[BotServer]:
    """The bot with the test's clock in its scheduler (replaces conftest's `bot`)."""
    server = start_bot(fake_slack, clock)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def pm_schedule(server: BotServer | None = None, **changes: Any) -> ScheduleView:
    """A schedule of the PM (Sundays 08:00 Toronto, open period, any status, C_JOBSITE),
    registered with ``server``'s scheduler."""
    values: dict[str, Any] = {
        "project_id": DEMO_PROJECT,
        "channel_id": "C_JOBSITE",
        "weekday": SUNDAY,
        "time_of_day": "08:00",
        "timezone": "America/Toronto",
        "statuses": (),
        **changes,
    }
    created = await digests.create_schedule(PM_REQUESTER, ScheduleSpec(**values))
    if server is not None:
        assert server.scheduler is not None
        await server.scheduler.refresh(created.id)
    return created


async def fire(server: BotServer, clock: FakeClock, schedule_id: int, at: datetime) -> Any:
    """Run the schedule's cron job function as APScheduler would at ``at`` (a few seconds late)."""
    clock.now = at + timedelta(seconds=3)
    assert server.scheduler is not None
    cron_job = server.scheduler.cron_job(schedule_id)
    assert cron_job is not None, f"schedule {schedule_id} has no cron job"
    return await cron_job.func(*cron_job.args, **cron_job.kwargs)


# --- the modal -----------------------------------------------------------------------------


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(block for block in view["blocks"] if block.get("block_id") == block_id)["element"]


def schedule_state(
    view: dict[str, Any],
    *,
    project_id: int | None = DEMO_PROJECT,
    channel: str = "C_JOBSITE",
    weekday: int = SUNDAY,
    time_of_day: str = "08:00",
    timezone: str = "America/Toronto",
    selection: str = "open_period",
    statuses: tuple[str, ...] = (),
    skip_empty: bool = False,
) -> dict[str, Any]:
    """``view`` as Slack sends it back on submission, with these choices."""

    def option(value: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": value}, "value": value}

    values = {
        "schedule_project": {
            "schedule_project_select": {
                "type": "static_select",
                "selected_option": option(str(project_id)) if project_id else None,
            }
        },
        "schedule_channel": {
            "schedule_channel_select": {
                "type": "conversations_select",
                "selected_conversation": channel,
            }
        },
        "schedule_weekday": {
            "schedule_weekday_select": {
                "type": "static_select",
                "selected_option": option(str(weekday)),
            }
        },
        "schedule_time": {
            "schedule_time_select": {"type": "timepicker", "selected_time": time_of_day}
        },
        "schedule_timezone": {
            "schedule_timezone_select": {
                "type": "external_select",
                "selected_option": option(timezone),
            }
        },
        "schedule_selection": {
            "schedule_selection_choice": {
                "type": "radio_buttons",
                "selected_option": option(selection),
            }
        },
        "schedule_statuses": {
            "schedule_statuses_choice": {
                "type": "checkboxes",
                "selected_options": [option(status) for status in statuses],
            }
        },
        "schedule_options": {
            "schedule_options_choice": {
                "type": "checkboxes",
                "selected_options": [option("skip_empty")] if skip_empty else [],
            }
        },
    }
    return {**view, "state": {"values": values}}


async def submit_schedule(
    slack: SlackDriver, user_id: str, view: dict[str, Any], **choices: Any
) -> Answer:
    return await slack.interaction(
        {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user_id, "team_id": TEAM_ID},
            "api_app_id": "A0001",
            "trigger_id": "trigger.submit",
            "view": schedule_state(view, **choices),
        }
    )


async def test_the_modal_opens_with_defaults_and_the_users_time_zone(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user("U0TORONTO", "pm@example.com", "Dana Toronto", tz="America/Toronto")
    view = await slack.open_modal("U0TORONTO", "schedule", channel_id="C_JOBSITE")
    assert view["callback_id"] == "digest_schedule"
    assert _element(view, "schedule_timezone")["initial_option"]["value"] == "America/Toronto"
    assert _element(view, "schedule_channel")["initial_conversation"] == "C_JOBSITE"
    assert _element(view, "schedule_project")["initial_option"]["value"] == str(DEMO_PROJECT)
    assert _element(view, "schedule_time")["initial_time"] == "08:00"
    statuses = _element(view, "schedule_statuses")["initial_options"]
    assert [option["value"] for option in statuses] == [
        "approved",
        "approved_as_noted",
        "pending_owner_approval",
    ]

    other = await slack.open_modal(PM, "schedule")
    assert _element(other, "schedule_timezone")["initial_option"]["value"] == "America/New_York"

    # The time zone search.
    answer = await slack.interaction(
        {
            "type": "block_suggestion",
            "user": {"id": PM, "team_id": TEAM_ID},
            "team": {"id": TEAM_ID},
            "api_app_id": "A0001",
            "container": {"type": "view", "view_id": view["id"]},
            "action_id": "schedule_timezone_select",
            "block_id": "schedule_timezone",
            "value": "toron",
            "view": view,
        }
    )
    assert [option["value"] for option in answer.json()["options"]] == ["America/Toronto"]

    # Not a project admin: no modal, a refusal.
    opened = len(fake_slack.calls_to("views.open"))
    assert (await slack.command(VIEWER, "schedule")).status == 200
    refusal = await fake_slack.wait_for(
        lambda: [e for e in fake_slack.ephemerals if "project admins" in e.get("text", "")], 10
    )
    assert refusal and len(fake_slack.calls_to("views.open")) == opened


async def test_the_modal_says_when_the_bot_is_not_in_the_channel(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.deny_channel("C_ELSEWHERE")
    fake_slack.deny_channel("G_SECRET", "channel_not_found")
    view = await slack.open_modal(PM, "schedule")
    answer = await submit_schedule(slack, PM, view, channel="C_ELSEWHERE")
    assert answer.status == 200
    body = answer.json()
    assert body["response_action"] == "errors"
    assert "not a member" in body["errors"]["schedule_channel"]
    assert "/invite @Invoice Backups" in body["errors"]["schedule_channel"]
    hidden = (await submit_schedule(slack, PM, view, channel="G_SECRET")).json()
    assert "can't see that channel" in hidden["errors"]["schedule_channel"]
    bad = (await submit_schedule(slack, PM, view, time_of_day="", weekday=3)).json()
    assert set(bad["errors"]) == {"schedule_time"}
    assert await Schedule.all().count() == 0


async def test_a_submitted_schedule_is_registered_and_its_run_posts_the_backup(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    view = await slack.open_modal(PM, "schedule")
    answer = await submit_schedule(slack, PM, view)
    assert answer.status == 200 and not answer.text  # the modal closes
    [schedule] = await Schedule.all()
    assert (schedule.weekday, schedule.time_of_day, schedule.timezone) == (
        SUNDAY,
        "08:00",
        "America/Toronto",
    )
    assert schedule.owner_slack_user_id == PM and schedule.channel_id == "C_JOBSITE"
    assert bot.scheduler is not None and bot.scheduler.schedule_ids == [schedule.id]
    assert bot.scheduler.next_fire_time(schedule.id) == NOV_22
    confirmation = await fake_slack.wait_for(
        lambda: [e for e in fake_slack.ephemerals if "Weekly digest set up" in e.get("text", "")],
        10,
    )
    assert confirmation[0]["channel"] == "C_JOBSITE" and confirmation[0]["user"] == PM
    assert "Sunday, November 22, 2026 at 08:00 (America/Toronto)" in confirmation[0]["text"]

    # APScheduler itself runs the cron job (told it is due now; the clock says it's Sunday 8:00).
    clock.now = NOV_22 + timedelta(seconds=2)
    cron_job = bot.scheduler.cron_job(schedule.id)
    assert cron_job is not None
    cron_job.modify(next_run_time=datetime.now(UTC))
    [job] = await finished_jobs(1)
    assert job.idempotency_key == digests.job_key(schedule.id, NOV_22)
    assert job.status == JobStatus.SUCCEEDED, job.error
    [parent] = fake_slack.top_level_messages()
    assert parent.channel == "C_JOBSITE"
    assert parent.text.startswith(HEADLINE) and "(Nov 1–30, 2026)" in parent.text
    assert ": done, " in parent.text
    [pdf] = fake_slack.files_in_thread("C_JOBSITE", parent.ts)
    assert pdf.data is not None and pdf.data.startswith(b"%PDF")
    [reply] = fake_slack.replies("C_JOBSITE", parent.ts)
    assert reply.text.startswith("Your invoice backup is ready: 1 invoice for ")  # nobody @-ed


async def test_a_schedule_saved_while_the_scheduler_cannot_read_it_is_registered_at_resync(
    bot: BotServer,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_get_schedule = scheduler_module.get_schedule

    async def database_gone(schedule_id: int) -> ScheduleView | None:
        raise DBConnectionError("connection was closed in the middle of operation")

    monkeypatch.setattr(scheduler_module, "get_schedule", database_gone)
    view = await slack.open_modal(PM, "schedule")
    answer = await submit_schedule(slack, PM, view)
    assert answer.status == 200 and not answer.text  # saved: the modal closes all the same
    [schedule] = await Schedule.all()
    assert bot.scheduler is not None and bot.scheduler.schedule_ids == []
    assert f"schedule {schedule.id} saved, registered at the next resync" in caplog.text
    assert "Traceback" not in caplog.text
    await fake_slack.wait_for(
        lambda: [e for e in fake_slack.ephemerals if "Weekly digest set up" in e.get("text", "")],
        10,
    )
    monkeypatch.setattr(scheduler_module, "get_schedule", real_get_schedule)
    await bot.scheduler.resync()
    assert bot.scheduler.schedule_ids == [schedule.id]


async def test_an_empty_week_posts_one_line_or_nothing_when_skipped(
    bot: BotServer, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    # The open period (November) holds one invoice, under review: the default statuses miss it.
    said = await pm_schedule(bot, statuses=digests.DEFAULT_STATUSES)
    quiet = await pm_schedule(bot, statuses=digests.DEFAULT_STATUSES, skip_empty=True)
    await fire(bot, clock, said.id, NOV_22)
    await fire(bot, clock, quiet.id, NOV_22)
    ended = await finished_jobs(2)
    assert [job.status for job in ended] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]
    [line] = fake_slack.messages
    assert line.channel == "C_JOBSITE" and line.thread_ts is None
    assert line.text == f"{HEADLINE} (Nov 1–30, 2026): no invoices to include this week."
    assert not fake_slack.uploads


async def test_an_owner_who_lost_access_gets_a_dm_and_the_schedule_pauses(
    bot: BotServer, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    schedule = await pm_schedule(bot)
    await ProjectUser.filter(project_id=DEMO_PROJECT, email_lower="pm@example.com").update(
        commitments_access="standard"
    )
    await fire(bot, clock, schedule.id, NOV_22)
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED and "paused" in (job.error or "")
    [dm] = fake_slack.messages
    assert dm.channel == f"D{PM}"
    assert dm.text == (
        f"I paused your weekly invoice backup (schedule #{schedule.id}) because you no longer may "
        "compile on the project. You need Admin on the Commitments tool of Riverside Medical "
        "Office Building to compile invoice backups. Ask a project admin to give it to you in "
        "Procore (the project's Directory tool, your permission template); it applies here once "
        "the project is next imported from Procore. Once you have that access again, press "
        "Resume (or use `/compile-backups schedules`); until then, delete it there or ask a "
        "project admin to set up their own."
    )  # plain: no mrkdwn emphasis in the notification
    [resume] = [
        element
        for block in dm.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert resume["action_id"] == "schedule_resume" and resume["value"] == str(schedule.id)
    assert not [m for m in fake_slack.messages if m.channel == "C_JOBSITE"]
    stored = await Schedule.get(id=schedule.id)
    assert stored.paused and stored.paused_reason
    # The next fire finds it paused: no job, and the cron job is gone.
    assert await fire(bot, clock, schedule.id, NOV_22 + timedelta(days=7)) is None
    assert bot.scheduler is not None and bot.scheduler.cron_job(schedule.id) is None
    assert await Job.all().count() == 1


async def test_a_run_where_the_bot_is_not_in_the_channel_comes_by_dm(
    bot: BotServer, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    schedule = await pm_schedule(bot)
    fake_slack.deny_channel("C_JOBSITE")
    await fire(bot, clock, schedule.id, NOV_22)
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    [parent] = fake_slack.top_level_messages()
    assert parent.channel == f"D{PM}" and parent.text.startswith(HEADLINE)
    assert "/invite @Invoice Backups" in parent.all_text
    assert "Your weekly digest is scheduled for <#C_JOBSITE>, but I couldn't post there: " in (
        parent.all_text
    )
    assert "where you asked" not in parent.all_text
    assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1
    assert len(fake_slack.replies(parent.channel, parent.ts)) == 1


# --- the list and its buttons ---------------------------------------------------------------


def click(
    fake_slack: FakeSlack, user_id: str, action_id: str, schedule_id: int, key: str
) -> dict[str, Any]:
    """A click on a schedule button in an ephemeral list message."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user_id, "team_id": TEAM_ID},
        "api_app_id": "A0001",
        "trigger_id": f"trigger.{key}",
        "container": {"type": "message", "is_ephemeral": True, "channel_id": "C_JOBSITE"},
        "channel": {"id": "C_JOBSITE"},
        "response_url": fake_slack.response_url(key),
        "actions": [
            {
                "type": "button",
                "block_id": f"schedule_{schedule_id}",
                "action_id": action_id,
                "value": str(schedule_id),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def posted_to(fake_slack: FakeSlack, key: str) -> list[dict[str, Any]]:
    return [e for e in fake_slack.ephemerals if e.get("response_url_key") == key]


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def test_the_schedules_list_and_its_buttons(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    schedule = await pm_schedule(bot)
    assert (await slack.command(PM, "schedules")).status == 200
    [listed] = await fake_slack.wait_for(lambda: posted_to(fake_slack, "cmd1"))
    assert "Riverside Medical Office Building" in str(listed["blocks"])
    assert buttons(listed) == ["schedule_run_now", "schedule_pause", "schedule_delete"]
    assert bot.scheduler is not None

    async def press(user_id: str, action_id: str, key: str) -> dict[str, Any]:
        answer = await slack.interaction(click(fake_slack, user_id, action_id, schedule.id, key))
        assert answer.status == 200
        [message] = await fake_slack.wait_for(lambda: posted_to(fake_slack, key))
        return message

    refused = await press(VIEWER, "schedule_pause", "viewer")
    assert refused["replace_original"] is False and "owner or a project admin" in refused["text"]
    assert bot.scheduler.cron_job(schedule.id) is not None

    paused = await press(PM, "schedule_pause", "pause")
    assert paused["replace_original"] is True and "Paused the digest" in str(paused["blocks"])
    assert buttons(paused) == ["schedule_resume", "schedule_delete"]
    assert (await Schedule.get(id=schedule.id)).paused
    assert bot.scheduler.cron_job(schedule.id) is None

    resumed = await press(PM, "schedule_resume", "resume")
    assert buttons(resumed) == ["schedule_run_now", "schedule_pause", "schedule_delete"]
    assert bot.scheduler.cron_job(schedule.id) is not None

    ran = await press(PM, "schedule_run_now", "run")
    assert "Running the digest" in str(ran["blocks"])
    [job] = await finished_jobs(1)
    assert job.idempotency_key.startswith(f"digest-now:{schedule.id}:")
    assert job.status == JobStatus.SUCCEEDED, job.error
    [parent] = fake_slack.top_level_messages()
    assert parent.text.startswith(HEADLINE)

    deleted = await press(PM, "schedule_delete", "delete")
    assert "Deleted digest" in str(deleted["blocks"]) and buttons(deleted) == []
    assert await Schedule.all().count() == 0
    assert bot.scheduler.schedule_ids == []


async def test_a_button_in_the_home_tab_republishes_it(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    schedule = await pm_schedule(bot)
    payload = click(fake_slack, PM, "schedule_pause", schedule.id, "home")
    payload["container"] = {"type": "view", "view_id": "VHOME"}
    payload["view"] = {"id": "VHOME", "type": "home", "blocks": []}
    del payload["response_url"], payload["channel"]
    assert (await slack.interaction(payload)).status == 200
    [published] = await fake_slack.wait_for(lambda: fake_slack.published)
    assert published["user_id"] == PM
    home_buttons = [
        element["action_id"]
        for block in published["view"]["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert "schedule_resume" in home_buttons
    assert (await Schedule.get(id=schedule.id)).paused


# --- missed runs, exactly once, DST -----------------------------------------------------------


async def test_a_missed_run_fires_once_on_start_up_within_the_grace_and_never_after(
    demo_project: int,
) -> None:
    schedule = await pm_schedule()
    woken: list[int] = []

    async def start_at(now: datetime) -> list[Any]:
        registry = ScheduleRegistry(
            wake_worker=lambda: woken.append(1), clock=lambda: now, resync_seconds=None
        )
        try:
            return await registry.start()
        finally:
            await registry.stop()

    assert await start_at(NOV_22 + timedelta(hours=7)) == []  # beyond the 6 h grace: dropped
    [missed] = await start_at(NOV_22 + timedelta(hours=2))
    assert missed.created and missed.job.idempotency_key == digests.job_key(schedule.id, NOV_22)
    assert missed.job.payload["fire_time"] == NOV_22.isoformat()
    [again] = await start_at(NOV_22 + timedelta(hours=3))  # another restart: same run, no new job
    assert not again.created and again.job.id == missed.job.id
    assert woken == [1]
    assert await Job.all().count() == 1
    # Nothing was missed just before the next run.
    assert await start_at(NOV_22 + timedelta(days=6, hours=23)) == []


async def test_stopping_lets_daily_housekeeping_in_progress_finish(database: str) -> None:
    """An `add_daily` job (the retention purge at 03:15 UTC: it fires in whichever test runs
    then) still running when the process stops is not cut short, nor logged as a traceback
    (the autouse ``bot_log`` checks): `stop` waits for it."""
    running, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def housekeeping() -> None:
        running.set()
        await release.wait()
        finished.append("housekeeping")

    registry = ScheduleRegistry(resync_seconds=None)
    registry.add_daily("housekeeping", housekeeping, hour=3, minute=15)
    await registry.start()
    daily = registry.scheduled_job("housekeeping")
    assert daily is not None
    daily.modify(next_run_time=datetime.now(UTC))  # due now, as at 03:15 UTC
    await eventually(running.is_set, 10)
    stopping = asyncio.create_task(registry.stop())
    await asyncio.sleep(0)  # `stop` shuts APScheduler down (which cancels the jobs it runs)
    assert not stopping.done()
    release.set()
    await stopping
    assert finished == ["housekeeping"]


async def test_housekeeping_that_outlasts_the_stop_grace_is_cancelled(database: str) -> None:
    """A fire still running when `stop`'s time is up is cancelled (quietly: no traceback for
    the autouse ``bot_log`` check), so a stuck purge cannot hold the process's stop."""
    running, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck_housekeeping() -> None:
        running.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.set()
            raise

    registry = ScheduleRegistry(resync_seconds=None)
    registry.add_daily("housekeeping", stuck_housekeeping, hour=3, minute=15)
    await registry.start()
    daily = registry.scheduled_job("housekeeping")
    assert daily is not None
    daily.modify(next_run_time=datetime.now(UTC))
    await eventually(running.is_set, 10)
    await asyncio.wait_for(registry.stop(within=0.2), 10)
    assert cancelled.is_set()


async def test_two_bot_instances_firing_the_same_run_post_it_once(
    fake_slack: FakeSlack, demo_project: int, clock: FakeClock
) -> None:
    first, second = start_bot(fake_slack, clock), start_bot(fake_slack, clock)
    await first.start()
    await second.start()
    try:
        schedule = await pm_schedule()
        for server in (first, second):
            assert server.scheduler is not None
            await server.scheduler.refresh(schedule.id)
        results = await asyncio.gather(
            fire(first, clock, schedule.id, NOV_22), fire(second, clock, schedule.id, NOV_22)
        )
        assert sorted(result.created for result in results) == [False, True]
        [job] = await finished_jobs(1)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert await Job.all().count() == 1
        # Nothing is left for either worker's next poll to claim: one post it stays.
        assert await jobs.claim_next("another-worker", 30, kinds=(DIGEST,)) is None
        [parent] = fake_slack.top_level_messages()
        assert parent.text.startswith(HEADLINE)
        assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1
        assert len([u for u in fake_slack.uploads.values() if u.completed]) == 1
        assert len(fake_slack.replies(parent.channel, parent.ts)) == 1
        assert len(fake_slack.calls_to("chat.postMessage")) == 2  # the parent and the reply
    finally:
        await second.stop()
        await first.stop()


@pytest.mark.parametrize(
    ("after", "offsets"),
    [
        (datetime(2026, 3, 1, tzinfo=UTC), (-5, -4)),  # DST starts on Sunday, March 8
        (datetime(2026, 10, 25, tzinfo=UTC), (-4, -5)),  # DST ends on Sunday, November 1
    ],
)
async def test_a_toronto_schedule_keeps_8am_on_the_sundays_of_dst_changes(
    bot: BotServer, after: datetime, offsets: tuple[int, int]
) -> None:
    schedule = await pm_schedule(bot)
    assert bot.scheduler is not None
    times = bot.scheduler.upcoming(schedule.id, after, 2)
    local = [moment.astimezone(TORONTO) for moment in times]
    assert [(m.weekday(), m.hour, m.minute) for m in local] == [(SUNDAY, 8, 0), (SUNDAY, 8, 0)]
    assert tuple(int(m.utcoffset().total_seconds() // 3600) for m in local) == offsets
    cron_job = bot.scheduler.cron_job(schedule.id)
    assert cron_job is not None and cron_job.coalesce
    assert cron_job.misfire_grace_time == 6 * 3600
    assert cron_job.next_run_time.astimezone(TORONTO).hour == 8


async def test_a_resumed_digest_does_what_was_planned_without_planning_again(
    fake_slack: FakeSlack, demo_project: int, clock: FakeClock
) -> None:
    schedule = await pm_schedule()
    await enqueue_digest(schedule.id, NOV_22)
    job = await jobs.claim_next("worker-that-dies", 30, kinds=(DIGEST,))
    assert job is not None
    work = await plan_digest_job(JobRun(job, "worker-that-dies", 30))
    assert isinstance(work, CompileWork) and work.request.invoice_ids == (9022,)
    # The worker dies; meanwhile the owner pauses the schedule. The run was decided: it goes on.
    await digests.set_paused(PM_REQUESTER, schedule.id, True)
    await Job.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    server = start_bot(fake_slack, clock)
    await server.start()
    try:
        [done] = await finished_jobs(1)
        assert done.status == JobStatus.SUCCEEDED and done.attempts == 2, done.error
        assert done.state is not None and done.state["plan"]["work"] == "compile"
        [parent] = fake_slack.top_level_messages()
        assert parent.text.startswith(HEADLINE)
        assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1
    finally:
        await server.stop()


async def test_a_bot_started_two_hours_after_a_run_posts_it(
    fake_slack: FakeSlack, demo_project: int
) -> None:
    schedule = await pm_schedule()
    server = start_bot(fake_slack, FakeClock(NOV_22 + timedelta(hours=2)))
    await server.start()
    try:
        [job] = await finished_jobs(1)
        assert job.idempotency_key == digests.job_key(schedule.id, NOV_22)
        assert job.status == JobStatus.SUCCEEDED, job.error
        [parent] = fake_slack.top_level_messages()
        assert parent.channel == "C_JOBSITE" and parent.text.startswith(HEADLINE)
    finally:
        await server.stop()
