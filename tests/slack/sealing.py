"""Test helpers for sealed modal metadata (`bot.seal`): what an attacker who knew the signing
secret could forge, to reach the checks behind the seal."""

from __future__ import annotations

import json

from bot.seal import MetadataSeal
from tests.slack.conftest import SIGNING_SECRET

SEAL = MetadataSeal(SIGNING_SECRET)  # the key the test bot derives (HTTP mode)


def reseal(sealed: str, opened_for: str, user_id: str) -> str:
    """The same metadata as if opened by ``user_id`` (its requester field too), sealed for
    them."""
    data = json.loads(SEAL.open(sealed, opened_for))
    if "u" in data:
        data["u"] = user_id
    return SEAL.seal(json.dumps(data), user_id)


def plain_metadata(sealed: str, opened_for: str) -> str:
    """The builder's metadata inside a sealed value."""
    return SEAL.open(sealed, opened_for)
