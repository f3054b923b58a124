"""The object store interface, one suite run on both implementations (local folder, S3 bucket on
a real SeaweedFS server), then what only the S3 store has: its LRU cache and its outages."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.blobs import (
    CHUNK_SIZE,
    BlobCache,
    BlobMissing,
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    StoreRefused,
    StoreUnavailable,
    blob_key,
    sha256_of_key,
)
from tests.conftest import s3_store
from tests.s3_server import REGION, S3Server, new_bucket_name
from tests.waiting import JOB_PATIENCE, eventually


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_put_file_names_the_blob_by_its_sha256_and_stages_it(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    data = b"%PDF-1.4 lien waiver"
    sha256 = await blob_store.put_file(write(tmp_path / "in" / "waiver.pdf", data))

    assert sha256 == hashlib.sha256(data).hexdigest()
    assert await blob_store.exists(sha256)
    async with blob_store.staged([sha256]) as paths:
        staged = paths[sha256]
        assert staged is not None and staged.read_bytes() == data
        assert staged.name == sha256  # content-addressed, also in the cache
    assert (await blob_store.stage(sha256)).read_bytes() == data


async def test_same_content_is_stored_once(blob_store: BlobStore, tmp_path: Path) -> None:
    first = await blob_store.put_file(write(tmp_path / "a.pdf", b"same content"))
    second = await blob_store.put_file(write(tmp_path / "b.pdf", b"same content"))
    third = await blob_store.put_bytes(b"same content")

    assert first == second == third
    assert [o.key for o in await blob_store.list_objects("blobs")] == [blob_key(first)]


async def test_a_large_file_goes_up_and_comes_down_in_parts(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(CHUNK_SIZE * 20 + 123)  # several multipart parts
    sha256 = await blob_store.put_file(write(tmp_path / "scan.pdf", data))

    assert await blob_store.object_size(blob_key(sha256)) == len(data)
    chunks = [chunk async for chunk in blob_store.read_chunks(blob_key(sha256))]
    assert len(chunks) > 1 and b"".join(chunks) == data
    assert (await blob_store.stage(sha256)).read_bytes() == data
    target = tmp_path / "out" / "copy.pdf"
    await blob_store.download(blob_key(sha256), target)
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["copy.pdf"]  # no partial file left


async def test_empty_content_is_a_blob_too(blob_store: BlobStore, tmp_path: Path) -> None:
    sha256 = await blob_store.put_file(write(tmp_path / "empty.pdf", b""))
    assert sha256 == hashlib.sha256(b"").hexdigest()
    assert (await blob_store.stage(sha256)).read_bytes() == b""


async def test_a_missing_blob_is_missing(blob_store: BlobStore) -> None:
    absent = "0" * 64
    assert not await blob_store.exists(absent)
    async with blob_store.staged([absent]) as paths:
        assert paths == {absent: None}
    with pytest.raises(BlobMissing, match=absent):
        await blob_store.stage(absent)
    with pytest.raises(BlobMissing):
        await blob_store.download(blob_key(absent), Path("/nonexistent/never"))
    await blob_store.delete(blob_key(absent))  # deleting nothing is fine


@pytest.mark.parametrize("bad", ["", "abc", "G" * 64, "A" * 64, "../" + "0" * 61])
def test_keys_are_only_made_of_sha256_digests(bad: str) -> None:
    with pytest.raises(ValueError):
        blob_key(bad)
    assert sha256_of_key(f"blobs/00/00/{bad}") is None


async def test_backups_are_published_listed_read_and_deleted(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    key = "backups/7-abcdef01/Backup.pdf"
    workspace = blob_store.backup_workspace(key)
    write(workspace, b"%PDF-1.7 compiled")
    await blob_store.publish_backup(workspace, key)

    [listed] = await blob_store.list_objects("backups")
    assert (listed.key, listed.size) == (key, len(b"%PDF-1.7 compiled"))
    assert abs((datetime.now(UTC) - listed.last_modified).total_seconds()) < 120
    assert b"".join([c async for c in blob_store.read_chunks(key)]) == b"%PDF-1.7 compiled"
    await blob_store.delete(key)
    assert await blob_store.list_objects("backups") == []
    assert await blob_store.object_size(key) is None


def write_in_steps(path: Path, steps: list[bytes], rewrite_start: bytes = b"") -> None:
    """Write ``steps`` one after the other (flushed each time), then ``rewrite_start`` over the
    first bytes: a writer that is not front to back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as writer:
        for step in steps:
            writer.write(step)
            writer.flush()
        writer.seek(0)
        writer.write(rewrite_start)


async def write_like_the_assembler(
    blob_store: BlobStore, workspace: Path, steps: list[bytes], rewrite: bytes
) -> None:
    """Write the PDF next to its final name in steps, then rename it (as `assemble_backup`).
    On S3 each step is written once the upload has taken the one before: the rewrite of the
    start then always comes after the start was sent."""
    scratch = workspace.parent / ".backup-test" / "backup.pdf"
    sent_before = blob_store.bytes_sent_while_written if isinstance(blob_store, S3BlobStore) else 0
    for count in range(1, len(steps) + 1):
        await asyncio.to_thread(write_in_steps, scratch, steps[:count])
        if isinstance(blob_store, S3BlobStore):
            size = sent_before + sum(len(step) for step in steps[:count])
            await eventually(
                lambda size=size: blob_store.bytes_sent_while_written >= size,
                JOB_PATIENCE,
                what=f"the upload to take the first {size} bytes",
            )
    await asyncio.to_thread(write_in_steps, scratch, steps, rewrite)
    scratch.replace(workspace)
    scratch.parent.rmdir()


