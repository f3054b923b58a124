"""A content-addressed blob store: files named by the sha256 of their bytes.

Layout: ``<root>/blobs/ab/cd/<sha256>`` (``ab``, ``cd``: the first two byte pairs of the hash).
A blob is written to a temp file under ``<root>/blobs/tmp/`` then moved into place with
`os.replace`, so readers never see a partial blob; identical content is stored once. Blobs are
immutable: nothing here rewrites or deletes one.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from storage.db import data_dir

CHUNK_SIZE = 1024 * 1024
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    """Blobs under ``root`` (default: `storage.db.data_dir()`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root if root is not None else data_dir()).resolve()
        self.blobs_dir = self.root / "blobs"

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists).

        Raises ValueError unless ``sha256`` is 64 lowercase hex digits.
        """
        if not SHA256_PATTERN.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.blobs_dir / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """True if the blob is stored."""
        return self.path_for(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (once) and return its sha256 hex digest."""
        sha256 = hashlib.sha256(data).hexdigest()
        if not self.exists(sha256):
            with self._temp_file() as (temp_file, temp_path):
                temp_file.write(data)
                self._commit(temp_file, temp_path, sha256)
        return sha256

    def put_file(self, path: Path) -> str:
        """Copy the file at ``path`` into the store (once) and return its sha256 hex digest.

        Reads the file once, in chunks, hashing while copying to a temp file.
        """
        digest = hashlib.sha256()
        with self._temp_file() as (temp_file, temp_path), path.open("rb") as source:
            while chunk := source.read(CHUNK_SIZE):
                digest.update(chunk)
                temp_file.write(chunk)
            sha256 = digest.hexdigest()
            if not self.exists(sha256):
                self._commit(temp_file, temp_path, sha256)
        return sha256

    def _temp_file(self) -> _TempFile:
        temp_dir = self.blobs_dir / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        return _TempFile(temp_dir)

    def _commit(self, temp_file: BinaryIO, temp_path: Path, sha256: str) -> None:
        """Flush the temp file to disk and move it to its final name."""
        temp_file.flush()
        os.fsync(temp_file.fileno())
        final_path = self.path_for(sha256)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp_path, final_path)


class _TempFile:
    """A temp file that is removed on exit unless it was moved away."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self) -> tuple[BinaryIO, Path]:
        descriptor, name = tempfile.mkstemp(dir=self.directory, prefix="blob-")
        self.path = Path(name)
        self.file: BinaryIO = os.fdopen(descriptor, "wb")
        return self.file, self.path

    def __exit__(self, *exc_info: object) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)
