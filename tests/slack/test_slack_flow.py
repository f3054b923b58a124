"""End to end over real HTTP: signed Slack requests → the bot → the fake Slack Web API.

Demo project invoices (commands.demo): SC-001 Acme Concrete #1–#3 (9001–9003), SC-002 Volt
Electric #1–#2 (9011, 9012; #2 DocuSign-signed), SC-010 Polar Air #1–#3 (9021–9023; #3 points
to billing period 599, which does not exist).
"""

from __future__ import annotations

import asyncio
import io
import re

import aiohttp
import pytest
from pypdf import PdfReader
from tortoise.exceptions import DBConnectionError

from bot.server import BotServer
from storage import jobs
from storage.jobs import Job, JobStatus
from storage.slack_deliveries import delivery_of
from tests.slack.conftest import (
    DEMO_PROJECT,
    PM,
    SIGNING_SECRET,
    bot_settings,
    finished_jobs,
    offered_options,
    request_backup,
    whole_period_options,
)
from tests.slack.fake_slack import TEAM_ID, FakeSlack
from tests.slack.slack_driver import SlackDriver

MISSING_PERIOD_INVOICE = 9023


def outline_titles(reader: PdfReader) -> list[str]:
    """Top-level bookmark titles."""
    return [item.title for item in reader.outline if not isinstance(item, list)]


