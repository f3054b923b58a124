"""The slash command: help, unknown arguments, preselection, switching project, App Home."""

from __future__ import annotations

import json

import pytest

from bot.server import BotServer
from tests.slack.conftest import DEMO_PROJECT, HARBOR, PM, finished_jobs, offered_options
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_driver import SlackDriver, invoice_block_id, with_state


async def test_the_command_is_acknowledged_before_the_work_after_its_ack(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    # Slack holds views.open back for 3 s (429): the answer to the command (its ack) does not
    # wait for it; the modal opens once Slack lets it.
    fake_slack.rate_limit("views.open", retry_after=3)
    answer = await slack.command(PM)
    assert answer.status == 200
    assert fake_slack.views == {}
    assert [call.status for call in fake_slack.calls_to("views.open")] in ([], [429])
    await fake_slack.wait_for(lambda: fake_slack.views)
    assert [call.status for call in fake_slack.calls_to("views.open")] == [429, 200]


async def test_help_is_the_ack_itself(bot: BotServer, slack: SlackDriver) -> None:
    answer = await slack.command(PM, "help")
    assert answer.status == 200
    body = answer.json()
    assert "/compile-backups <project name or number>" in body["text"]
    assert body.get("response_type", "ephemeral") == "ephemeral"


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("frobnicate now", ""),  # neither a subcommand nor near a project: no suggestion
        (
            "rivrside",
            "Did you mean:\n"
            "• Riverside Medical Office Building (2026-014): /compile-backups 2026-014\n",
        ),
    ],
)
async def test_an_unmatched_argument_gets_the_closest_projects_not_the_whole_help(
    typed: str,
    suggested: str,
    harbor: int,
    bot: BotServer,
    slack: SlackDriver,
    fake_slack: FakeSlack,
) -> None:
    answer = await slack.command(PM, typed)
    assert answer.status == 200
    [ephemeral] = await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    assert ephemeral["text"] == (
        f":grey_question: {typed} is not a project where you may compile backups.\n"
        f"{suggested}"
        "/compile-backups alone lets you choose among your projects; /compile-backups help says "
        "more."
    )
    assert not fake_slack.calls_to("views.open")


async def test_the_argument_preselects_a_project(
    harbor: int, bot: BotServer, slack: SlackDriver
) -> None:
    by_number = await slack.open_modal(PM, "2026-014")
    project = next(block for block in by_number["blocks"] if block.get("block_id") == "project")
    assert project["element"]["initial_option"]["value"] == str(DEMO_PROJECT)
    assert {option["value"] for option in project["element"]["options"]} == {"1001", "2002"}
    by_name = await slack.open_modal(PM, "harbor logistics center")
    project = next(block for block in by_name["blocks"] if block.get("block_id") == "project")
    assert project["element"]["initial_option"]["value"] == str(HARBOR)
    plain = await slack.open_modal(PM)
    project = next(block for block in plain["blocks"] if block.get("block_id") == "project")
    assert "initial_option" not in project["element"]


async def test_changing_project_updates_the_modal_and_the_options_follow(
    harbor: int, bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    view = await slack.open_modal(PM, "2026-020")
    assert await offered_options(slack, PM, view, HARBOR) == {}  # no invoices there
    answer = await slack.choose_project(PM, view, DEMO_PROJECT)
    assert answer.status == 200
    await fake_slack.wait_for(lambda: fake_slack.calls_to("views.update"))
    updated = slack.current_view(view["id"])
    assert invoice_block_id(updated) == f"invoices-{DEMO_PROJECT}" != invoice_block_id(view)
    sealed = json.loads(updated["private_metadata"])  # bot.seal: {"m": metadata, "s": hmac}
    assert json.loads(sealed["m"])["p"] == DEMO_PROJECT
    offered = await offered_options(slack, PM, updated, DEMO_PROJECT)
    assert 9001 in offered
    # the options load reads the project from view.state, not from the modal's first project
    stale_metadata = with_state(view, None, [])
    stale_metadata["state"]["values"]["project"]["project_select"]["selected_option"] = {
        "text": {"type": "plain_text", "text": "Riverside"},
        "value": str(DEMO_PROJECT),
    }
    raw = await slack.interaction(
        {
            "type": "block_suggestion",
            "user": {"id": PM},
            "team": {"id": "T0001"},
            "action_id": "invoice_select",
            "block_id": invoice_block_id(view),
            "value": "SC-001",
            "view": stale_metadata,
        }
    )
    values = {
        option["value"] for group in raw.json()["option_groups"] for option in group["options"]
    }
    assert values == {"9001", "9002", "9003"}
    submitted = await slack.submit(PM, updated, DEMO_PROJECT, [offered[9001]])
    assert submitted.status == 200 and submitted.text == ""
    [job] = await finished_jobs(1)
    assert job.payload["project_id"] == DEMO_PROJECT


async def test_submission_without_invoices_or_with_too_many_is_refused_on_the_field(
    bot: BotServer, slack: SlackDriver
) -> None:
    view = await slack.open_modal(PM)
    empty = (await slack.submit(PM, view, DEMO_PROJECT, [])).json()
    assert empty == {
        "response_action": "errors",
        "errors": {f"invoices-{DEMO_PROJECT}": "Choose at least one invoice."},
    }
    too_many = [
        {"text": {"type": "plain_text", "text": str(n)}, "value": str(n)} for n in range(101)
    ]
    crowded = (await slack.submit(PM, view, DEMO_PROJECT, too_many)).json()
    assert "at most 100 invoices" in crowded["errors"][f"invoices-{DEMO_PROJECT}"]


async def test_app_home_shows_how_to_use_the_bot(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    event = {
        "token": "legacy",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": PM, "channel": "D0PM", "tab": "home"},
    }
    answer = await slack.send(json.dumps(event), content_type="application/json")
    assert answer.status == 200
    [published] = await fake_slack.wait_for(lambda: fake_slack.published)
    assert published["user_id"] == PM and "/compile-backups" in json.dumps(published["view"])
