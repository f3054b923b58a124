"""Who gets in: request signatures, users without permission, invoices a user may not see."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.server import BotServer
from commands.import_bundle import import_bundle
from storage.blobs import LocalBlobStore
from storage.jobs import Job
from tests.slack.conftest import (
    DEMO_PROJECT,
    PM,
    SIGNING_SECRET,
    STRANGER,
    VIEWER,
    bot_settings,
    offered_options,
)
from tests.slack.fake_slack import FakeSlack
from tests.slack.sealing import reseal
from tests.slack.slack_driver import SlackDriver, slack_signature

ANA = "U0ANA"  # ana@acmeconcrete.example: invoice contact of SC-001 (Acme Concrete)


@pytest.mark.parametrize(
    "forgery",
    ["wrong secret", "tampered body", "stale timestamp", "future timestamp", "no signature"],
)
async def test_forged_or_stale_requests_get_401_and_nothing_happens(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, forgery: str
) -> None:
    body = slack.command_body(PM)
    now = int(time.time())
    if forgery == "wrong secret":
        answer = await slack.send(body, signature=slack_signature("not-the-secret", str(now), body))
    elif forgery == "tampered body":
        signature = slack_signature(SIGNING_SECRET, str(now), body)
        answer = await slack.send(body.replace("text=", "text=help"), signature=signature)
    elif forgery == "stale timestamp":
        answer = await slack.send(body, timestamp=now - 6 * 60)  # correctly signed, too old
    elif forgery == "future timestamp":
        answer = await slack.send(body, timestamp=now + 6 * 60)
    else:
        answer = await slack.send(body, signature="")
    assert answer.status == 401
    payload = {
        "type": "view_submission",
        "user": {"id": PM},
        "view": {"id": "V1", "hash": "h", "callback_id": "compile_backups", "state": {}},
    }
    interaction = urlencode({"payload": json.dumps(payload)})
    forged = await slack.send(interaction, timestamp=now - 600)
    assert forged.status == 401
    assert await Job.all().count() == 0
    # The same command, signed: once its modal is open, whatever a forged request had started
    # would have shown up too. Only the signed one did anything (Bolt's first auth.test is its).
    assert (await slack.send(body)).status == 200
    await fake_slack.wait_for(lambda: fake_slack.calls_to("views.open"))
    assert [call.method for call in fake_slack.calls] == [
        "auth.test",
        "users.info",
        "conversations.info",  # where the PDF will go, said in the form
        "views.open",
    ]


async def test_a_signed_request_minutes_old_is_still_accepted(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    # Four minutes old when sent: accepted however long a busy machine takes to check it, up to a
    # minute (the five-minute edge itself: test_the_signature_window_is_five_minutes_each_way).
    answer = await slack.send(slack.command_body(PM, "help"), timestamp=int(time.time()) - 240)
    assert answer.status == 200


@pytest.mark.parametrize("user_id", [VIEWER, STRANGER])
async def test_a_user_who_may_not_compile_is_told_which_permission_and_whom_to_ask(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, user_id: str
) -> None:
    answer = await slack.command(user_id)
    assert answer.status == 200 and answer.text == ""
    [ephemeral] = await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    assert ephemeral["response_type"] == "ephemeral"
    text = ephemeral["text"] + json.dumps(ephemeral.get("blocks"))
    assert "Admin" in text and "Commitments" in text and "Ask" in text
    assert not fake_slack.calls_to("views.open")


async def test_a_crafted_submission_from_a_user_without_permission_is_refused(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    view = await slack.open_modal(PM)  # the PM's modal, replayed by the viewer
    offered = await offered_options(slack, PM, view)
    answer = await slack.submit(VIEWER, view, DEMO_PROJECT, [offered[9001]])
    assert answer.status == 200
    body = answer.json()
    assert body["response_action"] == "errors"
    assert "couldn't verify this form" in body["errors"]["project"]  # sealed for the PM
    # even with metadata sealed for the viewer, the permission check refuses
    resealed = {**view, "private_metadata": reseal(view["private_metadata"], PM, VIEWER)}
    answer = await slack.submit(VIEWER, resealed, DEMO_PROJECT, [offered[9001]])
    body = answer.json()
    assert body["response_action"] == "errors"
    assert "Admin" in body["errors"]["project"] and "Commitments" in body["errors"]["project"]
    assert await Job.all().count() == 0
    viewer_options = await slack.load_options(VIEWER, view, DEMO_PROJECT)
    assert viewer_options.json() == {"options": []}


@pytest.fixture
async def contacts_may_compile(
    database: str, data_dir: Path, tmp_path: Path, demo_bundle: Path
) -> int:
    """The demo project with "invoice contacts may compile" switched on."""
    bundle = shutil.copytree(demo_bundle, tmp_path / "bundle")
    project = json.loads((bundle / "project.json").read_text())
    project["settings"]["invoice_contacts_may_compile"] = True
    (bundle / "project.json").write_text(json.dumps(project))
    await import_bundle(bundle, LocalBlobStore(data_dir))
    return DEMO_PROJECT


async def test_an_invoice_contact_is_offered_only_their_invoices_and_hidden_ones_stay_hidden(
    fake_slack: FakeSlack, contacts_may_compile: int
) -> None:
    fake_slack.add_user(ANA, "ana@acmeconcrete.example", "Ana Stone")
    server = BotServer(bot_settings(fake_slack))
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            slack = SlackDriver(session, server.url, SIGNING_SECRET, fake_slack)
            view = await slack.open_modal(ANA)
            offered = await offered_options(slack, ANA, view)
            assert set(offered) == {9001, 9002, 9003}  # SC-001 only
            searched = await slack.load_options(ANA, view, DEMO_PROJECT, "Volt")
            assert searched.json() == {"options": []}
            hidden = {"text": {"type": "plain_text", "text": "x"}, "value": "9011"}
            gone = {"text": {"type": "plain_text", "text": "y"}, "value": "424242"}
            answer = await slack.submit(ANA, view, DEMO_PROJECT, [offered[9001], hidden, gone])
            errors = answer.json()["errors"]
            [message] = errors.values()
            assert message.startswith("2 of the selected invoices are no longer available")
            assert "9011" not in message and "Volt" not in message
            assert await Job.all().count() == 0
    finally:
        await server.stop()
