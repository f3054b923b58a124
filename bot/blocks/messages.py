"""Messages the bot posts: the parent message and its states, thread replies, help, refusals.

Each builder returns a `Message` (fallback text + Block Kit blocks built with slack_sdk.models);
``chat.postMessage(**message.as_kwargs())`` sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.blocks.text import chunk_lines, escape, plural
from commands.compile_backups import CompileResult, TieOutNote, format_size

COMMAND = "/compile-backups"
MAX_LISTED = 40  # lines per list in one reply; Slack allows 50 blocks per message


@dataclass(frozen=True)
class Message:
    """A message ready to send: ``text`` is the notification/fallback, ``blocks`` the layout."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / respond."""
        return {"text": self.text, "blocks": self.blocks}


def _message(text: str, blocks: Sequence[Block]) -> Message:
    return Message(text=text, blocks=[block.to_dict() for block in blocks])


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def _bullets(lines: Sequence[str]) -> list[SectionBlock]:
    shown = [f"• {line}" for line in lines[:MAX_LISTED]]
    if len(lines) > MAX_LISTED:
        shown.append(f"…and {len(lines) - MAX_LISTED} more.")
    return [_section(chunk) for chunk in chunk_lines(shown)]


# --- the parent message --------------------------------------------------------------------


class Phase(StrEnum):
    """Where the job behind a parent message is."""

    QUEUED = "queued"
    RUNNING = "running"
    UPLOADING = "uploading"
    DONE = "done"
    DONE_WITH_WARNINGS = "done_with_warnings"
    NOTHING_COMPILED = "nothing_compiled"
    FAILED = "failed"


_PHASE_LINES: dict[Phase, str] = {
    Phase.QUEUED: ":hourglass_flowing_sand: Queued",
    Phase.RUNNING: ":gear: Starting",
    Phase.UPLOADING: ":outbox_tray: Uploading the PDF",
    Phase.DONE: ":white_check_mark: Done: the backup is in the thread",
    Phase.DONE_WITH_WARNINGS: ":warning: Done, with invoices left out: see the thread",
    Phase.NOTHING_COMPILED: ":warning: Nothing could be compiled: see the thread",
    Phase.FAILED: ":x: Failed: see the thread for what to do",
}


@dataclass(frozen=True)
class JobHeadline:
    """What the parent message is about."""

    invoice_count: int
    project_name: str
    user_id: str
    title: str | None = None  # a digest's own headline ("Weekly invoice backup · Project X · …")


def headline_text(headline: JobHeadline) -> str:
    """``"Compiling an invoice backup of 5 invoices for Project X, asked by <@U1>"``, or the
    headline's own `title` (a digest's)."""
    if headline.title:
        return escape(headline.title)
    return (
        f"Compiling an invoice backup of {plural(headline.invoice_count, 'invoice')} "
        f"for {escape(headline.project_name)}, asked by <@{headline.user_id}>"
    )


def parent_message(
    headline: JobHeadline, phase: Phase, progress: str | None = None, note: str | None = None
) -> Message:
    """The parent message in its current state; ``progress`` (e.g. "rendering 3/5") while running,
    ``note`` when it is posted somewhere else than asked (e.g. a DM) and why."""
    status = _PHASE_LINES[phase]
    if phase is Phase.RUNNING and progress:
        status = f":gear: {escape(progress[:1].upper() + progress[1:])}"
    blocks: list[Block] = [_section(headline_text(headline)), _context(status)]
    if note:
        blocks.append(_context(f":information_source: {note}"))
    return _message(f"{headline_text(headline)}: {status.split(' ', 1)[1]}", blocks)


def fallback_note(channel_id: str, error: str) -> str:
    """Why the backup comes by DM instead of in the channel where it was asked."""
    if error == "not_in_channel":
        reason = (
            f"I'm not a member of <#{channel_id}>. Invite me there with "
            "`/invite @Invoice Backups` to get backups in the channel"
        )
    elif error == "is_archived":
        reason = f"<#{channel_id}> is archived"
    elif channel_id.startswith("D"):
        reason = "I can't post in that direct message (I'm not part of it)"
    else:
        reason = (
            "I can't see that conversation (a private channel I'm not in, or a group DM). "
            "Invite me with `/invite @Invoice Backups` to get backups there"
        )
    return f"I couldn't post where you asked: {reason}. So I'm sending your backup here instead."


