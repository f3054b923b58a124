"""The pure Block Kit builders, without a server: slack_sdk's models validate every limit."""

from __future__ import annotations

import json

import pytest
from slack_sdk.models.views import View

from bot.blocks.home import HomeData, home_view
from bot.blocks.messages import (
    Failure,
    JobHeadline,
    Phase,
    failure_reply,
    fallback_note,
    help_message,
    nothing_compiled_reply,
    outcome_phase,
    parent_message,
    success_reply,
    unknown_user_message,
)
from bot.blocks.modal import (
    ModalMetadata,
    compile_modal,
    read_selection,
    selection_errors,
    unavailable_error,
)
from bot.blocks.options import MORE_MATCHES_VALUE, invoice_option_groups
from bot.blocks.text import chunk_lines, escape
from commands.access import InvoiceMenu, InvoiceOption, ProjectChoice
from commands.compile_backups import AttachmentNote as LeftOutAttachment
from commands.compile_backups import CompileResult, TieOutNote
from commands.compile_backups import MissingPeriod as LeftOutInvoice

RIVERSIDE = ProjectChoice(1001, "Riverside Medical Office Building", "2026-014")
LONG_NAME = ProjectChoice(7, "A" * 120, "NUMBER-" + "9" * 30)


def modal_dict(**overrides: object) -> dict:
    values: dict = {
        "projects": [RIVERSIDE, LONG_NAME],
        "selected": RIVERSIDE,
        "metadata": ModalMetadata("C1", "U1"),
        "max_invoices": 100,
    }
    values.update(overrides)
    view: View = compile_modal(
        values["projects"], values["selected"], values["metadata"], max_invoices=100
    )
    return view.to_dict()  # validates against Block Kit limits


def test_the_modal_validates_and_carries_channel_requester_and_project() -> None:
    view = modal_dict()
    assert view["type"] == "modal" and view["callback_id"] == "compile_backups"
    assert ModalMetadata.parse(view["private_metadata"]) == ModalMetadata("C1", "U1", 1001)
    project, invoices = view["blocks"][1], view["blocks"][2]
    assert project["dispatch_action"] is True
    assert project["element"]["initial_option"]["value"] == "1001"
    assert all(len(o["text"]["text"]) <= 75 for o in project["element"]["options"])
    assert invoices["block_id"] == "invoices-1001"
    assert invoices["element"]["type"] == "multi_external_select"
    assert invoices["element"]["min_query_length"] == 0
    assert invoices["element"]["max_selected_items"] == 100


def test_without_a_chosen_project_the_invoice_field_asks_to_choose_one_first() -> None:
    view = modal_dict(selected=None)
    assert "initial_option" not in view["blocks"][1]["element"]
    assert view["blocks"][2]["block_id"] == "invoices-none"
    assert "Choose a project first" in view["blocks"][2]["hint"]["text"]


def test_more_than_100_projects_are_cut_keeping_the_selected_one() -> None:
    projects = [ProjectChoice(i, f"Project {i}", f"P-{i}") for i in range(1, 151)]
    view = compile_modal(projects, projects[140], ModalMetadata("C", "U"), max_invoices=100)
    options = view.to_dict()["blocks"][1]["element"]["options"]
    assert len(options) == 100 and options[-1]["value"] == "141"


def test_a_modal_needs_a_project() -> None:
    with pytest.raises(ValueError):
        compile_modal([], None, ModalMetadata("C", "U"), max_invoices=100)


def test_metadata_that_is_not_ours_is_refused() -> None:
    for raw in ("", "{}", "[1]", '{"c": "C"}', "not json"):
        with pytest.raises(ValueError):
            ModalMetadata.parse(raw)


def submitted(project: str | None, invoices: list[str]) -> dict:
    selected = {"value": project, "text": {"type": "plain_text", "text": "P"}} if project else None
    return {
        "private_metadata": ModalMetadata("C", "U", None).dump(),
        "state": {
            "values": {
                "project": {"project_select": {"selected_option": selected}},
                f"invoices-{project}": {
                    "invoice_select": {"selected_options": [{"value": v} for v in invoices]}
                },
            }
        },
    }


def test_reading_a_submission_and_its_errors() -> None:
    selection = read_selection(submitted("1001", ["5", "3", "5"]))
    assert selection.project_id == 1001 and selection.invoice_ids == (5, 3)
    assert selection_errors(selection, 100) == {}
    for forged in ("x", "-1", "0", str(2**63), "٣"):  # not a positive 64-bit id: said so
        wrong = read_selection(submitted("1001", ["5", forged]))
        assert wrong.invoice_ids == (5,) and wrong.invalid_choices == 1
        assert "not valid choices" in selection_errors(wrong, 100)["invoices-1001"]
    assert read_selection(submitted(str(2**64), ["5"])).project_id is None
    empty = read_selection(submitted("1001", []))
    assert selection_errors(empty, 100) == {"invoices-1001": "Choose at least one invoice."}
    crowded = read_selection(submitted("1001", [str(n) for n in range(3)]))
    assert "at most 2 invoices" in selection_errors(crowded, 2)["invoices-1001"]
    assert selection_errors(read_selection(submitted(None, ["1"])), 100) == {
        "project": "Choose a project."
    }


