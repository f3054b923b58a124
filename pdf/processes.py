"""How the processes that do PDF work behave when their service is told to stop.

Service managers often signal every process of a service at once (systemd's
``KillMode=control-group``, ``kill -TERM -PGID``, Ctrl-C in a terminal). Only the main process
decides what a stop means (finish, requeue, clean up), so every process under it ignores SIGTERM
and SIGINT (`ignore_stop_signals`) and is ended by its parent instead. A child that its parent
cannot clean up (the parent was killed) dies with it (`die_with_parent`, Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
INPUTS_PROCESS_NAME = "pdf-inputs"  # the child that opens untrusted input files (`pdf.inspection`)
RENDER_PROCESS_NAME = "pdf-render"  # an invoice render worker (`pdf.rendering`)
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


def ignore_stop_signals() -> None:
    """Ignore SIGTERM and SIGINT in this process (children inherit it, across exec too)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process (SIGKILL) when its parent dies; exit at once if the
    parent (``parent_pid``) is already gone. Does nothing where Linux's ``prctl`` is missing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the prctl took effect
            os._exit(1)


def name_this_process(name: str) -> None:
    """Set this process's name (``/proc/PID/comm``, what ``ps`` and ``top`` show; Linux, at
    most 15 bytes); a fork inherits it. Does nothing where ``prctl`` is missing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def start_child_of(parent_pid: int, name: str | None = None) -> None:
    """Run first in a child of a PDF worker: ignore stop signals, die with ``parent_pid``,
    take ``name`` (`name_this_process`) if given."""
    ignore_stop_signals()
    die_with_parent(parent_pid)
    if name is not None:
        name_this_process(name)
