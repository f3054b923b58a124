"""The list of a user's digest schedules, with Run now / Pause|Resume / Delete buttons.

Pure: `ScheduleView`s in, Block Kit blocks out. Used by ``/compile-backups schedules`` (an
ephemeral message) and by the App Home tab.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
)

from bot.blocks.common import context, section
from bot.blocks.text import escape, shorten
from commands.digests import ScheduleView

RUN_NOW_ACTION = "schedule_run_now"
PAUSE_ACTION = "schedule_pause"
RESUME_ACTION = "schedule_resume"
DELETE_ACTION = "schedule_delete"
SCHEDULE_ACTIONS = (RUN_NOW_ACTION, PAUSE_ACTION, RESUME_ACTION, DELETE_ACTION)
MAX_SCHEDULES_LISTED = 15  # 3 blocks each; Slack allows 50 blocks per message
NO_SCHEDULES_TEXT = (
    "You have no weekly digests. `/compile-backups schedule` sets one up (project admins)."
)


def schedule_summary(schedule: ScheduleView) -> str:
    """``"*Project X* → <#C123>\\nMondays at 08:00 (America/Toronto) · …"`` (mrkdwn)."""
    name = escape(schedule.project_name or f"Project {schedule.project_id}")
    icon = ":double_vertical_bar: " if schedule.paused else ":calendar: "
    return (
        f"{icon}*{name}* → <#{schedule.channel_id}> (schedule #{schedule.id})\n"
        f"{escape(schedule.describe())}"
    )


def _delete_confirmation(schedule: ScheduleView) -> ConfirmObject:
    return ConfirmObject(
        title="Delete this digest?",
        text=shorten(
            f"The weekly backup of {escape(schedule.project_name or 'this project')} to "
            f"<#{schedule.channel_id}> stops for everyone. This cannot be undone.",
            300,
        ),
        confirm="Delete",
        deny="Keep it",
        style="danger",
    )


def schedule_buttons(schedule: ScheduleView) -> ActionsBlock:
    """Run now and Pause (Resume alone when paused), Delete (confirmed first); each button's
    value is the schedule id."""
    value = str(schedule.id)
    if schedule.paused:
        buttons = [
            ButtonElement(text="Resume", action_id=RESUME_ACTION, value=value, style="primary")
        ]
    else:
        buttons = [
            ButtonElement(text="Run now", action_id=RUN_NOW_ACTION, value=value),
            ButtonElement(text="Pause", action_id=PAUSE_ACTION, value=value),
        ]
    delete = ButtonElement(
        text="Delete",
        action_id=DELETE_ACTION,
        value=value,
        style="danger",
        confirm=_delete_confirmation(schedule),
    )
    return ActionsBlock(block_id=f"schedule_{schedule.id}", elements=[*buttons, delete])


def schedule_list_blocks(schedules: list[ScheduleView]) -> list[Block]:
    """A section and a row of buttons per schedule (or a line saying there are none)."""
    if not schedules:
        return [section(NO_SCHEDULES_TEXT)]
    blocks: list[Block] = []
    for schedule in schedules[:MAX_SCHEDULES_LISTED]:
        blocks.append(section(schedule_summary(schedule)))
        blocks.append(schedule_buttons(schedule))
    if len(schedules) > MAX_SCHEDULES_LISTED:
        hidden = len(schedules) - MAX_SCHEDULES_LISTED
        blocks.append(context(f"…and {hidden} more schedules."))
    return blocks
