"""The access modal and the Home tab builders without a server (slack_sdk validates the limits),
reading the access form back, the identity cache picking up a changed e-mail, BACKUPS_OWNERS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.blocks.access import (
    CONTACTS_ACTION_ID,
    DICTIONARY_ACTION_ID,
    LINK_PROJECT_USER_ACTION_ID,
    LINK_USER_ACTION_ID,
    PROJECT_ACTION_ID,
    PROJECT_BLOCK_ID,
    ROSTER_LINES_SHOWN,
    TIE_OUT_ACTION_ID,
    access_form_errors,
    access_modal,
    access_saved_view,
    contacts_block_id,
    dictionary_block_id,
    link_project_user_block_id,
    link_user_block_id,
    manage_refusal_message,
    project_user_options,
    read_access_form,
    tie_out_block_id,
)
from bot.blocks.home import HomeBackup, HomeData, HomeProject, home_view
from bot.home import thread_url
from bot.identity import IdentityResolver
from bot.settings import Settings, SettingsError
from commands.access import ProjectChoice
from commands.digests import ScheduleView
from commands.manage_access import ProjectSettings, RosterLine

RIVERSIDE = ProjectChoice(1001, "Riverside Medical Office Building", "2026-014")
LONG = ProjectChoice(7, "B" * 140, "N-" + "9" * 40)
DEFAULTS = {
    "commitments": "Commitments",
    "invoicing": "Invoicing",
    "subcontractor": "Subcontractor",
}


def roster_of(count: int) -> list[RosterLine]:
    return [
        RosterLine(
            user_id=n,
            name=f"Person {n} " + "x" * 60,
            email=f"person{n}@" + "example" * 12 + ".com",
            commitments_access=("admin", "standard", "read_only", "none")[n % 4],
            is_active=n % 7 != 0,
            linked_slack_user_ids=(f"U{n:04d}",) if n % 5 == 0 else (),
            invoice_contact_of=tuple(f"SC-{k:03d}" for k in range(n % 3)),
        )
        for n in range(1, count + 1)
    ]


def form(
    settings: ProjectSettings | None = None, roster: list[RosterLine] | None = None
) -> dict[str, Any]:
    settings = settings or ProjectSettings(RIVERSIDE, False, dict(DEFAULTS))
    view = access_modal([LONG, RIVERSIDE], settings, roster_of(3) if roster is None else roster)
    return view.to_dict()  # validates every Block Kit limit


def labels(value: Any) -> list[str]:
    """Every plain_text ``text`` in a view or block (option labels, input labels…)."""
    found: list[str] = []
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            found.append(value["text"])
        for item in value.values():
            found += labels(item)
    elif isinstance(value, list):
        for item in value:
            found += labels(item)
    return found


def test_the_access_modal_stays_within_block_kit_limits_with_a_big_roster() -> None:
    view = form(roster=roster_of(150))
    assert view["type"] == "modal" and view["callback_id"] == "manage_access"
    assert len(view["blocks"]) <= 100 and len(view["title"]["text"]) <= 24
    assert all(len(label) <= 2000 for label in labels(view))
    sections = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    assert all(len(text) <= 3000 for text in sections)
    roster = "\n".join(sections)
    assert f"…and {150 - ROSTER_LINES_SHOWN} more" in roster
    assert "<@U0005>" in roster and "invoice contact of SC-000, SC-001" in roster
    assert "_inactive_" in roster and "Read only" in roster
    project = next(b for b in view["blocks"] if b.get("block_id") == PROJECT_BLOCK_ID)
    assert project["dispatch_action"] is True
    assert all(len(o["text"]["text"]) <= 75 for o in project["element"]["options"])
    assert project["element"]["initial_option"]["value"] == "1001"
    assert json.loads(view["private_metadata"]) == {"p": 1001}


def test_the_form_shows_the_projects_current_settings_on_blocks_named_after_it() -> None:
    off = form()
    ids = {b.get("block_id") for b in off["blocks"]}
    assert {
        link_user_block_id(1001),
        link_project_user_block_id(1001),
        contacts_block_id(1001),
        dictionary_block_id("commitments", 1001),
        dictionary_block_id("invoicing", 1001),
        dictionary_block_id("subcontractor", 1001),
    } <= ids
    contacts = next(b for b in off["blocks"] if b.get("block_id") == contacts_block_id(1001))
    assert contacts["optional"] is True and "initial_options" not in contacts["element"]
    tie_out = next(b for b in off["blocks"] if b.get("block_id") == tie_out_block_id(1001))
    assert tie_out["optional"] is True and "initial_options" not in tie_out["element"]
    assert "Leave out invoices whose numbers do not tie out" in labels(tie_out)
    blocking = form(ProjectSettings(RIVERSIDE, False, dict(DEFAULTS), tie_out_blocks=True))
    tie_out = next(b for b in blocking["blocks"] if b.get("block_id") == tie_out_block_id(1001))
    assert [o["value"] for o in tie_out["element"]["initial_options"]] == ["on"]
    renamed = {**DEFAULTS, "commitments": "Subcontracts"}
    on = form(ProjectSettings(RIVERSIDE, True, renamed), [])
    contacts = next(b for b in on["blocks"] if b.get("block_id") == contacts_block_id(1001))
    assert [o["value"] for o in contacts["element"]["initial_options"]] == ["on"]
    naming = next(
        b for b in on["blocks"] if b.get("block_id") == dictionary_block_id("commitments", 1001)
    )
    assert naming["element"]["initial_option"]["value"] == "Subcontracts"
    assert {o["value"] for o in naming["element"]["options"]} == {"Commitments", "Subcontracts"}
    text = json.dumps(on["blocks"])
    assert "Subcontracts tool" in text and "Nobody is in this project" in text


def submitted(values: dict[str, dict[str, Any]], metadata: str = '{"p": 1001}') -> dict:
    return {"private_metadata": metadata, "state": {"values": values}}


def selected(value: str) -> dict[str, Any]:
    return {"selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}


def test_reading_the_form_back() -> None:
    values = {
        PROJECT_BLOCK_ID: {PROJECT_ACTION_ID: selected("1001")},
        link_user_block_id(1001): {LINK_USER_ACTION_ID: {"selected_user": "U9"}},
        link_project_user_block_id(1001): {LINK_PROJECT_USER_ACTION_ID: selected("4")},
        contacts_block_id(1001): {CONTACTS_ACTION_ID: {"selected_options": [{"value": "on"}]}},
        dictionary_block_id("invoicing", 1001): {
            DICTIONARY_ACTION_ID: selected("Progress Billings")
        },
    }
    read = read_access_form(submitted(values))
    assert (read.project_id, read.slack_user_id, read.project_user_id) == (1001, "U9", "4")
    assert read.contacts_may_compile is True
    assert read.dictionary == {"invoicing": "Progress Billings"}
    assert access_form_errors(read) == {}
    values[contacts_block_id(1001)] = {CONTACTS_ACTION_ID: {"selected_options": []}}
    assert read_access_form(submitted(values)).contacts_may_compile is False
    del values[contacts_block_id(1001)]
    assert read_access_form(submitted(values)).contacts_may_compile is None
    assert read_access_form(submitted(values)).tie_out_blocks is None
    values[tie_out_block_id(1001)] = {TIE_OUT_ACTION_ID: {"selected_options": [{"value": "on"}]}}
    assert read_access_form(submitted(values)).tie_out_blocks is True
    values[tie_out_block_id(1001)] = {TIE_OUT_ACTION_ID: {"selected_options": []}}
    assert read_access_form(submitted(values)).tie_out_blocks is False


@pytest.mark.parametrize(
    ("values", "metadata", "field"),
    [
        ({}, "not json", PROJECT_BLOCK_ID),
        (
            {PROJECT_BLOCK_ID: {PROJECT_ACTION_ID: selected("2002")}},
            '{"p": 1001}',
            PROJECT_BLOCK_ID,
        ),
        (
            {link_user_block_id(1001): {LINK_USER_ACTION_ID: {"selected_user": "U9"}}},
            '{"p": 1001}',
            link_project_user_block_id(1001),
        ),
        (
            {link_project_user_block_id(1001): {LINK_PROJECT_USER_ACTION_ID: selected("4")}},
            '{"p": 1001}',
            link_user_block_id(1001),
        ),
    ],
)
def test_malformed_forms_get_an_error_on_the_right_field(
    values: dict, metadata: str, field: str
) -> None:
    errors = access_form_errors(read_access_form(submitted(values, metadata)))
    assert list(errors) == [field]


def test_project_user_search_labels_and_filter() -> None:
    roster = roster_of(150)
    everyone = project_user_options(roster, "")
    assert len(everyone) == 100
    assert all(len(o["text"]["text"]) <= 75 for o in everyone)
    assert everyone[6]["text"]["text"].endswith("… (inactive)")  # Person 7
    assert [o["value"] for o in project_user_options(roster, "PERSON12@")] == ["12"]
    assert project_user_options(roster, "nobody") == []


def test_refusal_and_saved_views() -> None:
    refusal = manage_refusal_message("Subcontracts", ["U1", "U2"])
    assert "Admin* on a project's Subcontracts tool" in refusal.blocks[0]["text"]["text"]
    assert "this bot's owners (<@U1>, <@U2>)" in refusal.text
    nothing = access_saved_view(RIVERSIDE, []).to_dict()
    assert "Nothing changed." in json.dumps(nothing) and "submit" not in nothing
    many = access_saved_view(LONG, [f"change {n} " + "y" * 200 for n in range(40)]).to_dict()
    assert all(len(b["text"]["text"]) <= 3000 for b in many["blocks"])


def schedule(number: int) -> ScheduleView:
    return ScheduleView(
        id=number,
        project_id=1001,
        project_name="Riverside",
        owner_key="slack:U1",
        owner_slack_user_id="U1",
        channel_id="C1",
        weekday=number % 7,
        time_of_day="08:00",
        timezone="America/Toronto",
        selection="open_period",
        statuses=("approved",),
        skip_empty=False,
        paused=number % 2 == 0,
        paused_reason=None,
    )


def test_the_home_tab_with_everything_stays_within_limits() -> None:
    projects = tuple(
        HomeProject(f"Project {n} " + "z" * 200, level, "Subcontracts", level == "admin", n == 3)
        for n, level in enumerate(["admin", "standard", "read_only", "none"] * 10)
    )
    backups = tuple(
        HomeBackup(
            "Riverside",
            status,
            datetime(2026, 11, 26, 14, n, tzinfo=UTC),
            5,
            42,
            thread_url("https://acme.slack.com/", "C1", f"1700000000.00000{n}") if n else None,
        )
        for n, status in enumerate(["succeeded", "nothing_to_compile", "failed", "running"] * 3)
    )
    home = HomeData(
        "pm@example.com", projects, backups, tuple(schedule(n) for n in range(1, 21)), True, ("U1",)
    )
    view = home_view(home).to_dict()
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "…and 10 more." in text and "You're one of this bot's owners" in text
    assert "Admin on the Subcontracts tool · you may compile backups and manage access" in text
    assert "you may compile your own commitments' invoices (invoice contact)" in text
    assert "<https://acme.slack.com/archives/C1/p1700000000000001|open the thread>" in text
    assert "<!date^1795701600^{date_short_pretty} at {time}|2026-11-26 14:00 UTC>" in text
    assert ":x: Failed" in text and "5 invoices, 42 pages" in text
    assert "schedule_resume" in text and "…and 5 more schedules." in text


def test_the_home_tab_of_an_unknown_user_and_when_data_is_unavailable() -> None:
    unknown = json.dumps(home_view(HomeData("x@y.example")).to_dict())
    assert (
        "I don't know you yet: nobody in a project's Directory has the e-mail of your Slack "
        "profile, x@y.example." in unknown
    )
    assert "None yet." in unknown and "You have no weekly digests" in unknown
    broken = json.dumps(home_view(HomeData(None, problem="down")).to_dict())
    assert ":warning: down" in broken and "Your projects" not in broken
    assert thread_url(None, "C1", "1.2") == "https://slack.com/app_redirect?channel=C1"


async def test_a_changed_email_is_picked_up_once_the_cache_entry_expires() -> None:
    class ChangingProfile:
        email = "old@example.com"

        async def users_info(self, user: str) -> dict[str, Any]:
            return {"user": {"id": user, "profile": {"email": self.email}}}

    now = [0.0]
    slack = ChangingProfile()
    resolver = IdentityResolver(slack, ttl_seconds=600, clock=lambda: now[0])  # type: ignore[arg-type]
    assert (await resolver.resolve("U1")).requester.email == "old@example.com"
    slack.email = "new@example.com"
    now[0] = 599
    assert (await resolver.resolve("U1")).requester.email == "old@example.com"
    now[0] = 601
    assert (await resolver.resolve("U1")).requester.email == "new@example.com"


def test_backups_owners_setting() -> None:
    base = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    assert Settings.from_env(base).owners == frozenset()
    owners = Settings.from_env({**base, "BACKUPS_OWNERS": " U01ABC, W0XYZ ,,"}).owners
    assert owners == frozenset({"U01ABC", "W0XYZ"})
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**base, "BACKUPS_OWNERS": "U01ABC, dana@example.com"})
    assert str(raised.value).startswith("BACKUPS_OWNERS") and "dana@example.com" in str(
        raised.value
    )
