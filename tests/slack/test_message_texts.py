"""Snapshots of what a project manager reads: the exact text of each surface, for one invoice,
several, some left out and all left out. A wording change shows up here, in review."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.blocks.digests import notice_message
from bot.blocks.home import HomeBackup, HomeData, HomeProject, backup_line, home_view
from bot.blocks.messages import (
    JobHeadline,
    Phase,
    destination_text,
    digest_fallback_note,
    nothing_compiled_reply,
    outcome_phase,
    outcome_reply,
    parent_message,
    success_reply,
    unknown_user_text,
)
from commands.compile_backups import CompileResult, IncludedInvoice, MissingPeriod

ACME = IncludedInvoice("SC-001", "Acme Concrete", 3, "Oct 1–31, 2026", "12345.00", 4)
VOLT = IncludedInvoice("SC-002", "Volt Electric Co.", 2, "Oct 1–31, 2026", "1000.50", 1)
POLAR_MISSING = MissingPeriod(
    "SC-010 Polar Air · Application #3",
    599,
    amount="$18,400.00",
    invoice_dates="Oct 1–31, 2026",
    covering_period="Billing period 11 (Oct 1–31, 2026)",
)
VOLT_MISSING = MissingPeriod(
    "SC-002 Volt Electric Co. · Application #4", 600, "$9.99", "Dec 1–31, 2026", ""
)


def result(*included: IncludedInvoice, missing: tuple[MissingPeriod, ...] = ()) -> CompileResult:
    return CompileResult(
        status="succeeded" if included else "nothing_to_compile",
        backup_id=1,
        pdf_path=Path("/tmp/x.pdf") if included else None,
        file_name="Subcontractor invoice backup - Riverside - 2026-014.pdf" if included else None,
        project_name="Riverside",
        invoice_count=len(included),
        page_count=sum(item.pages for item in included),
        byte_size=2048,
        missing_periods=missing,
        left_out_attachments=(),
        included=included,
    )


def texts(blocks: list[dict]) -> list[str]:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                found.append(element["text"])
    return found


# --- the parent message ------------------------------------------------------------------------


def test_the_parent_message_while_running_and_when_done() -> None:
    asked = JobHeadline(6, "Riverside", "U1")
    running = parent_message(asked, Phase.RUNNING, "invoice 3 of 6: SC-010 Polar Air")
    assert running.text == (
        "Compiling an invoice backup of 6 invoices for Riverside, asked by <@U1>: "
        "Invoice 3 of 6: SC-010 Polar Air"
    )
    done = parent_message(JobHeadline(6, "Riverside", "U1", included=6), Phase.DONE)
    assert done.text == (
        "Invoice backup of 6 invoices for Riverside, asked by <@U1>: done, the PDF is in the thread"
    )
    some = parent_message(JobHeadline(6, "Riverside", "U1", included=5), Phase.DONE_WITH_WARNINGS)
    assert some.text == (
        "Invoice backup of 5 of 6 invoices for Riverside, asked by <@U1>: done, 1 left out, "
        "see the thread"
    )
    assert texts(some.blocks) == [
        "Invoice backup of 5 of 6 invoices for Riverside, asked by <@U1>",
        ":warning: Done, 1 left out, see the thread",
    ]
    none = parent_message(JobHeadline(2, "Riverside", "U1", included=0), Phase.NOTHING_COMPILED)
    assert none.text == (
        "Invoice backup of 2 invoices for Riverside, asked by <@U1>: nothing compiled, all were "
        "left out, see the thread"
    )
    one = parent_message(JobHeadline(1, "Riverside", "U1", included=0), Phase.NOTHING_COMPILED)
    assert one.text.endswith(": nothing compiled, the invoice was left out, see the thread")


# --- the thread reply --------------------------------------------------------------------------


def test_the_reply_for_one_invoice() -> None:
    reply = success_reply(result(ACME), "U1")
    assert reply.text == (
        "<@U1>, your invoice backup is ready: 1 invoice for Riverside, 4 pages (2.0 KB), "
        "$12,345.00 due."
    )
    assert texts(reply.blocks) == [
        ":white_check_mark: <@U1>, *your invoice backup is ready*: 1 invoice for Riverside, "
        "4 pages (2.0 KB).",
        "• SC-001 · Acme Concrete · Application #3 · Oct 1–31, 2026 · $12,345.00 · 4 pages",
        "*Total current payment due: $12,345.00*",
    ]
    assert "Subcontractor invoice backup" not in json.dumps(reply.blocks)  # the file card shows it


def test_the_reply_for_several_invoices_with_one_left_out() -> None:
    reply = success_reply(result(ACME, VOLT, missing=(POLAR_MISSING,)), "U1")
    assert reply.text == (
        "<@U1>, your invoice backup is ready: 2 invoices for Riverside, 5 pages (2.0 KB), "
        "$13,345.50 due. 1 invoice left out (billing period missing)."
    )
    assert texts(reply.blocks) == [
        ":white_check_mark: <@U1>, *your invoice backup is ready*: 2 invoices for Riverside, "
        "5 pages (2.0 KB).",
        "• SC-001 · Acme Concrete · Application #3 · Oct 1–31, 2026 · $12,345.00 · 4 pages\n"
        "• SC-002 · Volt Electric Co. · Application #2 · Oct 1–31, 2026 · $1,000.50 · 1 page",
        "*Total current payment due: $13,345.50*",
        ":warning: *1 invoice left out: its billing period does not exist*",
        "• SC-010 Polar Air · Application #3, $18,400.00 for Oct 1–31, 2026: its billing period "
        "does not exist in the project. Billing period 11 (Oct 1–31, 2026) covers these dates.",
        "To include it, move the invoice to an existing billing period in Procore (Invoicing "
        "tool), or create the missing period there (Invoicing settings, billing periods), then "
        "compile again.",
    ]


def test_the_reply_when_all_are_left_out() -> None:
    reply = nothing_compiled_reply(result(missing=(POLAR_MISSING, VOLT_MISSING)), "U1")
    assert reply.text == (
        "<@U1>, no backup was produced: none of the selected invoices could be compiled."
    )
    assert texts(reply.blocks)[1:] == [
        ":warning: *2 invoices left out: their billing periods do not exist*",
        "• SC-010 Polar Air · Application #3, $18,400.00 for Oct 1–31, 2026: its billing period "
        "does not exist in the project. Billing period 11 (Oct 1–31, 2026) covers these dates.\n"
        "• SC-002 Volt Electric Co. · Application #4, $9.99 for Dec 1–31, 2026: its billing "
        "period does not exist in the project. No existing billing period covers these dates.",
        "To include them, move each invoice to an existing billing period in Procore (Invoicing "
        "tool), or create the missing period there (Invoicing settings, billing periods), then "
        "compile again.",
    ]


def test_a_digest_reply_mentions_nobody() -> None:
    assert success_reply(result(ACME)).text.startswith("Your invoice backup is ready: 1 invoice")


# --- where the PDF goes, who is unknown ----------------------------------------------------------


def test_the_modal_says_where_the_pdf_will_go() -> None:
    assert destination_text("C1", None) == (
        "One PDF with each invoice and its PDF attachments, posted in a thread in <#C1>."
    )
    assert destination_text("C1", "not_in_channel") == (
        "One PDF with each invoice and its PDF attachments. It will come to you by direct "
        "message: I'm not a member of <#C1>. Invite me there with `/invite @Invoice Backups` to "
        "get backups in the channel."
    )
    assert destination_text("D1", None, is_dm=True) == (
        "One PDF with each invoice and its PDF attachments, posted in our direct messages "
        "(Messages tab of this app)."
    )


def test_a_digest_that_cannot_post_speaks_of_its_schedule() -> None:
    assert digest_fallback_note("C9", "is_archived") == (
        "Your weekly digest is scheduled for <#C9>, but I couldn't post there: <#C9> is "
        "archived. So I'm sending it to you here instead; `/compile-backups schedules` pauses "
        "or deletes it."
    )


def test_the_unknown_user_reads_three_lines() -> None:
    lines = unknown_user_text("x@y.example", ["U9"]).split("\n")
    assert lines == [
        "I don't know you yet: nobody in a project's Directory has the e-mail of your Slack "
        "profile, x@y.example.",
        "Ask a project admin or this bot's owners (<@U9>) to add you to the project with that "
        "address, or to link your Slack account (`/compile-backups access`).",
        "Compiling backups needs *Admin* on a project's Commitments tool.",
    ]
    assert len(unknown_user_text(None, []).split("\n")) == 3


# --- the lost-access notice, App Home ------------------------------------------------------------


def test_the_lost_access_notice_is_plain_and_offers_resume() -> None:
    notice = notice_message("I paused it: you need *Admin*.", resume_schedule_id=7)
    assert notice.text == "I paused it: you need Admin."
    [actions] = [block for block in notice.blocks if block["type"] == "actions"]
    [button] = actions["elements"]
    assert (button["text"]["text"], button["action_id"], button["value"]) == (
        "Resume",
        "schedule_resume",
        "7",
    )


PM_PROJECT = HomeProject("Riverside (2026-014)", "admin", "Commitments", True, True)
VIEWER_PROJECT = HomeProject("Riverside (2026-014)", "read_only", "Commitments", False, False)


def test_home_offers_the_compile_button_only_to_who_may_compile() -> None:
    home = home_view(HomeData("pm@example.com", projects=(PM_PROJECT,))).to_dict()
    text = json.dumps(home, ensure_ascii=False)
    assert "Press *Compile a backup*, choose a project and invoices" in text
    assert '"action_id": "home_compile"' in text
    assert "(or here)" not in text
    assert "None yet. *Compile a backup* (above) asks for one." in text
    assert "`/compile-backups schedule` sets one up (project admins)" in text

    viewer = json.dumps(home_view(HomeData("v@example.com", projects=(VIEWER_PROJECT,))).to_dict())
    assert "home_compile" not in viewer and "/compile-backups schedule`" not in viewer
    assert "A project admin can have a backup posted to a channel every week." in viewer


def test_a_home_backup_row_names_its_period_and_vendors() -> None:
    row = HomeBackup(
        "Riverside",
        "succeeded",
        datetime(2026, 11, 26, 9, 14, tzinfo=UTC),
        5,
        42,
        None,
        periods=("Oct 1–31, 2026",),
        vendors=("Acme Concrete", "Volt Electric Co.", "Polar Air", "Zed & Co"),
    )
    assert backup_line(row) == (
        ":white_check_mark: Done · *Riverside* · Oct 1–31, 2026: Acme Concrete, Volt Electric "
        "Co., Polar Air and 1 more · <!date^1795684440^{date_short_pretty} at {time}|"
        "2026-11-26 09:14 UTC> · 5 invoices, 42 pages"
    )


def test_invoices_no_longer_available_count_as_left_out() -> None:
    outcome = replace(result(ACME, VOLT), unavailable_count=1)
    assert outcome_phase(outcome) is Phase.DONE_WITH_WARNINGS
    reply = success_reply(outcome, "U1")
    assert reply.text.endswith("$13,345.50 due. 1 invoice left out (no longer available).")
    done = parent_message(JobHeadline(3, "Riverside", "U1", included=2), outcome_phase(outcome))
    assert done.text == (
        "Invoice backup of 2 of 3 invoices for Riverside, asked by <@U1>: done, 1 left out, "
        "see the thread"
    )


# --- the terminal (CLI) and a compile from the last sync ----------------------------------------

FILE = "File: Subcontractor invoice backup - Riverside - 2026-014.pdf"
ACME_LINE = "  - SC-001 · Acme Concrete · Application #3 · Oct 1–31, 2026 · $12,345.00 · 4 pages"
VOLT_LINE = "  - SC-002 · Volt Electric Co. · Application #2 · Oct 1–31, 2026 · $1,000.50 · 1 page"
POLAR_LINE = (
    "  - SC-010 Polar Air · Application #3, $18,400.00 for Oct 1–31, 2026: its billing period "
    "does not exist in the project. Billing period 11 (Oct 1–31, 2026) covers these dates."
)


def test_the_terminal_summary_for_one_invoice() -> None:
    assert result(ACME).summary_text().split("\n") == [
        "Compiled an invoice backup of 1 invoice for Riverside: 4 pages, 2.0 KB.",
        ACME_LINE,
        "Total current payment due: $12,345.00",
        FILE,
    ]


def test_the_terminal_summary_for_several_with_one_left_out() -> None:
    assert result(ACME, VOLT, missing=(POLAR_MISSING,)).summary_text().split("\n") == [
        "Compiled an invoice backup of 2 invoices for Riverside: 5 pages, 2.0 KB.",
        ACME_LINE,
        VOLT_LINE,
        "Total current payment due: $13,345.50",
        FILE,
        "Left out: 1 invoice whose billing period does not exist:",
        POLAR_LINE,
        "To include it, move the invoice to an existing billing period in Procore (Invoicing "
        "tool), or create the missing period there (Invoicing settings, billing periods), then "
        "compile again.",
    ]


def test_the_terminal_summary_when_all_are_left_out() -> None:
    lines = result(missing=(POLAR_MISSING, VOLT_MISSING)).summary_text().split("\n")
    assert lines == [
        "No invoice backup was produced for Riverside.",
        "Left out: 2 invoices whose billing periods do not exist:",
        POLAR_LINE,
        "  - SC-002 Volt Electric Co. · Application #4, $9.99 for Dec 1–31, 2026: its billing "
        "period does not exist in the project. No existing billing period covers these dates.",
        "To include them, move each invoice to an existing billing period in Procore (Invoicing "
        "tool), or create the missing period there (Invoicing settings, billing periods), then "
        "compile again.",
    ]
    assert "*" not in "\n".join(lines) and "`" not in "\n".join(lines)  # no Slack markup


def test_a_backup_from_the_last_sync_says_so_after_the_invoices() -> None:
    outcome = replace(
        result(ACME), data_as_of=datetime(2026, 11, 29, 12, 0, tzinfo=UTC), data_source="Procore"
    )
    note = (
        "Procore could not be reached: Procore data as of Nov 29, 2026 at 12:00 UTC "
        "(the last sync)."
    )
    reply = outcome_reply(outcome, "U1")
    assert reply.text == (
        "<@U1>, your invoice backup is ready: 1 invoice for Riverside, 4 pages (2.0 KB), "
        f"$12,345.00 due.\n:warning: {note}"
    )
    assert texts(reply.blocks)[1:] == [
        "• SC-001 · Acme Concrete · Application #3 · Oct 1–31, 2026 · $12,345.00 · 4 pages",
        "*Total current payment due: $12,345.00*",
        f":warning: {note}",
    ]
    assert outcome.summary_text().split("\n")[-1] == note
    nothing = outcome_reply(
        replace(
            result(missing=(POLAR_MISSING,)),
            **{"data_as_of": outcome.data_as_of, "data_source": "Procore"},
        ),
        "U1",
    )
    assert nothing.text == (
        "<@U1>, no backup was produced: none of the selected invoices could be compiled.\n"
        f":warning: {note}"
    )