# --- thread replies ------------------------------------------------------------------------


def _missing_period_blocks(outcome: CompileResult) -> list[Block]:
    missing = outcome.missing_periods
    if not missing:
        return []
    return [
        _section(
            f":warning: *{plural(len(missing), 'invoice')} left out: "
            f"{'its billing period does' if len(missing) == 1 else 'their billing periods do'} "
            "not exist*"
        ),
        *_bullets(
            [
                f"{escape(item.invoice_label)}: billing period {item.period_id} does not exist"
                for item in missing
            ]
        ),
        _context(escape(outcome.fix_hint())),
    ]


def _does_not_tie_out(count: int) -> str:
    """``"2 invoices do not tie out"``."""
    return f"{plural(count, 'invoice')} {'does' if count == 1 else 'do'} not tie out"


def _finding_lines(notes: Sequence[TieOutNote]) -> list[str]:
    return [
        f"{escape(note.invoice_label)}: {escape(finding)}"
        for note in notes
        for finding in note.findings
    ]


def _tie_out_left_out_blocks(outcome: CompileResult) -> list[Block]:
    stopped = outcome.left_out_not_tying_out
    if not stopped:
        return []
    return [
        _section(
            f":warning: *{plural(len(stopped), 'invoice')} left out: "
            f"{'its numbers do' if len(stopped) == 1 else 'their numbers do'} not tie out*"
        ),
        *_bullets(_finding_lines(stopped)),
        _context(escape(outcome.tie_out_hint())),
    ]


def _tie_out_blocks(outcome: CompileResult) -> list[Block]:
    flagged = outcome.not_tying_out
    if not flagged:
        return []
    return [
        _section(
            f":heavy_exclamation_mark: *{_does_not_tie_out(len(flagged))}* (see Checks on the "
            "cover page; their bookmarks are marked):"
        ),
        *_bullets(_finding_lines(flagged)),
    ]


def tie_out_summary(outcome: CompileResult) -> str:
    """``"2 invoices do not tie out: SC-001 … #3, SC-010 … #1."``, or "" when all tie out."""
    flagged = outcome.not_tying_out
    if not flagged:
        return ""
    return (
        f"{_does_not_tie_out(len(flagged))}: "
        + ", ".join(escape(note.invoice_label) for note in flagged)
        + "."
    )


def _unavailable_blocks(outcome: CompileResult) -> list[Block]:
    count = outcome.unavailable_count
    if not count:
        return []
    verb = "is" if count == 1 else "are"
    return [
        _context(
            f"{plural(count, 'selected invoice')} {verb} no longer available to you and left out."
        )
    ]


def success_reply(outcome: CompileResult) -> Message:
    """The thread reply after the PDF was uploaded: what it holds and what was left out."""
    summary = (
        f"{plural(outcome.invoice_count, 'invoice')} for {escape(outcome.project_name)}, "
        f"{plural(outcome.page_count, 'page')}, {format_size(outcome.byte_size)}"
    )
    blocks: list[Block] = [
        _section(f":white_check_mark: *Invoice backup ready*: {summary}."),
        _context(f":page_facing_up: {escape(outcome.file_name or '')}"),
    ]
    blocks += _missing_period_blocks(outcome)
    blocks += _tie_out_left_out_blocks(outcome)
    blocks += _tie_out_blocks(outcome)
    if outcome.left_out_attachments:
        blocks.append(
            _section(
                f"*{plural(len(outcome.left_out_attachments), 'attachment')} not merged* "
                "(listed on the cover page):"
            )
        )
        blocks += _bullets(
            [
                f"{escape(item.invoice_label)}: {escape(item.filename)} ({escape(item.reason)})"
                for item in outcome.left_out_attachments
            ]
        )
    if outcome.repaired_attachments:
        blocks.append(
            _context(
                "Repaired and included: "
                + ", ".join(escape(item.filename) for item in outcome.repaired_attachments[:20])
            )
        )
    blocks += _unavailable_blocks(outcome)
    text = f"Invoice backup ready: {summary}."
    if outcome.missing_periods:
        text += (
            f" {plural(len(outcome.missing_periods), 'invoice')} left out (billing period missing)."
        )
    if outcome.left_out_not_tying_out:
        count = len(outcome.left_out_not_tying_out)
        text += f" {plural(count, 'invoice')} left out (numbers do not tie out)."
    if outcome.not_tying_out:
        text += f" {tie_out_summary(outcome)}"
    return _message(text, blocks)


