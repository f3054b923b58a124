"""Hostile requests, entry point by entry point: correctly signed requests from users who may
not, tampered payloads and malformed ones, for every command, action, view submission, options
handler and event. Each must get a clear answer (never a 500), leave no traceback in the bot's
log, reveal nothing about a project to someone outside it, and change nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.blocks.access import link_project_user_block_id, link_user_block_id
from bot.server import BotServer
from storage.audit import AuditEntry
from storage.jobs import Job
from storage.links import SlackLink
from storage.schedules import Schedule
from tests.slack.conftest import DEMO_PROJECT, PM, STRANGER, VIEWER
from tests.slack.fake_slack import TEAM_ID, FakeSlack
from tests.slack.sealing import SEAL, plain_metadata, reseal
from tests.slack.slack_driver import Answer, SlackDriver, with_state
from tests.slack.test_slack_digests import schedule_state
from tests.slack.test_slack_manage_access import open_access_form, with_form_state

# What a refusal to someone outside the demo project must never contain.
PROJECT_SECRETS = ("Riverside", "Dana Reyes", "2026-014", "Sam Okafor")
TOO_BIG = str(2**64 + 7)  # no 64-bit column holds it


def option(value: Any) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": str(value)}, "value": value}


@dataclass
class Outcome:
    """One hostile request's answer, and where the fake Slack's records stood when it was sent
    (what the bot did in Slack for it is read at `check` time: see `Probe.slack_output`)."""

    name: str
    answer: Answer
    seen_before: tuple[int, int, int, int]  # ephemerals, messages, calls, published
    member: bool = False  # sent by a project member: may be told the project and whom to ask


class Probe:
    """Sends hostile requests and records, per request, what came back and what Slack saw."""

    def __init__(self, slack: SlackDriver, fake: FakeSlack) -> None:
        self.slack = slack
        self.fake = fake
        self.outcomes: list[Outcome] = []

    def _seen(self) -> tuple[int, int, int, int]:
        return (
            len(self.fake.ephemerals),
            len(self.fake.messages),
            len(self.fake.calls),
            len(self.fake.published),
        )

    async def run(
        self, name: str, send: Callable[[], Awaitable[Answer]], member: bool = False
    ) -> Outcome:
        seen_before = self._seen()
        outcome = Outcome(name, await send(), seen_before, member)
        self.outcomes.append(outcome)
        return outcome

    def slack_output(self, index: int) -> str:
        """Everything the bot did in Slack from the ``index``-th request on, until the next one
        was sent: ephemerals, messages, views opened/updated/published, as JSON text. Read when
        checked, not when the answer came: a listener acknowledges first and answers after."""
        ephemerals, messages, calls, published = self.outcomes[index].seen_before
        if index + 1 < len(self.outcomes):
            ends: tuple[int | None, ...] = self.outcomes[index + 1].seen_before
        else:
            ends = (None, None, None, None)
        return json.dumps(
            {
                "ephemerals": self.fake.ephemerals[ephemerals : ends[0]],
                "messages": [m.all_text for m in self.fake.messages[messages : ends[1]]],
                "views": [
                    c.args.get("view")
                    for c in self.fake.calls[calls : ends[2]]
                    if c.method in ("views.open", "views.update")
                ],
                "published": self.fake.published[published : ends[3]],
            },
            ensure_ascii=False,
            default=str,
        )

    async def interaction(self, name: str, payload: Any, member: bool = False) -> Outcome:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.run(name, lambda: self.slack.send(body), member)

    async def raw(self, name: str, body: str, member: bool = False, **options: Any) -> Outcome:
        return await self.run(name, lambda: self.slack.send(body, **options), member)


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.exc_info or "Traceback" in r.getMessage()
    ]


def check(probe: Probe, caplog: pytest.LogCaptureFixture) -> None:
    """No 500, nothing about the project leaked, no traceback: every failure listed at once."""
    problems = []
    for index, outcome in enumerate(probe.outcomes):
        if outcome.answer.status >= 500:
            problems.append(f"{outcome.name}: HTTP {outcome.answer.status}")
        said = outcome.answer.text + probe.slack_output(index)
        leaked = [s for s in PROJECT_SECRETS if s in said]
        if leaked and not outcome.member:
            problems.append(f"{outcome.name}: leaked {leaked}")
    problems += [f"traceback logged: {line}" for line in tracebacks(caplog.records)]
    assert not problems, "\n".join(problems)


def block_actions(user_id: Any, view: Any, action: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user_id},
        "api_app_id": "A0001",
        "trigger_id": "trigger.hostile",
        "container": {"type": "view", "view_id": view["id"]} if view else {"type": "message"},
        **({"view": view} if view else {}),
        "actions": [action],
    }


def suggestion(user_id: Any, view: dict[str, Any], action_id: str, value: Any) -> dict:
    return {
        "type": "block_suggestion",
        "user": {"id": user_id, "team_id": TEAM_ID},
        "team": {"id": TEAM_ID},
        "api_app_id": "A0001",
        "container": {"type": "view", "view_id": view["id"]},
        "action_id": action_id,
        "block_id": "any",
        "value": value,
        "view": view,
    }


def submission(user_id: Any, view: Any) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID},
        "user": {"id": user_id, "team_id": TEAM_ID},
        "api_app_id": "A0001",
        "trigger_id": "trigger.hostile",
        "view": view,
    }


def tampered(view: dict[str, Any], opened_for: str, **changes: Any) -> dict[str, Any]:
    """``view`` whose metadata fields were edited (the seal kept: it no longer verifies)."""
    data = json.loads(plain_metadata(view["private_metadata"], opened_for))
    assert changes.items() - data.items(), "a tampering that changes nothing"
    data.update(changes)
    sealed = json.loads(view["private_metadata"])
    sealed["m"] = json.dumps(data)
    return {**view, "private_metadata": json.dumps(sealed)}


async def nothing_changed() -> None:
    assert await Job.all().count() == 0
    assert await Schedule.all().count() == 0
    assert await SlackLink.all().count() == 0


# --- the transport: signature first, then the shape ----------------------------------------------


async def test_unsigned_stale_or_garbled_requests_are_refused_before_any_parsing(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    garbage = "payload=%7Bnot json"
    cases = [
        await probe.raw(
            "non-numeric timestamp", garbage, headers={"X-Slack-Request-Timestamp": "soon"}
        ),
        await probe.raw("unsigned garbage", garbage, signature="v0=" + "0" * 64),
        await probe.raw("no signature", garbage, signature=""),
        await probe.raw("stale", garbage, timestamp=1_600_000_000),
    ]
    assert [c.answer.status for c in cases] == [401, 401, 401, 401]
    malformed = [
        await probe.raw("payload not JSON", garbage),
        await probe.raw("payload a JSON list", urlencode({"payload": "[1, 2]"})),
        await probe.raw("payload a JSON string", urlencode({"payload": '"hi"'})),
        await probe.raw("JSON body a list", "[]", content_type="application/json"),
        await probe.raw("payload bytes not UTF-8", "payload=%FF%FE"),
        await probe.interaction("no user", {"type": "view_submission", "view": {"id": "V1"}}),
        await probe.interaction("user not an object", {"type": "block_actions", "user": "U0PM"}),
        await probe.interaction("no view", {"type": "view_submission", "user": {"id": PM}}),
        await probe.interaction(
            "view not an object", {"type": "view_submission", "user": {"id": PM}, "view": []}
        ),
        await probe.interaction(
            "actions not a list", {"type": "block_actions", "user": {"id": PM}, "actions": {}}
        ),
        await probe.interaction(
            "event not an object", {"type": "event_callback", "event": "app_home_opened"}
        ),
    ]
    for case in malformed:
        assert case.answer.status == 400, (case.name, case.answer)
        assert case.answer.text.startswith("Malformed request: "), case.name
    check(probe, caplog)
    assert not fake_slack.api_calls()  # nothing reached a listener
    await nothing_changed()


# --- slash commands ----------------------------------------------------------------------------


async def test_every_subcommand_refuses_outsiders_and_malformed_commands(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    for text in (
        "",
        "1001",
        "2026-014",
        "Riverside",
        "access",
        "access 1001",
        "schedule",
        "schedules",
        "help",
    ):
        outcome = await probe.raw(f"stranger: {text!r}", slack.command_body(STRANGER, text))
        assert outcome.answer.status == 200, outcome
    for text in ("access 1001", "schedule"):
        await probe.raw(f"viewer: {text!r}", slack.command_body(VIEWER, text), member=True)
    body = slack.command_body(PM, "")
    cases = {
        "no user_id": body.replace("user_id=U0PM&", ""),
        "user_id not a Slack id": body.replace("user_id=U0PM", "user_id=%3Cscript%3E"),
        "no channel_id": body.replace("channel_id=C_JOBSITE&", ""),
        "no trigger_id": body.replace("&trigger_id=trigger.", "&nothing="),
        "huge text": slack.command_body(PM, TOO_BIG * 200),
    }
    for name, raw in cases.items():
        outcome = await probe.raw(name, raw)
        assert outcome.answer.status in (200, 400), outcome
    await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) >= 11)  # 10 + "huge text"
    check(probe, caplog)
    await nothing_changed()


# --- the compile modal: project select, invoice search, submission -------------------------------


async def test_the_compile_modal_refuses_other_users_tampered_and_malformed_payloads(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    view = await slack.open_modal(PM)
    chosen = with_state(view, option(str(DEMO_PROJECT)), [option("9001")])
    forged_channel = tampered(chosen, PM, c="C_ELSEWHERE")
    select = {"action_id": "project_select", "block_id": "project", "type": "static_select"}

    # project select
    for name, user, sent, value in [
        ("select: another user's modal", STRANGER, view, str(DEMO_PROJECT)),
        ("select: tampered metadata", PM, tampered(view, PM, c="C_ELSEWHERE"), str(DEMO_PROJECT)),
        ("select: metadata not JSON", PM, {**view, "private_metadata": "{oops"}, "1"),
        ("select: value beyond 64 bits", PM, view, TOO_BIG),
        ("select: value not a number", PM, view, "DROP TABLE"),
    ]:
        action = {**select, "selected_option": option(value)}
        outcome = await probe.interaction(name, block_actions(user, sent, action))
        assert outcome.answer.status in (200, 400), outcome
        assert fake_slack.views[view["id"]].updates == 0, name

    # invoice search
    for name, user, sent, value in [
        ("search: another user's modal", STRANGER, chosen, ""),
        ("search: tampered metadata", PM, tampered(chosen, PM, p=2002), ""),
        ("search: project beyond 64 bits", PM, with_state(view, option(TOO_BIG), []), ""),
        ("search: application number beyond 32 bits", PM, chosen, "#" + TOO_BIG),
    ]:
        outcome = await probe.interaction(name, suggestion(user, sent, "invoice_select", value))
        assert outcome.answer.status == 200 and outcome.answer.json() == {"options": []}, outcome
    outcome = await probe.interaction(
        "search: value not a string", suggestion(PM, chosen, "invoice_select", 5)
    )
    assert outcome.answer.status == 400

    # submission
    errors: dict[str, Any] = {}
    for name, user, sent in [
        ("submit: another user's modal", STRANGER, chosen),
        ("submit: viewer replays the PM's modal", VIEWER, chosen),
        ("submit: channel edited", PM, forged_channel),
        ("submit: metadata not JSON", PM, {**chosen, "private_metadata": "not json"}),
        ("submit: metadata not ours", PM, {**chosen, "private_metadata": '{"m":"{}","s":"0"}'}),
        ("submit: invoice value not a number", PM, with_state(view, option("1001"), [option("x")])),
        ("submit: invoice beyond 64 bits", PM, with_state(view, option("1001"), [option(TOO_BIG)])),
        ("submit: project beyond 64 bits", PM, with_state(view, option(TOO_BIG), [option("9001")])),
    ]:
        outcome = await probe.interaction(name, submission(user, sent))
        assert outcome.answer.status == 200, outcome
        body = outcome.answer.json()
        assert body["response_action"] == "errors", outcome
        errors[name] = " ".join(body["errors"].values())
    assert "couldn't verify this form" in errors["submit: another user's modal"]
    assert "couldn't verify this form" in errors["submit: channel edited"]
    assert "couldn't verify this form" in errors["submit: metadata not JSON"]
    assert "not valid choices" in errors["submit: invoice beyond 64 bits"]
    assert "Choose a project" in errors["submit: project beyond 64 bits"]
    assert not any("temporary problem" in text for text in errors.values())
    outcome = await probe.interaction(
        "submit: option without value",
        submission(
            PM, with_state(view, option("1001"), [{"text": {"type": "plain_text", "text": "x"}}])
        ),
    )
    assert outcome.answer.status == 400
    check(probe, caplog)
    await nothing_changed()
    refused = await AuditEntry.filter(action="form.metadata", outcome="refused").count()
    assert refused >= 5


async def test_a_view_sealed_for_an_outsider_still_meets_the_permission_check(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind the seal: a stranger naming the project gets a refusal that names nothing."""
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    view = await slack.open_modal(PM)
    chosen = with_state(view, option(str(DEMO_PROJECT)), [option("9001")])
    theirs = {**chosen, "private_metadata": reseal(view["private_metadata"], PM, STRANGER)}
    outcome = await probe.interaction("stranger names the project", submission(STRANGER, theirs))
    [refusal] = outcome.answer.json()["errors"].values()
    assert "Commitments" in refusal and "Ask a project admin" in refusal
    viewer = {**chosen, "private_metadata": reseal(view["private_metadata"], PM, VIEWER)}
    outcome = await probe.interaction(
        "member without the right", submission(VIEWER, viewer), member=True
    )
    [refusal] = outcome.answer.json()["errors"].values()
    assert "Riverside Medical Office Building" in refusal and "Dana Reyes" in refusal
    check(probe, caplog)
    await nothing_changed()


