"""The ``invoice-backups`` command line: migrate, import, compile, demo, purge, store and serve.

Every subcommand opens the database named by ``DATABASE_URL`` (default: SQLite in
``BACKUPS_DATA_DIR``), asks the same use cases as the Slack bot, and prints what a Slack user would
read. Errors print one line and exit non-zero; they never leave a traceback for a user mistake.
The object store (local folder or S3 bucket, `bot.settings.store_config_from_env`) is opened once
in `main` and handed to the subcommand as ``args.blobs``.

The schema: only ``migrate`` and ``demo`` apply migrations, on SQLite and PostgreSQL alike. Every
other subcommand (and ``serve``) refuses to run on a schema that is behind, with one line saying
to run ``invoice-backups migrate`` (exit status 2), so a schema never changes under a running bot
by surprise. ``makemigrations`` (for developers) writes the next migration after a model change.

Ctrl-C (SIGINT) or SIGTERM stops a subcommand within a second: a compile ends its PDF processes
(they ignore the signal themselves, `bot.pool`), leaves no partial PDF, and the command exits with
128 + the signal number (130 for Ctrl-C, 143 for SIGTERM), one line on stderr.

Procore: with the PROCORE_* settings (`bot.settings.procore_settings_from_env`; a bad or partial
set exits 2 before anything runs) the command builds one `ProcoreClient`; ``compile`` then
re-reads the selected invoices from Procore first. ``procore check`` and ``procore sync`` need
the settings (exit 2 without). ``procore sync`` runs as a sync job of its own
(`bot.procore_sync_job.sync_in_this_process`), so it never overlaps a bot process's sync: it
waits for a running one, saying so on stderr. Exit status of both: 0 all well; 1 the token
does not work or Procore cannot be reached; 3 some project is not reachable, lacks a tool
permission, or did not sync (one line each says why).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli_webhooks import WebhooksCliError, add_webhooks_parser, run_webhooks
from bot.pool import start_fork_server, with_process_pool
from bot.settings import (
    SettingsError,
    procore_settings_from_env,
    retention_days_from_env,
    store_config_from_env,
)
from pdf.processes import STOP_SIGNALS
from procore import ProcoreError
from storage.blobs import BlobStore, StoreError, open_blob_store
from storage.db import close_database, data_dir, open_database
from storage.schema_errors import SchemaOutdated

if TYPE_CHECKING:
    import concurrent.futures

    from commands.access import Requester
    from commands.compile_backups import CompileResult
    from commands.procore_freshness import ProcoreFreshness
    from procore import ProcoreClient

MAX_LISTED_INVOICES = 1000
EXIT_INTERRUPTED = 128  # + the signal number, as a shell reports it: 130 for Ctrl-C (SIGINT)
COPY_CHUNK_BYTES = 1 << 20


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _requester(email: str | None) -> Requester:
    from commands.access import Requester

    address = email or os.environ.get("BACKUPS_CLI_EMAIL")
    if not address:
        raise CliError("say who asks: --as EMAIL (a project user's e-mail) or BACKUPS_CLI_EMAIL")
    return Requester(key=f"cli:{address}", email=address, display_name=address)


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the command (after it cleaned up)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


async def _until_stop_signal(work: Awaitable[int]) -> int:
    """``await work``; SIGINT or SIGTERM cancels it (it cleans up as it unwinds: a compile
    ends its PDF processes and removes its partial files) and raises `Interrupted`."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    received: list[int] = []

    def on_stop_signal(signum: int) -> None:
        if not received:
            received.append(signum)
            task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_stop_signal, signum)
    try:
        return await task
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _deliver_result(result: CompileResult, blobs: BlobStore, output: str | None) -> str:
    """Where the compiled PDF can be opened: its local path (copied to ``output`` when asked),
    or, from a remote store, ``output`` once downloaded (else its key in the store)."""
    if result.pdf_path is not None:
        return str(await _deliver(result.pdf_path, output))
    assert result.file_key is not None
    if not output:
        return f"{result.file_key} in {blobs.description} (use -o FILE to download it)"
    target = await asyncio.to_thread(Path(output).resolve)
    await blobs.download(result.file_key, target)
    return str(target)