async def test_happy_path_from_command_to_pdf_in_the_thread(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    command = await slack.command(PM)
    assert command.status == 200 and command.text == ""  # acked at once, nothing shown
    await fake_slack.wait_for(lambda: fake_slack.calls_to("views.open"))
    view = slack.current_view(list(fake_slack.views)[-1])
    assert view["callback_id"] == "compile_backups"

    offered = await offered_options(slack, PM, view)
    assert set(offered) == {9001, 9002, 9003, 9011, 9012, 9021, 9022, 9023}
    assert all(len(option["text"]["text"]) <= 75 for option in offered.values())
    # chosen out of order: the PDF follows contract number, then application number
    chosen_ids = [9021, 9002, 9011]
    answer = await slack.submit(PM, view, DEMO_PROJECT, [offered[i] for i in chosen_ids])
    assert answer.status == 200 and answer.text == ""  # modal closes

    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    steps = await delivery_of(job)
    assert steps.parent_ts and steps.file_id and steps.final_reply_ts and job.attempts == 1

    [parent] = fake_slack.top_level_messages()
    assert parent.channel == "C_JOBSITE"
    assert parent.text == (
        "Invoice backup of 3 invoices for Riverside Medical Office Building (2026-014), "
        "asked by <@U0PM>: done, the PDF is in the thread"
    )
    history = [version["text"] for version in parent.versions] + [parent.text]
    assert history[0] == (
        "Compiling an invoice backup of 3 invoices for Riverside Medical Office Building "
        "(2026-014), asked by <@U0PM>: Queued"
    )
    assert any("Uploading" in text for text in history)
    assert all(re.search(r"\d/\d", text) is None for text in history)  # never "0/1"

    [upload] = fake_slack.files_in_thread(parent.channel, parent.ts)
    assert re.fullmatch(
        r"Subcontractor invoice backup - Riverside Medical Office Building - 2026-014 - "
        r"\d{4}-\d{2}-\d{2} - \d{4}\.pdf",
        upload.filename,
    )
    reader = PdfReader(io.BytesIO(upload.data or b""))
    assert len(reader.pages) > 1 + len(chosen_ids)  # cover, then every invoice's pages
    assert outline_titles(reader) == [
        "Cover",
        "SC-001 Acme Concrete · Application #2",
        "SC-002 Volt Electric Co. · Application #1",
        "SC-010 Polar Air Mechanical · Application #1",
    ]

    [reply] = fake_slack.replies(parent.channel, parent.ts)
    assert reply.text.startswith(
        "<@U0PM>, your invoice backup is ready: 3 invoices for Riverside Medical Office Building, "
        f"{len(reader.pages)} pages ("
    ) and reply.text.endswith("), $148,435.00 due.")
    assert reply.blocks[1]["text"]["text"] == (
        "• SC-001 · Acme Concrete · Application #2 · Sep 1–30, 2026 · $65,700.00 · 6 pages\n"
        "• SC-002 · Volt Electric Co. · Application #1 · Sep 1–30, 2026 · $39,410.00 · 3 pages\n"
        "• SC-010 · Polar Air Mechanical · Application #1 · Oct 1–31, 2026 · $43,325.00 · 5 pages"
    )
    assert "*Total current payment due: $148,435.00*" in reply.all_text
    assert upload.filename not in reply.all_text  # the file card already shows it
    methods = [call.method for call in fake_slack.api_calls()]
    assert methods.index("files.completeUploadExternal") < len(methods) - 1 - methods[::-1].index(
        "chat.postMessage"
    )  # the file is in the thread before the reply
    assert len(fake_slack.calls_to("users.info")) == 1  # identity cached
    assert len(fake_slack.calls_to("auth.test")) == 1  # Bolt checks the token once


async def test_missing_billing_period_is_left_out_and_explained(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    await request_backup(slack, PM, [9022, MISSING_PERIOD_INVOICE])
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    [parent] = fake_slack.top_level_messages()
    [upload] = fake_slack.files_in_thread(parent.channel, parent.ts)
    reader = PdfReader(io.BytesIO(upload.data or b""))
    assert outline_titles(reader) == ["Cover", "SC-010 Polar Air Mechanical · Application #2"]
    [reply] = fake_slack.replies(parent.channel, parent.ts)
    assert "1 invoice left out" in reply.all_text
    assert (
        "SC-010 Polar Air Mechanical · Application #3, $51,187.50 for Nov 1–30, 2026: its billing "
        "period does not exist in the project. Billing period 4 (Nov 1–30, 2026) covers these "
        "dates."
    ) in reply.all_text
    assert "599" not in reply.all_text
    assert "move the invoice to an existing billing period" in reply.all_text
    assert parent.text == (
        "Invoice backup of 1 of 2 invoices for Riverside Medical Office Building (2026-014), "
        "asked by <@U0PM>: done, 1 left out, see the thread"
    )


async def test_nothing_compilable_posts_only_the_warning(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    await request_backup(slack, PM, [MISSING_PERIOD_INVOICE])
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED and (await delivery_of(job)).file_id is None
    assert not fake_slack.calls_to("files.getUploadURLExternal")
    assert not fake_slack.uploads
    [parent] = fake_slack.top_level_messages()
    [reply] = fake_slack.replies(parent.channel, parent.ts)
    assert reply.text == (
        "<@U0PM>, no backup was produced: none of the selected invoices could be compiled."
    )
    assert "its billing period does not exist in the project" in reply.all_text
    assert parent.text == (
        "Invoice backup of 1 invoice for Riverside Medical Office Building (2026-014), "
        "asked by <@U0PM>: nothing compiled, the invoice was left out, see the thread"
    )


async def test_the_same_submission_twice_makes_one_job(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    view = await slack.open_modal(PM)
    offered = await offered_options(slack, PM, view)
    payload = slack.submission(PM, view, DEMO_PROJECT, [offered[9001]])
    answers = await asyncio.gather(*(slack.interaction(payload) for _ in range(3)))
    assert [answer.status for answer in answers] == [200, 200, 200]
    await finished_jobs(1)
    late_retry = await slack.interaction(payload)  # a retry arriving after the job ended
    assert late_retry.status == 200
    # The submission enqueues before it acks: its answer means the queue already said no, and
    # nothing is left for the worker's next poll to claim.
    assert await Job.all().count() == 1
    assert await jobs.claim_next("another-worker", 30) is None
    assert len(fake_slack.top_level_messages()) == 1
    assert len([upload for upload in fake_slack.uploads.values() if upload.completed]) == 1


async def test_rate_limited_post_is_retried_and_posted_once(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.rate_limit("chat.postMessage", retry_after=1)
    await request_backup(slack, PM, [9001])
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    statuses = [call.status for call in fake_slack.calls_to("chat.postMessage")]
    assert statuses[:2] == [429, 200]
    assert len(fake_slack.top_level_messages()) == 1
    [parent] = fake_slack.top_level_messages()
    assert len(fake_slack.replies(parent.channel, parent.ts)) == 1


async def test_refused_upload_fails_the_job_clearly_and_the_bot_carries_on(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.refuse_uploads(status=403)
    await request_backup(slack, PM, [9001])
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.FAILED and "upload" in (job.error or "")
    [parent] = fake_slack.top_level_messages()
    [reply] = fake_slack.replies(parent.channel, parent.ts)
    assert "Slack refused the upload" in reply.text and "HTTP 403" in reply.text
    assert "/compile-backups" in reply.text  # what to do
    assert ": failed, see the thread for what to do" in parent.text

    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as health:
        assert health.status == 200
        assert (await health.json())["status"] == "ok"

    fake_slack.accept_uploads()
    await request_backup(slack, PM, [9002])
    jobs = await finished_jobs(2)
    assert jobs[1].status == JobStatus.SUCCEEDED, jobs[1].error
    second_parent = fake_slack.top_level_messages()[1]
    assert len(fake_slack.files_in_thread(second_parent.channel, second_parent.ts)) == 1


@pytest.mark.expected_traceback
async def test_unexpected_error_is_reported_and_the_job_marked_failed(
    fake_slack: FakeSlack, demo_project: int, database: str
) -> None:
    async def broken_compile(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    server = BotServer(
        bot_settings(fake_slack),
        compile_function=broken_compile,  # type: ignore[arg-type]
        worker_options={"poll_seconds": 0.2},
    )
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            slack = SlackDriver(session, server.url, SIGNING_SECRET, fake_slack)
            await request_backup(slack, PM, [9001])
            [job] = await finished_jobs(1)
            assert job.status == JobStatus.FAILED and "boom" in (job.error or "")
            [parent] = fake_slack.top_level_messages()
            [reply] = fake_slack.replies(parent.channel, parent.ts)
            assert "Something went wrong" in reply.text and f"job {job.id}" in reply.text
            async with session.get(f"{server.url}/healthz") as health:
                assert health.status == 200
    finally:
        await server.stop()


async def test_bot_not_in_channel_falls_back_to_a_dm_saying_why(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.deny_channel("C_SECRET", "not_in_channel")
    await request_backup(slack, PM, [9001], channel_id="C_SECRET")
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert fake_slack.calls_to("conversations.open")
    [parent] = fake_slack.top_level_messages()
    assert parent.channel == f"D{PM}" == (await delivery_of(job)).parent_channel
    assert "I'm not a member of <#C_SECRET>" in parent.all_text
    assert "/invite" in parent.all_text
    assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1
    assert len(fake_slack.replies(parent.channel, parent.ts)) == 1


async def test_unreachable_conversation_falls_back_to_a_dm(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.deny_channel("G_PRIVATE", "channel_not_found")
    await request_backup(slack, PM, [9001], channel_id="G_PRIVATE")
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    [parent] = fake_slack.top_level_messages()
    assert parent.channel == f"D{PM}"
    assert "can't see that conversation" in parent.all_text


async def test_slack_server_errors_are_retried(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.server_error("files.getUploadURLExternal", status=503)
    fake_slack.server_error("chat.update", status=500)
    await request_backup(slack, PM, [9001])
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    statuses = [call.status for call in fake_slack.calls_to("files.getUploadURLExternal")]
    assert statuses == [503, 200]
    [parent] = fake_slack.top_level_messages()
    assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1
    assert ": done, " in parent.text


async def test_a_database_failure_during_the_job_is_explained(
    fake_slack: FakeSlack, demo_project: int
) -> None:
    async def database_gone(*args: object, **kwargs: object) -> object:
        raise DBConnectionError("connection refused")

    server = BotServer(
        bot_settings(fake_slack),
        compile_function=database_gone,  # type: ignore[arg-type]
        # The database answers while the job keeps failing: it is given up after the patience.
        worker_options={"poll_seconds": 0.2, "database_patience": 0.5},
    )
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            slack = SlackDriver(session, server.url, SIGNING_SECRET, fake_slack)
            await request_backup(slack, PM, [9001])
            [job] = await finished_jobs(1)
    finally:
        await server.stop()
    assert job.status == JobStatus.FAILED and (job.error or "").startswith("database")
    [parent] = fake_slack.top_level_messages()
    [reply] = fake_slack.replies(parent.channel, parent.ts)
    assert "the database is unavailable" in reply.text and "in a few minutes" in reply.text


# --- where the PDF will go, said in the modal; the Home tab's button ---------------------------


def modal_context(view: dict) -> str:
    return view["blocks"][0]["elements"][0]["text"]


async def test_the_modal_says_where_the_pdf_goes_before_submitting(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    view = await slack.open_modal(PM)
    assert modal_context(view) == (
        "One PDF with each invoice and its PDF attachments, posted in a thread in <#C_JOBSITE>."
    )
    fake_slack.deny_channel("C_JOBSITE")
    denied = await slack.open_modal(PM)
    assert modal_context(denied) == (
        "One PDF with each invoice and its PDF attachments. It will come to you by direct "
        "message: I'm not a member of <#C_JOBSITE>. Invite me there with `/invite @Invoice "
        "Backups` to get backups in the channel."
    )


def home_button_click(trigger_id: str | None) -> dict:
    """A click on the Home tab's *Compile a backup* button (``trigger_id`` None: without one)."""
    click = {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": PM},
        "api_app_id": "A0001",
        "container": {"type": "view", "view_id": "V_HOME"},
        "actions": [
            {
                "type": "button",
                "block_id": "home",
                "action_id": "home_compile",
                "value": "compile",
                "action_ts": "1.0",
            }
        ],
    }
    return click if trigger_id is None else {**click, "trigger_id": trigger_id}


async def test_the_home_buttons_modal_sends_the_pdf_by_dm(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    before = len(fake_slack.calls_to("views.open"))
    answer = await slack.interaction(home_button_click("trigger.home"))
    assert answer.status == 200
    await fake_slack.wait_for(lambda: len(fake_slack.calls_to("views.open")) > before)
    view = slack.current_view(list(fake_slack.views)[-1])
    assert view["callback_id"] == "compile_backups"
    assert modal_context(view) == (
        "One PDF with each invoice and its PDF attachments, posted in our direct messages "
        "(Messages tab of this app)."
    )
    offered = await offered_options(slack, PM, view)
    await slack.submit(PM, view, DEMO_PROJECT, [offered[9001]])
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    [parent] = fake_slack.top_level_messages()
    assert parent.channel == f"D{PM}" and (await delivery_of(job)).delivery_note is None


async def test_a_home_button_click_without_a_trigger_is_refused_before_anything_opens(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    before = len(fake_slack.calls_to("views.open"))
    answer = await slack.interaction(home_button_click(None))
    assert answer.status == 400
    assert len(fake_slack.calls_to("views.open")) == before
    assert not fake_slack.calls_to("conversations.open")


async def test_a_whole_billing_period_is_one_choice(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    view = await slack.open_modal(PM)
    answer = await slack.load_options(PM, view, DEMO_PROJECT)
    groups = {group["label"]["text"]: group["options"] for group in answer.json()["option_groups"]}
    october = [option["text"]["text"] for option in groups["Billing period 3 (Oct 1–31, 2026)"]]
    assert october[0] == "All 3 invoices of Oct 1–31, 2026" and len(october) == 4
    november = groups["Billing period 4 (Nov 1–30, 2026)"]
    assert [option["value"] for option in november] == ["9022"]  # one invoice: no "All" option
    assert "No billing period: left out if picked (fix in Procore first)" in groups

    wholes = await whole_period_options(slack, PM, view)
    offered = await offered_options(slack, PM, view)
    chosen = [wholes["All 3 invoices of Oct 1–31, 2026"], offered[9001], offered[9003]]
    await slack.submit(PM, view, DEMO_PROJECT, chosen)
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert sorted(job.payload["invoice_ids"]) == [9001, 9003, 9012, 9021]
    [parent] = fake_slack.top_level_messages()
    assert parent.text.startswith("Invoice backup of 4 invoices for Riverside")
