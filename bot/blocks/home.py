"""The App Home tab: the user's projects and access level, their last backups (with a link to
each thread) and the digest schedules they own. Pure: `HomeData` in, a ``home`` view out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
)
from slack_sdk.models.views import View

from bot.blocks.access import level_label
from bot.blocks.common import context, section
from bot.blocks.messages import COMMAND, unknown_user_text
from bot.blocks.schedules import schedule_list_blocks
from bot.blocks.text import chunk_lines, escape, plural
from commands.digests import ScheduleView

MAX_PROJECTS_LISTED = 30
MAX_BACKUPS_LISTED = 10
MAX_HOME_BLOCKS = 100  # Slack's limit for a Home tab

BACKUP_STATUS_LABELS = {
    "succeeded": ":white_check_mark: Done",
    "nothing_to_compile": ":warning: Nothing compiled",
    "failed": ":x: Failed",
    "running": ":hourglass_flowing_sand: In progress",
}


@dataclass(frozen=True)
class HomeProject:
    """A project of the user and their standing on it."""

    label: str
    level: str  # the Commitments access level: none, read_only, standard, admin
    tool: str  # the project's name for the Commitments tool
    is_admin: bool
    may_compile: bool
    synced_at: datetime | None = None  # when its data last came from the source
    source: str = "bundle"  # "bundle" (an import) or "procore"


COMPILE_ACTION_ID = "home_compile"
MAX_VENDORS_NAMED = 3


@dataclass(frozen=True)
class HomeBackup:
    """One backup the user asked for; ``thread_url`` is None when its thread is unknown;
    ``periods`` and ``vendors`` name what it holds (``"Oct 1–31, 2026"``, vendor names)."""

    project_name: str
    status: str
    requested_at: datetime
    invoice_count: int
    page_count: int
    thread_url: str | None
    periods: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()


@dataclass(frozen=True)
class HomeData:
    """Everything the Home tab shows one user."""

    email: str | None
    projects: tuple[HomeProject, ...] = ()
    backups: tuple[HomeBackup, ...] = ()
    schedules: tuple[ScheduleView, ...] = ()
    is_owner: bool = False
    owner_ids: tuple[str, ...] = ()
    problem: str | None = None  # shown instead of the user's data when it couldn't be read
    unreachable: tuple[tuple[str, str], ...] = ()  # (project label, reason): admins/owners only
    # Admins and owners: when Procore's last webhook delivery came (a silent webhook shows).
    webhook_health: str | None = None


def project_line(project: HomeProject) -> str:
    """``"*Riverside (2026-014)*: Admin on the Commitments tool · you may compile backups"``."""
    standing = f"{level_label(project.level)} on the {escape(project.tool)} tool"
    if project.is_admin:
        what = "you may compile backups and manage access"
    elif project.may_compile:
        what = "you may compile your own commitments' invoices (invoice contact)"
    else:
        what = "compiling needs Admin"
    line = f"• *{escape(project.label)}*: {standing} · {what}"
    if project.synced_at is not None:
        origin = "synced from Procore" if project.source == "procore" else "imported"
        line += f" · {origin} {slack_date(project.synced_at)}"
    return line


def slack_date(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone (fallback: UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    fallback = aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _named(names: tuple[str, ...]) -> str:
    shown = ", ".join(escape(name) for name in names[:MAX_VENDORS_NAMED])
    more = len(names) - MAX_VENDORS_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def backup_line(backup: HomeBackup) -> str:
    """``"✅ Done · *Riverside* · Oct 1–31, 2026: Acme Concrete, Volt Electric · Nov 26 at 9:14 ·
    5 invoices, 42 pages · <url|thread>"``."""
    status = BACKUP_STATUS_LABELS.get(backup.status, escape(backup.status))
    parts = [status, f"*{escape(backup.project_name)}*"]
    what = " and ".join(escape(period) for period in backup.periods[:2])
    if len(backup.periods) > 2:
        what = f"{escape(backup.periods[0])} to {escape(backup.periods[-1])}"
    if backup.vendors:
        what = f"{what}: {_named(backup.vendors)}" if what else _named(backup.vendors)
    if what:
        parts.append(what)
    parts.append(slack_date(backup.requested_at))
    if backup.status == "succeeded":
        parts.append(
            f"{plural(backup.invoice_count, 'invoice')}, {plural(backup.page_count, 'page')}"
        )
    if backup.thread_url:
        parts.append(f"<{backup.thread_url}|open the thread>")
    return " · ".join(parts)