def test_unavailable_invoices_are_counted_never_named() -> None:
    assert unavailable_error(2, 5) == (
        "2 of the selected invoices are no longer available. Remove them and submit again."
    )
    assert unavailable_error(1, 5).startswith("1 of the selected invoices is no longer")
    assert unavailable_error(1, 1) == (
        "The selected invoice is no longer available. Choose another one."
    )
    assert unavailable_error(3, 3).startswith("None of the 3 selected invoices")


def test_options_are_grouped_by_billing_period_in_order_and_fit_the_limits() -> None:
    options = [
        InvoiceOption(1, "#1 · SC-001 Acme · Nov 2026 · $1.00 · Approved", "Billing period 4"),
        InvoiceOption(2, "#2 · SC-002 " + "V" * 90, "Billing period 4"),
        InvoiceOption(3, "#1 · SC-001 Acme · Oct 2026", "Billing period 3 " + "x" * 80),
        InvoiceOption(4, "#3 · SC-010 Polar", "No billing period"),
    ] + [InvoiceOption(100 + n, f"#{n}", "Billing period 1") for n in range(200)]
    groups = invoice_option_groups(options)
    assert [g["label"]["text"][:17] for g in groups] == [
        "Billing period 4",
        "Billing period 3 ",
        "No billing period",
        "Billing period 1",
    ]
    assert sum(len(g["options"]) for g in groups) == 100
    assert all(len(g["label"]["text"]) <= 75 for g in groups)
    assert all(len(o["text"]["text"]) <= 75 for g in groups for o in g["options"])
    assert groups[0]["options"][1]["value"] == "2"


def test_a_full_menu_closes_with_how_many_more_match() -> None:
    options = [InvoiceOption(n, f"#{n}", "Billing period 1") for n in range(1, 150)]
    groups = invoice_option_groups(InvoiceMenu(options, more=1234, more_at_least=True))
    assert sum(len(g["options"]) for g in groups) == 100
    assert [g["label"]["text"] for g in groups] == ["Billing period 1", "More matches"]
    (closing,) = groups[-1]["options"]
    assert closing["text"]["text"] == "1,234+ more match: type more to narrow the list"
    assert closing["value"] == MORE_MATCHES_VALUE
    chosen = read_selection(submitted("1001", ["5", MORE_MATCHES_VALUE]))
    assert chosen.invoice_ids == (5,)


def outcome(**overrides: object) -> CompileResult:
    values: dict = {
        "status": "succeeded",
        "backup_id": 7,
        "pdf_path": None,
        "project_name": "Riverside <North> & Co",
        "file_name": "Subcontractor invoice backup - Riverside - 2026-014 - 2026-11-25 - 0930.pdf",
        "invoice_count": 5,
        "page_count": 42,
        "byte_size": 3 * 1024 * 1024,
        "missing_periods": (),
        "left_out_attachments": (),
        "unavailable_count": 0,
    }
    values.update(overrides)
    return CompileResult(**values)


def test_the_parent_message_follows_the_job() -> None:
    headline = JobHeadline(5, "Project <X>", "U123")
    queued = parent_message(headline, Phase.QUEUED)
    assert queued.text.startswith(
        "Compiling an invoice backup of 5 invoices for Project &lt;X&gt;, asked by <@U123>"
    )
    assert "Queued" in queued.text
    running = parent_message(headline, Phase.RUNNING, "invoice 3 of 5: SC-010 Polar Air")
    assert "Invoice 3 of 5: SC-010 Polar Air" in json.dumps(running.blocks, ensure_ascii=False)
    one = parent_message(JobHeadline(1, "P", "U", included=1), Phase.DONE, note="in a DM because…")
    assert "of 1 invoice for" in one.text and "in a DM because" in json.dumps(
        one.blocks, ensure_ascii=False
    )


def test_the_dm_fallback_says_why() -> None:
    assert "not a member of <#C9>" in fallback_note("C9", "not_in_channel")
    assert "/invite" in fallback_note("C9", "not_in_channel")
    assert "direct message" in fallback_note("D9", "channel_not_found")
    assert "archived" in fallback_note("C9", "is_archived")


def test_success_reply_lists_what_was_left_out() -> None:
    reply = success_reply(
        outcome(
            missing_periods=(LeftOutInvoice("SC-010 Polar · Application #3", 599),),
            left_out_attachments=(LeftOutAttachment("SC-001 · #2", "photo.jpg", "not a PDF"),),
            unavailable_count=2,
        )
    )
    text = json.dumps(reply.blocks, ensure_ascii=False)
    assert "5 invoices for Riverside &lt;North&gt; &amp; Co, 42 pages (3.0 MB)" in reply.text
    assert "SC-010 Polar · Application #3: its billing period does not exist" in text
    assert "599" not in text  # never the internal id
    assert "move the invoice to an existing billing period" in text  # the use case's fix hint
    assert "photo.jpg (not a PDF)" in text
    assert "2 selected invoices are no longer available" in text
    assert outcome_phase(outcome()) is Phase.DONE