async def _deliver(pdf_path: Path, output: str | None) -> Path:
    """Copy the backup to `output` when asked; return the absolute path of the PDF to open.

    The copy is written under a temporary name in the target folder and renamed once whole; an
    interrupted copy is removed, so `output` is the whole PDF or nothing.
    """
    stop = threading.Event()
    copying = asyncio.ensure_future(asyncio.to_thread(_deliver_file, pdf_path, output, stop))
    try:
        return await asyncio.shield(copying)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait({copying})  # the copy stops within a chunk and removes itself
        raise


def _deliver_file(pdf_path: Path, output: str | None, stop: threading.Event) -> Path:
    if not output:
        return pdf_path.resolve()
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with pdf_path.open("rb") as reader, partial.open("wb") as writer:
            while not stop.is_set() and (chunk := reader.read(COPY_CHUNK_BYTES)):
                writer.write(chunk)
        if not stop.is_set():
            partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target.resolve()


async def _with_database(work: Callable[[], Awaitable[int]], *, migrate: bool) -> int:
    applied = await open_database(migrate=migrate)
    if applied:
        print(f"Database schema: applied {', '.join(applied)}.")
    try:
        return await work()
    finally:
        await close_database()


async def _with_procore(args: argparse.Namespace, work: Callable[[], Awaitable[int]]) -> int:
    """Run `work` with ``args.procore``: the one `ProcoreClient` of this command (None without
    the PROCORE_* settings), closed afterwards."""
    try:
        return await work()
    finally:
        if args.procore is not None:
            await args.procore.close()


async def _import(args: argparse.Namespace) -> int:
    from commands.import_bundle import import_bundle

    report = await import_bundle(Path(args.bundle), args.blobs)
    print(report.render())
    return 0


def plain(text: str) -> str:
    """Terminal text: without Slack's mrkdwn markup (``*bold*``, ```code```)."""
    return text.replace("*", "").replace("`", "")


async def _invoice_ids(project_id: int, wanted: Sequence[str]) -> list[int]:
    """Each ``--invoice`` value as an invoice id of the project: an invoice id, else the
    subcontractor's invoice number. `CliError` naming every value that matches neither."""
    from storage.models import Invoice

    ids: list[int] = []
    not_found: list[str] = []
    for value in wanted:
        text = value.strip()
        if text.isdigit() and await Invoice.exists(project_id=project_id, id=int(text)):
            ids.append(int(text))
            continue
        numbered = await Invoice.filter(
            project_id=project_id, invoice_number__iexact=text
        ).values_list("id", flat=True)
        if numbered:
            ids.extend(int(invoice_id) for invoice_id in numbered)
        else:
            not_found.append(text)
    if not_found:
        listed = ", ".join(repr(value) for value in not_found)
        raise CliError(
            f"not found in this project: {listed} (neither an invoice id nor a subcontractor's "
            "invoice number); see the invoices with --list"
        )
    return ids


async def _list_invoices(requester: Requester, project_id: int, project_label: str) -> int:
    from commands.access import search_invoice_options

    menu = await search_invoice_options(requester, project_id, "", limit=MAX_LISTED_INVOICES)
    options = menu.options
    if not options:
        print(f"No invoice of {project_label} that you may compile.")
        return 0
    count = len(options)
    print(
        f"{count} invoice{'' if count == 1 else 's'} of {project_label} that you may compile "
        "(id, then contract and vendor · application # · invoice # · current payment due · "
        "status; under each billing period):"
    )
    group = None
    for option in options:
        if option.group != group:
            group = option.group
            print(f"{group}:")
        print(f"  {option.invoice_id:>12}  {option.label}")
    if menu.more_label:
        print(menu.more_label)
    return 0


async def _compile(args: argparse.Namespace) -> int:
    if args.list or not args.invoice:
        return await _compile_in(args, None)
    # The PDF worker starts (the fork server `main` started forks it) while this process reads
    # the database: neither waits for the other.
    return await with_process_pool(1, lambda pool: _compile_in(args, pool), start_now=True)


