"""Run PDF work on untrusted inputs in a child process with a memory cap and per-file deadline.

qpdf (pikepdf) parses in C++ with no limit but the Flate one `pdf.attachments` sets, and a
hostile file can still keep it busy or make it allocate a lot. So `run_guarded(function,
argument)` runs ``function(argument, guard)`` in a child process; the function wraps the work
on each input file ``i`` in ``with guard.file(i):``. While inside that block the child's address
space may grow by at most `INSPECTION_MEMORY_LIMIT_BYTES` (`RLIMIT_AS`, raised again after the
block) and the block must end within `INSPECTION_SECONDS_PER_FILE`. A child that overruns the
deadline is killed; one that dies inside a block (out of memory, a crash, `MemoryError`) takes
the blame onto that file. Either way the work starts again in a new child, with the file in
``guard.condemned`` (the function leaves it out as "could not be read safely"). A death outside
any file block is not a file's fault: `run_guarded` raises `RuntimeError`.

The child is forked from the calling process when that is single-threaded (a PDF pool worker
is: no interpreter start, no imports), else it is a fresh interpreter that imports what it
needs. It is named `INPUTS_PROCESS_NAME` (what ``ps`` shows). It ignores SIGTERM and SIGINT (a
stop signal sent to the whole process group is for the main process to handle) and dies with
the process that started it (`pdf.processes`); the caller that is stopped kills it.
``function``, ``argument`` and the result must pickle (for the fresh interpreter); an exception
raised by ``function`` is raised again by `run_guarded`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pickle
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pdf.processes import INPUTS_PROCESS_NAME, start_child_of

INSPECTION_MEMORY_LIMIT_BYTES = 1 << 30
INSPECTION_SECONDS_PER_FILE = 20.0
CHILD_START_SECONDS = 60.0
PHASE_SECONDS = 900.0  # between two files: rendering, cover, stamps, writing the file
_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
_CHILD_BOOT = (  # stop signals are ignored before the slow imports, so none kills the child
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from pdf.processes import INPUTS_PROCESS_NAME, start_child_of; "
    "start_child_of(int(sys.argv[2]), INPUTS_PROCESS_NAME); "
    "from pdf.inspection import interpreter_main; interpreter_main(sys.argv[3])"
)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
T = TypeVar("T")


class FileGuard:
    """The child's side: announces each file to the parent and caps memory while on it."""

    def __init__(
        self,
        out_fd: int | None,
        condemned: frozenset[int],
        memory_limit_bytes: int,
    ) -> None:
        """`out_fd` None: work in this process, unguarded (`run_inline`; no cap applies)."""
        self.condemned = condemned
        self._out_fd = out_fd
        self._memory_limit_bytes = memory_limit_bytes

    @contextlib.contextmanager
    def file(self, index: int) -> Iterator[None]:
        """Work on file `index`: deadline and memory cap apply until the block ends. A
        `MemoryError` inside ends the process (the file is condemned)."""
        if self._out_fd is None:
            yield
            return
        self.send(f"S {index}")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        capped = _mapped_bytes() + self._memory_limit_bytes
        if hard != resource.RLIM_INFINITY:
            capped = min(capped, hard)
        resource.setrlimit(resource.RLIMIT_AS, (capped, hard))
        try:
            yield
        except MemoryError:
            os._exit(3)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        self.send(f"D {index}")

    def send(self, line: str) -> None:
        if self._out_fd is None:
            return
        data = (line + "\n").encode()
        while data:
            data = data[os.write(self._out_fd, data) :]


