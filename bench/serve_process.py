"""Start and stop a real `invoice-backups serve` process for the benchmarks (HTTP mode, pointed
at a fake Slack), and wait until it answers its health check."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
BOT_TOKEN = "xoxb-bench"
SECRET = "bench-signing-secret"
PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "TMPDIR")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_serve(
    slack_api_url: str, database_url: str, data_dir: Path, workers: int, **settings: str
) -> tuple[asyncio.subprocess.Process, str]:
    """Run ``invoice-backups serve`` on a free port; return the process and its base URL once
    ``/healthz`` answers 200. `settings` are extra environment variables."""
    port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name in PASSED_ENVIRONMENT},
        "PYTHONPATH": str(REPO),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack_api_url,
        "DATABASE_URL": database_url,
        "BACKUPS_DATA_DIR": str(data_dir),
        "BACKUPS_WORKERS": str(workers),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from bot.cli import main; main(['serve'])", cwd=REPO, env=env
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return process, url
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise SystemExit("a bot process did not become healthy")


async def stop_serve(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after a minute."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
