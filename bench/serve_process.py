"""Start and stop a real `invoice-backups serve` process for the benchmarks (HTTP mode, pointed
at a fake Slack), and wait until it answers its health check."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from tests.slack.serve_process import REPO, free_port, process_environment

BOT_TOKEN = "xoxb-bench"
SECRET = "bench-signing-secret"


async def start_serve(
    slack_api_url: str, database_url: str, data_dir: Path, workers: int, **settings: str
) -> tuple[asyncio.subprocess.Process, str]:
    """Run ``invoice-backups serve`` on a free port; return the process and its base URL once
    ``/healthz`` answers 200. `settings` are extra environment variables."""
    port = free_port()
    env = process_environment(
        slack_api_url,
        database_url,
        data_dir,
        bot_token=BOT_TOKEN,
        signing_secret=SECRET,
        **{
            "BACKUPS_WORKERS": str(workers),
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
            **settings,
        },
    )
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
