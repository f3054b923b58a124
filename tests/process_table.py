"""The process table (Linux ``/proc``), for tests that check which processes a stop left."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from pdf.processes import INPUTS_PROCESS_NAME
from tests.waiting import eventually

TRIAGE_CHILD_MARK = "pdf.processes"  # in the command line of a triage child (new interpreter)


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    parent_pid: int
    state: str
    command_line: str
    name: str = ""  # /proc/PID/comm


def session_processes(session_id: int) -> list[ProcessRow]:
    """The live processes (zombies left out: they run nothing) of session ``session_id``."""
    rows: list[ProcessRow] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat_file:
                stat = stat_file.read()
            with open(f"/proc/{name}/cmdline", "rb") as cmdline_file:
                command_line = cmdline_file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended meanwhile
        name_of = stat[stat.index("(") + 1 : stat.rindex(")")]
        # after "pid (comm) ": state, ppid, pgrp, session, ...
        state, parent_pid, _group, session, *_ = stat[stat.rindex(")") + 2 :].split()
        if int(session) == session_id and state != "Z":
            rows.append(ProcessRow(int(name), int(parent_pid), state, command_line, name_of))
    return rows


def process_tree(root: int) -> list[int]:
    """``root`` and every process under it now (``/proc/PID/task/TID/children``); those that
    ended meanwhile are left out of the walk."""
    pids, pending = [], [root]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (OSError, ValueError):
            continue
    return pids


def triage_children(session_id: int) -> list[ProcessRow]:
    """The attachment triage children running in the session (forked ones go by their name)."""
    return [
        row
        for row in session_processes(session_id)
        if row.name == INPUTS_PROCESS_NAME or TRIAGE_CHILD_MARK in row.command_line
    ]


async def wait_until(condition: Callable[[], object], within: float, what: str) -> None:
    """Poll ``condition()`` every 50 ms (the process table sends no events) until it is true;
    fail after ``within`` seconds."""

    await eventually(condition, within, what=what)
