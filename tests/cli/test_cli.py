"""The command line, run as a user runs it: a subprocess on the embedded SQLite default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[2]


def run(
    data_dir: Path, *args: str, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``invoice-backups *args`` in a subprocess on the SQLite default in ``data_dir``, with
    ``settings`` added to its environment."""
    env = {**os.environ, "BACKUPS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.update(settings or {})
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_then_compile_access_and_audit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    demo_pdf = tmp_path / "out folder" / "demo backup.pdf"
    demo = run(data, "demo", "-o", str(demo_pdf))
    assert demo.returncode == 0, demo.stderr
    assert "invoices: 8 (8 created)" in demo.stdout
    assert (
        "  - SC-010 Polar Air Mechanical · Application #3, $51,187.50 for Nov 1–30, 2026: its "
        "billing period does not exist in the project. Billing period 4 (Nov 1–30, 2026) covers "
        "these dates.\nTo include it, move the invoice to an existing billing period"
    ) in demo.stdout
    assert "599" not in demo.stdout
    assert "Total current payment due: $368,351.25" in demo.stdout
    assert demo.stdout.endswith(
        "Next: open the PDF, then compile a backup of the invoices you choose:\n"
        f"  xdg-open '{demo_pdf}'   # macOS: open\n"
        "  invoice-backups compile --project 2026-014 --as pm@example.com --list\n"
        "  invoice-backups compile --project 2026-014 --as pm@example.com --invoice 9001 "
        f"--invoice 9012 -o '{demo_pdf.with_name('my backup.pdf')}'\n"
    )
    assert "payroll-locked.pdf (password-protected)" in demo.stdout
    assert "Checks: 1 invoice does not tie out (listed on the cover page):" in demo.stdout
    assert (
        "  - SC-001 Acme Concrete · Application #3: G702 line 8 (current payment due): "
        "$67,500.00 shown, line 6 - line 7 = $65,700.00 (difference $1,800.00)"
    ) in demo.stdout
    reader = PdfReader(demo_pdf)
    assert len(reader.pages) > 20
    assert (data / "invoice-backups.sqlite3").exists()

    again = run(data, "import", str(data / "demo-bundle"))
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout and "unchanged" in again.stdout

    compiled = run(
        data,
        "compile",
        "--project",
        "2026-014",
        "--invoice",
        "9012",
        "--invoice",
        "SC-001-001",  # the subcontractor's invoice number of 9001
        "--as",
        "pm@example.com",
        "-o",
        str(tmp_path / "two.pdf"),
    )
    assert compiled.returncode == 0, compiled.stderr
    assert "Compiled an invoice backup of 2 invoices" in compiled.stdout
    titles = [
        item.title for item in PdfReader(tmp_path / "two.pdf").outline if not isinstance(item, list)
    ]
    assert titles[-2:] == [
        "SC-001 Acme Concrete · Application #1",
        "SC-002 Volt Electric Co. · Application #2",
    ]

    refused = run(
        data, "compile", "--project", "2026-014", "--invoice", "9001", "--as", "super@example.com"
    )
    assert refused.returncode == 1
    assert "Admin" in refused.stderr and "Traceback" not in refused.stderr
    assert "*" not in refused.stderr and "`" not in refused.stderr  # no Slack markup

    listed = run(data, "compile", "--project", "2026-014", "--as", "pm@example.com", "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(
        "8 invoices of Riverside Medical Office Building (2026-014) that you may compile"
    )
    assert "Billing period 4 (Nov 1–30, 2026):\n          9022  SC-010 " in listed.stdout

    never = run(
        data, "compile", "--project", "2026-014", "--as", "pm@example.com",
        "--invoice", "424242", "--invoice", "SC-999-001",
    )  # fmt: skip
    assert never.returncode == 1
    assert never.stderr == (
        "invoice-backups: not found in this project: '424242', 'SC-999-001' (neither an invoice "
        "id nor a subcontractor's invoice number); see the invoices with --list\n"
    )

    nothing = run(
        data, "compile", "--project", "2026-014", "--invoice", "9023", "--as", "pm@example.com"
    )
    assert nothing.returncode == 3
    assert "No invoice backup was produced" in nothing.stdout

    roster = run(data, "access", "--project", "1001", "--as", "pm@example.com", "roster")
    assert roster.returncode == 0, roster.stderr
    assert "Dana Reyes" in roster.stdout and "admin" in roster.stdout

    trail = run(data, "audit", "--project", "2026-014")
    assert trail.returncode == 0
    entries = [line.split("  ") for line in trail.stdout.splitlines()]
    assert [(entry[1], entry[4]) for entry in entries] == [
        ("cli:demo", "succeeded"),
        ("cli:pm@example.com", "succeeded"),
        ("cli:super@example.com", "refused"),
        ("cli:pm@example.com", "nothing_to_compile"),
    ]

    stop = run(
        data, "access", "--project", "1001", "--as", "pm@example.com", "tie-out-blocks", "on"
    )
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.strip() == "Leave out invoices that do not tie out: yes."
    roster = run(data, "access", "--project", "1001", "--as", "pm@example.com", "roster")
    assert "leave out invoices that do not tie out: yes" in roster.stdout
    stopped = run(
        data, "compile", "--project", "2026-014", "--invoice", "9003", "--as", "pm@example.com"
    )
    assert stopped.returncode == 3
    assert "Left out: 1 invoice whose numbers do not tie out:" in stopped.stdout
    trail = run(data, "audit", "--project", "2026-014")
    assert "access.setting" in trail.stdout.splitlines()[-2]
    assert "tie_out_blocks" in trail.stdout.splitlines()[-2]


def test_errors_are_one_line(tmp_path: Path) -> None:
    unmigrated = run(tmp_path / "data", "import", str(tmp_path / "nope"))
    assert unmigrated.returncode == 2
    assert unmigrated.stderr.strip().splitlines() == [
        "invoice-backups: the database schema is empty: run `invoice-backups migrate`"
    ]
    assert run(tmp_path / "data", "migrate").returncode == 0
    missing = run(tmp_path / "data", "import", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert missing.stderr.startswith("invoice-backups: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = run(tmp_path / "data", "compile", "--project", "x", "--invoice", "1", "--as", "a@b.c")
    assert unknown.returncode == 1
    assert "no project with id or number 'x'" in unknown.stderr
