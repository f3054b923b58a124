"""Procore webhooks end to end (bot/procore_webhooks.py, commands/procore_webhooks.py), on
SQLite and PostgreSQL: the bot runs for real (HTTP server, worker), the fake Procore serves the
demo project and sends its deliveries to the hooks registered with it, Slack is the fake Slack.

The database starts from a full read of the fake Procore (as the sync does), so the bot holds
exactly what Procore holds.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.server import BotServer
from commands.apply_snapshot import apply_snapshot
from commands.procore_webhooks import (
    NAMESPACE,
    RETIRED_TRIGGERS,
    delivery_health,
    hooks_status,
    install_hooks,
    remove_hooks,
    wanted_triggers,
)
from procore.client import ProcoreClient
from sources.procore import read_project
from storage.jobs import Job
from storage.models import Invoice, ProjectUser
from storage.webhooks import PROCORE_WEBHOOK, WebhookDelivery, WebhookResource
from tests.procore.fake_procore import (
    TEMPLATE_IDS,
    FakeProcore,
    ProcoreWorld,
    post_delivery,
    touch,
    webhook_payload,
)
from tests.procore.fixtures import procore_settings
from tests.slack.conftest import (
    DEMO_PROJECT,
    PM,
    VIEWER,
    bot_settings,
    offered_options,
    running_bot,
)
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_driver import SlackDriver, flatten_options
from tests.slack.test_slack_manage_access import open_home
from tests.waiting import eventually

SECRET = "whsec-test-0123456789abcdef0123456789"
DRAW_REQUESTS = "Draw Requests"


@pytest.fixture
async def synced(database: str, procore_client: ProcoreClient) -> int:
    """The demo project read whole from the fake Procore and stored."""
    await apply_snapshot(await read_project(procore_client, DEMO_PROJECT, since=None))
    return DEMO_PROJECT


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, synced: int, fake_procore: FakeProcore
) -> AsyncIterator[BotServer]:
    """The bot with PROCORE_* and PROCORE_WEBHOOK_SECRET; a short debounce."""
    async with running_bot(
        bot_settings(
            fake_slack, procore=procore_settings(fake_procore), procore_webhook_secret=SECRET
        ),
        worker_options={"poll_seconds": 0.2, "progress_interval": 0.2},
        webhook_options={"debounce": 0.5, "max_wait": 5.0},
    ) as server:
        yield server


@pytest.fixture
async def installed(bot: BotServer, procore_client: ProcoreClient) -> str:
    """The company hook registered with the fake Procore, pointing at the bot."""
    url = f"{bot.url}/procore/webhooks"
    await install_hooks(procore_client, url, SECRET)
    return url


async def until(condition: Callable[[], Any], within: float = 30.0) -> Any:
    """Poll an async condition until it is truthy (a deadline, not a sleep)."""
    return await eventually(condition, within)


async def invoice_status(invoice_id: int) -> str | None:
    invoice = await Invoice.get_or_none(id=invoice_id)
    return invoice.status if invoice is not None else None


async def no_pending_reads() -> bool:
    """Every re-read asked for was applied."""
    return not await WebhookResource.filter().exists() or all(
        row.applied >= row.requested for row in await WebhookResource.all()
    )


def requisition(world: ProcoreWorld, invoice_id: int) -> dict[str, Any]:
    return world.projects[DEMO_PROJECT].requisitions[invoice_id]


def show_reads(fake: FakeProcore) -> list[str]:
    """The single-requisition reads the fake answered."""
    return [entry.path for entry in fake.api_requests("/rest/v1.1/requisitions/")]


# ---------------------------------------------------------------------------------------------
# Registration


async def test_install_is_idempotent_and_status_and_remove_tell_the_truth(
    database: str, fake_procore: FakeProcore, procore_client: ProcoreClient, synced: int
) -> None:
    url = "https://bot.example.com/procore/webhooks"
    first = await install_hooks(procore_client, url, SECRET)
    assert any("created" in line for line in first)
    hooks = list(fake_procore.world.hooks.values())
    assert len(hooks) == 1
    assert hooks[0]["namespace"] == NAMESPACE
    assert hooks[0]["destination_url"] == url
    assert hooks[0]["destination_headers"] == {"Authorization": SECRET}
    registered = {
        (trigger["resource_name"], trigger["event_type"])
        for trigger in fake_procore.world.triggers[hooks[0]["id"]]
    }
    assert registered == wanted_triggers()

    fake_procore.clear_logs()
    assert await install_hooks(procore_client, url, SECRET) == []
    writes = [entry for entry in fake_procore.requests if entry.method != "GET"]
    assert writes == []
    assert len(fake_procore.world.hooks) == 1
    assert len(fake_procore.world.triggers[hooks[0]["id"]]) == len(wanted_triggers())

    moved = await install_hooks(procore_client, "https://new.example.com/procore/webhooks", SECRET)
    assert moved == [
        f"company: hook {hooks[0]['id']} now points at https://new.example.com/procore/webhooks"
    ]
    assert len(fake_procore.world.hooks) == 1

    [state] = await hooks_status(procore_client, SECRET)
    assert state.project_id is None
    assert state.missing_triggers == 0
    assert state.authorization_matches
    # Procore shows the registered value masked to its last 5 characters: those differ.
    [wrong] = await hooks_status(procore_client, "another-secret-0123456789fedcba")
    assert not wrong.authorization_matches

    per_project = await install_hooks(procore_client, url, SECRET, scope="projects")
    assert per_project[0].startswith(f"project {DEMO_PROJECT}: hook ")
    assert await install_hooks(procore_client, url, SECRET, scope="projects") == []
    assert len(fake_procore.world.hooks) == 2

    removed = await remove_hooks(procore_client) + await remove_hooks(
        procore_client, scope="projects"
    )
    assert len(removed) == 2
    assert fake_procore.world.hooks == {}
    assert await hooks_status(procore_client, SECRET) == []


async def test_install_reactivates_a_disabled_hook_and_drops_retired_triggers(
    database: str, fake_procore: FakeProcore, procore_client: ProcoreClient, synced: int
) -> None:
    url = "https://bot.example.com/procore/webhooks"
    await install_hooks(procore_client, url, SECRET)
    [hook] = fake_procore.world.hooks.values()
    # Procore shows the Authorization masked to its last 5 characters: still "matches".
    fake_procore.clear_logs()
    assert await install_hooks(procore_client, url, SECRET) == []
    [shown] = await procore_client.get_list(
        f"/rest/v2.0/companies/{fake_procore.world.company_id}/webhooks/hooks",
        endpoint="GET hooks",
    )
    assert shown["destination_headers"]["Authorization"] != SECRET
    assert shown["destination_headers"]["Authorization"].endswith(SECRET[-5:])
    assert isinstance(shown["id"], str)

    # Procore disabled the hook after failed deliveries, and an older install left the
    # Project Users / Project Vendors update triggers Procore no longer fires.
    hook["status"] = "disabled"
    for number, (name, event) in enumerate(sorted(RETIRED_TRIGGERS)):
        fake_procore.world.triggers[hook["id"]].append(
            {"id": 990_000_000_000 + number, "resource_name": name, "event_type": event}
        )
    [state] = await hooks_status(procore_client, SECRET)
    assert not state.active
    changes = await install_hooks(procore_client, url, SECRET)
    assert changes == [
        f"company: hook {hook['id']} re-activated, now points at {url}",
        f"company: {len(RETIRED_TRIGGERS)} retired trigger(s) removed",
    ]
    assert hook["status"] == "active"
    registered = {
        (trigger["resource_name"], trigger["event_type"])
        for trigger in fake_procore.world.triggers[hook["id"]]
    }
    assert registered == wanted_triggers() and not registered & RETIRED_TRIGGERS
    assert ("Company Users", "update") in registered
    [state] = await hooks_status(procore_client, SECRET)
    assert state.active and state.authorization_matches and state.missing_triggers == 0


# ---------------------------------------------------------------------------------------------
# The endpoint


async def test_wrong_or_missing_authorization_is_refused_and_nothing_is_stored(
    bot: BotServer, fake_procore: FakeProcore
) -> None:
    url = f"{bot.url}/procore/webhooks"
    payload = webhook_payload(
        fake_procore.world.company_id, DEMO_PROJECT, DRAW_REQUESTS, 9001, "update"
    )
    assert await post_delivery(url, payload, {}) == 401
    assert await post_delivery(url, payload, {"Authorization": SECRET[:-1]}) == 401
    assert await post_delivery(url, payload, {"Authorization": f"Bearer {SECRET}"}) == 401
    assert await WebhookDelivery.all().count() == 0
    assert await Job.filter(kind=PROCORE_WEBHOOK).count() == 0
    assert await post_delivery(url, payload, {"Authorization": SECRET}) == 200
    assert await WebhookDelivery.all().count() == 1


async def test_oversized_malformed_and_unknown_deliveries_get_a_4xx_and_one_log_line(
    bot: BotServer, fake_procore: FakeProcore, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{bot.url}/procore/webhooks"
    headers = {"Authorization": SECRET}
    company = fake_procore.world.company_id
    good = webhook_payload(company, DEMO_PROJECT, DRAW_REQUESTS, 9001, "update")
    caplog.set_level(logging.WARNING)
    huge = dict(good, padding="x" * (70 * 1024))
    assert await post_delivery(url, huge, headers) == 413
    # Under the cap, a body arriving in several chunks is read whole.
    assert await post_delivery(url, dict(good, padding="y" * (40 * 1024)), headers) == 200
    cases: list[Any] = [
        b"{not json",
        b"[1, 2]",
        dict(good, resource_name="Budget Snapshots"),
        dict(good, event_type="archive"),
        {key: value for key, value in good.items() if key != "resource_id"},
        {key: value for key, value in good.items() if key != "project_id"},
        dict(good, resource_id="nine"),
        {key: value for key, value in good.items() if key != "timestamp"},
    ]
    for body in cases:
        assert await post_delivery(url, body, headers) == 400, body
    assert await WebhookDelivery.all().count() == 1  # the padded one
    refusals = [r for r in caplog.records if "Procore webhook refused" in r.getMessage()]
    assert len(refusals) == len(cases) + 1
    assert not [r for r in caplog.records if r.exc_info]


async def test_duplicates_are_acknowledged_and_ignored_and_the_last_read_wins(
    bot: BotServer, installed: str, fake_procore: FakeProcore, procore_world: ProcoreWorld
) -> None:
    url = installed
    headers = {"Authorization": SECRET}
    company = procore_world.company_id
    newer = webhook_payload(company, DEMO_PROJECT, DRAW_REQUESTS, 9022, "update", ulid="01NEWER")
    older = webhook_payload(
        company,
        DEMO_PROJECT,
        DRAW_REQUESTS,
        9022,
        "update",
        ulid="01OLDER",
        timestamp="2020-01-01T00:00:00.000Z",
    )
    requisition(procore_world, 9022)["status"] = "approved"
    touch(requisition(procore_world, 9022))
    async with aiohttp.ClientSession() as session:
        for body in (newer, newer, older, newer):  # a duplicate, then an older one, out of order
            assert await post_delivery(url, body, headers, session=session) == 200
        no_ulid = dict(older, ulid=None)
        assert await post_delivery(url, no_ulid, headers, session=session) == 200
        assert await post_delivery(url, no_ulid, headers, session=session) == 200
        # Without a ulid the event id tells a duplicate (DOC plan_your_app/webhooks.md)…
        later = dict(no_ulid, timestamp="2020-01-01T00:00:09.000Z")
        assert await post_delivery(url, later, headers, session=session) == 200
        # …and without either, resource + event + timestamp.
        bare = {key: value for key, value in no_ulid.items() if key not in ("ulid", "id")}
        assert await post_delivery(url, bare, headers, session=session) == 200
        assert await post_delivery(url, bare, headers, session=session) == 200
    # newer, older, the one without a ulid (by its event id), the bare one
    assert await WebhookDelivery.all().count() == 4
    await until(no_pending_reads)
    assert await invoice_status(9022) == "approved"
    assert len(show_reads(fake_procore)) <= 2  # coalesced: one read (two if a pass began early)


async def test_a_burst_of_200_deliveries_for_50_invoices_is_coalesced(
    bot: BotServer, installed: str, fake_procore: FakeProcore, procore_world: ProcoreWorld
) -> None:
    project = procore_world.projects[DEMO_PROJECT]
    template = requisition(procore_world, 9001)
    new_ids = list(range(9100, 9150))
    for number, invoice_id in enumerate(new_ids, start=10):
        entry = copy.deepcopy(template)
        entry.update(id=invoice_id, number=number, status="under_review", attachments=[])
        project.requisitions[invoice_id] = entry
    fake_procore.clear_logs()
    async with aiohttp.ClientSession() as session:

        async def changes_of(invoice_id: int) -> list[int]:
            """One invoice's burst: created, then updated three times, back to back."""
            statuses = []
            for event in ("create", "update", "update", "update"):
                statuses += await fake_procore.deliver(
                    DRAW_REQUESTS, invoice_id, event, project_id=DEMO_PROJECT, session=session
                )
            return statuses

        bursts = await asyncio.gather(*(changes_of(invoice_id) for invoice_id in new_ids))
    statuses = [status for burst in bursts for status in burst]
    assert statuses == [200] * 200

    async def all_stored() -> bool:
        return await Invoice.filter(id__in=new_ids).count() == 50

    await until(all_stored)
    await until(no_pending_reads)
    reads = show_reads(fake_procore)
    assert 50 <= len(reads) <= 60, len(reads)
    assert len(set(reads)) == 50


