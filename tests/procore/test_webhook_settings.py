"""PROCORE_WEBHOOK_SECRET (bot/settings.py): optional; when set, long enough and one word."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError, webhook_secret_from_env

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}


def test_unset_means_no_webhook_endpoint() -> None:
    assert Settings.from_env(BASE).procore_webhook_secret is None


def test_a_good_secret_is_kept_and_never_shown() -> None:
    secret = "0123456789abcdef0123456789abcdef"
    settings = Settings.from_env({**BASE, "PROCORE_WEBHOOK_SECRET": secret})
    assert settings.procore_webhook_secret == secret
    assert secret not in repr(settings)


@pytest.mark.parametrize("value", ["short", "0123456789abcdef 0123456789abcdef"])
def test_a_weak_or_spaced_secret_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(SettingsError, match="PROCORE_WEBHOOK_SECRET must be at least 24"):
        webhook_secret_from_env({"PROCORE_WEBHOOK_SECRET": value})
