"""``GET /metrics`` after real traffic, JSON log lines with their context, credentials scrubbed;
and the Slack-side security journeys: the linked person's DM, the private-contract warnings."""

from __future__ import annotations

import io
import json
import logging

import aiohttp
import pytest

from bot import logs
from bot.server import BotServer
from bot.settings import Settings, SettingsError
from storage.audit import AuditEntry
from storage.jobs import Job
from storage.schedules import Schedule
from tests.slack.conftest import (
    BOT_TOKEN,
    DEMO_PROJECT,
    PM,
    SIGNING_SECRET,
    VIEWER,
    finished_jobs,
    request_backup,
)
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_driver import SlackDriver
from tests.slack.test_hostile_requests import schedule_view, submission
from tests.slack.test_slack_manage_access import open_access_form, option, save


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        series, _, label_text = head.partition("{")
        if series != name:
            continue
        found = dict(
            part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
        )
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(value)
    return 0.0


async def scrape(bot: BotServer) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/metrics") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        return await answer.text()


async def test_metrics_count_jobs_compiles_slack_calls_retries_and_acks(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    before = await scrape(bot)
    fake_slack.rate_limit("chat.postMessage", retry_after=1)
    answer = await request_backup(slack, PM, [9001])
    assert answer.status == 200
    await fake_slack.wait_for(
        lambda: any(c.method == "files.completeUploadExternal" and c.ok for c in fake_slack.calls),
        60,
    )
    await finished_jobs(1)
    await slack.send("garbage", signature="v0=00")
    after = await scrape(bot)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("invoice_backups_compile_duration_seconds_count") == 1
    assert grew("invoice_backups_compile_size_bytes_count") == 1
    assert grew("invoice_backups_compile_size_bytes_sum") > 10_000
    assert (
        grew(
            "invoice_backups_slack_api_retries_total",
            method="chat.postMessage",
            reason="ratelimited",
        )
        == 1
    )
    assert grew("invoice_backups_slack_api_calls_total", method="views.open", outcome="ok") == 1
    assert (
        grew("invoice_backups_slack_api_calls_total", method="chat.postMessage", outcome="ok") >= 2
    )
    assert grew("invoice_backups_slack_ack_seconds_count", kind="command") == 1
    assert grew("invoice_backups_slack_ack_seconds_count", kind="view_submission") == 1
    assert grew("invoice_backups_slack_ack_seconds_count", kind="block_suggestion") == 1
    assert grew("invoice_backups_slack_rejected_requests_total", reason="bad_timestamp") == 0
    assert grew("invoice_backups_slack_rejected_requests_total", reason="bad_signature") == 1
    job_states = await Job.all().values_list("kind", "status")
    for kind, status in set(job_states):
        count = job_states.count((kind, status))
        assert sample(after, "invoice_backups_jobs", kind=kind, state=str(status)) == count
    for name in ("invoice_backups_procore_calls_total", "invoice_backups_webhook_deliveries_total"):
        assert f"# TYPE {name} counter" in after  # defined, for the Procore engineers
    for secret in (BOT_TOKEN, SIGNING_SECRET):
        assert secret not in after


def test_json_log_lines_carry_the_context_and_never_a_credential() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.context_filter())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.observability")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # only this handler: the token logged here is the test's own
    try:
        with logs.bind(request_id="req1", slack_user="U0PM", job_id=42):
            logger.info("posting with %s to %s", BOT_TOKEN, "https://files.example/up?sig=abc&x=1")
            try:
                raise ValueError(f"token was {BOT_TOKEN}")
            except ValueError:
                logger.exception("failed with Bearer %s", BOT_TOKEN)
        logger.info("outside any request")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines[:2]] == ["req1", "req1"]
    assert lines[0]["slack_user"] == "U0PM" and lines[0]["job_id"] == 42
    assert "request_id" not in lines[2]
    assert (
        lines[0]["message"]
        == "posting with [redacted] to https://files.example/up?sig=[redacted]&x=1"
    )
    assert "ValueError" in lines[1]["exception"]
    assert BOT_TOKEN not in stream.getvalue() and "xoxb-" not in stream.getvalue()


def test_plain_lines_carry_the_context_too() -> None:
    record = logging.LogRecord(
        "bot.x", logging.INFO, __file__, 1, "hello %s", ("xapp-1-A-b",), None
    )
    with logs.bind(request_id="r2", slack_user="U9"):
        logs.context_filter().filter(record)
    line = logs.PlainFormatter().format(record)
    assert line.endswith("bot.x: hello [redacted] [request_id=r2] [slack_user=U9]")


