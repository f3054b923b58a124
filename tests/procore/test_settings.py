"""The PROCORE_* settings: all or none, one line naming the variable, exit 2 in serve and CLI."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.server import run_serve
from bot.settings import Settings, SettingsError, procore_settings_from_env

SLACK = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
PROCORE = {
    "PROCORE_CLIENT_ID": "id",
    "PROCORE_CLIENT_SECRET": "secret",
    "PROCORE_COMPANY_ID": "9223372036854775807",
}


def test_none_set_means_no_procore() -> None:
    assert procore_settings_from_env({}) is None
    assert Settings.from_env(SLACK).procore is None


def test_defaults_and_overrides() -> None:
    settings = Settings.from_env({**SLACK, **PROCORE}).procore
    assert settings is not None
    assert settings.company_id == 2**63 - 1 and settings.sync_minutes == 15
    assert settings.api_url == "https://api.procore.com"
    assert settings.login_url == "https://login.procore.com"
    assert "secret" not in repr(settings)
    custom = procore_settings_from_env(
        {
            **PROCORE,
            "PROCORE_API_URL": "http://127.0.0.1:9/",
            "PROCORE_LOGIN_URL": "http://127.0.0.1:9",
            "PROCORE_SYNC_MINUTES": "0",
        }
    )
    assert custom is not None and custom.sync_minutes == 0
    config = custom.client_config()
    assert config.api_url == "http://127.0.0.1:9" and config.company_id == 2**63 - 1
    assert config.token_endpoint == "http://127.0.0.1:9/oauth/token"


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"PROCORE_CLIENT_ID": "id"}, "PROCORE_CLIENT_SECRET"),
        ({"PROCORE_API_URL": "https://api.procore.com"}, "PROCORE_CLIENT_ID"),
        ({**PROCORE, "PROCORE_COMPANY_ID": "acme"}, "PROCORE_COMPANY_ID"),
        ({**PROCORE, "PROCORE_COMPANY_ID": "0"}, "PROCORE_COMPANY_ID"),
        ({**PROCORE, "PROCORE_API_URL": "api.procore.com"}, "PROCORE_API_URL"),
        ({**PROCORE, "PROCORE_LOGIN_URL": "ftp://x"}, "PROCORE_LOGIN_URL"),
        ({**PROCORE, "PROCORE_SYNC_MINUTES": "-1"}, "PROCORE_SYNC_MINUTES"),
        ({**PROCORE, "PROCORE_SYNC_MINUTES": "often"}, "PROCORE_SYNC_MINUTES"),
    ],
)
def test_bad_or_partial_settings_name_the_variable_in_one_line(
    environment: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**SLACK, **environment})
    assert str(raised.value).startswith(variable) and "\n" not in str(raised.value)


def test_serve_and_cli_exit_2_on_bad_procore_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {**SLACK, "PROCORE_CLIENT_ID": "id"}.items():
        monkeypatch.setenv(name, value)
    assert run_serve() == 2
    assert main(["audit"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all("PROCORE_CLIENT_SECRET is not set" in line for line in lines)