def _projects_blocks(home: HomeData) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text="Your projects")]
    if not home.projects:
        blocks.append(section(unknown_user_text(home.email, home.owner_ids)))
    else:
        lines = [project_line(project) for project in home.projects[:MAX_PROJECTS_LISTED]]
        if len(home.projects) > MAX_PROJECTS_LISTED:
            lines.append(f"…and {len(home.projects) - MAX_PROJECTS_LISTED} more.")
        blocks += [section(chunk) for chunk in chunk_lines(lines)]
    if home.is_owner:
        blocks.append(
            context(
                f":key: You're one of this bot's owners: `{COMMAND} access` manages access on "
                "every project."
            )
        )
    elif any(project.is_admin for project in home.projects):
        blocks.append(context(f"`{COMMAND} access` shows who has which level and manages access."))
    if home.unreachable:
        lines = [
            f"• *{escape(label)}*: {escape(reason)}"
            for label, reason in home.unreachable[:MAX_PROJECTS_LISTED]
        ]
        blocks.append(section(":warning: *Projects this app cannot reach in Procore*"))
        blocks += [section(chunk) for chunk in chunk_lines(lines)]
    return blocks


def _backups_blocks(home: HomeData) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text="Your last backups")]
    if not home.backups:
        if _may_compile(home):
            blocks.append(section("None yet. *Compile a backup* (above) asks for one."))
        else:
            blocks.append(section("None yet."))
        return blocks
    lines = [backup_line(backup) for backup in home.backups[:MAX_BACKUPS_LISTED]]
    return blocks + [section(chunk) for chunk in chunk_lines(lines)]


def _may_compile(home: HomeData) -> bool:
    return any(project.may_compile for project in home.projects)


def _intro_blocks(home: HomeData) -> list[Block]:
    what = (
        "I compile *subcontractor invoice backups*: one PDF with each invoice (or its signed "
        "copy), its PDF attachments, a cover page, bookmarks and page numbers."
    )
    if home.problem or not _may_compile(home):
        return [section(what)]
    return [
        section(
            f"{what} Press *Compile a backup*, choose a project and invoices, and I send you the "
            f"PDF in our direct messages. In a channel I'm in, `{COMMAND}` posts it in a thread "
            "there."
        ),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Compile a backup",
                    action_id=COMPILE_ACTION_ID,
                    value="compile",
                    style="primary",
                )
            ]
        ),
    ]


def _schedules_blocks(home: HomeData) -> list[Block]:
    if home.schedules:
        return schedule_list_blocks(list(home.schedules))
    if any(project.is_admin for project in home.projects):
        return schedule_list_blocks([])
    return [
        section(
            "You have no weekly digests. A project admin can have a backup posted to a channel "
            "every week."
        )
    ]


def home_view(home: HomeData) -> View:
    """The Home tab of one user: a *Compile a backup* button (`COMPILE_ACTION_ID`) for those who
    may compile, their projects, last backups (period and vendors) and weekly digests."""
    blocks: list[Block] = [
        HeaderBlock(text="Invoice backups"),
        *_intro_blocks(home),
        DividerBlock(),
    ]
    if home.problem:
        blocks.append(section(f":warning: {escape(home.problem)}"))
        return View(type="home", blocks=blocks)
    blocks += _projects_blocks(home)
    if home.webhook_health:
        blocks.append(context(escape(home.webhook_health)))
    blocks += [DividerBlock(), *_backups_blocks(home)]
    blocks += [DividerBlock(), HeaderBlock(text="Your weekly digests")]
    room = MAX_HOME_BLOCKS - len(blocks)
    blocks += _schedules_blocks(home)[:room]
    return View(type="home", blocks=blocks)