def nothing_compiled_reply(outcome: CompileResult) -> Message:
    """The thread reply when no invoice could be compiled: no file, only the warning."""
    blocks: list[Block] = [
        _section(
            ":warning: *No backup was produced*: none of the selected invoices could be "
            "compiled, so there is no file."
        ),
        *_missing_period_blocks(outcome),
        *_tie_out_left_out_blocks(outcome),
        *_unavailable_blocks(outcome),
    ]
    return _message(
        "No backup was produced: none of the selected invoices could be compiled.", blocks
    )


def outcome_reply(outcome: CompileResult) -> Message:
    """`success_reply` or `nothing_compiled_reply`, whichever fits; both say "Procore data as
    of <time>" when the source could not be reached before compiling."""
    message = success_reply(outcome) if outcome.has_file else nothing_compiled_reply(outcome)
    if outcome.data_note:
        note = (
            f":warning: {escape(outcome.data_source)} could not be reached: "
            f"{escape(outcome.data_note)} (the last sync)."
        )
        message = Message(
            text=f"{message.text}\n{note}", blocks=[*message.blocks, _context(note).to_dict()]
        )
    return message


def outcome_phase(outcome: CompileResult) -> Phase:
    """The parent message's final phase for an outcome."""
    if not outcome.has_file:
        return Phase.NOTHING_COMPILED
    left_out = outcome.missing_periods or outcome.left_out_not_tying_out
    return Phase.DONE_WITH_WARNINGS if left_out else Phase.DONE


class Failure(StrEnum):
    """Why a job failed, as far as the user needs to know."""

    UPLOAD_REFUSED = "upload_refused"
    DATABASE = "database"
    STORE = "store"
    ACCESS_DENIED = "access_denied"
    GAVE_UP = "gave_up"
    UNEXPECTED = "unexpected"


def failure_reply(failure: Failure, job_id: int, detail: str = "") -> Message:
    """The thread reply of a failed job: what happened and what to do."""
    again = f"Run `{COMMAND}` again"
    if failure is Failure.UPLOAD_REFUSED:
        text = (
            f":x: *The backup was compiled, but Slack refused the upload* ({escape(detail)}). "
            f"Ask a workspace admin whether apps may upload files here, then run `{COMMAND}` "
            "again."
        )
    elif failure is Failure.DATABASE:
        text = (
            ":x: *The backup could not be finished: the database is unavailable.* "
            f"{again} in a few minutes; if it keeps failing, tell whoever runs the bot "
            f"(job {job_id})."
        )
    elif failure is Failure.STORE:
        text = (
            ":x: *The backup could not be finished: the file store refused or is unavailable* "
            f"({escape(detail)}). {again} in a few minutes; if it keeps failing, tell whoever "
            f"runs the bot (job {job_id})."
        )
    elif failure is Failure.ACCESS_DENIED:
        text = f":no_entry: {detail}"
    elif failure is Failure.GAVE_UP:
        text = (
            f":x: *This backup failed {detail} times in a row, so I stopped trying.* "
            f"{again} with fewer invoices; if it fails again, tell whoever runs the bot "
            f"(job {job_id})."
        )
    else:
        text = (
            ":x: *Something went wrong while compiling this backup.* It has been logged. "
            f"{again}; if it fails again, tell whoever runs the bot (job {job_id})."
        )
    plain = text.replace("*", "")
    return _message(plain, [_section(text)])


# --- command answers -------------------------------------------------------------------------