async def _compile_in(args: argparse.Namespace, pool: concurrent.futures.Executor | None) -> int:
    """``compile``: list the invoices, or compile them with ``pool`` (None with ``--list``)."""
    from commands.compile_backups import compile_backup
    from storage.queries import get_project_by_id_or_number

    project = await get_project_by_id_or_number(args.project)
    if project is None:
        raise CliError(f"no project with id or number {args.project!r}")
    requester = _requester(args.requester)
    label = f"{project.name} ({project.project_number})" if project.project_number else project.name
    if args.list:
        return await _list_invoices(requester, project.id, label)
    if not args.invoice:
        raise CliError("say which invoices: --invoice ID or NUMBER (repeat), or --list to see them")
    invoice_ids = await _invoice_ids(project.id, args.invoice)
    result = await compile_backup(
        requester,
        project.id,
        invoice_ids,
        timezone=args.timezone,
        executor=pool,
        freshness=_freshness(args.procore, args.blobs),
        blobs=args.blobs,
    )
    if result.has_file:
        print(f"PDF: {await _deliver_result(result, args.blobs, args.output)}")
    print(result.summary_text())
    return 0 if result.status == "succeeded" else 3


def _freshness(client: ProcoreClient | None, blobs: BlobStore) -> ProcoreFreshness | None:
    """Fresh at compile time, when Procore is configured."""
    if client is None:
        return None
    from commands.procore_freshness import ProcoreFreshness

    return ProcoreFreshness(client, blobs)


def _need_procore(args: argparse.Namespace) -> ProcoreClient:
    if args.procore is None:
        raise SettingsError(
            "PROCORE_CLIENT_ID is not set: set PROCORE_CLIENT_ID, PROCORE_CLIENT_SECRET and "
            "PROCORE_COMPANY_ID (the Procore service account; see the README's Procore section)"
        )
    client: ProcoreClient = args.procore
    return client


class _ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    WIDTH = 24

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def draw(self, done: int, total: int, label: str) -> None:
        if not self.enabled or total <= 0:
            return
        filled = self.WIDTH * done // total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        sys.stderr.write(f"\r[{bar}] {done}/{total} {label[:40]:<40}")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * (self.WIDTH + 56) + "\r")
            sys.stderr.flush()


async def _procore(args: argparse.Namespace) -> int:
    from bot.procore_sync_job import SyncTakenOver, sync_in_this_process
    from bot.worker import DEFAULT_LEASE_SECONDS
    from commands.procore_check import check_procore
    from commands.procore_webhooks import delivery_health
    from commands.sync_procore import ProjectSyncLine
    from storage.jobs import Job

    if args.action == "webhooks":
        return await run_webhooks(args)
    client = _need_procore(args)
    try:
        if args.action == "check":
            check = await check_procore(client)
            print(check.render())
            print((await delivery_health()).render())
            return 0 if check.ok else 3
        bar = _ProgressBar()
        bar.draw(0, 1, "listing projects")

        async def progress(done: int, total: int, line: ProjectSyncLine) -> None:
            bar.clear()
            print(line.render(), flush=True)
            bar.draw(done, total, line.label)

        async def waiting(running: Job) -> None:
            bar.clear()
            print(
                f"Waiting for the Procore sync already running (job {running.id}) to end…",
                file=sys.stderr,
                flush=True,
            )
            bar.draw(0, 1, "waiting for the running sync")

        report = await sync_in_this_process(
            client,
            owner=f"cli:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            lease_seconds=DEFAULT_LEASE_SECONDS,
            project_numbers=args.project or (),
            full=args.full,
            progress=progress,
            waiting=waiting,
        )
        bar.clear()
        if not report.lines:
            print(report.render())
        return 0 if report.all_synced else 3
    except ProcoreError as error:
        raise CliError(f"Procore: {' '.join(str(error).split())}") from error
    except SyncTakenOver as error:
        raise CliError(f"Procore sync stopped: {error}") from error


