"""Start-up of the command line: each process imports only what its part of a compile needs.

The CLI process (and the PDF pool's fork server, which preloads the main module) loads no ORM,
HTTP client or PDF library when it imports `bot.cli`; the compile use case adds the ORM but
still no PDF library (the PDF work runs in the pool) and no HTTP client (Procore is optional).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTP_AND_SLACK = {"aiohttp", "slack_bolt", "slack_sdk"}
PDF_LIBRARIES = {"pikepdf", "reportlab", "pypdf", "PIL"}


def loaded_packages(code: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after running ``code`` in a new interpreter."""
    listing = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", listing], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in completed.stdout.split()}


def test_cli_module_loads_no_orm_http_client_or_pdf_library() -> None:
    loaded = loaded_packages("import bot.cli")

    assert not loaded & (HTTP_AND_SLACK | PDF_LIBRARIES | {"tortoise"})


def test_compile_use_case_loads_no_pdf_library_or_http_client() -> None:
    loaded = loaded_packages("import bot.cli, commands.compile_backups, procore")

    assert "tortoise" in loaded
    assert not loaded & (HTTP_AND_SLACK | PDF_LIBRARIES)


def test_the_procore_client_loads_its_http_library_when_used() -> None:
    loaded = loaded_packages("from procore import ProcoreClient")

    assert "aiohttp" in loaded
