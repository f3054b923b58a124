"""Starting a test server on ports chosen free beforehand (SeaweedFS in `tests.s3_server`, the
private PostgreSQL in `tests.slack.private_postgres`).

A port is chosen free, then given to the server, which binds it later: another process may take
it in between (a busy CI machine). The server then exits saying so in its log, and a first start
moves to fresh ports and tries again (`start_on_free_ports`); a restart keeps its ports, because
its clients hold the address.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

START_ATTEMPTS = 5  # a first start's tries, each on fresh ports


def free_ports(count: int) -> list[int]:
    """Ports free now on 127.0.0.1 (held together while chosen, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def start_on_free_ports(
    launch: Callable[[], bool], move: Callable[[], None], *, first: bool, log: Path
) -> None:
    """``launch()`` the server: True once it runs, False when a port it was given is taken.
    On a ``first`` start a taken port makes ``move()`` choose fresh ports and ``launch()`` try
    again, up to `START_ATTEMPTS` times; otherwise it is a RuntimeError (see ``log``)."""
    for attempt in range(1, START_ATTEMPTS + 1):
        if launch():
            return
        if not first or attempt == START_ATTEMPTS:
            break
        move()
    raise RuntimeError(f"a port the server was given is taken ({attempt} tries); see {log}")


def log_size(log: Path) -> int:
    """Where what a server writes next to ``log`` will start (`logged_since`)."""
    return log.stat().st_size if log.exists() else 0


def logged_since(log: Path, offset: int) -> bytes:
    """What ``log`` holds past ``offset`` (nothing when there is no log)."""
    if not log.exists():
        return b""
    with log.open("rb") as written:
        written.seek(offset)
        return written.read()