async def test_a_link_is_told_to_the_person_linked_and_self_links_are_refused(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    form = await open_access_form(slack, PM, f"access {DEMO_PROJECT}")
    link, project_user = (
        f"access-link-user-{DEMO_PROJECT}",
        f"access-link-project-user-{DEMO_PROJECT}",
    )
    own = await save(
        slack,
        PM,
        form,
        {link: {"selected_user": PM}, project_user: {"selected_option": option("3")}},
    )
    assert "your own Slack account" in own["errors"][project_user]
    linked = await save(
        slack,
        PM,
        form,
        {link: {"selected_user": VIEWER}, project_user: {"selected_option": option("2")}},
    )
    assert linked["response_action"] == "update"
    dm = await fake_slack.wait_for(
        lambda: [m for m in fake_slack.messages if m.channel == f"D{VIEWER}"], 10
    )
    assert "linked your Slack account to *Sam Okafor*" in dm[0].text
    outcomes = await AuditEntry.filter(action="access.link").values_list("outcome", flat=True)
    assert outcomes == ["refused", "succeeded"]


async def test_the_compile_modal_warns_before_showing_private_contracts_to_outsiders(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    answer = await request_backup(slack, PM, [9001, 9011], channel_id="C_SHARED")
    body = answer.json()
    assert body["response_action"] == "errors"
    warning = body["errors"]["delivery"]
    assert "Lee, Robin in this conversation" in warning and "Dana" not in warning
    assert "direct message" in warning
    assert await Job.all().count() == 0
    view = await slack.open_modal(PM, channel_id="C_SHARED")
    chosen = [{"text": {"type": "plain_text", "text": n}, "value": n} for n in ("9001", "9011")]
    payload = slack.submission(PM, view, DEMO_PROJECT, chosen)
    payload["view"]["state"]["values"]["delivery"] = {
        "delivery_choice": {"type": "radio_buttons", "selected_option": option("dm")}
    }
    answer = await slack.interaction(payload)
    assert answer.status == 200 and not answer.text
    [job] = await Job.all()
    assert job.payload["channel_id"] == f"D{PM}"
    public = await request_backup(slack, PM, [9001], channel_id="C_SHARED")  # nothing private
    assert public.status == 200 and not public.text


async def test_a_digest_with_private_contracts_names_who_will_see_them_first(
    bot: BotServer, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    view = await slack.open_modal(PM, "schedule")
    answer = await slack.interaction(
        submission(PM, schedule_view(view, channel="C_SHARED", include_private=True))
    )
    warning = answer.json()["errors"]["schedule_private"]
    assert "Lee, Robin in that channel are not on the private lists" in warning
    assert await Schedule.all().count() == 0
    confirmed = schedule_view(view, channel="C_SHARED", include_private=True)
    confirmed["state"]["values"]["schedule_private"]["schedule_private_choice"][
        "selected_options"
    ].append(option("private_audience_confirmed"))
    answer = await slack.interaction(submission(PM, confirmed))
    assert answer.status == 200 and not answer.text
    [schedule] = await Schedule.all()
    assert schedule.include_private and schedule.channel_id == "C_SHARED"
    quiet = await slack.interaction(submission(PM, schedule_view(view, channel="C_SHARED")))
    assert quiet.status == 200 and not quiet.text  # private left out: no warning needed
    assert [s.include_private for s in await Schedule.all().order_by("id")] == [True, False]


def test_the_log_format_and_the_seal_secret_are_settings() -> None:
    base = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    assert Settings.from_env(base).log_format == "plain"
    assert Settings.from_env({**base, "BACKUPS_LOG_FORMAT": "json"}).log_format == "json"
    assert Settings.from_env({**base, "BACKUPS_SECRET": "s3"}).backups_secret == "s3"
    with pytest.raises(SettingsError, match="BACKUPS_LOG_FORMAT"):
        Settings.from_env({**base, "BACKUPS_LOG_FORMAT": "xml"})


def test_whether_a_process_runs_jobs_is_a_setting() -> None:
    base = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    assert Settings.from_env(base).run_jobs is True
    assert Settings.from_env({**base, "BACKUPS_RUN_JOBS": "false"}).run_jobs is False
    assert Settings.from_env({**base, "BACKUPS_RUN_JOBS": "True"}).run_jobs is True
    with pytest.raises(SettingsError, match="BACKUPS_RUN_JOBS must be one of TRUE, FALSE"):
        Settings.from_env({**base, "BACKUPS_RUN_JOBS": "maybe"})
