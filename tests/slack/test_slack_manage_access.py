"""``/compile-backups access`` and the App Home tab, end to end over HTTP against the fake Slack.

The admin's journey (open, switch project, search a project user, link, toggle the setting,
rename the tool), what each change does to the next requests (a linked user compiles, invoice
contacts see only their invoices, refusals say "Subcontracts"), who may not manage access, the
owners of the bot, invalid changes, the unknown user's answer, and the Home tab.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.blocks.access import (
    LINK_PROJECT_USER_ACTION_ID,
    PROJECT_ACTION_ID,
    PROJECT_BLOCK_ID,
    contacts_block_id,
    dictionary_block_id,
    link_project_user_block_id,
    link_user_block_id,
    tie_out_block_id,
)
from bot.server import BotServer
from commands.access import Requester
from commands.digests import ScheduleSpec, create_schedule
from commands.manage_access import link_slack_user
from storage.audit import AuditEntry
from storage.links import SlackLink
from storage.models import Project
from storage.slack_deliveries import delivery_of
from tests.slack.conftest import (
    DEMO_PROJECT,
    HARBOR,
    PM,
    SIGNING_SECRET,
    STRANGER,
    VIEWER,
    bot_settings,
    finished_jobs,
    offered_options,
    request_backup,
)
from tests.slack.fake_slack import TEAM_ID, FakeSlack
from tests.slack.slack_driver import SlackDriver

ANA = "U0ANA"  # ana@acmeconcrete.example: invoice contact of SC-001 (public)
NEWBIE = "U0NEWBIE"  # dana.reyes@personal.example: the PM's second account, matches nobody
OWNER = "U0OWNER"  # it@northwind.example: a bot owner (BACKUPS_OWNERS), in no project
SC_001_INVOICES = {9001, 9002, 9003}
SC_002_PRIVATE_INVOICE = 9011
_triggers = itertools.count(1000)


@pytest.fixture
async def owner_slack(fake_slack: FakeSlack, demo_project: int) -> AsyncIterator[SlackDriver]:
    """A bot whose BACKUPS_OWNERS is `OWNER`, and a driver for it."""
    fake_slack.add_user(OWNER, "it@northwind.example", "Kim Lund")
    server = BotServer(bot_settings(fake_slack, owners=frozenset({OWNER})))
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield SlackDriver(session, server.url, SIGNING_SECRET, fake_slack)
    finally:
        await server.stop()


# --- playing Slack's side of the access form --------------------------------------------------


async def open_access_form(slack: SlackDriver, user_id: str, text: str = "access") -> dict:
    """Type ``/compile-backups access`` and return the form the bot opened."""
    fake = slack.fake
    before = len(fake.calls_to("views.open"))
    answer = await slack.command(user_id, text)
    assert answer.status == 200 and answer.text == ""
    await fake.wait_for(lambda: len(fake.calls_to("views.open")) > before)
    return slack.current_view(list(fake.views)[-1])


async def ephemeral_for(slack: SlackDriver, user_id: str, text: str = "") -> str:
    """Type the command; return the text (and blocks) of the ephemeral answer."""
    fake = slack.fake
    before = len(fake.ephemerals)
    answer = await slack.command(user_id, text)
    assert answer.status == 200
    await fake.wait_for(lambda: len(fake.ephemerals) > before)
    ephemeral = fake.ephemerals[before]
    assert ephemeral["response_type"] == "ephemeral"
    return ephemeral["text"] + "\n" + json.dumps(ephemeral.get("blocks"), ensure_ascii=False)


def option(value: str, label: str | None = None) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label or value}, "value": value}


def with_form_state(view: dict, changes: dict[str, dict[str, Any]] | None = None) -> dict:
    """``view`` as Slack sends it back: every input at its initial value, then ``changes``
    (block id → fields of that input's state) applied."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind = element["type"]
        if kind in ("static_select", "external_select"):
            state = {"selected_option": element.get("initial_option")}
        elif kind == "users_select":
            state = {"selected_user": element.get("initial_user")}
        else:
            state = {"selected_options": element.get("initial_options", [])}
        values[block["block_id"]] = {element["action_id"]: {"type": kind, **state}}
    for block_id, fields in (changes or {}).items():
        [action] = values[block_id].values()
        action.update(fields)
    return {**view, "state": {"values": values}}


async def save(
    slack: SlackDriver, user_id: str, view: dict, changes: dict[str, dict[str, Any]]
) -> dict:
    """Press Save with ``changes``; return the bot's answer (JSON, or {} for an empty ack)."""
    answer = await slack.interaction(
        {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user_id, "team_id": TEAM_ID},
            "api_app_id": "A0001",
            "trigger_id": f"trigger.{next(_triggers)}",
            "view": with_form_state(view, changes),
        }
    )
    assert answer.status == 200, answer
    return answer.json() if answer.text else {}


