"""The Procore client against the fake Procore over real HTTP: token, company header,
pagination, rate limits, retries, errors, and what reaches the logs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from procore import api
from procore.client import ProcoreClient
from procore.errors import (
    ProcoreAuthError,
    ProcoreForbidden,
    ProcoreNotFound,
    ProcoreUnavailable,
    ProjectNotReachable,
)
from tests.procore.fake_procore import CLIENT_SECRET, FakeProcore, FakeProject
from tests.procore.fixtures import client_config
from tests.storage.bundles import PROJECT_ID

REQUISITIONS = "/rest/v1.1/requisitions"


async def read_requisitions(client: ProcoreClient) -> list[dict]:
    return await api.list_requisitions(client, PROJECT_ID)


# -- token ------------------------------------------------------------------------------------


async def test_token_is_minted_once_and_reused(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    for _ in range(3):
        assert len(await read_requisitions(procore_client)) == 3
    assert len(fake_procore.issued_tokens) == 1
    assert procore_client.stats.token_mints == 1
    calls = fake_procore.api_requests()
    assert len(calls) == 3
    assert {call.authorization for call in calls} == {f"Bearer {fake_procore.issued_tokens[0]}"}


async def test_every_call_carries_the_company_header(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    await api.list_projects(procore_client)
    await read_requisitions(procore_client)
    await api.show_project(procore_client, PROJECT_ID)
    assert {call.company_header for call in fake_procore.api_requests()} == {
        str(fake_procore.world.company_id)
    }
    assert [call.query["company_id"] for call in fake_procore.api_requests("/projects")] == [
        str(fake_procore.world.company_id)
    ] * 2


async def test_token_expiring_mid_run_is_reminted_once_and_the_call_retried(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    await read_requisitions(procore_client)
    fake_procore.expire_tokens()
    results = await asyncio.gather(*(read_requisitions(procore_client) for _ in range(5)))
    assert all(len(result) == 3 for result in results)
    assert len(fake_procore.issued_tokens) == 2  # one new token for five concurrent 401s
    statuses = [call.status for call in fake_procore.api_requests()]
    assert statuses.count(200) == 6
    assert 1 <= statuses.count(401) <= 5


async def test_token_is_renewed_before_expires_in(fake_procore: FakeProcore) -> None:
    fake_procore.world.token_expires_in = 1000  # renewed 100 s early (a tenth of the lifetime)
    now = [0.0]  # the client's clock, moved by the test (the fake's tokens stay valid)
    async with ProcoreClient(client_config(fake_procore), clock=lambda: now[0]) as client:
        await read_requisitions(client)
        now[0] = 899.0
        await read_requisitions(client)
        assert len(fake_procore.issued_tokens) == 1  # not yet
        now[0] = 900.0
        await read_requisitions(client)
    assert len(fake_procore.issued_tokens) == 2
    assert all(call.status == 200 for call in fake_procore.api_requests())


async def test_wrong_credentials_give_one_clear_line(fake_procore: FakeProcore) -> None:
    config = client_config(fake_procore, client_secret="wrong-secret")
    async with ProcoreClient(config) as client:
        with pytest.raises(ProcoreAuthError) as raised:
            await read_requisitions(client)
    message = str(raised.value)
    assert "\n" not in message
    assert "client id and secret" in message
    assert "wrong-secret" not in message
    assert fake_procore.api_requests() == []


async def test_401_after_a_fresh_token_is_one_clear_line(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.token_valid_seconds = 0  # every token is refused at once
    with pytest.raises(ProcoreAuthError) as raised:
        await read_requisitions(procore_client)
    assert "check the client id and secret" in str(raised.value)
    assert len(fake_procore.issued_tokens) == 2
    assert [call.status for call in fake_procore.api_requests()] == [401, 401]


# -- pagination -------------------------------------------------------------------------------


async def test_lists_follow_link_next_until_absent(fake_procore: FakeProcore) -> None:
    async with ProcoreClient(client_config(fake_procore, per_page_v1=2)) as client:
        requisitions = await api.list_requisitions(client, PROJECT_ID, ids=[7001, 7002, 7003])
    assert [entry["id"] for entry in requisitions] == [7001, 7002, 7003]
    calls = fake_procore.api_requests(REQUISITIONS)
    assert [call.query["page"] for call in calls] == ["1", "2"]
    assert all(call.query["per_page"] == "2" for call in calls)
    assert all(call.query.getall("filters[id][]") == ["7001", "7002", "7003"] for call in calls)


async def test_lists_ask_for_the_largest_page_size(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    await read_requisitions(procore_client)
    await api.list_project_users(procore_client, PROJECT_ID)
    assert {call.query["per_page"] for call in fake_procore.api_requests()} == {"2000"}


# -- rate limits, retries ---------------------------------------------------------------------


async def test_pacing_keeps_under_a_small_limit_without_a_429(fake_procore: FakeProcore) -> None:
    fake_procore.set_limits(spike=(5, 1.0))
    async with ProcoreClient(client_config(fake_procore, pace_reserve=5)) as client:
        results = await asyncio.gather(*(read_requisitions(client) for _ in range(14)))
        assert client.stats.rate_limited == 0
        assert client.stats.pacing_seconds > 0
    assert all(len(result) == 3 for result in results)
    assert fake_procore.answered_429 == 0
    calls = fake_procore.api_requests()
    assert len(calls) == 14
    for index in range(len(calls) - 5):  # never 6 calls within one second
        assert calls[index + 5].at - calls[index].at > 0.5


async def test_a_429_storm_is_waited_out(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.inject("429", times=3, retry_after=0.5)
    assert len(await read_requisitions(procore_client)) == 3
    assert procore_client.stats.rate_limited == 3
    assert [call.status for call in fake_procore.api_requests()] == [429, 429, 429, 200]
    calls = fake_procore.api_requests()
    for earlier, later in zip(calls, calls[1:], strict=False):
        # Reset is whole Unix seconds: the client waited at least until the one it was told
        assert later.at >= int(earlier.at + 0.5)
    # What the client chose to wait (each reset at most a second and a half away), not the
    # wall clock, which a busy machine stretches.
    assert 0 < procore_client.stats.wait_seconds < 10


async def test_a_429_storm_under_concurrency_loses_no_call(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.inject("429", times=12, retry_after=0.2)
    results = await asyncio.gather(*(read_requisitions(procore_client) for _ in range(8)))
    assert all(len(result) == 3 for result in results)
    assert procore_client.stats.rate_limited == 12
    assert [call.status for call in fake_procore.api_requests()].count(200) == 8


async def test_503_retry_after_is_honoured(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.inject("503", times=1, retry_after=1)
    assert len(await read_requisitions(procore_client)) == 3
    first, second = fake_procore.api_requests()
    assert (first.status, second.status) == (503, 200)
    assert second.at - first.at >= 1.0
    assert procore_client.stats.unavailable == 1


@pytest.mark.parametrize("kind", ["500", "502", "reset"])
async def test_5xx_and_resets_are_retried(
    procore_client: ProcoreClient, fake_procore: FakeProcore, kind: str
) -> None:
    fake_procore.inject(kind, times=2)
    assert len(await read_requisitions(procore_client)) == 3
    assert fake_procore.faults[0].times == 0
    statuses = [call.status for call in fake_procore.api_requests()]
    if kind == "reset":  # logged as 599, never sent; aiohttp may resend once by itself
        assert statuses == [599, 599, 200]
        assert procore_client.stats.retries >= 1
    else:
        assert statuses == [int(kind)] * 2 + [200]
        assert procore_client.stats.retries == 2


async def test_a_call_that_times_out_is_retried(fake_procore: FakeProcore) -> None:
    fake_procore.inject("slow", times=1, delay=3)
    config = client_config(fake_procore, request_timeout_seconds=0.5)
    async with ProcoreClient(config) as client:
        assert len(await read_requisitions(client)) == 3
        assert client.stats.retries == 1
        outcomes = [outcome for (_, outcome), n in client.stats.requests.items() for _ in range(n)]
    assert "timeout" in outcomes and fake_procore.faults[0].times == 0


async def test_retries_are_bounded(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.inject("500", times=100)
    with pytest.raises(ProcoreUnavailable) as raised:
        await read_requisitions(procore_client)
    assert "after 5 attempts" in str(raised.value)
    assert len(fake_procore.api_requests()) == 5


# -- errors -----------------------------------------------------------------------------------


async def test_403_project_is_not_reachable_and_others_go_on(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.add_project(FakeProject(id=2**40 + 5, name="Locked", forbidden=True))
    with pytest.raises(ProjectNotReachable) as raised:
        await api.list_requisitions(procore_client, 2**40 + 5)
    assert raised.value.project_id == 2**40 + 5
    assert "permitted projects" in raised.value.reason
    assert "\n" not in raised.value.reason
    assert len(fake_procore.issued_tokens) == 1  # a 403 does not re-mint
    assert len(await read_requisitions(procore_client)) == 3


async def test_403_on_a_company_tool_is_forbidden(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.permission_templates_forbidden = True
    with pytest.raises(ProcoreForbidden) as raised:
        await api.list_permission_templates(procore_client)
    assert not isinstance(raised.value, ProjectNotReachable)


async def test_403_app_not_connected_stops_with_what_the_admin_must_do(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    # DOC api_essentials/error_reference.md: a 403 "App is not connected to this company" when
    # App Management disconnected the app; it concerns every project, not one.
    fake_procore.world.disconnected = True
    with pytest.raises(ProcoreAuthError) as raised:
        await api.list_requisitions(procore_client, PROJECT_ID)
    assert "not connected to company" in str(raised.value)
    assert "App Management" in str(raised.value)
    assert [call.status for call in fake_procore.api_requests()] == [403]
    assert len(fake_procore.issued_tokens) == 1


async def test_404_is_not_found(procore_client: ProcoreClient) -> None:
    with pytest.raises(ProcoreNotFound):
        await api.show_requisition(procore_client, PROJECT_ID, 123456789)


async def test_self_check_reads_the_accounts_own_permissions(
    procore_client: ProcoreClient, fake_procore: FakeProcore
) -> None:
    fake_procore.world.my_tools = [
        {
            "name": "commitments",
            "friendly_name": "Commitments",
            "user_access_level": {"id": 2, "name": "Read Only"},
            "permitted_actions": [],
        }
    ]
    answer = await api.my_permissions(procore_client, PROJECT_ID)
    assert answer["tools"][0]["friendly_name"] == "Commitments"


# -- logs ----------------------------------------------------------------------------------------


async def test_no_secret_token_or_signature_in_the_logs(
    procore_client: ProcoreClient,
    fake_procore: FakeProcore,
    caplog: pytest.LogCaptureFixture,
    tmp_path,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_procore.inject("503", times=1, retry_after=0.1)
    fake_procore.inject("500", times=1)
    requisitions = await read_requisitions(procore_client)
    fake_procore.expire_tokens()
    await procore_client.download(requisitions[0]["attachments"][0]["url"], tmp_path, 10**6)
    assert caplog.records, "the client logs its calls"
    text = caplog.text + repr(procore_client.config) + repr(procore_client.stats)
    assert CLIENT_SECRET not in text
    for token in fake_procore.issued_tokens:
        assert token not in text
    assert "sig=" not in text
    assert "X-Amz-Signature" not in text