def _mapped_bytes() -> int:
    """The process's address space now (what `RLIMIT_AS` counts)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_inline(function: Callable[[Any, FileGuard], T], argument: Any) -> T:
    """``function(argument, guard)`` in this process, for work that opens no untrusted file
    (every ``guard.file`` block would be a mistake: it is not guarded)."""
    return function(argument, FileGuard(None, frozenset(), INSPECTION_MEMORY_LIMIT_BYTES))


def run_guarded(function: Callable[[Any, FileGuard], T], argument: Any) -> T:
    """``function(argument, guard)`` in a capped child, started again without each file that
    overran its deadline or killed the child. Raises what ``function`` raised, or
    RuntimeError when a child cannot start or dies outside any file."""
    condemned: set[int] = set()
    while True:
        child = _Child.start(function, argument, frozenset(condemned))
        try:
            outcome = child.follow()
        finally:
            child.kill()
        if isinstance(outcome, _Blame):
            if outcome.index is None or outcome.index in condemned:
                raise RuntimeError("the PDF process died")
            condemned.add(outcome.index)
            continue
        if isinstance(outcome, _Raised):
            raise outcome.error
        return outcome.value


class _Blame:
    def __init__(self, index: int | None) -> None:
        self.index = index


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Returned:
    def __init__(self, value: Any) -> None:
        self.value = value


def _run_child(
    out_fd: int,
    function: Callable[[Any, FileGuard], Any],
    argument: Any,
    condemned: frozenset[int],
    memory_limit_bytes: int,
) -> None:
    """In the child: run the work and send its outcome as the last line."""
    guard = FileGuard(out_fd, condemned, memory_limit_bytes)
    guard.send("ready")
    try:
        outcome: object = _Returned(function(argument, guard))
    except Exception as error:  # handed to the parent, raised there
        outcome = _Raised(error)
    try:
        payload = pickle.dumps(outcome)
    except Exception:
        what = getattr(outcome, "error", outcome)
        payload = pickle.dumps(_Raised(RuntimeError(f"PDF process: {what!r}")))
    guard.send("R " + base64.b64encode(payload).decode("ascii"))


def interpreter_main(payload_path: str) -> None:
    """The fresh interpreter's entry: the work is pickled in ``payload_path``."""
    out_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # what a library prints goes elsewhere
    function, argument, condemned, memory_limit_bytes = pickle.loads(
        Path(payload_path).read_bytes()
    )
    _run_child(out_fd, function, argument, condemned, memory_limit_bytes)


class _Child:
    """A started child and a line reader on its output with a deadline."""

    def __init__(self, pid: int | None, process: subprocess.Popen[bytes] | None, fd: int) -> None:
        self._pid = pid
        self._process = process
        self._fd = fd
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        os.set_blocking(fd, False)
        self._selector.register(fd, selectors.EVENT_READ)
        self._reaped = False

    @classmethod
    def start(
        cls, function: Callable[[Any, FileGuard], Any], argument: Any, condemned: frozenset[int]
    ) -> _Child:
        parent_pid = os.getpid()
        # The cap as set here now, sent along: a fresh interpreter has the module's default.
        memory_limit_bytes = INSPECTION_MEMORY_LIMIT_BYTES
        if hasattr(os, "fork") and threading.active_count() == 1:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child
                try:
                    os.close(read_fd)
                    start_child_of(parent_pid, INPUTS_PROCESS_NAME)
                    _run_child(write_fd, function, argument, condemned, memory_limit_bytes)
                finally:
                    os._exit(0)
            os.close(write_fd)
            return cls(pid, None, read_fd)
        with tempfile.NamedTemporaryFile(prefix="pdf-work-", suffix=".pickle", delete=False) as f:
            f.write(pickle.dumps((function, argument, condemned, memory_limit_bytes)))
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-c", _CHILD_BOOT, _PROJECT_ROOT, str(parent_pid), f.name],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            os.unlink(f.name)
            raise
        child = cls(None, process, os.dup(process.stdout.fileno()))  # type: ignore[union-attr]
        child._payload = f.name
        return child

    _payload: str | None = None

    def follow(self) -> _Blame | _Raised | _Returned:
        """Read the child's lines until its outcome, a death or an overrun deadline."""
        if self.read_line(CHILD_START_SECONDS) != "ready":
            raise RuntimeError("the PDF process did not start")
        current: int | None = None
        while True:
            line = self.read_line(
                INSPECTION_SECONDS_PER_FILE if current is not None else PHASE_SECONDS
            )
            if line is None:
                return _Blame(current)
            kind, _, rest = line.partition(" ")
            if kind == "S":
                current = int(rest)
            elif kind == "D":
                current = None
            elif kind == "R":
                return pickle.loads(base64.b64decode(rest))

    def read_line(self, timeout_seconds: float) -> str | None:
        """The next line the child writes, or None if it writes none within the timeout."""
        deadline = time.monotonic() + timeout_seconds
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                return None  # the child exited
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def kill(self) -> None:
        """End the child (if it still runs) and reap it."""
        if not self._reaped:
            self._reaped = True
            if self._process is not None:
                if self._process.poll() is None:
                    self._process.kill()
                self._process.wait()
                if self._process.stdout is not None:
                    self._process.stdout.close()
            elif self._pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self._pid, 0)
            self._selector.close()
            os.close(self._fd)
            if self._payload is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._payload)