async def _demo(args: argparse.Namespace) -> int:
    from commands.access import Requester
    from commands.compile_backups import compile_backup
    from commands.demo import ADMIN_EMAIL, PROJECT_ID, write_demo_bundle
    from commands.import_bundle import import_bundle
    from storage.models import Invoice

    bundle = data_dir() / "demo-bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    write_demo_bundle(bundle)
    print(f"Demo bundle written to {bundle}")
    report = await import_bundle(bundle, args.blobs)
    print(report.render())
    invoice_ids = await Invoice.filter(project_id=PROJECT_ID).values_list("id", flat=True)
    result = await with_process_pool(
        1,
        lambda pool: compile_backup(
            Requester(key="cli:demo", email=ADMIN_EMAIL, display_name="Dana Reyes (demo)"),
            PROJECT_ID,
            [int(invoice_id) for invoice_id in invoice_ids],
            timezone=args.timezone,
            executor=pool,
            blobs=args.blobs,
        ),
    )
    print()
    print(result.summary_text())
    if not result.has_file:
        return 3
    print()
    delivered = await _deliver_result(result, args.blobs, args.output)
    print(f"Demo backup PDF: {delivered}")
    print()
    print("Next: open the PDF, then compile a backup of the invoices you choose:")
    if result.pdf_path is not None or args.output:
        print(f"  xdg-open {shlex.quote(delivered)}   # macOS: open")
    print(f"  invoice-backups compile --project 2026-014 --as {ADMIN_EMAIL} --list")
    mine = Path(delivered).with_name("my backup.pdf") if result.pdf_path else Path("my backup.pdf")
    print(
        f"  invoice-backups compile --project 2026-014 --as {ADMIN_EMAIL} --invoice 9001 "
        f"--invoice 9012 -o {shlex.quote(str(mine))}"
    )
    return 0


