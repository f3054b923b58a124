"""Messages about weekly digests: the notice of a run with nothing to compile (or whose owner lost
access), the list of schedules, the confirmation of a new schedule. Pure builders."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    HeaderBlock,
)

from bot.blocks.common import Message, context, section
from bot.blocks.messages import COMMAND
from bot.blocks.schedules import RESUME_ACTION, schedule_list_blocks, schedule_summary
from bot.blocks.text import escape
from commands.digests import ScheduleView

SCHEDULES_HEADER = "Your weekly digests"


def notice_message(
    text: str, note: str | None = None, *, resume_schedule_id: int | None = None
) -> Message:
    """One line posted by a digest run instead of a backup (``note``: why it came by DM); with
    ``resume_schedule_id``, a Resume button for that paused schedule. The notification text is
    plain (no mrkdwn emphasis)."""
    blocks: list[Block] = [section(escape(text))]
    if note:
        blocks.append(context(f":information_source: {note}"))
    if resume_schedule_id is not None:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Resume",
                        action_id=RESUME_ACTION,
                        value=str(resume_schedule_id),
                        style="primary",
                    )
                ]
            )
        )
    return Message.of(text.replace("*", ""), blocks)


def format_fire_time(moment: datetime, timezone: str) -> str:
    """``"Sunday, March 8, 2026 at 08:00 (America/Toronto)"``."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%A, %B} {local.day}, {local.year} at {local:%H:%M} ({timezone})"


def schedule_created_message(schedule: ScheduleView, next_fire: datetime | None) -> Message:
    """The confirmation of a new schedule: what it does and when it first runs."""
    when = (
        f"First run: {format_fire_time(next_fire, schedule.timezone)}."
        if next_fire is not None
        else "It is not scheduled to run (paused)."
    )
    text = f":white_check_mark: Weekly digest set up. {schedule_summary(schedule)}\n{when}"
    return Message.of(
        text.replace("*", ""),
        [
            section(f":white_check_mark: *Weekly digest set up*\n{schedule_summary(schedule)}"),
            context(
                f"{escape(when)} `{COMMAND} schedules` lists your digests (run now, pause, delete)."
            ),
        ],
    )


def schedules_message(schedules: list[ScheduleView], notice: str | None = None) -> Message:
    """``/compile-backups schedules``: the user's schedules with their buttons; ``notice`` (what
    the last click did) on top."""
    blocks: list[Block] = [HeaderBlock(text=SCHEDULES_HEADER)]
    if notice:
        blocks.append(context(notice))
    blocks += schedule_list_blocks(schedules)
    count = len(schedules)
    text = f"{SCHEDULES_HEADER}: {count}" if count else f"{SCHEDULES_HEADER}: none"
    return Message.of(text, blocks)


def run_started_text(schedule: ScheduleView) -> str:
    """What "Run now" answers."""
    return (
        f":arrow_forward: Running the digest of {escape(schedule.project_name)} now: it will be "
        f"posted in <#{schedule.channel_id}>."
    )


def no_admin_projects_message() -> Message:
    """The refusal of ``/compile-backups schedule`` for a user who is admin on no project."""
    text = (
        ":no_entry: Weekly digests are set up by project admins: you need *Admin* on a "
        "project's Commitments tool. Ask one of the project's admins."
    )
    return Message.of(text.replace("*", ""), [section(text)])
