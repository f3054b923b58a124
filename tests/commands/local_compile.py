"""`compile_backup` on the local store of the test's data folder (BACKUPS_DATA_DIR)."""

from __future__ import annotations

from typing import Any

from commands import compile_backups
from commands.compile_backups import CompileResult
from storage.blobs import LocalBlobStore
from storage.db import data_dir


async def compile_backup(*args: Any, **kwargs: Any) -> CompileResult:
    """The use case, its blobs and PDFs in the local folder of the test (unless ``blobs`` says
    another store)."""
    kwargs.setdefault("blobs", LocalBlobStore(data_dir()))
    return await compile_backups.compile_backup(*args, **kwargs)
