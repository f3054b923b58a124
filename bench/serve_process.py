"""Start and stop a real `invoice-backups serve` process for the benchmarks (HTTP mode, pointed
at a fake Slack), and wait until it answers its health check. The process is the tests' one
(`tests.slack.serve_process.start_serve`): a port the OS chooses, its log in the data dir."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from pathlib import Path

import aiohttp

from tests.slack.serve_process import process_environment
from tests.slack.serve_process import start_serve as start_serve_process

BOT_TOKEN = "xoxb-bench"
SECRET = "bench-signing-secret"
HEALTHY_WITHIN = 120.0  # seconds for a process to answer /healthz (a loaded machine included)


async def start_serve(
    slack_api_url: str, database_url: str, data_dir: Path, workers: int, **settings: str
) -> tuple[asyncio.subprocess.Process, str]:
    """Run ``invoice-backups serve`` on a port the OS chooses, logging to a ``serve-*.log`` file
    in ``data_dir``; return the process and its base URL once ``/healthz`` answers 200.
    `settings` are extra environment variables."""
    env = process_environment(
        slack_api_url,
        database_url,
        data_dir,
        bot_token=BOT_TOKEN,
        signing_secret=SECRET,
        **{"BACKUPS_WORKERS": str(workers), "LOG_LEVEL": "INFO", **settings},
    )
    serve = await start_serve_process(env, data_dir / f"serve-{uuid.uuid4().hex[:8]}.log")
    try:
        async with aiohttp.ClientSession() as session:
            await serve.wait_healthy(session, within=HEALTHY_WITHIN)
    except AssertionError as error:
        await _kill_group(serve.process)
        raise SystemExit(f"a bot process did not become healthy: {error}") from error
    return serve.process, serve.url


async def stop_serve(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL to its process group (its PDF workers too) after a minute."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            await _kill_group(process)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group ``process`` leads (`start_serve` starts it in a session of its
    own, so neither a terminal's Ctrl-C nor killing the process alone reaches its children)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
