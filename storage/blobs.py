"""The object store of attachment blobs and compiled backups: one interface, two implementations.

- `LocalBlobStore`: a folder (the default, ``<data dir>``), as a single host or a shared disk.
- `S3BlobStore`: an S3-compatible bucket, for processes on several hosts with no shared disk.

Both go through `obstore` (streaming, multipart uploads), and lay out their objects alike:

- ``blobs/ab/cd/<sha256>``: attachment blobs, named by the sha256 of their bytes (``ab``, ``cd``:
  its first two byte pairs). Identical content is stored once; a blob is never rewritten except
  to refresh its age (see `BlobStore.put_file`).
- ``backups/<backup id>-<random>/<file name>.pdf``: compiled backups (`Backup.file_path`).

Nothing is held whole in memory: files go up and come down in chunks. `pdf/` works on local paths,
so a compile asks `BlobStore.staged` for local copies of the blobs it needs: the local store hands
out its own files; the S3 store downloads them into a content-addressed scratch cache (a cached
file is always valid), bounded by ``cache_bytes`` with least-recently-used eviction (blobs in use
by a running compile of this process are never evicted; the cache folder belongs to one host and
is meant for one process at a time). A compile writes its PDF under `BlobStore.backup_workspace`
and `BlobStore.publish_backup` moves it into the store.

Local scratch (`BlobStore.local_scratch`, removed by `BlobStore.remove_scratch`): what a process
killed in the middle leaves on this host's disk: compile workspaces (folders
``backups/<backup id>-<random>``, in the local store's folder or in the S3 store's
``cache/compiles``: a partial PDF, the PDF child's ``.backup-*`` folder, ``progress.txt``), the
S3 cache's partial downloads (``cache/tmp/``) and the local store's partial writes
(``<key>#<n>``, obstore's staging files, which listings skip). Which of them may go is
`commands.sweep_leftovers`' decision.

Failures: `StoreUnavailable` (the store does not answer: network, timeouts, server errors; retry
later), `StoreRefused` (it answers but refuses: credentials, permissions, no such bucket),
`BlobMissing` (the object is not there).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from stat import S_ISDIR
from typing import Any, BinaryIO

import obstore
from obstore.exceptions import BaseError, GenericError
from obstore.store import LocalStore, S3Store

CHUNK_SIZE = 1024 * 1024
UPLOAD_PART_SIZE = 8 * 1024 * 1024  # multipart part size (S3 wants at least 5 MB)
UPLOAD_CONCURRENCY = 4  # parts in flight: 8 MB x2 4.83 s, x4 3.72 s for 249 MB (bench, load 8)
STAGE_CONCURRENCY = 8  # blobs downloaded at once while staging (150 blobs: 4 → 1.2 s, 8 → 1.08 s)
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
BLOBS_PREFIX = "blobs"
BACKUPS_PREFIX = "backups"
PROBE_PREFIX = "probe"
DEFAULT_CACHE_MB = 1024
# A blob younger than this is never collected; an import re-writes a stored blob older than half
# of it, so a blob it found in the store stays for at least half of it (`BlobStore.put_file`).
BLOB_GRACE = timedelta(hours=24)


class StoreError(Exception):
    """The object store failed; ``str(exc)`` is one line, without credentials."""


class StoreUnavailable(StoreError):
    """The store does not answer (network, timeout, server error): try again later."""


class StoreRefused(StoreError):
    """The store answers but refuses (credentials, permissions, missing bucket)."""


class BlobMissing(StoreError, FileNotFoundError):
    """The object is not in the store."""


@dataclass(frozen=True)
class StoredObject:
    """One object as a listing shows it."""

    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class LocalScratch:
    """A compile workspace folder or a partial file on this host's disk (`BlobStore.local_scratch`).

    ``backup_folder``: ``backups/<backup id>-<random>`` for a workspace, None for a partial file.
    ``byte_size`` and ``last_modified`` cover everything in it, at any depth (``last_modified``:
    the newest change, of a file or of a folder)."""

    path: Path
    backup_folder: str | None
    byte_size: int
    last_modified: datetime


@dataclass(frozen=True)
class StoreConfig:
    """Which store to open (read from the environment at start-up by `bot.settings`)."""

    data_dir: Path
    s3_bucket: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    cache_mb: int = DEFAULT_CACHE_MB
    # None: obstore reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and the other AWS_*).
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None


def open_blob_store(config: StoreConfig) -> BlobStore:
    """The store the config names: S3 when a bucket is set, else the local data folder."""
    if config.s3_bucket:
        try:
            return _s3_blob_store(config)
        except BaseError as error:
            raise StoreRefused(str(error).split("\n", 1)[0]) from None
    return LocalBlobStore(config.data_dir)


def _s3_blob_store(config: StoreConfig) -> S3BlobStore:
    assert config.s3_bucket is not None
    return S3BlobStore(
        config.s3_bucket,
        endpoint=config.s3_endpoint,
        region=config.s3_region,
        cache_dir=config.data_dir / "cache",
        cache_bytes=config.cache_mb * 1024 * 1024,
        access_key_id=config.s3_access_key_id,
        secret_access_key=config.s3_secret_access_key,
    )


def blob_key(sha256: str) -> str:
    """The key of the blob with this hash. Raises ValueError unless it is 64 lowercase hex."""
    if not SHA256_PATTERN.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{BLOBS_PREFIX}/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def sha256_of_key(key: str) -> str | None:
    """The hash a blob key names, None for any other key."""
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == BLOBS_PREFIX and SHA256_PATTERN.fullmatch(parts[3]):
        return parts[3]
    return None


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of the file at ``path`` (read in chunks)."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


class BlobStore:
    """The interface (and the code common to both stores, over an obstore store)."""

    description: str  # which store, for people: "local folder /srv/data", "S3 bucket b at …"

    def __init__(self, store: Any, description: str) -> None:
        self._store = store
        self.description = description

    # -- blobs ------------------------------------------------------------------------------

    async def put_file(self, path: Path) -> str:
        """Store the local file at ``path`` (once per content) and return its sha256.

        A blob already stored is written again only when older than half of `BLOB_GRACE`, so
        the blob garbage collection (which spares blobs younger than `BLOB_GRACE`) cannot take
        it before the caller's rows refer to it."""
        sha256 = await asyncio.to_thread(file_sha256, path)
        key = blob_key(sha256)
        stored = await self._head(key)
        if stored is None or stored.last_modified < datetime.now(UTC) - BLOB_GRACE / 2:
            await self._put(key, path)
        return sha256

    async def put_bytes(self, data: bytes) -> str:
        """Store small ``data`` (once) and return its sha256 (tests, demos)."""
        sha256 = hashlib.sha256(data).hexdigest()
        if await self._head(blob_key(sha256)) is None:
            await self._call(obstore.put_async(self._store, blob_key(sha256), data))
        return sha256

    async def exists(self, sha256: str) -> bool:
        """True if the blob is stored."""
        return await self._head(blob_key(sha256)) is not None

    @contextlib.asynccontextmanager
    async def staged(self, hashes: Iterable[str]) -> AsyncIterator[dict[str, Path | None]]:
        """Local paths of these blobs for the duration of the block (None: not in the store).

        Raises `StoreUnavailable`/`StoreRefused` when the store fails."""
        yield {sha256: await self._local_blob(sha256) for sha256 in dict.fromkeys(hashes)}

    async def stage(self, sha256: str) -> Path:
        """A local path holding the blob, valid until it is evicted from the cache (use
        `staged` to keep it for a while). Raises `BlobMissing`."""
        async with self.staged([sha256]) as paths:
            path = paths[sha256]
        if path is None:
            raise BlobMissing(f"blob {sha256} is not in the store")
        return path

    async def _local_blob(self, sha256: str) -> Path | None:
        raise NotImplementedError

    def local_path(self, sha256: str) -> Path:
        """Where `staged` puts (or finds) the local copy of this blob: a path known before
        staging, so a compile can name its files first and stage them later."""
        raise NotImplementedError

    # -- backups ----------------------------------------------------------------------------

    def backup_workspace(self, key: str) -> Path:
        """Where a compile writes the PDF to be stored as ``key`` (its folder is the compile's)."""
        raise NotImplementedError

    async def publish_backup(self, path: Path, key: str) -> None:
        """Store the PDF written at ``backup_workspace(key)`` as ``key``."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def publishing_backup(self, key: str) -> AsyncIterator[Path]:
        """Yield ``backup_workspace(key)``; the block writes the PDF there (directly, or next
        to it and renamed). On a normal exit the PDF is stored as ``key``; when the block raises,
        nothing is stored (the caller discards the workspace). The S3 store starts sending
        the PDF while it is being written (see `S3BlobStore.publishing_backup`)."""
        path = self.backup_workspace(key)
        yield path
        await self.publish_backup(path, key)

    async def discard_workspace(self, key: str) -> None:
        """Remove what a compile left in the workspace of ``key`` (interrupted or failed)."""
        await asyncio.to_thread(shutil.rmtree, self.backup_workspace(key).parent, True)

    async def local_scratch(self) -> list[LocalScratch]:
        """Every compile workspace folder and partial file of this store on this host's disk
        (see the module docstring), whatever its age or owner."""
        return await asyncio.to_thread(self._local_scratch)

    def _local_scratch(self) -> list[LocalScratch]:
        workspaces = self.backup_workspace(BACKUPS_PREFIX)  # the folder of every workspace
        found = [
            _scratch_of(folder, f"{BACKUPS_PREFIX}/{folder.name}")
            for folder in _entries(workspaces)
            if folder.is_dir() and not folder.is_symlink()
        ]
        found += [_scratch_of(path, None) for path in self._partial_files()]
        return [scratch for scratch in found if scratch is not None]

    def _partial_files(self) -> list[Path]:
        """The files this store's interrupted writes leave on this host's disk."""
        return []

    async def remove_scratch(self, scratch: LocalScratch) -> bool:
        """Delete a workspace folder or partial file found by `local_scratch`; False when it was
        gone already. Raises OSError when it cannot be deleted (permissions)."""
        return await asyncio.to_thread(_remove_path, scratch.path)

    async def object_size(self, key: str) -> int | None:
        """The size of the object ``key``, None when it is not stored."""
        stored = await self._head(key)
        return None if stored is None else stored.size

    async def read_chunks(self, key: str) -> AsyncIterator[bytes]:
        """The bytes of ``key`` in chunks. Raises `BlobMissing` (before the first chunk)."""
        async for chunk in self._buffers(key):
            yield bytes(chunk)

    async def _buffers(self, key: str) -> AsyncIterator[Any]:
        """`read_chunks` without the copy into `bytes`: buffers as obstore hands them out."""
        result = await self._call(obstore.get_async(self._store, key), key)
        stream = result.stream(min_chunk_size=CHUNK_SIZE)
        try:
            async for chunk in stream:
                yield chunk
        except BaseError as error:
            raise _store_error(error, key) from None

    async def download(self, key: str, target: Path) -> None:
        """Write the object ``key`` to ``target`` (via a partial file renamed once whole)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            with partial.open("wb") as writer:
                async for chunk in self.read_chunks(key):
                    await asyncio.to_thread(writer.write, chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    async def delete(self, key: str) -> None:
        """Delete ``key`` (nothing when it is not there)."""
        with contextlib.suppress(BlobMissing):
            await self._call(obstore.delete_async(self._store, key), key)

    async def list_objects(self, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` (a folder: ``backups``, ``blobs``)."""
        found: list[StoredObject] = []
        try:
            async for batch in obstore.list(self._store, prefix=prefix, chunk_size=1000):
                found.extend(
                    StoredObject(str(item["path"]), int(item["size"]), item["last_modified"])
                    for item in batch
                )
        except FileNotFoundError:
            return []
        except BaseError as error:
            raise _store_error(error, prefix) from None
        return found

    # -- health ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise `StoreUnavailable`/`StoreRefused` unless the store answers."""
        await self._head(f"{PROBE_PREFIX}/ping")

    async def check(self) -> str:
        """Write, read back and delete a probe object; return what was checked (one line).
        Raises `StoreError` saying which step failed."""
        key = f"{PROBE_PREFIX}/{uuid.uuid4().hex}"
        data = f"invoice-backups store check {datetime.now(UTC).isoformat()}".encode()
        await self._call(obstore.put_async(self._store, key, data), key)
        read = b"".join([chunk async for chunk in self.read_chunks(key)])
        if read != data:
            raise StoreRefused(f"the probe object {key} read back different bytes")
        await self.delete(key)
        if await self._head(key) is not None:
            raise StoreRefused(f"the probe object {key} is still there after its deletion")
        return f"{self.description}: wrote, read and deleted {key}"

    # -- plumbing ----------------------------------------------------------------------------

    async def _head(self, key: str) -> StoredObject | None:
        try:
            meta = await self._call(obstore.head_async(self._store, key), key)
        except BlobMissing:
            return None
        return StoredObject(str(meta["path"]), int(meta["size"]), meta["last_modified"])

    async def _put(self, key: str, source: Path | AsyncIterator[bytes]) -> None:
        """Store ``source`` (a file, or chunks as they come) as ``key``, in parts."""
        await self._call(
            obstore.put_async(
                self._store,
                key,
                source,
                chunk_size=UPLOAD_PART_SIZE,
                max_concurrency=UPLOAD_CONCURRENCY,
            ),
            key,
        )

    async def _call(self, operation: Any, key: str = "") -> Any:
        try:
            return await operation
        except FileNotFoundError:
            raise BlobMissing(f"{key} is not in the store") from None
        except BaseError as error:
            raise _store_error(error, key) from None


def _store_error(error: BaseException, key: str) -> StoreError:
    """Our error for an obstore error, with a one-line message (no debug dump, no secrets)."""
    first_line = str(error).split("\n", 1)[0].strip()
    if isinstance(error, FileNotFoundError):
        return BlobMissing(f"{key} is not in the store")
    if isinstance(error, GenericError) and "Server returned non-2xx status code: 4" not in str(
        error
    ):
        return StoreUnavailable(first_line[:300] or "the object store does not answer")
    return StoreRefused(first_line[:300] or type(error).__name__)


class LocalBlobStore(BlobStore):
    """Blobs and backups in the folder ``root`` (content-addressed blobs under ``blobs/``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        super().__init__(LocalStore(self.root, mkdir=True), f"local folder {self.root}")

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists)."""
        return self.root / blob_key(sha256)

    def local_path(self, sha256: str) -> Path:
        return self.path_for(sha256)

    async def _local_blob(self, sha256: str) -> Path | None:
        path = self.path_for(sha256)
        return path if await asyncio.to_thread(path.is_file) else None

    async def delete(self, key: str) -> None:
        """Delete ``key`` and the folders it leaves empty."""
        await super().delete(key)
        await asyncio.to_thread(_remove_empty_parents, self.root / key, self.root)

    def backup_workspace(self, key: str) -> Path:
        return self.root / key

    def _partial_files(self) -> list[Path]:
        return [
            path
            for prefix in (BLOBS_PREFIX, PROBE_PREFIX)
            for path in (self.root / prefix).rglob("*#*")
            if STAGED_WRITE_PATTERN.fullmatch(path.name) and path.is_file()
        ]

    async def publish_backup(self, path: Path, key: str) -> None:
        """The PDF is already in place."""
        if path != self.root / key:
            raise ValueError(f"{path} is not the workspace of {key}")


# obstore's local store writes ``<key>#<n>`` and renames it to ``<key>`` once whole.
STAGED_WRITE_PATTERN = re.compile(r".+#\d+")


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def _scratch_of(path: Path, backup_folder: str | None) -> LocalScratch | None:
    """``path`` with the size and newest change of everything in it; None when it is gone."""
    try:
        top = path.lstat()
    except FileNotFoundError:
        return None
    byte_size, newest = (0 if S_ISDIR(top.st_mode) else top.st_size), top.st_mtime
    if S_ISDIR(top.st_mode):
        for folder, folders, files in os.walk(path):
            for name in folders + files:
                with contextlib.suppress(FileNotFoundError):
                    entry = os.lstat(os.path.join(folder, name))
                    newest = max(newest, entry.st_mtime)
                    byte_size += 0 if S_ISDIR(entry.st_mode) else entry.st_size
    return LocalScratch(path, backup_folder, byte_size, datetime.fromtimestamp(newest, UTC))


def _remove_path(path: Path) -> bool:
    """Delete the file or folder ``path``; False when it was not there."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def _remove_empty_parents(path: Path, root: Path) -> None:
    folder = path.parent
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


class S3BlobStore(BlobStore):
    """Blobs and backups in an S3-compatible bucket; a local LRU cache of staged blobs."""

    def __init__(
        self,
        bucket: str,
        *,
        cache_dir: Path,
        cache_bytes: int,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        config: dict[str, Any] = {}
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = False
        if region:
            config["region"] = region
        if access_key_id and secret_access_key:
            config["access_key_id"] = access_key_id
            config["secret_access_key"] = secret_access_key
        store = S3Store(
            bucket,
            config=config,
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
                "connect_timeout": timedelta(seconds=5),
                "timeout": timedelta(seconds=120),
            },
            retry_config={
                "max_retries": 2,
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=2),
                    "base": 2,
                },
                "retry_timeout": timedelta(seconds=10),
            },
        )
        where = f" at {endpoint}" if endpoint else (f" in {region}" if region else "")
        super().__init__(store, f"S3 bucket {bucket}{where}")
        self.bucket = bucket
        self.cache = BlobCache(cache_dir, cache_bytes)
        # How many `publishing_backup` uploads were completed from the bytes sent while the PDF
        # was written (the others were sent again whole): for tests and benchmarks.
        self.published_while_written = 0
        # Bytes of PDFs sent while they were being written (`publishing_backup`), so far.
        self.bytes_sent_while_written = 0

    @contextlib.asynccontextmanager
    async def staged(self, hashes: Iterable[str]) -> AsyncIterator[dict[str, Path | None]]:
        wanted = list(dict.fromkeys(hashes))
        self.cache.pin(wanted)
        try:
            slots = asyncio.Semaphore(STAGE_CONCURRENCY)

            async def fetch(sha256: str) -> Path | None:
                async with slots:
                    return await self._local_blob(sha256)

            found = await asyncio.gather(*(fetch(sha256) for sha256 in wanted))
            paths = dict(zip(wanted, found, strict=True))
            await asyncio.to_thread(self.cache.evict)
            yield paths
        finally:
            self.cache.unpin(wanted)

    def local_path(self, sha256: str) -> Path:
        return self.cache.path_for(sha256)

    async def _local_blob(self, sha256: str) -> Path | None:
        cached = await asyncio.to_thread(self.cache.hit, sha256)
        if cached is not None:
            return cached
        partial = self.cache.partial_path()
        digest = hashlib.sha256()
        try:
            with partial.open("wb") as writer:
                async for chunk in self._buffers(blob_key(sha256)):
                    # Off the loop: hashing releases the GIL, so blobs stage in parallel.
                    await asyncio.to_thread(_hash_and_write, digest, writer, chunk)
        except BlobMissing:
            return None
        finally:
            if digest.hexdigest() != sha256:
                partial.unlink(missing_ok=True)
        if digest.hexdigest() != sha256:
            return None
        return await asyncio.to_thread(self.cache.add, sha256, partial)

    def backup_workspace(self, key: str) -> Path:
        return self.cache.root / "compiles" / key

    def _partial_files(self) -> list[Path]:
        return self.cache.partial_files()

    async def publish_backup(self, path: Path, key: str) -> None:
        """Stream the PDF up (multipart), then remove the local copy."""
        await self._put(key, path)
        await self.discard_workspace(key)

    @contextlib.asynccontextmanager
    async def publishing_backup(self, key: str) -> AsyncIterator[Path]:
        """Upload the PDF while the block writes it: the parts of a multipart upload go up as
        the file grows, and the upload is completed (the object appears) only after the block
        ended normally and the bytes sent proved to be the final file (same file, same size,
        same sha256). Otherwise nothing is completed: when the block raises, the upload is
        dropped; when the file was not written front to back (or not found), the whole file is
        uploaded again once written. Relies on the PDF being the only ``.pdf`` file in the
        compile's workspace folder while it is written."""
        path = self.backup_workspace(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = asyncio.Event()
        early = asyncio.create_task(self._put_growing_file(key, path, written))
        try:
            yield path
        except BaseException:
            early.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await early
            raise
        written.set()
        try:
            await early
        except _NotStreamed:
            await self.publish_backup(path, key)  # sent again, whole
        else:
            self.published_while_written += 1
            await self.discard_workspace(key)

    async def _put_growing_file(self, key: str, final: Path, written: asyncio.Event) -> None:
        """Raises `_NotStreamed` (the object was not completed) or a `StoreError`."""
        not_streamed: list[_NotStreamed] = []
        try:
            await self._put(
                key, _growing_file_chunks(final, written, not_streamed, self._count_sent)
            )
        except Exception:
            if not_streamed:  # obstore reports the iterator's error as its own
                raise not_streamed[0] from None
            raise

    def _count_sent(self, byte_count: int) -> None:
        self.bytes_sent_while_written += byte_count


class _NotStreamed(Exception):
    """The PDF could not be sent while written (not found, or not written front to back)."""


GROWING_FILE_POLL_SECONDS = 0.05


async def _growing_file_chunks(
    final: Path,
    written: asyncio.Event,
    not_streamed: list[_NotStreamed],
    sent: Callable[[int], None],
) -> AsyncIterator[bytes]:
    """The bytes of the PDF being written in the folder of ``final`` (its only ``.pdf`` file,
    at any depth), as they are written, until ``written`` is set and the file is read to its
    end; ``sent`` is told the size of each chunk given. Raises `_NotStreamed` (before the last
    chunk is taken, and adds it to ``not_streamed``) unless the bytes given are those of
    ``final`` once written."""
    source = None
    while source is None:
        is_written = written.is_set()
        source = await asyncio.to_thread(_open_pdf_in, final.parent)
        if source is None:
            if is_written:
                not_streamed.append(_NotStreamed(f"no PDF written in {final.parent}"))
                raise not_streamed[-1]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(written.wait(), GROWING_FILE_POLL_SECONDS)
    digest = hashlib.sha256()
    try:
        while True:
            is_written = written.is_set()  # before the read: once set, a read to EOF is all
            chunk = await asyncio.to_thread(_read_and_hash, source, digest)
            if chunk:
                sent(len(chunk))
                yield chunk
            elif is_written:
                break
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(written.wait(), GROWING_FILE_POLL_SECONDS)
        if not await asyncio.to_thread(_is_same_file, source, final, digest.hexdigest()):
            not_streamed.append(_NotStreamed(f"{final} was not written front to back"))
            raise not_streamed[-1]
    finally:
        source.close()


def _open_pdf_in(folder: Path) -> BinaryIO | None:
    for path in folder.rglob("*.pdf"):
        with contextlib.suppress(FileNotFoundError):
            return path.open("rb")
    return None


def _read_and_hash(source: BinaryIO, digest: Any) -> bytes:
    chunk = source.read(CHUNK_SIZE)
    digest.update(chunk)
    return chunk


def _is_same_file(source: BinaryIO, final: Path, sha256: str) -> bool:
    """True if ``source`` (read to its end) is the file now at ``final`` with this hash."""
    try:
        at_final = final.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(source.fileno())
    return (
        (opened.st_dev, opened.st_ino) == (at_final.st_dev, at_final.st_ino)
        and source.tell() == at_final.st_size
        and file_sha256(final) == sha256
    )


def _hash_and_write(digest: Any, writer: BinaryIO, chunk: Any) -> None:
    digest.update(chunk)
    writer.write(chunk)


PARTIAL_PREFIX = "blob-"  # of the cache's partial downloads, in its ``tmp`` folder


class BlobCache:
    """A content-addressed folder of blobs, bounded by ``max_bytes`` (least recently used go
    first; pinned blobs stay). A file's modification time is its last use."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        self._pins: Counter[str] = Counter()

    def path_for(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def pin(self, hashes: Iterable[str]) -> None:
        self._pins.update(hashes)

    def unpin(self, hashes: Iterable[str]) -> None:
        self._pins.subtract(hashes)
        self._pins = +self._pins

    def hit(self, sha256: str) -> Path | None:
        """The cached file, marked as just used; None when not cached."""
        path = self.path_for(sha256)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def partial_path(self) -> Path:
        """A new temporary file name in the cache (to download into)."""
        temp_dir = self.root / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=temp_dir, prefix=PARTIAL_PREFIX)
        os.close(descriptor)
        return Path(name)

    def partial_files(self) -> list[Path]:
        """Every file made by `partial_path` and not (yet) moved into place by `add`."""
        return [
            path
            for path in _entries(self.root / "tmp")
            if path.name.startswith(PARTIAL_PREFIX) and path.is_file()
        ]

    def add(self, sha256: str, partial: Path) -> Path:
        """Move a downloaded (and checked) blob into place."""
        path = self.path_for(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, path)
        return path

    def cached(self) -> list[tuple[float, int, Path]]:
        """(last use, size, path) of every cached blob."""
        entries = []
        for path in (self.root / BLOBS_PREFIX).glob("*/*/*"):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        return entries

    def evict(self) -> int:
        """Delete the least recently used unpinned blobs until the cache fits; return how
        many were deleted."""
        entries = sorted(self.cached())
        total = sum(size for _, size, _ in entries)
        evicted = 0
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            if self._pins.get(path.name):
                continue
            path.unlink(missing_ok=True)
            total -= size
            evicted += 1
        return evicted