# --- the access form --------------------------------------------------------------------------


async def test_the_access_form_refuses_other_users_tampered_and_malformed_payloads(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    form = await open_access_form(slack, PM, f"access {DEMO_PROJECT}")
    filled = with_form_state(form)
    link = link_user_block_id(DEMO_PROJECT)
    project_user = link_project_user_block_id(DEMO_PROJECT)
    select = {"action_id": "access_project_select", "block_id": "access-project"}
    for name, user, sent, value in [
        ("switch: another user's form", STRANGER, form, str(DEMO_PROJECT)),
        ("switch: tampered metadata", PM, tampered(form, PM, p=2002), str(DEMO_PROJECT)),
        ("switch: beyond 64 bits", PM, form, TOO_BIG),
    ]:
        action = {**select, "type": "static_select", "selected_option": option(value)}
        outcome = await probe.interaction(name, block_actions(user, sent, action))
        assert outcome.answer.status in (200, 400), outcome
    for name, user, sent in [
        ("user search: another user's form", STRANGER, form),
        ("user search: tampered metadata", PM, tampered(form, PM, p=2002)),
    ]:
        outcome = await probe.interaction(
            name, suggestion(user, sent, "access_link_project_user", "")
        )
        assert outcome.answer.json() == {"options": []}, outcome
    for name, user, sent in [
        ("save: another user's form", STRANGER, filled),
        ("save: tampered metadata", PM, tampered(filled, PM, p=2002)),
        ("save: metadata not JSON", PM, {**filled, "private_metadata": "]["}),
    ]:
        outcome = await probe.interaction(name, submission(user, sent))
        body = outcome.answer.json()
        assert body["response_action"] == "errors", outcome
        assert "couldn't verify this form" in " ".join(body["errors"].values())
    beyond = with_form_state(
        form,
        {
            link: {"selected_user": VIEWER},
            project_user: {"selected_option": option(TOO_BIG)},
        },
    )
    outcome = await probe.interaction("save: project user beyond 64 bits", submission(PM, beyond))
    assert outcome.answer.status == 200 and outcome.answer.json()["response_action"] == "errors"
    check(probe, caplog)
    await nothing_changed()


# --- the digest form and the schedule buttons ----------------------------------------------------


def schedule_view(view: dict[str, Any], **choices: Any) -> dict[str, Any]:
    include_private = choices.pop("include_private", False)
    state = schedule_state(view, **choices)
    checked = [option("include_private")] if include_private else []
    state["state"]["values"]["schedule_private"] = {
        "schedule_private_choice": {"type": "checkboxes", "selected_options": checked}
    }
    return state


async def test_the_digest_form_checks_permission_before_channels_and_refuses_dms(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    view = await slack.open_modal(PM, "schedule")
    fake_slack.deny_channel("C_SECRET", "channel_not_found")
    viewer_view = {**view, "private_metadata": reseal(view["private_metadata"], PM, VIEWER)}
    probes_before = len(fake_slack.calls_to("conversations.info"))
    answers = {}
    for name, user, sent in [
        ("viewer probes a channel", VIEWER, schedule_view(viewer_view, channel="C_SECRET")),
        ("stranger with the PM's form", STRANGER, schedule_view(view, channel="C_SECRET")),
        ("viewer, project beyond 64 bits", VIEWER, schedule_view(viewer_view, project_id=TOO_BIG)),
    ]:
        outcome = await probe.interaction(name, submission(user, sent))
        answers[name] = " ".join(outcome.answer.json()["errors"].values())
    assert "only on projects where you have Admin" in answers["viewer probes a channel"]
    assert "couldn't verify" in answers["stranger with the PM's form"]
    assert "Choose a project" in answers["viewer, project beyond 64 bits"]
    assert len(fake_slack.calls_to("conversations.info")) == probes_before  # no oracle
    fake_slack.set_channel_members("C_OTHERS", [VIEWER])
    for name, channel, expected in [
        ("a DM of someone else", f"D{VIEWER}", "channels only"),
        ("a channel the PM is not in", "C_OTHERS", "not a member"),
        ("a channel the bot can't see", "C_SECRET", "can't see that channel"),
    ]:
        outcome = await probe.interaction(
            name, submission(PM, schedule_view(view, channel=channel))
        )
        assert expected in " ".join(outcome.answer.json()["errors"].values()), outcome
    outcome = await probe.interaction(
        "weekday beyond 64 bits", submission(PM, schedule_view(view, weekday=TOO_BIG))
    )
    assert "day of the week" in json.dumps(outcome.answer.json())
    check(probe, caplog)
    await nothing_changed()


async def test_schedule_buttons_refuse_outsiders_and_malformed_ids(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    view = await slack.open_modal(PM, "schedule")
    answer = await slack.interaction(submission(PM, schedule_view(view)))
    assert answer.status == 200 and not answer.text
    [schedule] = await Schedule.all()
    before = len(fake_slack.ephemerals)
    for action_id in ("schedule_run_now", "schedule_pause", "schedule_resume", "schedule_delete"):
        for name, user, value in [
            ("stranger", STRANGER, str(schedule.id)),
            ("unknown schedule", STRANGER, "424242"),
            ("beyond 64 bits", PM, TOO_BIG),
            ("not a number", PM, "x"),
        ]:
            payload = block_actions(
                user,
                None,
                {"action_id": action_id, "value": value, "type": "button", "action_ts": "1.0"},
            )
            payload["response_url"] = fake_slack.response_url(f"hostile-{action_id}-{name}")
            outcome = await probe.interaction(f"{action_id}: {name}", payload)
            assert outcome.answer.status == 200, outcome
    await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) >= before + 16)
    texts = [e["text"] for e in fake_slack.ephemerals[before:]]
    assert not any("temporary problem" in text for text in texts), texts
    check(probe, caplog)
    assert await Schedule.filter(paused=False).count() == 1
    assert await Job.all().count() == 0


async def test_the_home_tab_event_without_a_user_is_ignored(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe = Probe(slack, fake_slack)
    for name, event in [
        ("no user", {"type": "app_home_opened", "tab": "home"}),
        ("user not a string", {"type": "app_home_opened", "tab": "home", "user": {"id": PM}}),
    ]:
        body = json.dumps(
            {"type": "event_callback", "team_id": TEAM_ID, "api_app_id": "A0001", "event": event}
        )
        outcome = await probe.raw(name, body, content_type="application/json")
        assert outcome.answer.status == 200, outcome
    # Events are acknowledged before their listener runs: wait for a sound event's Home tab,
    # sent after them, so that what the two above did (nothing) has happened when checked.
    sound = {"type": "app_home_opened", "tab": "home", "user": PM}
    body = json.dumps(
        {"type": "event_callback", "team_id": TEAM_ID, "api_app_id": "A0001", "event": sound}
    )
    sent = await probe.raw("a sound event", body, member=True, content_type="application/json")
    assert sent.answer.status == 200
    await fake_slack.wait_for(lambda: [v for v in fake_slack.published if v["user_id"] == PM])
    check(probe, caplog)
    assert [view["user_id"] for view in fake_slack.published] == [PM]


def test_the_seal_binds_metadata_to_one_user() -> None:
    sealed = SEAL.seal('{"c":"C1","u":"U1"}', "U1")
    assert SEAL.open(sealed, "U1") == '{"c":"C1","u":"U1"}'
    for wrong in ("U2", ""):
        with pytest.raises(ValueError):
            SEAL.open(sealed, wrong)
    for garbled in ("", "{}", "[]", "null", '{"m": 1, "s": "x"}', sealed.replace("C1", "C2")):
        with pytest.raises(ValueError):
            SEAL.open(garbled, "U1")
