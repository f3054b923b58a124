"""Pure pieces of the weekly digests in bot/: the schedule list and modal builders, reading the
modal back, and how a digest plan becomes a job's work (no server, no database)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.backup_job import BackupJobPayload
from bot.blocks.digests import notice_message, schedules_message
from bot.blocks.messages import Phase, parent_message
from bot.blocks.schedule_modal import (
    ScheduleModalMetadata,
    read_schedule_form,
    schedule_modal,
    timezone_options,
)
from bot.blocks.schedules import schedule_list_blocks
from bot.digest_job import digest_work
from bot.job_work import CompileWork, NoticeWork, SkipWork, work_from_json, work_to_json
from commands.access import ProjectChoice, Requester
from commands.digests import DigestPlan, ScheduleView
from tests.slack.test_slack_digests import schedule_state

OWNER = Requester("slack:U1", "pm@example.com", "Dana", "U1")
SCHEDULE = ScheduleView(
    id=7,
    project_id=1,
    project_name="Riverside <Tower> & Co",
    owner_key="slack:U1",
    owner_slack_user_id="U1",
    channel_id="C1",
    weekday=6,
    time_of_day="08:00",
    timezone="America/Toronto",
    selection="open_period",
    statuses=("approved",),
    skip_empty=False,
    paused=False,
    paused_reason=None,
)


def test_schedule_list_has_buttons_valued_with_the_schedule_id() -> None:
    blocks = [block.to_dict() for block in schedule_list_blocks([SCHEDULE])]
    section, actions = blocks
    assert "Riverside &lt;Tower&gt; &amp; Co" in section["text"]["text"]
    assert "Sundays at 08:00 (America/Toronto)" in section["text"]["text"]
    elements = actions["elements"]
    assert [e["action_id"] for e in elements] == [
        "schedule_run_now",
        "schedule_pause",
        "schedule_delete",
    ]
    assert {e["value"] for e in elements} == {"7"}
    confirm = elements[-1]["confirm"]
    assert confirm["confirm"]["text"] == "Delete" and confirm["style"] == "danger"

    paused = schedule_list_blocks([replace(SCHEDULE, paused=True, paused_reason="lost access")])
    paused_actions = paused[1].to_dict()["elements"]
    assert [e["action_id"] for e in paused_actions] == ["schedule_resume", "schedule_delete"]
    assert "paused: lost access" in paused[0].to_dict()["text"]["text"]

    [empty] = schedule_list_blocks([])
    assert "/compile-backups schedule" in empty.to_dict()["text"]["text"]
    many = schedule_list_blocks([replace(SCHEDULE, id=n) for n in range(40)])
    assert len(many) <= 50
    assert "none" in schedules_message([]).text


def test_the_modal_reads_back_into_a_spec_or_errors_by_block() -> None:
    view = schedule_modal(
        [ProjectChoice(1, "Riverside", "2026-014")],
        ScheduleModalMetadata("C1", "U1"),
        timezone="America/Toronto",
    ).to_dict()
    assert ScheduleModalMetadata.parse(view["private_metadata"]) == ScheduleModalMetadata(
        "C1", "U1"
    )
    form = read_schedule_form(
        schedule_state(view, project_id=1, channel="C9", statuses=("approved",), skip_empty=True)
    )
    assert form.errors == {}
    assert form.spec is not None
    assert (form.spec.project_id, form.spec.channel_id, form.spec.weekday) == (1, "C9", 6)
    assert (form.spec.time_of_day, form.spec.timezone) == ("08:00", "America/Toronto")
    assert form.spec.statuses == ("approved",) and form.spec.skip_empty

    broken = read_schedule_form(
        schedule_state(view, project_id=None, channel="", timezone="", time_of_day="25:00")
    )
    assert broken.spec is None
    assert set(broken.errors) == {
        "schedule_project",
        "schedule_channel",
        "schedule_timezone",
        "schedule_time",
    }


def test_time_zone_search() -> None:
    first = [option.value for option in timezone_options("", "Asia/Tokyo")]
    assert first[0] == "Asia/Tokyo" and "America/Toronto" in first
    assert [option.value for option in timezone_options("los angeles")] == ["America/Los_Angeles"]
    assert len(timezone_options("a")) == 100
    assert timezone_options("no such zone") == []


def plan(status: str, **changes: object) -> DigestPlan:
    values: dict[str, object] = {
        "status": status,
        "schedule_id": 7,
        "message": "",
        "headline": "Weekly invoice backup · Riverside · Billing period 4 (Nov 1–30, 2026)",
        "requester": OWNER,
        "project_id": 1,
        "channel_id": "C1",
        "timezone": "America/Toronto",
        "invoice_ids": (9022,),
    }
    values.update(changes)
    return DigestPlan(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("digest_plan", "expected"),
    [
        (plan("empty", message="nothing", invoice_ids=()), NoticeWork),
        (plan("empty", skip_empty=True, invoice_ids=()), SkipWork),
        (plan("owner_lost_access", message="paused: why", channel_id=None), NoticeWork),
        (plan("paused", message="The schedule is paused."), SkipWork),
        (plan("gone", message="gone", requester=None), SkipWork),
    ],
)
def test_what_a_digest_plan_does(digest_plan: DigestPlan, expected: type) -> None:
    work = digest_work(digest_plan)
    assert isinstance(work, expected)
    if isinstance(work, NoticeWork):
        assert work.user_id == "U1"
        assert work.channel_id == (None if digest_plan.status == "owner_lost_access" else "C1")
    assert work_from_json(work_to_json(work)) == work


def test_a_ready_digest_compiles_as_its_owner_under_its_headline() -> None:
    work = digest_work(plan("ready"))
    assert isinstance(work, CompileWork)
    request = work.request
    assert (request.channel_id, request.user_id, request.requester) == ("C1", "U1", OWNER)
    assert request.invoice_ids == (9022,) and request.timezone == "America/Toronto"
    assert BackupJobPayload.from_json(request.to_json()) == request
    assert work_from_json(work_to_json(work)) == work
    message = parent_message(request.headline, Phase.DONE)
    assert message.text.startswith("Weekly invoice backup · Riverside · Billing period 4")
    assert "asked by" not in message.text
    noticed = notice_message("Weekly · X: no invoices.", note="I'm not in <#C1>")
    assert len(noticed.blocks) == 2 and noticed.text == "Weekly · X: no invoices."
