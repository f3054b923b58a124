"""Benchmark `assemble_backup` against qpdf's page-copy floor on an image-heavy workload.

Plain script, not a test:

    .venv/bin/python bench/compile.py [--runs 3] [--invoices 50] [--target-mb 250] [--no-pypdf]
        [--cli]
    .venv/bin/python bench/compile.py --store s3 [--runs 3]

Targets (issue 12): compile ≤ 1.5× the floor in a warm process, ≤ 2.0× as a whole
`invoice-backups compile` process (`--cli`: the demo bundle in a SQLite data dir with the
workload's attachments on two invoices, against qpdf on the same attachments; the project's
packages copied and byte-compiled first into bench/_work/<workload>/cli-install, which the
command runs from, as an installed package has them: every module it imports, the standard
library and the dependencies too, loads from its .pyc), and a
peak RSS ≤ 250 MB whatever the size (run with `--target-mb 1000` too). Each run prints its own
ratio and the load average; the report gives medians and per-run ranges (the machine may be
shared), and the rendering share: how much of the compile the invoice rendering takes. Exits 1
naming the missed targets when the median warm ratio or peak RSS misses its target.

Generates under bench/_work/<invoices>x<MB>MB (git-ignored) 50 invoices × 3 attachments: a
multi-page scan of random-noise JPEG pages, a scan of random-noise Flate ("PNG-like") pages, and
a text PDF; about 250 MB in all (noise does not compress away). Each run compiles the backup in
a fresh Python process (modules imported before the clock starts, like a warm worker) and
measures its wall time and peak RSS: the process and all its children (the PDF input child, the
render workers) together, sampled every 10 ms from /proc (`TreeMemory`; RSS is the figure held
to the target, PSS, which counts pages a fork shares once, is printed next to it), then times
the floor,

    qpdf --empty --pages <the same rendered invoices and attachments> -- out.pdf \
        --stream-data=preserve

 With pypdf on, it also times a plain pypdf merge of the same inputs (append with
open file handles, then write) as a reference for the design choice. Prints medians.

With ``--store s3`` it compares instead the compile with its files in the object store: the
attachments are put in a local-folder store and in a bucket of a SeaweedFS S3 server started for
the run (`tests.s3_server`), then each run (a fresh process, an empty cache) stages the blobs,
assembles the backup and stores the PDF (`storage.blobs`), on each store in turn, then again on
S3 with the cache the previous run left ("s3-warm"), and the same once more with the PDF sent
only once written instead of while written ("s3-warm-after", to see what the overlap buys). It
prints the median times (staging, assembly, publish after the PDF is written), the CPU the S3
server used, a raw obstore put and get of an object of the backup's size (the floor of this
server on this machine), the load, the S3/local ratios (target ≤ 1.3) and the peak RSS less the
backup size (target ≤ 150 MB); it exits 1 naming the targets missed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pickle
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pikepdf  # noqa: E402
from pikepdf import Name  # noqa: E402
from PIL import Image  # noqa: E402
from reportlab.lib.pagesizes import letter  # noqa: E402
from reportlab.pdfgen.canvas import Canvas  # noqa: E402

from pdf.documents import (  # noqa: E402
    AttachmentSource,
    BackupRequest,
    InvoiceEntry,
    InvoiceSheet,
)
from tests.invoice_sheets import uniform_line, uniform_sheet  # noqa: E402
from tests.process_table import process_tree  # noqa: E402

WORK = ROOT / "bench" / "_work"  # main() picks a folder per workload under it
WARM_TARGET = 1.5  # compile / floor, in a warm process
PROCESS_TARGET = 2.0  # a whole `invoice-backups compile` process / its floor
RSS_TARGET_MB = 250.0
STORE_TARGET = 1.3  # --store s3: S3 compile / local compile
STORE_RSS_OVERHEAD_MB = 150.0  # --store s3: peak RSS − backup size
MB = 1024 * 1024
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
PAGE_WIDTH, PAGE_HEIGHT = letter
SEED = 20261031


@dataclass(frozen=True)
class Workload:
    """The generated inputs: the request, and the files the qpdf floor merges in the same order."""

    request_path: Path
    prerendered_request_path: Path  # the same, with each rendered invoice given as a signed PDF
    floor_inputs: tuple[str, ...]
    input_bytes: int
    attachment_count: int


# ---------------------------------------------------------------------------------------------
# Workload


def noise_jpeg(rng: random.Random, width: int, height: int) -> bytes:
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def image_pdf(path: Path, images: list[tuple[bytes, int, int, str]], rotate_first: bool) -> None:
    """One letter page per image, the image filling the page; (data, width, height, filter)."""
    pdf = pikepdf.new()
    for index, (data, width, height, filter_name) in enumerate(images):
        image = pikepdf.Stream(pdf, data)
        image.Type = Name.XObject
        image.Subtype = Name.Image
        image.Width = width
        image.Height = height
        image.ColorSpace = Name.DeviceRGB
        image.BitsPerComponent = 8
        image.Filter = Name(filter_name)
        page = pdf.add_blank_page(page_size=(PAGE_WIDTH, PAGE_HEIGHT))
        page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        drawing = f"q {PAGE_WIDTH:.0f} 0 0 {PAGE_HEIGHT:.0f} 0 0 cm /Im0 Do Q".encode()
        page.obj.Contents = pdf.make_stream(drawing)
        if rotate_first and index == 0:
            page.rotate(90, relative=False)
    pdf.save(path, stream_decode_level=pikepdf.StreamDecodeLevel.none)


def text_pdf(path: Path, title: str, pages: int) -> None:
    canvas = Canvas(str(path), pagesize=letter)
    for page in range(1, pages + 1):
        canvas.setFont("Helvetica-Bold", 14)
        canvas.drawString(72, 720, f"{title} · page {page}")
        canvas.setFont("Helvetica", 9)
        for row in range(60):
            canvas.drawString(72, 690 - row * 10, f"Line {row + 1}: lien waiver, delivery ticket")
        canvas.showPage()
    canvas.save()


def make_sheet(invoice_number: str, application_number: int, line_count: int) -> InvoiceSheet:
    line = partial(
        uniform_line,
        scheduled=Decimal("25000.00"),
        previous=Decimal("10000.00"),
        this_period=Decimal("2500.00"),
        stored=Decimal("500.00"),
        item_number=lambda index: f"{index:03d}",
        description="Cast-in-place concrete, level {index}",
    )
    lines = tuple(line(index) for index in range(1, line_count + 1))
    return uniform_sheet(invoice_number, application_number, lines, Decimal("9000.00") * line_count)


def generate_workload(invoices: int, target_mb: float) -> Workload:
    """Write the inputs under bench/_work (reused when the same parameters were used before)."""
    inputs = WORK / "inputs"
    manifest_path = WORK / "manifest.json"
    parameters = {"invoices": invoices, "target_mb": target_mb, "seed": SEED}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["parameters"] == parameters and all(
            Path(p).exists() for p in manifest["floor_inputs"]
        ):
            return Workload(
                request_path=Path(manifest["request_path"]),
                prerendered_request_path=Path(manifest["prerendered_request_path"]),
                floor_inputs=tuple(manifest["floor_inputs"]),
                input_bytes=manifest["input_bytes"],
                attachment_count=manifest["attachment_count"],
            )
    shutil.rmtree(WORK, ignore_errors=True)
    inputs.mkdir(parents=True)
    print(f"generating {invoices} invoices × 3 attachments (~{target_mb:.0f} MB) …", flush=True)
    from pdf.render_invoice import render_invoice

    rng = random.Random(SEED)
    # Per invoice: a JPEG scan (~70 % of the bytes), a Flate scan (~30 %), a small text PDF.
    per_invoice = target_mb * MB / invoices
    jpeg_pool = [noise_jpeg(rng, 900, 1160) for _ in range(6)]
    jpeg_page = len(jpeg_pool[0])
    flate_size = (360, 470)
    entries: list[InvoiceEntry] = []
    floor_inputs: list[str] = []
    for number in range(1, invoices + 1):
        invoice_number = f"INV-{1000 + number}"
        sheet = make_sheet(invoice_number, number, line_count=20 + number % 15)
        rendered = inputs / f"invoice-{number:03d}.pdf"
        rendered.write_bytes(render_invoice(sheet))
        jpeg_pages = max(1, round(per_invoice * 0.7 / jpeg_page + rng.uniform(-0.5, 0.5)))
        scan = inputs / f"scan-{number:03d}.pdf"
        image_pdf(
            scan,
            [(rng.choice(jpeg_pool), 900, 1160, "/DCTDecode") for _ in range(jpeg_pages)],
            rotate_first=number % 10 == 0,
        )
        width, height = flate_size
        raw_page = width * height * 3
        flate_pages = max(1, round(per_invoice * 0.3 / raw_page))
        flate_scan = inputs / f"photos-{number:03d}.pdf"
        image_pdf(
            flate_scan,
            [
                (zlib.compress(rng.randbytes(raw_page), 1), width, height, "/FlateDecode")
                for _ in range(flate_pages)
            ],
            rotate_first=False,
        )
        waiver = inputs / f"waiver-{number:03d}.pdf"
        text_pdf(waiver, f"Lien waiver {invoice_number}", pages=2 + number % 4)
        attachments = (
            AttachmentSource(scan.name, "application/pdf", str(scan)),
            AttachmentSource(flate_scan.name, "application/pdf", str(flate_scan)),
            AttachmentSource(waiver.name, "application/pdf", str(waiver)),
        )
        entries.append(
            InvoiceEntry(
                invoice_id=number,
                contract_number=f"SC-{number}",
                contract_title="Concrete works",
                vendor_name=f"Vendor {number}",
                application_number=number,
                invoice_number=invoice_number,
                period_label="Oct 1–31, 2026",
                status_label="Approved",
                current_payment_due=sheet.summary.current_payment_due,
                sheet=sheet,
                signed_pdf_path=None,
                attachments=attachments,
            )
        )
        floor_inputs += [str(rendered), str(scan), str(flate_scan), str(waiver)]
    request = BackupRequest(
        project_name="Harbor Tower",
        project_number="HT-100",
        generated_at=datetime(2026, 11, 2, 14, 5, tzinfo=ZoneInfo("America/Chicago")),
        invoices=tuple(entries),
        output_path=str(WORK / "out" / "backup.pdf"),
    )
    request_path = WORK / "request.pickle"
    request_path.write_bytes(pickle.dumps(request))
    prerendered = replace(
        request,
        invoices=tuple(
            replace(entry, signed_pdf_path=str(inputs / f"invoice-{entry.invoice_id:03d}.pdf"))
            for entry in entries
        ),
    )
    prerendered_request_path = WORK / "request-prerendered.pickle"
    prerendered_request_path.write_bytes(pickle.dumps(prerendered))
    input_bytes = sum(os.path.getsize(p) for p in floor_inputs)
    workload = Workload(
        request_path, prerendered_request_path, tuple(floor_inputs), input_bytes, invoices * 3
    )
    manifest_path.write_text(
        json.dumps(
            {
                "parameters": parameters,
                "request_path": str(request_path),
                "prerendered_request_path": str(prerendered_request_path),
                "floor_inputs": floor_inputs,
                "input_bytes": input_bytes,
                "attachment_count": invoices * 3,
            }
        )
    )
    return workload


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True)
class Measure:
    wall_seconds: float  # what the child measured around the work itself (imports excluded)
    process_seconds: float  # the whole child process, start-up and imports included
    cpu_seconds: float  # user + system, the work and the processes it started (not imports)
    peak_rss_bytes: int  # the largest single process (os.wait4: the process or one child)
    output_bytes: int
    tree_rss_bytes: int = 0  # sampled: the most the process and its children held at once
    tree_pss_bytes: int = 0  # the same in PSS (pages shared after a fork counted once)
    load: float = 0.0  # the one-minute load average when the run ended
    render_cpu_seconds: float = 0.0  # rendering the invoices alone, sequentially (compiles)


class TreeMemory:
    """Samples, while a process runs, the memory of it and all its descendants together.

    Every `interval` seconds it sums the RSS (`/proc/PID/statm`) and the PSS
    (`/proc/PID/smaps_rollup`) of the process tree and keeps the largest sums. RSS counts the
    pages a forked child shares with its parent twice; PSS splits them between the sharers, so
    its sum is what the tree costs the machine. A peak shorter than the interval can be missed.
    """

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self._pid = pid
        self._interval = interval
        self.peak_rss_bytes = 0
        self.peak_pss_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = pss = 0
            for pid in process_tree(self._pid):
                rss += _statm_rss_bytes(pid)
                pss += _pss_bytes(pid)
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            self.peak_pss_bytes = max(self.peak_pss_bytes, pss)
            self._stop.wait(self._interval)


def _statm_rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass(frozen=True)
class Measured:
    """One measured command: wall and CPU time, peak RSS of its largest process, output."""

    elapsed: float
    cpu: float
    peak_rss_bytes: int
    stdout: str
    tree: TreeMemory


def run_measured(command: list[str]) -> Measured:
    """Run `command`: its wall time, CPU time, peak RSS (os.wait4), stdout, tree memory."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    tree = TreeMemory(child.pid)
    stdout = child.stdout.read() if child.stdout else ""
    tree.stop()  # stdout closes when the process exits: it is still a zombie, not reaped
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[:3]} … failed with exit code {child.returncode}")
    return Measured(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, stdout, tree)