FINDING = (
    "G702 line 8 (current payment due): $67,500.00 shown, line 6 - line 7 = $65,700.00 "
    "(difference $1,800.00)"
)


def test_success_reply_says_which_invoices_do_not_tie_out() -> None:
    notes = (
        TieOutNote("SC-001 Acme · Application #3", (FINDING,)),
        TieOutNote("SC-010 Polar <Air> · Application #1", ("G703 row 2, column I: …", "x")),
    )
    reply = success_reply(outcome(tie_out=notes))
    assert reply.text == (
        "Your invoice backup is ready: 5 invoices for Riverside &lt;North&gt; &amp; Co, 42 pages "
        "(3.0 MB). 2 invoices do not tie out: SC-001 Acme · Application #3, "
        "SC-010 Polar &lt;Air&gt; · Application #1."
    )
    text = json.dumps(reply.blocks, ensure_ascii=False)
    assert "*2 invoices do not tie out* (see Checks on the cover page" in text
    assert f"• SC-001 Acme · Application #3: {FINDING}" in text
    assert "• SC-010 Polar &lt;Air&gt; · Application #1: x" in text
    assert outcome_phase(outcome(tie_out=notes)) is Phase.DONE  # included: only flagged

    one = success_reply(outcome(tie_out=notes[:1]))
    assert "1 invoice does not tie out: SC-001 Acme · Application #3." in one.text


def test_replies_name_invoices_left_out_because_they_do_not_tie_out() -> None:
    stopped = (TieOutNote("SC-001 Acme · Application #3", (FINDING,), left_out=True),)
    reply = success_reply(outcome(tie_out=stopped))
    text = json.dumps(reply.blocks, ensure_ascii=False)
    assert "1 invoice left out (numbers do not tie out)." in reply.text
    assert "do not tie out:" not in reply.text
    assert "*1 invoice left out: its numbers do not tie out*" in text
    assert f"SC-001 Acme · Application #3: {FINDING}" in text
    assert "correct the invoice in Procore" in text
    assert outcome_phase(outcome(tie_out=stopped)) is Phase.DONE_WITH_WARNINGS

    nothing = nothing_compiled_reply(
        outcome(status="nothing_to_compile", file_name=None, tie_out=stopped)
    )
    assert f"SC-001 Acme · Application #3: {FINDING}" in json.dumps(
        nothing.blocks, ensure_ascii=False
    )


def test_huge_lists_stay_within_message_limits() -> None:
    many = tuple(LeftOutInvoice(f"SC-{n:03} Vendor " + "v" * 60, n) for n in range(500))
    attachments = tuple(LeftOutAttachment(f"SC-{n}", f"f{n}.png", "not a PDF") for n in range(500))
    tie_out = tuple(TieOutNote(f"SC-{n}", ("G702 line 3 " + "x" * 200,) * 3) for n in range(500))
    reply = success_reply(
        outcome(missing_periods=many, left_out_attachments=attachments, tie_out=tie_out)
    )
    assert len(reply.blocks) <= 50
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in reply.blocks)
    assert "…and 460 more." in json.dumps(reply.blocks, ensure_ascii=False)


def test_nothing_compiled_reply_has_only_the_warning() -> None:
    result = outcome(
        status="nothing_to_compile",
        file_name=None,
        invoice_count=0,
        missing_periods=(LeftOutInvoice("SC-010 · #3", 599),),
    )
    reply = nothing_compiled_reply(result)
    assert reply.text.startswith("No backup was produced")
    assert "SC-010 · #3: its billing period does not exist" in json.dumps(
        reply.blocks, ensure_ascii=False
    )
    assert outcome_phase(result) is Phase.NOTHING_COMPILED


@pytest.mark.parametrize("failure", list(Failure))
def test_every_failure_says_what_to_do(failure: Failure) -> None:
    detail = (
        "You need *Admin* on the Commitments tool. Ask Dana."
        if (failure is Failure.ACCESS_DENIED)
        else "HTTP 403"
    )
    reply = failure_reply(failure, 12, detail)
    assert reply.blocks and reply.text
    if failure is not Failure.ACCESS_DENIED:
        assert "/compile-backups" in reply.text


def test_help_and_refusals() -> None:
    assert "/compile-backups help" in help_message().text
    assert "Subcontracts tool" in help_message(tool="Subcontracts").text
    refusal = unknown_user_message(None, [])
    assert "Admin" in refusal.text and "Commitments" in refusal.text
    assert "e-mail" in refusal.text


def test_the_home_tab_validates() -> None:
    assert home_view(HomeData(email=None)).to_dict()["type"] == "home"


def test_outcome_survives_json() -> None:
    original = outcome(
        missing_periods=(LeftOutInvoice("a", 1),),
        left_out_attachments=(LeftOutAttachment("b", "c", "d"),),
    )
    assert CompileResult.from_json(json.loads(json.dumps(original.to_json()))) == original


def test_text_helpers() -> None:
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"
    chunks = chunk_lines(["x" * 2000, "y" * 2000, "z" * 5000])
    assert [len(chunk) for chunk in chunks] == [2000, 2000, 3000]