async def test_deliveries_that_come_after_the_read_of_their_change_read_nothing_more(
    bot: BotServer, installed: str, fake_procore: FakeProcore, procore_world: ProcoreWorld
) -> None:
    """A burst whose deliveries come late (Procore's queue, a slow answer): one read per
    changed invoice; a delivery of a change made after that read reads again."""
    url, headers = installed, {"Authorization": SECRET}
    company = procore_world.company_id
    project = procore_world.projects[DEMO_PROJECT]
    changed = sorted(project.requisitions)[:6]
    bursts = {}
    for invoice_id in changed:
        requisition(procore_world, invoice_id)["status"] = "revise_and_resubmit"
        touch(requisition(procore_world, invoice_id))
        bursts[invoice_id] = [  # stamped now, at the change
            webhook_payload(company, DEMO_PROJECT, DRAW_REQUESTS, invoice_id, event)
            for event in ("create", "update", "update", "update")
        ]
    fake_procore.clear_logs()
    async with aiohttp.ClientSession() as session:
        for invoice_id in changed:
            assert await post_delivery(url, bursts[invoice_id][0], headers, session=session) == 200

        async def all_read() -> bool:
            statuses = await Invoice.filter(id__in=changed).values_list("status", flat=True)
            return set(statuses) == {"revise_and_resubmit"} and await no_pending_reads()

        await until(all_read)
        assert len(show_reads(fake_procore)) == len(changed)
        for invoice_id in changed:  # the rest of each burst, after its read
            for body in bursts[invoice_id][1:]:
                assert await post_delivery(url, body, headers, session=session) == 200
        # Stored (the answer came after the write), and nothing asked: no pass, no read.
        assert await WebhookDelivery.filter(resource_id__in=changed).count() == 4 * len(changed)
        assert await no_pending_reads()
        requisition(procore_world, changed[0])["status"] = "approved"
        touch(requisition(procore_world, changed[0]))
        await fake_procore.deliver(
            DRAW_REQUESTS, changed[0], "update", project_id=DEMO_PROJECT, session=session
        )
    await until(lambda: _status_is(changed[0], "approved"))
    await until(no_pending_reads)
    reads = show_reads(fake_procore)
    assert len(reads) == len(changed) + 1, reads


