"""Messages the bot posts: the parent message and its states, thread replies, help, refusals.

Each builder returns a `Message` (fallback text + Block Kit blocks built with slack_sdk.models);
``chat.postMessage(**message.as_kwargs())`` sends it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from slack_sdk.models.blocks import Block, SectionBlock

from bot.blocks.common import Message, context, section
from bot.blocks.text import chunk_lines, escape, plural
from commands.compile_backups import CompileResult, TieOutNote, format_size
from pdf.formatting import format_money

COMMAND = "/compile-backups"
MAX_LISTED = 40  # lines per list in one reply; Slack allows 50 blocks per message


def _bullets(lines: Sequence[str]) -> list[SectionBlock]:
    shown = [f"• {line}" for line in lines[:MAX_LISTED]]
    if len(lines) > MAX_LISTED:
        shown.append(f"…and {len(lines) - MAX_LISTED} more.")
    return [section(chunk) for chunk in chunk_lines(shown)]


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


FINISHED_PHASES = frozenset(
    {Phase.DONE, Phase.DONE_WITH_WARNINGS, Phase.NOTHING_COMPILED, Phase.FAILED}
)


@dataclass(frozen=True)
class JobHeadline:
    """What the parent message is about; ``included`` is set once the compile said how many of
    the ``invoice_count`` asked for are in the backup."""

    invoice_count: int
    project_name: str
    user_id: str
    title: str | None = None  # a digest's own headline ("Weekly invoice backup · Project X · …")
    included: int | None = None

    @property
    def left_out(self) -> int:
        """How many of the invoices asked for are not in the backup (0 until known)."""
        return max(self.invoice_count - self.included, 0) if self.included is not None else 0


def headline_text(headline: JobHeadline, phase: Phase = Phase.RUNNING) -> str:
    """``"Compiling an invoice backup of 6 invoices for Project X, asked by <@U1>"`` while it
    runs; ``"Invoice backup of 5 of 6 invoices for Project X, asked by <@U1>"`` when done; or the
    headline's own `title` (a digest's)."""
    if headline.title:
        return escape(headline.title)
    asked = plural(headline.invoice_count, "invoice")
    tail = f"for {escape(headline.project_name)}, asked by <@{headline.user_id}>"
    if phase not in FINISHED_PHASES:
        return f"Compiling an invoice backup of {asked} {tail}"
    if phase is not Phase.NOTHING_COMPILED and headline.left_out:
        return f"Invoice backup of {headline.included} of {asked} {tail}"
    return f"Invoice backup of {asked} {tail}"


def _status_line(headline: JobHeadline, phase: Phase, progress: str | None) -> str:
    left_out = headline.left_out
    if phase is Phase.QUEUED:
        return ":hourglass_flowing_sand: Queued"
    if phase is Phase.RUNNING:
        text = progress[:1].upper() + progress[1:] if progress else "Starting"
        return f":gear: {escape(text)}"
    if phase is Phase.UPLOADING:
        return ":outbox_tray: Uploading the PDF"
    if phase is Phase.DONE:
        return ":white_check_mark: Done, the PDF is in the thread"
    if phase is Phase.DONE_WITH_WARNINGS:
        return f":warning: Done, {left_out or 'some'} left out, see the thread"
    if phase is Phase.NOTHING_COMPILED:
        every = "the invoice was" if headline.invoice_count == 1 else "all were"
        return f":warning: Nothing compiled, {every} left out, see the thread"
    return ":x: Failed, see the thread for what to do"


def parent_message(
    headline: JobHeadline, phase: Phase, progress: str | None = None, note: str | None = None
) -> Message:
    """The parent message in its current state; ``progress`` (e.g. "invoice 3 of 6: SC-010 Polar
    Air") while running, ``note`` when it is posted somewhere else than asked (e.g. a DM) and why.
    Fallback text: ``"Invoice backup of 5 of 6 invoices …: done, 1 left out, see the thread"``."""
    status = _status_line(headline, phase, progress)
    title = headline_text(headline, phase)
    blocks: list[Block] = [section(title), context(status)]
    if note:
        blocks.append(context(f":information_source: {note}"))
    plain = status.split(" ", 1)[1]
    plain = plain[:1].lower() + plain[1:] if phase in FINISHED_PHASES else plain
    return Message.of(f"{title}: {plain}", blocks)


def _posting_reason(channel_id: str, error: str) -> str:
    if error == "not_in_channel":
        return (
            f"I'm not a member of <#{channel_id}>. Invite me there with "
            "`/invite @Invoice Backups` to get backups in the channel"
        )
    if error == "is_archived":
        return f"<#{channel_id}> is archived"
    if channel_id.startswith("D"):
        return "I can't post in that direct message (I'm not part of it)"
    return (
        "I can't see that conversation (a private channel I'm not in, or a group DM). "
        "Invite me with `/invite @Invoice Backups` to get backups there"
    )


def fallback_note(channel_id: str, error: str) -> str:
    """Why the backup comes by DM instead of in the channel where it was asked."""
    reason = _posting_reason(channel_id, error)
    return f"I couldn't post where you asked: {reason}. So I'm sending your backup here instead."


def digest_fallback_note(channel_id: str, error: str) -> str:
    """Why a weekly digest comes to its owner by DM instead of in its schedule's channel."""
    reason = _posting_reason(channel_id, error)
    return (
        f"Your weekly digest is scheduled for <#{channel_id}>, but I couldn't post there: "
        f"{reason}. So I'm sending it to you here instead; `{COMMAND} schedules` pauses or "
        "deletes it."
    )


def destination_text(channel_id: str, problem: str | None, *, is_dm: bool = False) -> str:
    """Where the PDF will go, said in the modal before it is submitted (``problem``: the
    `bot.delivery.posting_problem` of ``channel_id``)."""
    what = "One PDF with each invoice and its PDF attachments"
    if problem is None:
        if is_dm or channel_id.startswith("D"):
            return f"{what}, posted in our direct messages (Messages tab of this app)."
        return f"{what}, posted in a thread in <#{channel_id}>."
    reason = _posting_reason(channel_id, problem)
    return f"{what}. It will come to you by direct message: {reason}."


# --- thread replies ------------------------------------------------------------------------


def _missing_period_blocks(outcome: CompileResult) -> list[Block]:
    missing = outcome.missing_periods
    if not missing:
        return []
    one = len(missing) == 1
    return [
        section(
            f":warning: *{plural(len(missing), 'invoice')} left out: "
            f"{'its billing period does' if one else 'their billing periods do'} not exist*"
        ),
        *_bullets([escape(item.describe()) for item in missing]),
        context(escape(outcome.fix_hint())),
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
        section(
            f":warning: *{plural(len(stopped), 'invoice')} left out: "
            f"{'its numbers do' if len(stopped) == 1 else 'their numbers do'} not tie out*"
        ),
        *_bullets(_finding_lines(stopped)),
        context(escape(outcome.tie_out_hint())),
    ]


def _tie_out_blocks(outcome: CompileResult) -> list[Block]:
    flagged = outcome.not_tying_out
    if not flagged:
        return []
    return [
        section(
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
        context(
            f"{plural(count, 'selected invoice')} {verb} no longer available to you and left out."
        )
    ]


def _included_blocks(outcome: CompileResult) -> list[Block]:
    if not outcome.included:
        return []
    return [
        *_bullets([escape(item.describe()) for item in outcome.included]),
        section(f"*Total current payment due: {format_money(outcome.total_due)}*"),
    ]


def _addressed(user_id: str | None, text: str) -> str:
    """``"<@U1>, your backup …"``, or ``"Your backup …"`` with nobody to mention."""
    return f"<@{user_id}>, {text}" if user_id else text[:1].upper() + text[1:]


def success_reply(outcome: CompileResult, user_id: str | None = None) -> Message:
    """The thread reply after the PDF was uploaded: each invoice it holds (contract · vendor ·
    application · period · current payment due · pages), the total due, and what was left out;
    ``user_id`` (the requester) is @-mentioned. The file card shows the file name."""
    summary = (
        f"{plural(outcome.invoice_count, 'invoice')} for {escape(outcome.project_name)}, "
        f"{plural(outcome.page_count, 'page')} ({format_size(outcome.byte_size)})"
    )
    blocks: list[Block] = [
        section(
            f":white_check_mark: {_addressed(user_id, '*your invoice backup is ready*')}: "
            f"{summary}."
        ),
        *_included_blocks(outcome),
    ]
    blocks += _missing_period_blocks(outcome)
    blocks += _tie_out_left_out_blocks(outcome)
    blocks += _tie_out_blocks(outcome)
    if outcome.left_out_attachments:
        blocks.append(
            section(
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
            context(
                "Repaired and included: "
                + ", ".join(escape(item.filename) for item in outcome.repaired_attachments[:20])
            )
        )
    blocks += _unavailable_blocks(outcome)
    text = _addressed(user_id, f"your invoice backup is ready: {summary}")
    text += f", {format_money(outcome.total_due)} due." if outcome.included else "."
    if outcome.missing_periods:
        text += (
            f" {plural(len(outcome.missing_periods), 'invoice')} left out (billing period missing)."
        )
    if outcome.left_out_not_tying_out:
        count = len(outcome.left_out_not_tying_out)
        text += f" {plural(count, 'invoice')} left out (numbers do not tie out)."
    if outcome.not_tying_out:
        text += f" {tie_out_summary(outcome)}"
    if outcome.unavailable_count:
        text += f" {plural(outcome.unavailable_count, 'invoice')} left out (no longer available)."
    return Message.of(text, blocks)


def nothing_compiled_reply(outcome: CompileResult, user_id: str | None = None) -> Message:
    """The thread reply when no invoice could be compiled: no file, only the warning."""
    blocks: list[Block] = [
        section(
            f":warning: {_addressed(user_id, '*no backup was produced*')}: none of the "
            "selected invoices could be compiled, so there is no file."
        ),
        *_missing_period_blocks(outcome),
        *_tie_out_left_out_blocks(outcome),
        *_unavailable_blocks(outcome),
    ]
    text = _addressed(
        user_id, "no backup was produced: none of the selected invoices could be compiled."
    )
    return Message.of(text, blocks)


def outcome_reply(outcome: CompileResult, user_id: str | None = None) -> Message:
    """`success_reply` or `nothing_compiled_reply`, whichever fits (``user_id`` @-mentioned);
    both say "Procore data as of <time>" when the source could not be reached before compiling."""
    if outcome.has_file:
        message = success_reply(outcome, user_id)
    else:
        message = nothing_compiled_reply(outcome, user_id)
    if outcome.data_note:
        note = (
            f":warning: {escape(outcome.data_source)} could not be reached: "
            f"{escape(outcome.data_note)} (the last sync)."
        )
        message = Message(
            text=f"{message.text}\n{note}", blocks=[*message.blocks, context(note).to_dict()]
        )
    return message


def outcome_phase(outcome: CompileResult) -> Phase:
    """The parent message's final phase for an outcome."""
    if not outcome.has_file:
        return Phase.NOTHING_COMPILED
    left_out = (
        outcome.missing_periods or outcome.left_out_not_tying_out or outcome.unavailable_count
    )
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
    return Message.of(plain, [section(text)])


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
    return Message.of("\n".join(lines).replace("*", ""), [section("\n".join(lines))])


def closest_projects(argument: str, labels: Sequence[str], count: int = 3) -> list[str]:
    """The project labels closest to a mistyped ``argument`` (best first, at most ``count``)."""
    wanted = argument.casefold()

    def score(label: str) -> float:
        name = label.casefold()
        best = difflib.SequenceMatcher(None, wanted, name).ratio()
        for word in name.replace("(", " ").replace(")", " ").split():
            best = max(best, difflib.SequenceMatcher(None, wanted, word).ratio())
        return best

    ranked = sorted(labels, key=lambda label: -score(label))
    return [label for label in ranked[:count] if score(label) >= 0.5]


def project_suggestion_message(argument: str, suggestions: Sequence[tuple[str, str]]) -> Message:
    """The answer to ``/compile-backups <mistyped project>``: the user's closest projects, each
    as (label, what to type after the command)."""
    head = f":grey_question: `{escape(argument)}` is not a project where you may compile backups."
    lines = [head]
    if suggestions:
        lines.append("Did you mean:")
        lines += [f"• {escape(label)}: `{COMMAND} {escape(typed)}`" for label, typed in suggestions]
    lines.append(
        f"`{COMMAND}` alone lets you choose among your projects; `{COMMAND} help` says more."
    )
    text = "\n".join(lines)
    return Message.of(text.replace("`", ""), [section(text)])


def whom_to_ask(owner_ids: Sequence[str]) -> str:
    """``"a project admin or this bot's owners (<@U1>, <@U2>)"``."""
    if not owner_ids:
        return "a project admin or whoever runs this bot"
    shown = ", ".join(f"<@{owner}>" for owner in owner_ids[:5])
    return f"a project admin or this bot's owners ({shown})"


def unknown_user_text(email: str | None, owner_ids: Sequence[str]) -> str:
    """Three lines for someone who matches no project user (mrkdwn): how they are matched,
    whom to ask, and the permission compiling needs."""
    link = f"link your Slack account (`{COMMAND} access`)"
    if email is None:
        first = "I couldn't read the e-mail address of your Slack profile: that is how I match you."
        second = (
            f"Ask a workspace admin to check your profile, or ask {whom_to_ask(owner_ids)} "
            f"to {link}."
        )
    else:
        first = (
            "I don't know you yet: nobody in a project's Directory has the e-mail of your Slack "
            f"profile, {escape(email)}."
        )
        second = (
            f"Ask {whom_to_ask(owner_ids)} to add you to the project with that address, or to "
            f"{link}."
        )
    return "\n".join(
        [first, second, "Compiling backups needs *Admin* on a project's Commitments tool."]
    )


def unknown_user_message(email: str | None, owner_ids: Sequence[str]) -> Message:
    """The answer to someone the bot can't match to any project user."""
    text = f":wave: {unknown_user_text(email, owner_ids)}"
    return Message.of(text.replace("*", ""), [section(text)])


def compile_refusal_message(reasons: Sequence[str]) -> Message:
    """The refusal for a project user who may compile on none of their projects: one
    `AccessDenied` text per project (each names the permission, the tool and whom to ask)."""
    if len(reasons) == 1:
        return access_denied_message(reasons[0])
    text = ":no_entry: You can't compile invoice backups on any of your projects yet:"
    plain = "\n".join([text, *reasons]).replace("*", "")
    return Message.of(plain, [section(text), *_bullets(list(reasons))])


def access_denied_message(reason: str) -> Message:
    """An `AccessDenied` message, as is (it names the permission and whom to ask)."""
    return Message.of(reason.replace("*", ""), [section(f":no_entry: {reason}")])


def temporary_problem_message(what: str) -> Message:
    """Something failed on our side before a job existed (database down, Slack error)."""
    text = (
        f":warning: I couldn't {what} just now (a temporary problem on my side). "
        "Please try again in a minute."
    )
    return Message.of(text, [section(text)])
