"""``invoice-backups procore webhooks install|status|remove`` run as a user runs it (a
subprocess) against the fake Procore, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from commands.procore_webhooks import wanted_triggers
from tests.procore.fake_procore import FakeProcore
from tests.procore.fixtures import procore_environment

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-webhook-secret-0123456789abcdef"
URL = "https://bot.example.com/procore/webhooks"


async def run(fake: FakeProcore, *args: str, secret: str | None = SECRET) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **procore_environment(fake),
    }
    env.pop("PROCORE_WEBHOOK_SECRET", None)
    if secret is not None:
        env["PROCORE_WEBHOOK_SECRET"] = secret
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "procore",
        "webhooks",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_install_twice_status_and_remove(database: str, fake_procore: FakeProcore) -> None:
    code, out, err = await run(fake_procore, "install", "--url", URL)
    assert code == 0, err
    assert "hook" in out and "created" in out
    assert f"{len(wanted_triggers())} trigger(s) added" in out
    code, out, err = await run(fake_procore, "install", "--url", URL)
    assert (code, out.strip()) == (0, "Already installed: nothing changed."), err
    assert len(fake_procore.world.hooks) == 1

    code, out, err = await run(fake_procore, "status")
    assert code == 0, err
    assert f"→ {URL}; {len(wanted_triggers())} trigger(s); Authorization matches" in out
    assert "Procore webhooks: no delivery received yet" in out
    assert SECRET not in out + err

    # Procore shows the registered value masked to its last 5 characters: those differ.
    code, out, _ = await run(fake_procore, "status", secret="another-secret-0123456789fedcba")
    assert "Authorization DOES NOT match" in out

    code, out, err = await run(fake_procore, "remove")
    assert code == 0 and "removed" in out, err
    assert fake_procore.world.hooks == {}


async def test_install_refuses_without_the_secret_or_https(
    database: str, fake_procore: FakeProcore
) -> None:
    code, _, err = await run(fake_procore, "install", "--url", URL, secret=None)
    assert code == 2 and "PROCORE_WEBHOOK_SECRET is not set" in err
    code, _, err = await run(fake_procore, "install", "--url", "http://bot.example.com/x")
    assert code == 1 and "--url must be https://" in err
    assert fake_procore.world.hooks == {}
    assert "Traceback" not in err