async def _status_is(invoice_id: int, status: str) -> bool:
    return await invoice_status(invoice_id) == status


async def test_a_deleted_invoice_leaves_the_search_at_once(
    bot: BotServer,
    installed: str,
    fake_procore: FakeProcore,
    procore_world: ProcoreWorld,
    slack: SlackDriver,
) -> None:
    view = await slack.open_modal(PM)
    assert 9021 in await offered_options(slack, PM, view)
    del procore_world.projects[DEMO_PROJECT].requisitions[9021]
    assert await fake_procore.deliver(DRAW_REQUESTS, 9021, "delete", project_id=DEMO_PROJECT) == [
        200
    ]
    # An update whose re-read answers 404 deletes too.
    del procore_world.projects[DEMO_PROJECT].requisitions[9003]
    assert await fake_procore.deliver(DRAW_REQUESTS, 9003, "update", project_id=DEMO_PROJECT) == [
        200
    ]

    async def gone() -> bool:
        return not await Invoice.filter(id__in=[9021, 9003]).exists()

    await until(gone)
    offered = await offered_options(slack, PM, view)
    assert 9021 not in offered and 9003 not in offered
    assert 9001 in offered


async def test_lowered_access_takes_effect_on_the_next_slack_request(
    bot: BotServer,
    installed: str,
    fake_procore: FakeProcore,
    procore_world: ProcoreWorld,
    slack: SlackDriver,
) -> None:
    view = await slack.open_modal(PM)
    assert 9001 in await offered_options(slack, PM, view)
    pm = next(u for u in procore_world.projects[DEMO_PROJECT].users if u["id"] == 1)
    pm["permission_template"]["id"] = TEMPLATE_IDS["none"]
    # Since 2026-06-30 a user's change comes as a Company Users update, with no project_id
    # (DOC announcements/webhook_fanout_migration.md); Project Users updates no longer come.
    assert await fake_procore.deliver("Project Users", 1, "update", project_id=DEMO_PROJECT) == []
    assert await fake_procore.deliver("Company Users", 1, "update", project_id=None) == [200]

    async def lowered() -> bool:
        user = await ProjectUser.get(project_id=DEMO_PROJECT, user_id=1)
        return user.commitments_access == "none"

    await until(lowered)
    # The modal opened before the change: its very next options load offers nothing.
    answer = await slack.load_options(PM, view, DEMO_PROJECT)
    assert answer.status == 200
    assert "9001" not in answer.text and "9022" not in answer.text