async def switch_project(slack: SlackDriver, user_id: str, view: dict, project_id: int) -> dict:
    """Choose another project in the form; return the form after the bot's views.update."""
    fake = slack.fake
    before = fake.views[view["id"]].updates
    chosen = option(str(project_id))
    answer = await slack.interaction(
        {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user_id},
            "api_app_id": "A0001",
            "trigger_id": f"trigger.{next(_triggers)}",
            "container": {"type": "view", "view_id": view["id"]},
            "view": with_form_state(view, {PROJECT_BLOCK_ID: {"selected_option": chosen}}),
            "actions": [
                {
                    "type": "static_select",
                    "block_id": PROJECT_BLOCK_ID,
                    "action_id": PROJECT_ACTION_ID,
                    "selected_option": chosen,
                    "action_ts": str(time.time()),
                }
            ],
        }
    )
    assert answer.status == 200
    await fake.wait_for(lambda: fake.views[view["id"]].updates > before)
    return slack.current_view(view["id"])


async def search_project_users(
    slack: SlackDriver, user_id: str, view: dict, project_id: int, query: str
) -> list[dict]:
    """An options load of the form's project-user select."""
    answer = await slack.interaction(
        {
            "type": "block_suggestion",
            "user": {"id": user_id, "team_id": TEAM_ID},
            "team": {"id": TEAM_ID},
            "api_app_id": "A0001",
            "container": {"type": "view", "view_id": view["id"]},
            "action_id": LINK_PROJECT_USER_ACTION_ID,
            "block_id": link_project_user_block_id(project_id),
            "value": query,
            "view": with_form_state(view),
        }
    )
    assert answer.status == 200
    return list(answer.json()["options"])


def block(view: dict, block_id: str) -> dict:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def text_of(view: dict) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def contacts_on() -> dict[str, Any]:
    return {"selected_options": [option("on")]}


async def audit_actions(actor: str) -> list[tuple[str, str, int | None]]:
    rows = await AuditEntry.filter(actor=actor).order_by("id")
    return [(row.action, row.outcome, row.project_id) for row in rows]


# --- the admin's journey ------------------------------------------------------------------------