def help_lines(tool: str = "Commitments") -> tuple[str, ...]:
    """The usage lines; ``tool`` is the project's name for the Commitments tool."""
    return (
        "*Invoice backups*: one PDF with each subcontractor invoice and its PDF attachments, "
        "posted in the conversation where you ask.",
        f"• `{COMMAND}`: choose a project and its invoices",
        f"• `{COMMAND} <project name or number>`: the same, with that project chosen",
        f"• `{COMMAND} access`: who may compile, Slack links and settings (project admins)",
        f"• `{COMMAND} schedule`: a weekly backup posted to a channel (project admins)",
        f"• `{COMMAND} schedules`: your weekly digests: run now, pause, resume, delete",
        f"• `{COMMAND} help`: this help",
        f"Compiling needs *Admin* on the project's {escape(tool)} tool.",
    )


def help_message(preface: str | None = None, tool: str = "Commitments") -> Message:
    """Usage, optionally after a line saying what went wrong (unknown subcommand, no match)."""
    lines = ([preface] if preface else []) + list(help_lines(tool))
    return _message("\n".join(lines).replace("*", ""), [_section("\n".join(lines))])


def unknown_argument_message(argument: str, tool: str = "Commitments") -> Message:
    """Help for ``/compile-backups <something>`` that is neither a subcommand nor a project."""
    return help_message(
        f":grey_question: `{escape(argument)}` is not a subcommand, nor a project where you "
        "may compile backups.",
        tool,
    )


def whom_to_ask(owner_ids: Sequence[str]) -> str:
    """``"a project admin or this bot's owners (<@U1>, <@U2>)"``."""
    if not owner_ids:
        return "a project admin or whoever runs this bot"
    shown = ", ".join(f"<@{owner}>" for owner in owner_ids[:5])
    return f"a project admin or this bot's owners ({shown})"


def unknown_user_text(email: str | None, owner_ids: Sequence[str]) -> str:
    """How a Slack user is matched to a project user, and whom to ask, for someone who matches
    nobody (mrkdwn)."""
    link = f"to link your Slack account to your project user with `{COMMAND} access`"
    if email is None:
        return (
            "I couldn't read an e-mail address from your Slack profile, and that is how I match "
            "you: *by the e-mail of your Slack profile, against the project directory*. Ask a "
            f"workspace admin to check your profile, or ask {whom_to_ask(owner_ids)} {link}. "
            "Compiling invoice backups needs *Admin* on a project's Commitments tool."
        )
    return (
        "I don't know you yet. I match you *by the e-mail of your Slack profile, "
        f"{escape(email)}, against the project directory*, and no project has an active user "
        f"with that address or a link to your Slack account. Ask {whom_to_ask(owner_ids)} to add "
        f"you to the project with that address, or {link}. Compiling invoice backups needs "
        "*Admin* on a project's Commitments tool."
    )


def unknown_user_message(email: str | None, owner_ids: Sequence[str]) -> Message:
    """The answer to someone the bot can't match to any project user."""
    text = f":wave: {unknown_user_text(email, owner_ids)}"
    return _message(text.replace("*", ""), [_section(text)])


def compile_refusal_message(reasons: Sequence[str]) -> Message:
    """The refusal for a project user who may compile on none of their projects: one
    `AccessDenied` text per project (each names the permission, the tool and whom to ask)."""
    if len(reasons) == 1:
        return access_denied_message(reasons[0])
    text = ":no_entry: You can't compile invoice backups on any of your projects yet:"
    plain = "\n".join([text, *reasons]).replace("*", "")
    return _message(plain, [_section(text), *_bullets(list(reasons))])


def access_denied_message(reason: str) -> Message:
    """An `AccessDenied` message, as is (it names the permission and whom to ask)."""
    return _message(reason.replace("*", ""), [_section(f":no_entry: {reason}")])


def temporary_problem_message(what: str) -> Message:
    """Something failed on our side before a job existed (database down, Slack error)."""
    text = (
        f":warning: I couldn't {what} just now (a temporary problem on my side). "
        "Please try again in a minute."
    )
    return _message(text, [_section(text)])