async def test_a_delivery_while_procore_answers_429_is_processed_later(
    bot: BotServer,
    installed: str,
    fake_procore: FakeProcore,
    procore_world: ProcoreWorld,
    slack: SlackDriver,
) -> None:
    fake_procore.inject("429", times=3, path_contains="/requisitions/9011", retry_after=1)
    requisition(procore_world, 9011)["status"] = "revise_and_resubmit"
    touch(requisition(procore_world, 9011))
    assert await fake_procore.deliver(DRAW_REQUESTS, 9011, "update", project_id=DEMO_PROJECT) == [
        200
    ]

    async def updated() -> bool:
        return await invoice_status(9011) == "revise_and_resubmit"

    await until(updated)
    assert fake_procore.answered_429 == 3
    health = await delivery_health()
    assert health.pending_reads == 0 and health.received == 1
    assert "last delivery" in health.render()
    # The safety net: an admin's App Home says when the last delivery came.
    home = json.dumps(await open_home(slack, PM))
    assert "Procore webhooks: last delivery" in home
    assert "Procore webhooks" not in json.dumps(await open_home(slack, VIEWER))


async def test_after_a_failed_pass_the_next_delivery_queues_a_new_one(
    bot: BotServer, installed: str, fake_procore: FakeProcore, procore_world: ProcoreWorld
) -> None:
    fake_procore.inject("500", times=5, path_contains="/requisitions/9012")  # every attempt
    requisition(procore_world, 9012)["status"] = "revise_and_resubmit"
    touch(requisition(procore_world, 9012))
    await fake_procore.deliver(DRAW_REQUESTS, 9012, "update", project_id=DEMO_PROJECT)

    async def pass_failed() -> bool:
        return await Job.filter(kind=PROCORE_WEBHOOK, status="failed").exists()

    await until(pass_failed)
    assert await invoice_status(9012) != "revise_and_resubmit"
    requisition(procore_world, 9012)["status"] = "approved"
    touch(requisition(procore_world, 9012))
    await fake_procore.deliver(DRAW_REQUESTS, 9012, "update", project_id=DEMO_PROJECT)
    await until(lambda: _status_is(9012, "approved"))
    assert await Job.filter(kind=PROCORE_WEBHOOK).count() == 2


