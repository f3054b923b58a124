"""The ``invoice-backups`` command line: import, compile, demo and serve.

Every subcommand opens the database named by ``DATABASE_URL`` (default: SQLite in
``BACKUPS_DATA_DIR``), asks the same use cases as the Slack bot, and prints what a Slack user would
read. Errors print one line and exit non-zero; they never leave a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from commands.access import AccessDenied, Requester
from commands.compile_backups import compile_backup
from commands.import_bundle import BundleError, import_bundle
from storage.blobs import BlobStore
from storage.db import close_database, data_dir, open_database
from storage.queries import get_project_by_id_or_number


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _requester(email: str | None) -> Requester:
    address = email or os.environ.get("BACKUPS_CLI_EMAIL")
    if not address:
        raise CliError("say who asks: --as EMAIL (a project user's e-mail) or BACKUPS_CLI_EMAIL")
    return Requester(key=f"cli:{address}", email=address, display_name=address)


async def _with_database(work: Callable[[], Awaitable[int]]) -> int:
    await open_database()
    try:
        return await work()
    finally:
        await close_database()


async def _import(args: argparse.Namespace) -> int:
    report = await import_bundle(Path(args.bundle), BlobStore(data_dir()))
    print(report.render())
    return 0


async def _compile(args: argparse.Namespace) -> int:
    project = await get_project_by_id_or_number(args.project)
    if project is None:
        raise CliError(f"no project with id or number {args.project!r}")
    result = await compile_backup(
        _requester(args.requester), project.id, list(args.invoice), timezone=args.timezone
    )
    if result.pdf_path is not None and args.output:
        target = Path(args.output)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.pdf_path, target)
        print(f"PDF: {target.resolve()}")
    elif result.pdf_path is not None:
        print(f"PDF: {result.pdf_path}")
    print(result.summary_text())
    return 0 if result.status == "succeeded" else 3


async def _demo(args: argparse.Namespace) -> int:
    from commands.demo import ADMIN_EMAIL, PROJECT_ID, write_demo_bundle
    from storage.models import Invoice

    bundle = data_dir() / "demo-bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    write_demo_bundle(bundle)
    print(f"Demo bundle written to {bundle}")
    report = await import_bundle(bundle, BlobStore(data_dir()))
    print(report.render())
    invoice_ids = await Invoice.filter(project_id=PROJECT_ID).values_list("id", flat=True)
    result = await compile_backup(
        Requester(key="cli:demo", email=ADMIN_EMAIL, display_name="Dana Reyes (demo)"),
        PROJECT_ID,
        [int(invoice_id) for invoice_id in invoice_ids],
        timezone=args.timezone,
    )
    print()
    print(result.summary_text())
    if result.pdf_path is None:
        return 3
    output = Path(args.output) if args.output else result.pdf_path
    if args.output:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.pdf_path, output)
    print()
    print(f"Demo backup PDF: {output.resolve()}")
    return 0


def _serve(_: argparse.Namespace) -> int:
    from bot.server import run_serve

    return run_serve()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="invoice-backups", description="Compile subcontractor invoice backups."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    importer = commands.add_parser("import", help="import a Procore bundle (folder or .zip)")
    importer.add_argument("bundle", help="bundle folder or .zip")

    compiler = commands.add_parser("compile", help="compile a backup of some invoices")
    compiler.add_argument("--project", required=True, help="project id or number")
    compiler.add_argument(
        "--invoice", type=int, action="append", required=True, help="invoice id (repeat)"
    )
    compiler.add_argument("-o", "--output", help="copy the PDF to this file")
    compiler.add_argument("--as", dest="requester", help="e-mail of the project user who asks")
    compiler.add_argument("--timezone", default="UTC", help="time zone of the file name")

    demo = commands.add_parser("demo", help="build, import and compile the demo bundle")
    demo.add_argument("-o", "--output", help="copy the demo PDF to this file")
    demo.add_argument("--timezone", default="UTC", help="time zone of the file name")

    commands.add_parser("serve", help="run the Slack bot (HTTP or Socket Mode)")
    return parser


ASYNC_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
    "import": _import,
    "compile": _compile,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``invoice-backups`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    handler = ASYNC_COMMANDS[args.command]
    try:
        return asyncio.run(_with_database(lambda: handler(args)))
    except (CliError, BundleError, AccessDenied) as error:
        print(f"invoice-backups: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"invoice-backups: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
