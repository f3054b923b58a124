"""PDF work as handed to another process or thread, without loading the PDF libraries here.

Importing this module loads neither pikepdf nor reportlab: a process that only sends the work
(the CLI, the bot's job runner) does not pay for them at start-up. The function is pickled by
reference, so the process that runs it imports `pdf.assemble` on its first call (the PDF
worker pool's fork server has it preloaded, `bot.pool`).
"""

from __future__ import annotations

from pdf.documents import BackupReport, BackupRequest


def run_assemble_backup(request: BackupRequest) -> BackupReport:
    """`pdf.assemble.assemble_backup(request)`, importing that module on first use."""
    from pdf.assemble import assemble_backup

    return assemble_backup(request)
