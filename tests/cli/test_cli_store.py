"""The command line with its files in S3 (a real SeaweedFS server): ``store check``, the demo
compiled into the bucket and downloaded with ``-o``, the purge; and the one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pypdf import PdfReader
from test_cli import run as run_cli

from tests.leftovers import KILLED_AGO, age
from tests.s3_server import S3Server, new_bucket_name


def run(data_dir: Path, settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`test_cli.run` with the store ``settings``."""
    return run_cli(data_dir, *args, settings=settings)


def test_store_check_says_which_store_and_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    checked = run(tmp_path / "data", s3_server.environment(bucket), "store", "check")
    assert checked.returncode == 0, checked.stderr
    assert f"S3 bucket {bucket} at {s3_server.endpoint}" in checked.stdout
    assert "wrote, read and deleted probe/" in checked.stdout

    local = run(tmp_path / "data", {}, "store", "check")
    assert local.returncode == 0, local.stderr
    assert f"local folder {(tmp_path / 'data').resolve()}" in local.stdout


def test_store_check_failures_are_one_line_without_secrets(
    s3_server: S3Server, tmp_path: Path
) -> None:
    wrong = {**s3_server.environment(new_bucket_name()), "AWS_SECRET_ACCESS_KEY": "not-the-key"}
    refused = run(tmp_path / "data", wrong, "store", "check")
    assert refused.returncode == 1
    assert refused.stderr.startswith("invoice-backups: the object store failed:")
    assert len(refused.stderr.strip().splitlines()) == 1 and "not-the-key" not in refused.stderr

    nowhere = {
        **s3_server.environment(new_bucket_name()),
        "BACKUPS_S3_ENDPOINT": "http://127.0.0.1:9",
    }
    down = run(tmp_path / "data", nowhere, "store", "check")
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1

    malformed = run(
        tmp_path / "data", {"BACKUPS_S3_BUCKET": "b", "BACKUPS_S3_ENDPOINT": "s3"}, "store", "check"
    )
    assert malformed.returncode == 2 and "BACKUPS_S3_ENDPOINT must be" in malformed.stderr


def test_the_demo_compiles_into_the_bucket_and_downloads(
    s3_server: S3Server, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = s3_server.environment(new_bucket_name())
    demo = run(data, settings, "demo", "-o", str(tmp_path / "demo.pdf"))
    assert demo.returncode == 0, demo.stderr
    assert len(PdfReader(tmp_path / "demo.pdf").pages) > 20
    assert not (data / "blobs").exists() and not (data / "backups").exists()  # all in S3

    compiled = run(
        data,
        settings,
        "compile",
        "--project",
        "2026-014",
        "--invoice",
        "9001",
        "--as",
        "pm@example.com",
    )
    assert compiled.returncode == 0, compiled.stderr
    assert "PDF: backups/" in compiled.stdout and "(use -o FILE to download it)" in compiled.stdout

    killed = data / "cache" / "compiles" / "backups" / "999-0badf00d"  # a killed compile's
    (killed / ".backup-x").mkdir(parents=True)
    (killed / ".backup-x" / "backup.pdf").write_bytes(b"%PDF-1.7 cut short")
    age(killed, KILLED_AGO)
    purged = run(data, settings, "purge", "--days", "1")
    assert purged.returncode == 0, purged.stderr
    assert "0 expired" in purged.stdout and "0 unused blobs" in purged.stdout
    assert "on this host: removed 1 compile workspace and 0 partial files" in purged.stdout
    assert not killed.exists()
