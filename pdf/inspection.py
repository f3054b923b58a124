"""Run the triage of every input PDF in a child process with a memory cap and per-file deadline.

pypdf has decompression limits but parses in pure Python, which a hostile file can keep busy for
minutes; qpdf (the repair pass) has no decompression limits at all. So `inspect_files` hands the
files to a fresh interpreter whose address space is capped (`RLIMIT_AS`) and gives it
`INSPECTION_SECONDS_PER_FILE` for each file. A child that overruns the deadline is killed, one
that dies (out of memory, a crash) is replaced; the file it was on is "could not be read safely"
and the others go on in a new child. The checks that need no parser (missing, empty, not a PDF,
too large) run here, so a backup without PDF attachments starts no child.

The child ignores SIGTERM and SIGINT (a stop signal sent to the whole process group is for the
main process to handle) and dies with the process that started it (`pdf.processes`); `close`
kills it.

`inspect_files` never raises because of a file, and returns one `TriageResult` per job, in order;
a child that cannot even start raises RuntimeError.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pdf import attachments
from pdf.attachments import (
    UNSAFE,
    Rejected,
    TriageResult,
    precheck_file,
    result_from_json,
    result_to_json,
    triage_pdf,
)

INSPECTION_MEMORY_LIMIT_BYTES = 1 << 30
INSPECTION_SECONDS_PER_FILE = 20.0
CHILD_START_SECONDS = 60.0
_READY = "ready"
_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
_CHILD_BOOT = (  # stop signals are ignored before the slow imports, so none kills the child
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from pdf.processes import start_child_of; start_child_of(int(sys.argv[2])); "
    "from pdf.inspection import child_main; child_main(sys.argv[3:])"
)


@dataclass(frozen=True)
class InspectionJob:
    """One file to triage: where it is and what content type its uploader declared."""

    path: str | None
    content_type: str


class Inspection:
    """Triage of `jobs` running in child processes; `result(i)` waits for job i only.

    The child goes through the jobs in order, so a caller that asks for them in order can work
    on the first files while the child is still on the later ones. The deadline runs while the
    caller waits, so each file gets at least `INSPECTION_SECONDS_PER_FILE`. Use as a context
    manager.
    """

    def __init__(self, jobs: Sequence[InspectionJob], scratch_dir: str) -> None:
        self._scratch_dir = scratch_dir
        self._results: list[TriageResult | None] = [
            precheck_file(job.path, job.content_type) for job in jobs
        ]
        self._jobs_file = Path(scratch_dir) / "inspection-jobs.json"
        self._jobs_file.write_text(
            json.dumps(
                {
                    "limits": {
                        "max_input_bytes": attachments.MAX_INPUT_BYTES,
                        "max_input_pages": attachments.MAX_INPUT_PAGES,
                    },
                    "jobs": [{"path": job.path, "content_type": job.content_type} for job in jobs],
                }
            )
        )
        self._child: _Child | None = None
        self._start_child()

    def result(self, index: int) -> TriageResult:
        """The triage of job `index`, waiting for the child to get there if need be."""
        while self._results[index] is None:
            if self._child is None:
                self._results[index] = Rejected(UNSAFE)  # cannot happen: every job is read
            else:
                self._read_next_result()
        result = self._results[index]
        assert result is not None
        return result

    def close(self) -> None:
        """Stop the child if it still runs."""
        if self._child is not None:
            self._child.kill()
            self._child = None

    def __enter__(self) -> Inspection:
        return self

    def __exit__(self, *_exception: object) -> None:
        self.close()

    def _start_child(self) -> None:
        pending = [index for index, result in enumerate(self._results) if result is None]
        self._child = _Child.start(self._jobs_file, pending, self._scratch_dir) if pending else None

    def _read_next_result(self) -> None:
        """Read the child's next result; a deadline overrun or a death condemns its file."""
        child = self._child
        assert child is not None
        if not child.ready:
            if child.read_line(CHILD_START_SECONDS) != _READY:
                self.close()
                raise RuntimeError("the PDF inspection child process did not start")
            child.ready = True
        index = child.pending[child.done]
        line = child.read_line(INSPECTION_SECONDS_PER_FILE)
        result = _parse_result(line)
        self._results[index] = result
        child.done += 1
        if result == Rejected(UNSAFE):  # the child stopped or must stop: start a fresh one
            child.kill()
            self._start_child()
        elif child.done == len(child.pending):
            child.wait()
            self._child = None


def _parse_result(line: str | None) -> TriageResult:
    """A result line from the child; silence or anything unreadable condemns the file."""
    if line is None:
        return Rejected(UNSAFE)
    try:
        return result_from_json(json.loads(line))
    except (ValueError, KeyError, TypeError):
        return Rejected(UNSAFE)


def inspect_files(jobs: Sequence[InspectionJob], scratch_dir: str) -> list[TriageResult]:
    """Triage `jobs` in capped child processes and return one result per job, in order."""
    with Inspection(jobs, scratch_dir) as inspection:
        return [inspection.result(index) for index in range(len(jobs))]


class _Child:
    """The child interpreter, and a line reader on its stdout with a deadline."""

    def __init__(self, process: subprocess.Popen[bytes], pending: list[int]) -> None:
        self.process = process
        self.pending = pending  # the job indexes it works through, in order
        self.done = 0  # how many of them it has answered
        self.ready = False
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        self._selector.register(process.stdout, selectors.EVENT_READ)

    @classmethod
    def start(cls, jobs_file: Path, pending: list[int], scratch_dir: str) -> _Child:
        indexes = ",".join(str(index) for index in pending)
        command = [
            sys.executable,
            "-I",
            "-c",
            _CHILD_BOOT,
            _PROJECT_ROOT,
            str(os.getpid()),
            str(jobs_file),
            indexes,
            scratch_dir,
            str(INSPECTION_MEMORY_LIMIT_BYTES),
        ]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        return cls(process, pending)

    def read_line(self, timeout_seconds: float) -> str | None:
        """The next line the child writes, or None if it writes none within the timeout."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_seconds
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return None  # the child exited
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def wait(self) -> None:
        self.process.wait()
        self._close_pipe()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        self._selector.close()
        if self.process.stdout is not None:
            self.process.stdout.close()


def child_main(arguments: list[str]) -> None:
    """In the child: cap memory, triage the given jobs in order, one JSON line per result.

    The caps of `pdf.attachments` come with the jobs, so the child applies the parent's.
    """
    jobs_file, indexes, scratch_dir, memory_limit = arguments
    resource.setrlimit(resource.RLIMIT_AS, (int(memory_limit), int(memory_limit)))
    # Results go to the original stdout only; anything a library prints lands on stderr.
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    results.write(_READY + "\n")
    results.flush()
    work = json.loads(Path(jobs_file).read_text())
    attachments.MAX_INPUT_BYTES = work["limits"]["max_input_bytes"]
    attachments.MAX_INPUT_PAGES = work["limits"]["max_input_pages"]
    jobs = work["jobs"]
    for index in (int(text) for text in indexes.split(",")):
        job = jobs[index]
        result = triage_pdf(job["path"], job["content_type"], scratch_dir)
        results.write(json.dumps(result_to_json(result)) + "\n")
        results.flush()
        if result == Rejected(UNSAFE):
            return  # memory may be in a bad state: the parent starts a fresh child