def to_measure(run: Measured, seconds: float, cpu: float, output_bytes: int) -> Measure:
    return Measure(
        wall_seconds=seconds,
        process_seconds=run.elapsed,
        cpu_seconds=cpu,
        peak_rss_bytes=run.peak_rss_bytes,
        output_bytes=output_bytes,
        tree_rss_bytes=max(run.tree.peak_rss_bytes, run.peak_rss_bytes),
        tree_pss_bytes=run.tree.peak_pss_bytes,
        load=os.getloadavg()[0],
    )


def measure_compile(request_path: Path) -> Measure:
    remove_outputs()
    command = [sys.executable, __file__, "--child-compile", str(request_path)]
    run = run_measured(command)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return replace(
        to_measure(run, result["seconds"], result["cpu"], result["output_bytes"]),
        render_cpu_seconds=result["render_cpu"],
    )


def measure_floor(workload: Workload) -> Measure:
    remove_outputs()
    output = WORK / "out" / "floor.pdf"
    command = [
        "qpdf",
        "--empty",
        "--pages",
        *workload.floor_inputs,
        "--",
        str(output),
        "--stream-data=preserve",
    ]
    run = run_measured(command)
    return to_measure(run, run.elapsed, run.cpu, output.stat().st_size)


def measure_pypdf(workload: Workload) -> Measure:
    remove_outputs()
    command = [sys.executable, __file__, "--child-pypdf", str(WORK / "manifest.json")]
    run = run_measured(command)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return to_measure(run, result["seconds"], result["cpu"], result["output_bytes"])