async def test_an_admin_links_a_user_toggles_the_setting_and_renames_the_tool(
    harbor: int, bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user(NEWBIE, "dana.reyes@personal.example", "Dana Reyes")
    view = await open_access_form(slack, PM)
    assert view["callback_id"] == "manage_access"
    projects = block(view, PROJECT_BLOCK_ID)["element"]
    assert projects["initial_option"]["value"] == str(HARBOR)  # first by name
    assert {o["value"] for o in projects["options"]} == {str(HARBOR), str(DEMO_PROJECT)}
    assert "Ola Berg" in text_of(view) and "Ana Stone" not in text_of(view)

    view = await switch_project(slack, PM, view, DEMO_PROJECT)
    roster = text_of(view)
    for expected in ("*Dana Reyes*", "pm@example.com", "Admin", "*Lee Park*", "Read only"):
        assert expected in roster
    assert "*Ana Stone* · ana@acmeconcrete.example · None · invoice contact of SC-001" in roster
    contacts = block(view, contacts_block_id(DEMO_PROJECT))["element"]
    assert "initial_options" not in contacts  # the demo project's setting is off

    found = await search_project_users(slack, PM, view, DEMO_PROJECT, "DANA")
    assert [o["value"] for o in found] == ["1"]
    assert found[0]["text"]["text"] == "Dana Reyes · pm@example.com"

    answer = await save(
        slack,
        PM,
        view,
        {
            link_user_block_id(DEMO_PROJECT): {"selected_user": NEWBIE},
            link_project_user_block_id(DEMO_PROJECT): {"selected_option": found[0]},
            contacts_block_id(DEMO_PROJECT): contacts_on(),
            dictionary_block_id("commitments", DEMO_PROJECT): {
                "selected_option": option("Subcontracts")
            },
        },
    )
    assert answer["response_action"] == "update"
    saved = json.dumps(answer["view"])
    assert f"<@{NEWBIE}> is now Dana Reyes (pm@example.com)" in saved
    assert "Invoice contacts may now compile" in saved and "Subcontracts" in saved

    [link] = await SlackLink.filter(slack_user_id=NEWBIE)
    assert (link.project_id, link.user_id, link.created_by) == (DEMO_PROJECT, 1, f"slack:{PM}")
    project = await Project.get(id=DEMO_PROJECT)
    assert project.invoice_contacts_may_compile is True
    assert project.dictionary["commitments"] == "Subcontracts"
    assert project.dictionary["invoicing"] == "Invoicing"
    assert await audit_actions(f"slack:{PM}") == [
        ("access.link", "succeeded", DEMO_PROJECT),
        ("access.setting", "succeeded", DEMO_PROJECT),
        ("access.dictionary", "succeeded", DEMO_PROJECT),
    ]

    # the linked account matches nobody by e-mail, yet compiles on the project now
    compile_view = await slack.open_modal(NEWBIE)
    select = block(compile_view, "project")["element"]
    assert [o["value"] for o in select["options"]] == [str(DEMO_PROJECT)]
    assert set(await offered_options(slack, NEWBIE, compile_view)) >= {9001, 9011}

    # the form shows the new state when opened again, the link in the roster
    again = await open_access_form(slack, PM, "access 2026-014")
    assert f"linked: <@{NEWBIE}>" in text_of(again)
    contacts = block(again, contacts_block_id(DEMO_PROJECT))["element"]
    assert [o["value"] for o in contacts["initial_options"]] == ["on"]
    naming = block(again, dictionary_block_id("commitments", DEMO_PROJECT))["element"]
    assert naming["initial_option"]["value"] == "Subcontracts"
    assert "Who has which level on the Subcontracts tool" in text_of(again)

    # saving unchanged values changes (and audits) nothing
    unchanged = await save(slack, PM, again, {})
    assert "Nothing changed." in json.dumps(unchanged["view"])
    assert len(await audit_actions(f"slack:{PM}")) == 3


async def test_an_explicit_link_wins_over_the_email_match(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    admin = Requester(f"slack:{PM}", "pm@example.com", "Dana", PM)
    viewer_refusal = await ephemeral_for(slack, VIEWER)  # read-only by e-mail
    assert viewer_refusal.startswith(
        "You need Admin on the Commitments tool of Riverside Medical Office Building to compile "
        "invoice backups. Ask Dana Reyes to give it to you in Procore (the project's Directory "
        "tool, your permission template); it applies here once the project is next imported "
        "from Procore.\n"
    )
    await link_slack_user(admin, DEMO_PROJECT, VIEWER, "1", frozenset())
    view = await slack.open_modal(VIEWER)  # now Dana Reyes, admin, on that project
    assert block(view, "project")["element"]["options"][0]["value"] == str(DEMO_PROJECT)


async def test_invoice_contacts_compile_only_their_own_invoices_while_the_setting_is_on(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user(ANA, "ana@acmeconcrete.example", "Ana Stone")
    refusal = await ephemeral_for(slack, ANA)
    assert refusal.startswith(
        "You are an invoice contact on Riverside Medical Office Building, but invoice contacts "
        "may compile only when a project admin turns on the setting “Invoice contacts may compile "
        "their own commitments' invoices” (`/compile-backups access`). Ask Dana Reyes to turn it "
        "on, or to give you Admin on the Commitments tool in Procore.\n"
    )

    form = await open_access_form(slack, PM)
    await save(slack, PM, form, {contacts_block_id(DEMO_PROJECT): contacts_on()})
    compile_view = await slack.open_modal(ANA)
    offered = await offered_options(slack, ANA, compile_view)
    assert set(offered) == SC_001_INVOICES
    private = await slack.load_options(ANA, compile_view, DEMO_PROJECT, "SC-002")
    assert private.json() == {"options": []}
    assert SC_002_PRIVATE_INVOICE not in offered

    form = await open_access_form(slack, PM)
    answer = await save(
        slack, PM, form, {contacts_block_id(DEMO_PROJECT): {"selected_options": []}}
    )
    assert "may no longer compile" in json.dumps(answer["view"])
    assert (await slack.load_options(ANA, compile_view, DEMO_PROJECT)).json() == {"options": []}
    submitted = await slack.submit(ANA, compile_view, DEMO_PROJECT, [offered[9001]])
    assert "Admin" in submitted.json()["errors"]["project"]
    refusal = await ephemeral_for(slack, ANA)
    assert "invoice contacts may compile only when a project admin turns on" in refusal


async def test_an_admin_makes_invoices_that_do_not_tie_out_stay_out_of_backups(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    mistyped = "SC-001 Acme Concrete · Application #3"
    await request_backup(slack, PM, [9002, 9003])
    [job] = await finished_jobs(1)
    [parent] = fake_slack.top_level_messages()
    [reply] = fake_slack.replies(parent.channel, parent.ts)
    assert "2 invoices for Riverside" in reply.text
    assert f"1 invoice does not tie out: {mistyped}." in reply.text
    assert "G702 line 8 (current payment due): $67,500.00 shown" in reply.all_text

    form = await open_access_form(slack, PM)
    assert "initial_options" not in block(form, tie_out_block_id(DEMO_PROJECT))["element"]
    answer = await save(
        slack, PM, form, {tie_out_block_id(DEMO_PROJECT): {"selected_options": [option("on")]}}
    )
    assert "do not tie out are now left out" in json.dumps(answer["view"])
    assert (await Project.get(id=DEMO_PROJECT)).tie_out_blocks is True
    [entry] = await AuditEntry.filter(actor=f"slack:{PM}", action="access.setting")
    assert entry.details["tie_out_blocks"] is True and entry.details["before"] is False
    again = await open_access_form(slack, PM)
    shown = block(again, tie_out_block_id(DEMO_PROJECT))["element"]["initial_options"]
    assert [o["value"] for o in shown] == ["on"]

    await request_backup(slack, PM, [9002, 9003])
    jobs = await finished_jobs(2)
    assert all(job.status == "succeeded" for job in jobs)
    latest = fake_slack.top_level_messages()[-1]
    [reply] = fake_slack.replies(latest.channel, latest.ts)
    assert "1 invoice for Riverside" in reply.text
    assert "1 invoice left out (numbers do not tie out)." in reply.text
    assert f"{mistyped}: G702 line 8 (current payment due)" in reply.all_text
    assert ": done, 1 left out, see the thread" in latest.text  # the parent's final state


async def test_refusals_and_help_use_the_projects_dictionary(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    form = await open_access_form(slack, PM)
    await save(
        slack,
        PM,
        form,
        {
            dictionary_block_id("commitments", DEMO_PROJECT): {
                "selected_option": option("Subcontracts")
            }
        },
    )
    refusal = await ephemeral_for(slack, VIEWER)
    assert "Subcontracts tool" in refusal and "Commitments" not in refusal
    help_answer = await slack.command(VIEWER, "help")
    assert "Admin on the project's Subcontracts tool" in help_answer.json()["text"]
    manage_refusal = await ephemeral_for(slack, VIEWER, "access")
    assert "Subcontracts tool" in manage_refusal


# --- who may not, owners, invalid changes --------------------------------------------------


async def test_someone_who_may_not_manage_access_is_told_why_and_nothing_opens(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    for user_id in (VIEWER, STRANGER):
        refusal = await ephemeral_for(slack, user_id, "access")
        assert "Managing access needs *Admin* on a project's Commitments tool" in refusal
        assert "one of this bot's owners" in refusal and "Ask a project admin" in refusal
    assert not fake_slack.calls_to("views.open")
    assert await audit_actions(f"slack:{VIEWER}") == [("access.view", "refused", None)]
    # a crafted submission of the PM's form by the viewer changes nothing: the form's metadata
    # was sealed for the PM
    form = await open_access_form(slack, PM)
    answer = await save(slack, VIEWER, form, {contacts_block_id(DEMO_PROJECT): contacts_on()})
    assert answer["response_action"] == "errors"
    assert "couldn't verify this form" in answer["errors"][PROJECT_BLOCK_ID]
    assert (await Project.get(id=DEMO_PROJECT)).invoice_contacts_may_compile is False
    assert await search_project_users(slack, VIEWER, form, DEMO_PROJECT, "") == []


async def test_an_owner_outside_every_project_manages_access_but_does_not_compile(
    harbor: int, owner_slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    view = await open_access_form(owner_slack, OWNER)
    options = block(view, PROJECT_BLOCK_ID)["element"]["options"]
    assert {o["value"] for o in options} == {str(HARBOR), str(DEMO_PROJECT)}
    view = await switch_project(owner_slack, OWNER, view, DEMO_PROJECT)
    answer = await save(
        owner_slack,
        OWNER,
        view,
        {
            dictionary_block_id("subcontractor", DEMO_PROJECT): {
                "selected_option": option("Trade Partner")
            }
        },
    )
    assert answer["response_action"] == "update"
    assert (await Project.get(id=DEMO_PROJECT)).dictionary["subcontractor"] == "Trade Partner"
    assert await audit_actions(f"slack:{OWNER}") == [
        ("access.dictionary", "succeeded", DEMO_PROJECT)
    ]
    refusal = await ephemeral_for(owner_slack, OWNER)  # owners get no Commitments admin
    assert "it@northwind.example" in refusal and f"<@{OWNER}>" in refusal


async def test_invalid_changes_are_refused_on_their_field_and_nothing_is_applied(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    form = await open_access_form(slack, PM)
    half = await save(
        slack, PM, form, {link_user_block_id(DEMO_PROJECT): {"selected_user": NEWBIE}}
    )
    assert half == {
        "response_action": "errors",
        "errors": {link_project_user_block_id(DEMO_PROJECT): "Choose the project user to link to."},
    }
    nobody = await save(
        slack,
        PM,
        form,
        {
            link_user_block_id(DEMO_PROJECT): {"selected_user": NEWBIE},
            link_project_user_block_id(DEMO_PROJECT): {"selected_option": option("424242")},
            contacts_block_id(DEMO_PROJECT): contacts_on(),
        },
    )
    assert nobody["response_action"] == "errors"
    assert nobody["errors"] == {
        link_project_user_block_id(DEMO_PROJECT): "No project user '424242' in this project."
    }
    crafted = await save(
        slack,
        PM,
        form,
        {dictionary_block_id("invoicing", DEMO_PROJECT): {"selected_option": option("Widgets")}},
    )
    [(field, message)] = crafted["errors"].items()
    assert field == dictionary_block_id("invoicing", DEMO_PROJECT) and "Widgets" in message
    assert await SlackLink.all().count() == 0
    project = await Project.get(id=DEMO_PROJECT)
    assert project.invoice_contacts_may_compile is False
    assert project.dictionary["invoicing"] == "Invoicing"


# --- the unknown user, the Home tab ------------------------------------------------------------


async def test_an_unknown_user_is_told_how_matching_works_and_whom_to_ask(
    owner_slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    refusal = await ephemeral_for(owner_slack, STRANGER)
    assert refusal.startswith(
        ":wave: I don't know you yet: nobody in a project's Directory has the e-mail of your "
        "Slack profile, stranger@example.com.\n"
        f"Ask a project admin or this bot's owners (<@{OWNER}>) to add you to the project with "
        "that address, or to link your Slack account (`/compile-backups access`).\n"
        "Compiling backups needs Admin on a project's Commitments tool.\n"
    )
    assert not fake_slack.calls_to("views.open")


async def open_home(slack: SlackDriver, user_id: str) -> dict:
    """Open the Home tab (app_home_opened); return the view the bot published."""
    fake = slack.fake
    before = len(fake.published)
    event = {
        "token": "legacy",
        "team_id": TEAM_ID,
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": f"Ev{next(_triggers)}",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": user_id, "channel": "D0", "tab": "home"},
    }
    answer = await slack.send(json.dumps(event), content_type="application/json")
    assert answer.status == 200
    await fake.wait_for(lambda: len(fake.published) > before)
    published = fake.published[before]
    assert published["user_id"] == user_id and published["view"]["type"] == "home"
    return published["view"]


async def test_the_home_tab_shows_projects_levels_last_backups_and_schedules(
    harbor: int, bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    answer = await request_backup(slack, PM, [9001, 9002])
    assert answer.status == 200 and answer.text == ""
    [job] = await finished_jobs(1)
    pm = Requester(f"slack:{PM}", "pm@example.com", "Dana", PM)
    await create_schedule(
        pm, ScheduleSpec(DEMO_PROJECT, "C_JOBSITE", 0, "08:00", "America/Toronto")
    )

    home = text_of(await open_home(slack, PM))
    assert "*Harbor Logistics Center (2026-020)*: Admin on the Commitments tool" in home
    assert "*Riverside Medical Office Building (2026-014)*: Admin on the Commitments tool" in home
    assert ":white_check_mark: Done · *Riverside Medical Office Building*" in home
    assert "2 invoices" in home and "<!date^" in home
    steps = await delivery_of(job)
    assert steps.parent_ts is not None
    message_id = steps.parent_ts.replace(".", "")
    permalink = f"https://fake.slack.test/archives/{steps.parent_channel}/p{message_id}"
    assert f"<{permalink}|open the thread>" in home
    assert "Mondays at 08:00 (America/Toronto)" in home and "schedule_run_now" in home

    viewer = text_of(await open_home(slack, VIEWER))
    assert "Read only on the Commitments tool · compiling needs Admin" in viewer
    assert "None yet." in viewer and "You have no weekly digests" in viewer
    stranger = text_of(await open_home(slack, STRANGER))
    assert "has the e-mail of your Slack profile, stranger@example.com." in stranger