async def test_an_update_in_procore_shows_in_the_next_options_load(
    bot: BotServer,
    installed: str,
    fake_procore: FakeProcore,
    procore_world: ProcoreWorld,
    slack: SlackDriver,
) -> None:
    view = await slack.open_modal(PM)

    async def found_by(query: str) -> set[int]:
        """The invoices the options load offers for ``query`` (the status is searchable even
        where a long vendor name leaves no room for it in the label)."""
        answer = await slack.load_options(PM, view, DEMO_PROJECT, query)
        assert answer.status == 200, answer
        return {int(o["value"]) for o in flatten_options(answer) if str(o["value"]).isdigit()}

    assert 9022 in await found_by("under review")
    assert 9022 not in await found_by("approved")
    requisition(procore_world, 9022)["status"] = "approved"
    touch(requisition(procore_world, 9022))
    assert await fake_procore.deliver(DRAW_REQUESTS, 9022, "update", project_id=DEMO_PROJECT) == [
        200
    ]

    async def shown() -> bool:
        return 9022 in await found_by("approved") and 9022 not in await found_by("under review")

    await until(shown, within=10.0)


async def test_two_processes_share_the_deliveries_and_read_each_change_once(
    bot: BotServer, fake_slack: FakeSlack, fake_procore: FakeProcore, procore_world: ProcoreWorld
) -> None:
    """Two bots on one database (as two processes behind a load balancer): deliveries reach
    either; each pass job runs once, each change is read once."""
    other = BotServer(
        bot_settings(
            fake_slack, procore=procore_settings(fake_procore), procore_webhook_secret=SECRET
        ),
        worker_options={"poll_seconds": 0.2, "progress_interval": 0.2},
        webhook_options={"debounce": 0.5, "max_wait": 5.0},
    )
    await other.start()
    try:
        changed = [9001, 9002, 9011, 9012, 9022]
        for invoice_id in changed:
            requisition(procore_world, invoice_id)["status"] = "revise_and_resubmit"
            touch(requisition(procore_world, invoice_id))
        fake_procore.clear_logs()
        headers = {"Authorization": SECRET}
        company = procore_world.company_id
        async with aiohttp.ClientSession() as session:

            async def burst(index: int, invoice_id: int) -> list[int]:
                statuses = []
                for turn, event in enumerate(("update", "update", "update")):
                    target = (bot, other)[(index + turn) % 2]
                    payload = webhook_payload(
                        company, DEMO_PROJECT, DRAW_REQUESTS, invoice_id, event
                    )
                    statuses.append(
                        await post_delivery(
                            f"{target.url}/procore/webhooks", payload, headers, session=session
                        )
                    )
                return statuses

            results = await asyncio.gather(*(burst(i, n) for i, n in enumerate(changed)))
        assert [status for statuses in results for status in statuses] == [200] * 15

        async def all_changed() -> bool:
            statuses = await Invoice.filter(id__in=changed).values_list("status", flat=True)
            return set(statuses) == {"revise_and_resubmit"}

        await until(all_changed)
        await until(no_pending_reads)
        reads = show_reads(fake_procore)
        assert len(set(reads)) == len(changed)
        assert len(reads) <= len(changed) + 2, reads
        passes = await Job.filter(kind=PROCORE_WEBHOOK).all()
        assert passes and all(job.attempts == 1 for job in passes)
    finally:
        await other.stop()