def cpu_seconds() -> float:
    """User + system time of this process and of the children it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def remove_outputs() -> None:
    """Each measured run writes a new file (replacing a 250 MB file costs time of its own)."""
    for output in (WORK / "out").glob("*.pdf"):
        output.unlink()


def child_compile(request_path: str) -> None:
    from pdf.assemble import assemble_backup

    request: BackupRequest = pickle.loads(Path(request_path).read_bytes())
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    report = assemble_backup(request)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    if report.left_out:
        print(f"left out: {report.left_out}", file=sys.stderr)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "output_bytes": report.byte_size,
                "render_cpu": render_cpu_seconds(request),
            }
        )
    )


def render_cpu_seconds(request: BackupRequest) -> float:
    """CPU time of rendering the request's invoices one after the other in this process
    (after the timed compile, outside its figures): what the compile's rendering costs."""
    from pdf.render_invoice import render_invoice

    sheets = [entry.sheet for entry in request.invoices if entry.signed_pdf_path is None]
    cpu_before = cpu_seconds()
    for sheet in sheets:
        render_invoice(sheet)
    return cpu_seconds() - cpu_before


def stamp_with_pypdf(writer: Any) -> None:
    """ "Backup page N of M" the pypdf way: one overlay page per page, `merge_page`, compress."""
    from pypdf import PdfReader

    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    total = len(writer.pages)
    for number, page in enumerate(writer.pages, start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        canvas.setPageSize((width, height))
        canvas.setFont("Helvetica", 8)
        canvas.drawRightString(width - 36, 38, f"Backup page {number} of {total}")
        canvas.showPage()
    canvas.save()
    stamps = PdfReader(buffer)
    for page, stamp in zip(writer.pages, stamps.pages, strict=True):
        page.merge_page(stamp)
        page.compress_content_streams()


def child_pypdf(manifest_path: str) -> None:
    from pypdf import PdfReader, PdfWriter

    inputs = json.loads(Path(manifest_path).read_text())["floor_inputs"]
    output = Path(manifest_path).parent / "out" / "pypdf.pdf"
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    writer = PdfWriter()
    handles = [open(path, "rb") for path in inputs]  # noqa: SIM115 - kept open until write
    for handle in handles:
        writer.append(PdfReader(handle))
    stamp_with_pypdf(writer)
    with open(output, "wb") as sink:
        writer.write(sink)
    for handle in handles:
        handle.close()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    print(json.dumps({"seconds": seconds, "cpu": cpu, "output_bytes": output.stat().st_size}))


# ---------------------------------------------------------------------------------------------
# A whole `invoice-backups compile` process

CLI_PROJECT = "2026-014"  # the demo project
CLI_INVOICES = (9001, 9002)  # demo invoices that tie out; the workload's attachments go on them


def attachment_inputs(workload: Workload) -> list[str]:
    """The workload's attachments (the rendered invoices left out)."""
    return [path for path in workload.floor_inputs if not Path(path).name.startswith("invoice-")]


def prepare_cli(workload: Workload) -> Path:
    """A data dir (SQLite) with the demo bundle and the workload's attachments on two invoices."""
    data_dir = WORK / "cli"
    stamp = data_dir / "prepared"
    if stamp.exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    asyncio.run(_prepare_cli(data_dir, attachment_inputs(workload)))
    stamp.touch()
    return data_dir


async def _prepare_cli(data_dir: Path, paths: list[str]) -> None:
    from commands.demo import write_demo_bundle
    from commands.import_bundle import import_bundle
    from storage.blobs import LocalBlobStore
    from storage.db import close_database, open_database
    from storage.models import Attachment

    await open_database(f"sqlite://{data_dir / 'invoice-backups.sqlite3'}", migrate=True)
    try:
        blobs = LocalBlobStore(data_dir)
        await import_bundle(write_demo_bundle(data_dir / "bundle"), blobs)
        per_invoice = -(-len(paths) // len(CLI_INVOICES))
        for number, path in enumerate(paths):
            await Attachment.create(
                id=890_000 + number,
                invoice_id=CLI_INVOICES[number // per_invoice],
                position=100 + number,
                filename=Path(path).name,
                content_type="application/pdf",
                sha256=await blobs.put_file(Path(path)),
                byte_size=Path(path).stat().st_size,  # noqa: ASYNC240 - set-up only
            )
    finally:
        await close_database()


def project_packages() -> list[str]:
    """The project's top-level packages, as pyproject.toml lists them for installation."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [
        name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]


def install_cli_packages() -> Path:
    """A copy of the project's packages under bench/_work, byte-compiled, as an installed package
    has them (pip compiles on install), even where PYTHONDONTWRITEBYTECODE keeps Python from
    writing them; `measure_cli` runs from it. (A PYTHONPYCACHEPREFIX would do for the project,
    but Python then looks for every other module's .pyc under the prefix too, and compiles the
    standard library and the dependencies from source at each start.)"""
    installed = WORK / "cli-install"
    shutil.rmtree(installed, ignore_errors=True)
    for package in project_packages():
        shutil.copytree(
            ROOT / package, installed / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(installed)],
        env={key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return installed


def measure_cli(data_dir: Path, installed: Path) -> Measure:
    """`invoice-backups compile` as a user runs it: start-up, database, compile, exit. The CPU
    figure is that process and the children it waited for (the fork server and its PDF
    workers are not among them)."""
    shutil.rmtree(data_dir / "backups", ignore_errors=True)
    env = {**os.environ, "BACKUPS_DATA_DIR": str(data_dir), "PYTHONPATH": str(installed)}
    for name in ("DATABASE_URL", "PYTHONPYCACHEPREFIX"):
        env.pop(name, None)
    command = [sys.executable, "-m", "bot.cli", "compile", "--project", CLI_PROJECT]
    for invoice in CLI_INVOICES:
        command += ["--invoice", str(invoice)]
    command += ["--as", "pm@example.com"]
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(  # from the copy: `-m` puts the working folder first on the path
            command, env=env, cwd=installed, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        stdout = child.stdout.read() if child.stdout else ""
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f"invoice-backups compile failed: {stderr.read() or stdout}")
    cpu = usage.ru_utime + usage.ru_stime
    output = next((data_dir / "backups").rglob("*.pdf"))
    return Measure(elapsed, elapsed, cpu, 0, output.stat().st_size)


def measure_cli_floor(workload: Workload) -> Measure:
    """qpdf's page copy of the same attachments (the invoices are rendered in the compile)."""
    remove_outputs()
    output = WORK / "out" / "cli-floor.pdf"
    command = ["qpdf", "--empty", "--pages", *attachment_inputs(workload), "--", str(output)]
    run = run_measured([*command, "--stream-data=preserve"])
    return to_measure(run, run.elapsed, run.cpu, output.stat().st_size)


# ---------------------------------------------------------------------------------------------
# Report


def median_measure(measures: list[Measure]) -> Measure:
    return Measure(
        wall_seconds=statistics.median(m.wall_seconds for m in measures),
        process_seconds=statistics.median(m.process_seconds for m in measures),
        cpu_seconds=statistics.median(m.cpu_seconds for m in measures),
        peak_rss_bytes=int(statistics.median(m.peak_rss_bytes for m in measures)),
        output_bytes=int(statistics.median(m.output_bytes for m in measures)),
        tree_rss_bytes=int(statistics.median(m.tree_rss_bytes for m in measures)),
        tree_pss_bytes=int(statistics.median(m.tree_pss_bytes for m in measures)),
        load=statistics.median(m.load for m in measures),
        render_cpu_seconds=statistics.median(m.render_cpu_seconds for m in measures),
    )


def print_report(
    workload: Workload,
    compile_: Measure,
    prerendered: Measure,
    floor: Measure,
    pypdf: Measure | None,
    runs: int,
) -> None:
    def mb(value: float) -> str:
        return f"{value / MB:,.1f} MB"

    sources = len(workload.floor_inputs)
    print(f"runs (median of)         {runs}")
    print(
        f"inputs                   {sources} files ({sources - workload.attachment_count} invoices"
        f" rendered + {workload.attachment_count} attachments), {mb(workload.input_bytes)}"
    )
    print(f"compile wall             {compile_.wall_seconds:.3f} s  (in a warm process)")
    print(
        f"compile CPU              {compile_.cpu_seconds:.3f} s  (all its processes; floor "
        f"{floor.cpu_seconds:.3f} s; {os.cpu_count()} CPUs, load before the runs "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(f"compile process wall     {compile_.process_seconds:.3f} s  (start-up + imports too)")
    print(f"floor wall (qpdf)        {floor.wall_seconds:.3f} s")
    print(
        f"ratio compile / floor    {compile_.wall_seconds / floor.wall_seconds:.2f}×"
        f"  (warm; target ≤ {WARM_TARGET}×; CPU ratio "
        f"{compile_.cpu_seconds / floor.cpu_seconds:.2f}×)"
    )
    print(
        f"ratio process / floor    {compile_.process_seconds / floor.wall_seconds:.2f}×"
        "  (a fresh interpreter importing pdf.assemble, then the compile)"
    )
    print(
        f"pre-rendered compile     {prerendered.wall_seconds:.3f} s = "
        f"{prerendered.wall_seconds / floor.wall_seconds:.2f}× floor, CPU "
        f"{prerendered.cpu_seconds:.3f} s  (invoices given as signed PDFs: everything but "
        f"render_invoice), peak RSS {mb(prerendered.peak_rss_bytes)}"
    )
    rendered = sources - workload.attachment_count
    share = 1 - prerendered.wall_seconds / compile_.wall_seconds
    cpu_share = 1 - prerendered.cpu_seconds / compile_.cpu_seconds
    print(
        f"rendering share          {share:.0%} of the wall time, {cpu_share:.0%} of the CPU"
        " (1 − pre-rendered / compile); rendering alone "
        f"{compile_.render_cpu_seconds:.3f} s CPU for {rendered} invoices"
        f" ({compile_.render_cpu_seconds / max(rendered, 1) * 1000:.1f} ms each, one process)"
    )
    print(
        f"compile peak RSS         {mb(compile_.tree_rss_bytes)}  (target ≤ {RSS_TARGET_MB:.0f} MB"
        " whatever the backup size; the process and all its children at once, sampled every"
        f" 10 ms; PSS {mb(compile_.tree_pss_bytes)}; largest single process"
        f" {mb(compile_.peak_rss_bytes)}; load {compile_.load:.1f})"
    )
    print(
        f"pre-rendered peak RSS    {mb(prerendered.tree_rss_bytes)}  (PSS "
        f"{mb(prerendered.tree_pss_bytes)}, largest single process "
        f"{mb(prerendered.peak_rss_bytes)})"
    )
    print(f"backup size              {mb(compile_.output_bytes)}")
    print(f"floor peak RSS           {mb(floor.peak_rss_bytes)}, output {mb(floor.output_bytes)}")
    if pypdf is not None:
        print(
            f"pypdf (reference)        {pypdf.wall_seconds:.3f} s, CPU {pypdf.cpu_seconds:.3f} s,"
            f" peak RSS "
            f"{mb(pypdf.peak_rss_bytes)} "
            f"(RSS − output {mb(pypdf.peak_rss_bytes - pypdf.output_bytes)});"
            " append with open handles + merge_page stamps + write; no triage, cover, outline"
        )


# ---------------------------------------------------------------------------------------------
# The object store comparison (--store s3)


def store_request(workload: Workload, store_dir: Path, settings: dict[str, str]) -> Path:
    """Put every attachment into the local store and the bucket; write the request whose
    attachment paths are their sha256 (the child stages them)."""
    import asyncio

    from storage.blobs import LocalBlobStore
    from tests.s3_server import bucket_store

    request: BackupRequest = pickle.loads(workload.request_path.read_bytes())

    async def put_all() -> BackupRequest:
        local = LocalBlobStore(store_dir)
        remote = bucket_store(settings["endpoint"], settings["bucket"], WORK / "unused-cache", MB)
        invoices = []
        for entry in request.invoices:
            attachments = []
            for attachment in entry.attachments:
                assert attachment.path is not None
                sha256 = await local.put_file(Path(attachment.path))
                await remote.put_file(Path(attachment.path))
                attachments.append(replace(attachment, path=sha256))
            invoices.append(replace(entry, attachments=tuple(attachments)))
        return replace(request, invoices=tuple(invoices))

    print("putting the attachments into both stores …", flush=True)
    hashed = asyncio.run(put_all())
    path = WORK / "request-hashed.pickle"
    path.write_bytes(pickle.dumps(hashed))
    return path


def child_store_compile(arguments_json: str) -> None:
    """Stage the blobs, assemble, store the PDF; print the time (imports excluded)."""
    import asyncio

    from pdf.assemble import assemble_backup
    from storage.blobs import BlobStore, LocalBlobStore
    from tests.s3_server import bucket_store

    settings = json.loads(arguments_json)
    request: BackupRequest = pickle.loads(Path(settings["request"]).read_bytes())
    cache = Path(settings["cache"])
    if settings["store"] == "s3":  # "s3-warm…": the cache the previous run left
        shutil.rmtree(cache, ignore_errors=True)

    if settings["store"] != "local":
        store: Any = bucket_store(
            settings["endpoint"], settings["bucket"], cache, settings["cache_mb"] * MB
        )
    else:
        store = LocalBlobStore(Path(settings["local_dir"]))
    # "s3-warm-after": the PDF sent once written (the interface's default), not while written.
    publishing = (
        BlobStore.publishing_backup
        if settings["store"] == "s3-warm-after"
        else type(store).publishing_backup
    )

    phases: dict[str, float] = {}

    async def compile_once() -> int:
        hashes = [a.path for entry in request.invoices for a in entry.attachments if a.path]
        key = f"backups/bench-{os.getpid()}/backup.pdf"
        phase_started = time.perf_counter()
        async with store.staged(hashes) as paths:
            phases["stage"] = time.perf_counter() - phase_started
            staged = replace(
                request,
                output_path=str(store.backup_workspace(key)),
                invoices=tuple(
                    replace(
                        entry,
                        attachments=tuple(
                            replace(a, path=str(paths[str(a.path)])) for a in entry.attachments
                        ),
                    )
                    for entry in request.invoices
                ),
            )
            Path(staged.output_path).parent.mkdir(parents=True, exist_ok=True)
            phase_started = time.perf_counter()
            async with publishing(store, key):
                report = await asyncio.to_thread(assemble_backup, staged)
                phases["assemble"] = time.perf_counter() - phase_started
                phase_started = time.perf_counter()
            phases["publish"] = time.perf_counter() - phase_started  # after the PDF is written
        size = await store.object_size(key)
        await store.delete(key)
        return int(size or 0) if report else 0

    cpu_before = cpu_seconds()
    started = time.perf_counter()
    output_bytes = asyncio.run(compile_once())
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    sent_while_written = getattr(store, "published_while_written", 0)
    store = None  # drops obstore's client before the interpreter ends (see bot.cli.console_main)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "output_bytes": output_bytes,
                "sent_while_written": sent_while_written,
                **phases,
            }
        )
    )


@dataclass(frozen=True)
class StoreFloor:
    """A raw obstore put and get of one object of the backup's size: this server's floor."""

    put_seconds: float
    put_server_cpu: float
    get_seconds: float
    get_server_cpu: float


def measure_store_floor(server: Any, settings: dict[str, Any], size: int) -> StoreFloor:
    """Put a file of ``size`` random bytes with obstore (the store's part size and concurrency),
    then read it back as a stream; time both and the server's CPU."""
    import obstore

    from storage.blobs import CHUNK_SIZE, UPLOAD_CONCURRENCY, UPLOAD_PART_SIZE
    from tests.s3_server import raw_store

    source = WORK / "floor.bin"
    if not source.exists() or source.stat().st_size != size:
        with source.open("wb") as writer:
            for offset in range(0, size, MB):
                writer.write(os.urandom(min(MB, size - offset)))
    store = raw_store(settings["endpoint"], settings["bucket"])

    async def put_and_get() -> StoreFloor:
        cpu, started = server.cpu_seconds(), time.perf_counter()
        await obstore.put_async(
            store,
            "floor.bin",
            source,
            chunk_size=UPLOAD_PART_SIZE,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        put = (time.perf_counter() - started, server.cpu_seconds() - cpu)
        cpu, started = server.cpu_seconds(), time.perf_counter()
        result = await obstore.get_async(store, "floor.bin")
        read = 0
        async for chunk in result.stream(min_chunk_size=CHUNK_SIZE):
            read += len(chunk)
        assert read == size
        get = (time.perf_counter() - started, server.cpu_seconds() - cpu)
        await obstore.delete_async(store, "floor.bin")
        return StoreFloor(put[0], put[1], get[0], get[1])

    return asyncio.run(put_and_get())


def compare_stores(arguments: argparse.Namespace) -> None:
    """The --store s3 benchmark: the same compile on the local store and on S3."""
    from tests.s3_server import S3Server

    workload = generate_workload(arguments.invoices, arguments.target_mb)
    server = S3Server(WORK / "s3")
    server.start()
    try:
        settings = {
            "bucket": f"bench-{os.getpid()}",
            "endpoint": server.endpoint,
            "cache": str(WORK / "cache"),
            "cache_mb": arguments.cache_mb,
            "local_dir": str(WORK / "local-store"),
        }
        settings["request"] = str(store_request(workload, WORK / "local-store", settings))
        kinds = ("local", "s3", "s3-warm", "s3-warm-after")
        measures: dict[str, list[Measure]] = {kind: [] for kind in kinds}
        phases: dict[str, list[str]] = {kind: [] for kind in kinds}
        phase_seconds: dict[str, dict[str, list[float]]] = {
            kind: {"stage": [], "assemble": [], "publish": [], "server_cpu": []} for kind in kinds
        }
        loads: list[float] = []
        for run in range(1, arguments.runs + 1):
            for kind in kinds:
                command = [
                    sys.executable,
                    __file__,
                    "--child-store-compile",
                    json.dumps({**settings, "store": kind}),
                ]
                server_cpu = server.cpu_seconds()
                measured = run_measured(command)
                result = json.loads(measured.stdout.strip().splitlines()[-1])
                result["server_cpu"] = server.cpu_seconds() - server_cpu
                for phase, values in phase_seconds[kind].items():
                    values.append(result[phase])
                phases[kind].append(
                    " ".join(f"{p} {result[p]:.2f} s" for p in ("stage", "assemble", "publish"))
                    + f", S3 server CPU {result['server_cpu']:.2f} s"
                    + (", sent while written" if result["sent_while_written"] else "")
                )
                measures[kind].append(
                    to_measure(measured, result["seconds"], result["cpu"], result["output_bytes"])
                )
            print(
                f"run {run}: local {measures['local'][-1].wall_seconds:.2f} s "
                f"({phases['local'][-1]}); s3 {measures['s3'][-1].wall_seconds:.2f} s "
                f"({phases['s3'][-1]}; {measures['s3'][-1].peak_rss_bytes / MB:.0f} MB peak RSS); "
                f"s3 with a warm cache {measures['s3-warm'][-1].wall_seconds:.2f} s "
                f"({phases['s3-warm'][-1]}); the same, sent once written "
                f"{measures['s3-warm-after'][-1].wall_seconds:.2f} s "
                f"({phases['s3-warm-after'][-1]}); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            loads.append(os.getloadavg()[0])
        floor = measure_store_floor(
            server, settings, int(statistics.median(m.output_bytes for m in measures["s3"]))
        )
    finally:
        server.stop()
    local, remote = median_measure(measures["local"]), median_measure(measures["s3"])
    warm = median_measure(measures["s3-warm"])
    after = median_measure(measures["s3-warm-after"])
    print(f"\n{workload.attachment_count} attachments, {workload.input_bytes / MB:.0f} MB in")
    for name, measure in (("local", local), ("s3", remote), ("s3-warm", warm), ("…-after", after)):
        print(
            f"{name:<8} {measure.wall_seconds:6.2f} s (CPU {measure.cpu_seconds:.2f} s), peak RSS "
            f"{measure.peak_rss_bytes / MB:.0f} MB, backup {measure.output_bytes / MB:.0f} MB, "
            f"RSS − backup {(measure.peak_rss_bytes - measure.output_bytes) / MB:.0f} MB "
            "(target ≤ 150 MB)"
        )
    for name in ("s3", "s3-warm", "s3-warm-after"):
        seconds = {p: statistics.median(v) for p, v in phase_seconds[name].items()}
        print(
            f"{name:<8} staging {seconds['stage']:.2f} s, assembly {seconds['assemble']:.2f} s,"
            f" publish after the PDF was written {seconds['publish']:.2f} s (medians); S3 server"
            f" CPU {seconds['server_cpu']:.2f} s"
        )
    backup_mb = remote.output_bytes / MB
    print(
        f"S3 floor (raw obstore, {backup_mb:.0f} MB object, this server on this machine): put "
        f"{floor.put_seconds:.2f} s ({backup_mb / floor.put_seconds:.0f} MB/s, server CPU "
        f"{floor.put_server_cpu:.2f} s), get {floor.get_seconds:.2f} s "
        f"({backup_mb / floor.get_seconds:.0f} MB/s, server CPU {floor.get_server_cpu:.2f} s)"
    )
    cold_ratio = remote.wall_seconds / local.wall_seconds
    warm_ratio = warm.wall_seconds / local.wall_seconds
    print(
        f"s3 / local: {cold_ratio:.2f}× with an empty cache, {warm_ratio:.2f}× with a warm one"
        f" (target ≤ {STORE_TARGET}×); warm, the PDF sent once written instead of while written:"
        f" {after.wall_seconds / local.wall_seconds:.2f}×; the raw put floor alone added to local: "
        f"{(local.wall_seconds + floor.put_seconds) / local.wall_seconds:.2f}×"
    )
    print(
        f"load average during the runs: {min(loads):.1f}–{max(loads):.1f}; after: "
        f"{os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)"
    )
    missed = [
        f"{name} {ratio:.2f}× > {STORE_TARGET}×"
        for name, ratio in (("s3 (empty cache)", cold_ratio), ("s3 (warm cache)", warm_ratio))
        if ratio > STORE_TARGET
    ] + [
        f"{name} RSS − backup {(m.peak_rss_bytes - m.output_bytes) / MB:.0f} MB > 150 MB"
        for name, m in (("local", local), ("s3", remote), ("s3-warm", warm))
        if m.peak_rss_bytes - m.output_bytes > STORE_RSS_OVERHEAD_MB * MB
    ]
    if missed:
        print("targets missed: " + "; ".join(missed))
        raise SystemExit(1)
    print("targets met")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--invoices", type=int, default=50)
    parser.add_argument("--target-mb", type=float, default=250.0)
    parser.add_argument("--no-pypdf", action="store_true", help="skip the pypdf reference merge")
    parser.add_argument(
        "--cli", action="store_true", help="also time whole `invoice-backups compile` processes"
    )
    parser.add_argument("--child-compile", help=argparse.SUPPRESS)
    parser.add_argument("--child-pypdf", help=argparse.SUPPRESS)
    parser.add_argument(
        "--store", choices=["local", "s3"], help="compare the compile on the object stores"
    )
    parser.add_argument("--cache-mb", type=int, default=1024, help="(--store s3) BACKUPS_CACHE_MB")
    parser.add_argument("--child-store-compile", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child_store_compile:
        child_store_compile(arguments.child_store_compile)
        return
    if arguments.child_compile:
        child_compile(arguments.child_compile)
        return
    if arguments.child_pypdf:
        child_pypdf(arguments.child_pypdf)
        return
    print(f"load average before the runs: {os.getloadavg()[0]:.2f}", flush=True)
    global WORK
    WORK = WORK / f"{arguments.invoices}x{arguments.target_mb:g}MB"  # generate_workload clears it
    if arguments.store:
        compare_stores(arguments)
        return
    if shutil.which("qpdf") is None:
        print("qpdf is missing: apt-get install qpdf", file=sys.stderr)
        raise SystemExit(2)
    workload = generate_workload(arguments.invoices, arguments.target_mb)
    (WORK / "out").mkdir(parents=True, exist_ok=True)
    cli_data_dir = prepare_cli(workload) if arguments.cli else None
    cli_installed = install_cli_packages() if arguments.cli else None
    compiles, prerendered, floors, pypdfs = [], [], [], []
    clis: list[Measure] = []
    cli_floors: list[Measure] = []
    for run in range(1, arguments.runs + 1):
        if cli_data_dir is not None and cli_installed is not None:
            clis.append(measure_cli(cli_data_dir, cli_installed))
            cli_floors.append(measure_cli_floor(workload))
            print(
                f"run {run}: invoice-backups compile {clis[-1].wall_seconds:.3f} s "
                f"(CPU of the process {clis[-1].cpu_seconds:.2f} s); its floor "
                f"{cli_floors[-1].wall_seconds:.3f} s = "
                f"{clis[-1].wall_seconds / cli_floors[-1].wall_seconds:.2f}×; load "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
        compiles.append(measure_compile(workload.request_path))
        prerendered.append(measure_compile(workload.prerendered_request_path))
        floors.append(measure_floor(workload))
        if not arguments.no_pypdf:
            pypdfs.append(measure_pypdf(workload))
        print(
            f"run {run}: compile {compiles[-1].wall_seconds:.3f} s "
            f"(CPU {compiles[-1].cpu_seconds:.2f} s), peak RSS "
            f"{compiles[-1].tree_rss_bytes / MB:.0f} MB (PSS "
            f"{compiles[-1].tree_pss_bytes / MB:.0f} MB); pre-rendered "
            f"{prerendered[-1].wall_seconds:.3f} s = "
            f"{prerendered[-1].wall_seconds / floors[-1].wall_seconds:.2f}×, "
            f"{prerendered[-1].tree_rss_bytes / MB:.0f} MB; floor {floors[-1].wall_seconds:.3f} s"
            f" (CPU {floors[-1].cpu_seconds:.2f} s, {floors[-1].peak_rss_bytes / MB:.0f} MB) = "
            f"{compiles[-1].wall_seconds / floors[-1].wall_seconds:.2f}×; load "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print_report(
        workload,
        median_measure(compiles),
        median_measure(prerendered),
        median_measure(floors),
        median_measure(pypdfs) if pypdfs else None,
        arguments.runs,
    )
    ratios = [c.wall_seconds / f.wall_seconds for c, f in zip(compiles, floors, strict=True)]
    print(
        f"warm ratio per run       {min(ratios):.2f}×–{max(ratios):.2f}×; peak RSS "
        f"{min(c.tree_rss_bytes for c in compiles) / MB:.0f}–"
        f"{max(c.tree_rss_bytes for c in compiles) / MB:.0f} MB"
    )
    if clis:
        pairs = zip(clis, cli_floors, strict=True)
        cli_ratios = [c.wall_seconds / f.wall_seconds for c, f in pairs]
        print(
            f"invoice-backups compile  {statistics.median(c.wall_seconds for c in clis):.3f} s"
            f" (median; CPU of the process {statistics.median(c.cpu_seconds for c in clis):.2f} s),"
            f" floor {statistics.median(f.wall_seconds for f in cli_floors):.3f} s"
            f" (CPU {statistics.median(f.cpu_seconds for f in cli_floors):.2f} s);"
            f" ratio per run {min(cli_ratios):.2f}×–{max(cli_ratios):.2f}×"
            f" (target ≤ {PROCESS_TARGET}×; {len(CLI_INVOICES)} demo invoices carrying the"
            " workload's attachments; start-up, database, compile, exit)"
        )
    print(f"load average after the runs: {os.getloadavg()[0]:.2f}")
    missed = missed_targets(median_measure(compiles), median_measure(floors))
    if missed:
        raise SystemExit("targets missed: " + "; ".join(missed))


def missed_targets(compile_: Measure, floor: Measure) -> list[str]:
    """The warm-ratio and memory targets this run missed (medians), as sentences."""
    missed = []
    ratio = compile_.wall_seconds / floor.wall_seconds
    if ratio > WARM_TARGET:
        missed.append(f"warm compile {ratio:.2f}× the floor (target ≤ {WARM_TARGET}×)")
    if compile_.tree_rss_bytes > RSS_TARGET_MB * MB:
        missed.append(
            f"peak RSS {compile_.tree_rss_bytes / MB:.0f} MB (target ≤ {RSS_TARGET_MB:.0f} MB)"
        )
    return missed


if __name__ == "__main__":
    main()