@pytest.mark.parametrize("rewrite", [b"", b"%PDF-2.0"], ids=["front-to-back", "rewritten"])
async def test_a_backup_is_published_while_written_and_only_once_whole(
    blob_store: BlobStore, rewrite: bytes
) -> None:
    key = "backups/8-abcdef01/Backup.pdf"
    steps = [b"%PDF-1.7\n" + os.urandom(CHUNK_SIZE * 3)] + [
        os.urandom(CHUNK_SIZE) for _ in range(9)
    ]
    whole = b"".join(steps)
    expected = rewrite + whole[len(rewrite) :]

    async with blob_store.publishing_backup(key) as workspace:
        assert workspace == blob_store.backup_workspace(key)
        await write_like_the_assembler(blob_store, workspace, steps, rewrite)
        assert await blob_store.object_size(key) is None or isinstance(blob_store, LocalBlobStore)

    assert await blob_store.object_size(key) == len(expected)
    assert b"".join([c async for c in blob_store.read_chunks(key)]) == expected
    if isinstance(blob_store, S3BlobStore):  # sent while written unless rewritten
        assert blob_store.published_while_written == (0 if rewrite else 1)


async def test_a_backup_whose_writing_fails_is_not_published(blob_store: BlobStore) -> None:
    key = "backups/9-abcdef01/Backup.pdf"
    with pytest.raises(RuntimeError, match="the PDF work failed"):
        async with blob_store.publishing_backup(key) as workspace:
            scratch = workspace.parent / ".backup-test" / "backup.pdf"
            await asyncio.to_thread(write_in_steps, scratch, [os.urandom(CHUNK_SIZE * 12)])
            raise RuntimeError("the PDF work failed")
    await blob_store.discard_workspace(key)
    assert await blob_store.object_size(key) is None
    assert await blob_store.list_objects("backups") == []


async def test_check_writes_reads_and_deletes_a_probe(blob_store: BlobStore) -> None:
    said = await blob_store.check()
    assert said.startswith(blob_store.description) and "wrote, read and deleted" in said
    assert await blob_store.list_objects("probe") == []
    await blob_store.ping()


def test_the_local_store_keeps_the_layout_of_earlier_versions(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    sha256 = "ab" + "cd" + "0" * 60
    assert store.path_for(sha256) == tmp_path.resolve() / "blobs" / "ab" / "cd" / sha256


# -- the S3 store only ------------------------------------------------------------------------


async def test_a_blob_larger_than_the_cache_still_stages(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_store(s3_server, tmp_path / "cache", cache_bytes=1 << 20)
    data = os.urandom(3 << 20)  # three times the cache
    sha256 = await store.put_file(write(tmp_path / "big.pdf", data))

    async with store.staged([sha256]) as paths:
        staged = paths[sha256]
        assert staged is not None and staged.read_bytes() == data  # pinned while in use
    small = await store.put_bytes(b"small")
    async with store.staged([small]):
        pass
    cached = {path.name for _, _, path in store.cache.cached()}
    assert cached == {small}  # the big one went once no longer in use


async def test_the_cache_evicts_the_least_recently_used(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_store(s3_server, tmp_path / "cache", cache_bytes=300_000)
    hashes = [await store.put_bytes(bytes([n]) * 100_000) for n in range(3)]
    for sha256 in hashes:
        async with store.staged([sha256]):
            pass
    await store.stage(hashes[0])  # used again: now the most recent
    os.utime(store.cache.path_for(hashes[1]), (1, 1))  # the oldest use
    fourth = await store.put_bytes(b"\x09" * 100_000)
    async with store.staged([fourth]) as paths:
        assert paths[fourth] is not None

    cached = {path.name for _, _, path in store.cache.cached()}
    assert cached == {hashes[0], hashes[2], fourth}
    assert sum(size for _, size, _ in store.cache.cached()) <= 300_000


def test_eviction_spares_pinned_blobs(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10)
    pinned, loose = "1" * 64, "2" * 64
    for sha256 in (pinned, loose):
        write(cache.path_for(sha256), b"x" * 8)
    cache.pin([pinned])
    assert cache.evict() == 1
    assert cache.path_for(pinned).exists() and not cache.path_for(loose).exists()
    cache.unpin([pinned])
    assert cache.evict() == 0  # 8 bytes fit


async def test_a_stopped_server_is_unavailable_then_answers_again(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_store(s3_server, tmp_path / "cache")
    sha256 = await store.put_bytes(b"kept across the outage")
    s3_server.stop()
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.stage(sha256)
    finally:
        s3_server.start()
    assert (await store.stage(sha256)).read_bytes() == b"kept across the outage"


async def test_wrong_credentials_are_refused_not_unavailable(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = S3BlobStore(
        new_bucket_name(),
        endpoint=s3_server.endpoint,
        region=REGION,
        access_key_id="nobody",
        secret_access_key="wrong",
        cache_dir=tmp_path,
        cache_bytes=1 << 20,
    )
    with pytest.raises(StoreRefused) as refused:
        await store.check()
    assert "wrong" not in str(refused.value)