def _owners() -> frozenset[str]:
    raw = os.environ.get("BACKUPS_OWNERS", "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


async def _project_id(value: str) -> int:
    from storage.queries import get_project_by_id_or_number

    project = await get_project_by_id_or_number(value)
    if project is None:
        raise CliError(f"no project with id or number {value!r}")
    return project.id


async def _access(args: argparse.Namespace) -> int:
    from commands import manage_access

    requester = _requester(args.requester)
    project_id = await _project_id(args.project)
    owners = _owners()
    if args.action == "roster":
        settings = await manage_access.project_settings(requester, project_id, owners)
        print(
            f"{settings.project.label}: invoice contacts may compile: "
            f"{'yes' if settings.invoice_contacts_may_compile else 'no'}; "
            "leave out invoices that do not tie out: "
            f"{'yes' if settings.tie_out_blocks else 'no'}; dictionary: "
            + ", ".join(f"{tool}={name}" for tool, name in settings.dictionary.items())
        )
        for line in await manage_access.roster(requester, project_id, owners):
            links = ",".join(line.linked_slack_user_ids) or "-"
            contact = ",".join(line.invoice_contact_of) or "-"
            active = "" if line.is_active else " (inactive)"
            print(
                f"{line.user_id:>8}  {line.name:<24} {line.email:<32} "
                f"{line.commitments_access:<9} slack:{links:<12} contact:{contact}{active}"
            )
    elif args.action == "link":
        print(
            await manage_access.link_slack_user(
                requester, project_id, args.slack_user, args.user, owners
            )
        )
    elif args.action == "unlink":
        removed = await manage_access.unlink_slack_user(
            requester, project_id, args.slack_user, owners
        )
        print("Link removed." if removed else "There was no link.")
    elif args.action == "contacts-may-compile":
        allowed = args.value == "on"
        await manage_access.set_invoice_contacts_may_compile(requester, project_id, allowed, owners)
        print(f"Invoice contacts may compile: {'yes' if allowed else 'no'}.")
    elif args.action == "tie-out-blocks":
        blocks = args.value == "on"
        await manage_access.set_tie_out_blocks(requester, project_id, blocks, owners)
        print(f"Leave out invoices that do not tie out: {'yes' if blocks else 'no'}.")
    elif args.action == "dictionary":
        names = dict(pair.split("=", 1) for pair in args.names if "=" in pair)
        dictionary = await manage_access.set_dictionary(requester, project_id, names, owners)
        print("Dictionary: " + ", ".join(f"{tool}={name}" for tool, name in dictionary.items()))
    return 0


async def _audit(args: argparse.Namespace) -> int:
    from datetime import datetime

    from commands import audit

    project_id = await _project_id(args.project) if args.project else None
    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    lines = await audit.entries(project_id=project_id, since=since)
    for line in lines:
        print(line.render())
    if not lines:
        print("No audit entries.")
    return 0


async def _migrate(_: argparse.Namespace) -> int:
    print("The database schema is up to date.")
    return 0


async def _purge(args: argparse.Namespace) -> int:
    from datetime import datetime

    from commands.retention import purge_expired_backups
    from commands.sweep_leftovers import sweep_leftovers

    days = args.days if args.days is not None else retention_days_from_env()
    if days < 1:
        raise CliError(f"--days must be at least 1, got {days}")
    report = await purge_expired_backups(datetime.now(UTC), days, args.blobs)
    print(report.render())
    swept = await sweep_leftovers(datetime.now(UTC), args.blobs)
    print(f"Leftovers of stopped processes on this host: {swept.render()}")
    return 0


async def _store_check(blobs: BlobStore) -> int:
    """``store check``: write, read and delete a probe object; say which store it was."""
    print(f"Checking the object store: {blobs.description}")
    print(await blobs.check())
    return 0


def _makemigrations(args: argparse.Namespace) -> int:
    """Write the model changes as the next migration; say what it could not capture."""
    from storage.schema import unmigrated_model_changes, write_migration

    async def write() -> int:
        await open_database("sqlite://:memory:", check_schema=False)
        try:
            paths = await write_migration(args.name)
            for path in paths:
                print(f"Wrote {path}")
            if not paths:
                print("No model changes: no migration written.")
            left = await unmigrated_model_changes()
        finally:
            await close_database()
        if left:
            print(
                "Edit the migration by hand; it does not yet capture: "
                + "; ".join(left)
                + " (tortoise-orm 1.1.9 drops generated=False from integer primary keys: "
                "write it in the file, as migrations/0001_initial.py does)"
            )
            return 1
        return 0

    return asyncio.run(write())


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

    compiler = commands.add_parser(
        "compile",
        help="compile a backup of some invoices",
        description=(
            "Compile one PDF with each chosen invoice and its PDF attachments, in contract and "
            "application order, after a cover page. The invoices must belong to the project and "
            "you (--as) must be allowed to compile them, as in Slack."
        ),
        epilog=(
            "example:\n"
            "  invoice-backups compile --project 2026-014 --as pm@example.com --list\n"
            "  invoice-backups compile --project 2026-014 --as pm@example.com \\\n"
            "      --invoice 9001 --invoice SC-002-002 -o 'October backup.pdf'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compiler.add_argument("--project", required=True, help="project id or number")
    compiler.add_argument(
        "--invoice",
        action="append",
        default=[],
        metavar="ID_OR_NUMBER",
        help="invoice id, or the subcontractor's invoice number (repeat for several)",
    )
    compiler.add_argument(
        "--list", action="store_true", help="list the invoices you may compile, with their ids"
    )
    compiler.add_argument("-o", "--output", help="copy the PDF to this file")
    compiler.add_argument("--as", dest="requester", help="e-mail of the project user who asks")
    compiler.add_argument("--timezone", default="UTC", help="time zone of the file name")

    demo = commands.add_parser("demo", help="build, import and compile the demo bundle")
    demo.add_argument("-o", "--output", help="copy the demo PDF to this file")
    demo.add_argument("--timezone", default="UTC", help="time zone of the file name")

    commands.add_parser("serve", help="run the Slack bot (HTTP or Socket Mode)")

    commands.add_parser("migrate", help="bring the database schema up to date (idempotent)")
    store = commands.add_parser("store", help="the object store of attachments and PDFs")
    store_actions = store.add_subparsers(dest="action", required=True)
    store_actions.add_parser("check", help="write, read and delete a probe object")
    purge = commands.add_parser(
        "purge",
        help="delete compiled PDFs older than the retention, and killed compiles' leftovers",
    )
    purge.add_argument(
        "--days", type=int, help="keep PDFs this many days (default: BACKUPS_RETENTION_DAYS or 30)"
    )
    makemigrations = commands.add_parser(
        "makemigrations", help="(developers) write a migration for the model changes"
    )
    makemigrations.add_argument("--name", help="name of the migration, e.g. add_job_priority")

    access = commands.add_parser("access", help="see and manage who may do what on a project")
    access.add_argument("--project", required=True, help="project id or number")
    access.add_argument("--as", dest="requester", help="e-mail of the project admin who asks")
    actions = access.add_subparsers(dest="action", required=True)
    actions.add_parser("roster", help="who has which level, links and settings")
    link = actions.add_parser("link", help="link a Slack user to a project user")
    link.add_argument("--slack-user", required=True, help="Slack user id (U…)")
    link.add_argument("--user", required=True, help="project user's e-mail or Procore id")
    unlink = actions.add_parser("unlink", help="remove a Slack user's explicit link")
    unlink.add_argument("--slack-user", required=True, help="Slack user id (U…)")
    contacts = actions.add_parser("contacts-may-compile", help="the invoice-contacts setting")
    contacts.add_argument("value", choices=["on", "off"])
    tie_out = actions.add_parser(
        "tie-out-blocks",
        help="leave out invoices whose numbers do not tie out (off: include and flag them)",
    )
    tie_out.add_argument("value", choices=["on", "off"])
    dictionary = actions.add_parser("dictionary", help="tool names used in messages")
    dictionary.add_argument(
        "names", nargs="+", help="e.g. commitments=Subcontracts subcontractor='Trade Partner'"
    )

    procore = commands.add_parser("procore", help="check the Procore connection, sync projects")
    procore_actions = procore.add_subparsers(dest="action", required=True)
    procore_actions.add_parser(
        "check", help="does the token work, which projects are reachable, what is lacking"
    )
    procore_sync = procore_actions.add_parser("sync", help="sync projects from Procore now")
    procore_sync.add_argument(
        "--project", action="append", help="project number or Procore id (repeat; default: all)"
    )
    procore_sync.add_argument(
        "--full", action="store_true", help="a full pass (also catches deletions)"
    )
    add_webhooks_parser(procore_actions)

    audit = commands.add_parser("audit", help="print the audit trail")
    audit.add_argument("--project", help="project id or number")
    audit.add_argument("--since", help="ISO date or time, e.g. 2026-11-01")
    return parser


ASYNC_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
    "import": _import,
    "compile": _compile,
    "demo": _demo,
    "access": _access,
    "audit": _audit,
    "migrate": _migrate,
    "purge": _purge,
    "procore": _procore,
}
MIGRATING_COMMANDS = frozenset({"migrate", "demo"})


def _user_errors() -> tuple[type[Exception], ...]:
    """The failures printed as one line with exit status 1 (imported only when one happens:
    each subcommand imports only the modules it needs, for a quick start)."""
    from commands.access import AccessDenied
    from commands.import_bundle import BundleError
    from commands.manage_access import InvalidChange
    from storage.schema_errors import SchemaConflict

    return (CliError, BundleError, AccessDenied, InvalidChange, SchemaConflict, WebhooksCliError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``invoice-backups`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "makemigrations":
        return _makemigrations(args)
    if args.command == "compile" and not args.list:
        start_fork_server()  # boots while this process opens the database and reads the invoices
    try:
        procore_settings = procore_settings_from_env()
        store_config = store_config_from_env(data_dir())
    except SettingsError as error:
        print(f"invoice-backups: {error}", file=sys.stderr)
        return 2
    args.procore = None
    if procore_settings is not None and args.command != "store":
        from procore import ProcoreClient  # loads aiohttp: only when Procore is configured

        args.procore = ProcoreClient(procore_settings.client_config())
    try:
        args.blobs = open_blob_store(store_config)
        if args.command == "store":
            return asyncio.run(_until_stop_signal(_store_check(args.blobs)))
        handler = ASYNC_COMMANDS[args.command]
        migrate = args.command in MIGRATING_COMMANDS
        return asyncio.run(
            _until_stop_signal(
                _with_procore(args, lambda: _with_database(lambda: handler(args), migrate=migrate))
            )
        )
    except (Interrupted, KeyboardInterrupt) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        print(f"invoice-backups {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED + signum
    except (SchemaOutdated, SettingsError) as error:
        print(f"invoice-backups: {error}", file=sys.stderr)
        return 2
    except _user_errors() as error:
        print(f"invoice-backups: {plain(str(error))}", file=sys.stderr)
        return 1
    except StoreError as error:
        print(f"invoice-backups: the object store failed: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"invoice-backups: {error}", file=sys.stderr)
        return 1


def console_main() -> None:
    """The ``invoice-backups`` console script (and ``python -m bot.cli``): `main`, then exit
    with its status.

    A process that used the object store (obstore) ends without interpreter finalization, once
    its output and logs are flushed: obstore's tokio threads hand each call's result back to
    Python a moment after the awaited call returns, and a thread doing so while the interpreter
    finalizes aborts the whole process (SIGABRT, exit -6, after the command had succeeded;
    pyo3-async-runtimes issue 40 has no shutdown API yet), and so may its S3 client dropped
    during finalization: skipping finalization covers both. Everything the command owns (the
    database, the process pool, the temporary files) is closed by `main` before it returns.
    """
    status = main()
    if "obstore" in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    console_main()
