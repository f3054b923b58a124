"""Playing Slack's side of the HTTP contract: signed requests to the bot's /slack/events.

Requests are signed exactly as Slack signs them: ``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``
with the signing secret, in ``X-Slack-Signature`` / ``X-Slack-Request-Timestamp``. Slash commands
are form-encoded; interactivity and options loads are a form with one ``payload`` JSON field.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.slack.fake_slack import TEAM_ID, FakeSlack

PROJECT_BLOCK = "project"
PROJECT_ACTION = "project_select"
INVOICE_ACTION = "invoice_select"


def slack_signature(secret: str, timestamp: str, body: str) -> str:
    """The X-Slack-Signature Slack would send for ``body`` at ``timestamp``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Answer:
    """The bot's HTTP answer."""

    status: int
    text: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.text)


class SlackDriver:
    """Sends what Slack would send to the bot, and reads the fake Slack for what came back."""

    def __init__(
        self, session: aiohttp.ClientSession, bot_url: str, secret: str, fake: FakeSlack
    ) -> None:
        self.session = session
        self.events_url = f"{bot_url}/slack/events"
        self.secret = secret
        self.fake = fake
        self._triggers = itertools.count(1)

    async def send(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """POST ``body`` signed (or with the given ``signature``) at ``timestamp`` (default now)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": (
                signature if signature is not None else slack_signature(self.secret, stamp, body)
            ),
            **(headers or {}),
        }
        started = time.perf_counter()
        async with self.session.post(self.events_url, data=body, headers=all_headers) as response:
            text = await response.text()
            return Answer(response.status, text, time.perf_counter() - started)

    # --- payloads -------------------------------------------------------------------------

    def command_body(self, user_id: str, text: str = "", channel_id: str = "C_JOBSITE") -> str:
        """The form body of ``/compile-backups text`` typed by ``user_id`` in ``channel_id``."""
        trigger = next(self._triggers)
        return urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": TEAM_ID,
                "team_domain": "fake",
                "channel_id": channel_id,
                "channel_name": "jobsite",
                "user_id": user_id,
                "user_name": user_id.lower(),
                "command": "/compile-backups",
                "text": text,
                "api_app_id": "A0001",
                "response_url": self.fake.response_url(f"cmd{trigger}"),
                "trigger_id": f"trigger.{trigger}",
            }
        )

    async def command(self, user_id: str, text: str = "", channel_id: str = "C_JOBSITE") -> Answer:
        """Type the slash command."""
        return await self.send(self.command_body(user_id, text, channel_id))

    async def interaction(self, payload: dict[str, Any]) -> Answer:
        """Send an interactivity or options payload."""
        return await self.send(urlencode({"payload": json.dumps(payload)}))

    async def open_modal(
        self, user_id: str, text: str = "", channel_id: str = "C_JOBSITE"
    ) -> dict[str, Any]:
        """Type the command and return the modal the bot opened (as views.open returned it)."""
        before = len(self.fake.calls_to("views.open"))
        answer = await self.command(user_id, text, channel_id)
        assert answer.status == 200, answer
        await self.fake.wait_for(lambda: len(self.fake.calls_to("views.open")) > before)
        view_id = list(self.fake.views)[-1]
        stored = self.fake.views[view_id]
        return {**stored.view, "id": stored.id, "hash": stored.hash, "state": {"values": {}}}

    def current_view(self, view_id: str) -> dict[str, Any]:
        """The modal as the fake holds it now (after any views.update)."""
        stored = self.fake.views[view_id]
        return {**stored.view, "id": stored.id, "hash": stored.hash, "state": {"values": {}}}

    async def choose_project(self, user_id: str, view: dict[str, Any], project_id: int) -> Answer:
        """Pick a project in the modal's select (block_actions)."""
        option = project_option(view, project_id)
        return await self.interaction(
            {
                "type": "block_actions",
                "team": {"id": TEAM_ID},
                "user": {"id": user_id},
                "api_app_id": "A0001",
                "trigger_id": f"trigger.{next(self._triggers)}",
                "container": {"type": "view", "view_id": view["id"]},
                "view": with_state(view, option, []),
                "actions": [
                    {
                        "type": "static_select",
                        "block_id": PROJECT_BLOCK,
                        "action_id": PROJECT_ACTION,
                        "selected_option": option,
                        "action_ts": str(time.time()),
                    }
                ],
            }
        )

    async def load_options(
        self, user_id: str, view: dict[str, Any], project_id: int | None, query: str = ""
    ) -> Answer:
        """An options load of the invoice select, typed ``query``, with ``project_id`` chosen."""
        option = project_option(view, project_id) if project_id is not None else None
        return await self.interaction(
            {
                "type": "block_suggestion",
                "user": {"id": user_id, "team_id": TEAM_ID},
                "team": {"id": TEAM_ID},
                "api_app_id": "A0001",
                "container": {"type": "view", "view_id": view["id"]},
                "action_id": INVOICE_ACTION,
                "block_id": invoice_block_id(view),
                "value": query,
                "view": with_state(view, option, []),
            }
        )

    def submission(
        self,
        user_id: str,
        view: dict[str, Any],
        project_id: int | None,
        invoice_options: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The view_submission payload of the modal with these choices."""
        option = project_option(view, project_id) if project_id is not None else None
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user_id, "team_id": TEAM_ID},
            "api_app_id": "A0001",
            "trigger_id": f"trigger.{next(self._triggers)}",
            "view": with_state(view, option, invoice_options),
        }

    async def submit(
        self,
        user_id: str,
        view: dict[str, Any],
        project_id: int | None,
        invoice_options: list[dict[str, Any]],
    ) -> Answer:
        """Press Compile."""
        return await self.interaction(self.submission(user_id, view, project_id, invoice_options))


def _element(view: dict[str, Any], action_id: str) -> tuple[str, dict[str, Any]]:
    for block in view["blocks"]:
        element = block.get("element") or {}
        if element.get("action_id") == action_id:
            return block["block_id"], element
    raise AssertionError(f"no {action_id} in the modal")


def invoice_block_id(view: dict[str, Any]) -> str:
    """The block id of the modal's invoice select."""
    return _element(view, INVOICE_ACTION)[0]


def project_option(view: dict[str, Any], project_id: int) -> dict[str, Any]:
    """The option of ``project_id`` in the modal's project select."""
    _, element = _element(view, PROJECT_ACTION)
    for option in element["options"]:
        if option["value"] == str(project_id):
            return option
    raise AssertionError(f"project {project_id} is not offered")


def flatten_options(answer: Answer) -> list[dict[str, Any]]:
    """The options of an options-load answer, groups flattened, in order."""
    body = answer.json()
    if "option_groups" in body:
        return [option for group in body["option_groups"] for option in group["options"]]
    return list(body.get("options", []))


def invoice_options(answer: Answer) -> dict[int, dict[str, Any]]:
    """Invoice id → option of an options-load answer; the "All N invoices of <period>" options
    (values ``period:<id>``) are left out."""
    return {
        int(option["value"]): option
        for option in flatten_options(answer)
        if not option["value"].startswith("period:")
    }


def with_state(
    view: dict[str, Any], project: dict[str, Any] | None, invoices: list[dict[str, Any]]
) -> dict[str, Any]:
    """``view`` as Slack sends it back: ``state.values`` holding the current choices."""
    values: dict[str, Any] = {
        PROJECT_BLOCK: {PROJECT_ACTION: {"type": "static_select", "selected_option": project}}
    }
    values[invoice_block_id(view)] = {
        INVOICE_ACTION: {"type": "multi_external_select", "selected_options": invoices}
    }
    return {**view, "state": {"values": values}}
