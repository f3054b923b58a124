"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from storage.blobs import CHUNK_SIZE, BlobStore


def blob_files(store: BlobStore) -> list[Path]:
    return sorted(path for path in store.blobs_dir.rglob("*") if path.is_file())


def test_put_bytes_names_the_blob_by_its_sha256(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"%PDF-1.4 lien waiver"
    sha256 = store.put_bytes(data)

    assert sha256 == hashlib.sha256(data).hexdigest()
    assert store.path_for(sha256) == tmp_path / "blobs" / sha256[:2] / sha256[2:4] / sha256
    assert store.path_for(sha256).read_bytes() == data
    assert store.exists(sha256)


def test_same_bytes_twice_are_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    source = tmp_path / "copy.pdf"
    source.write_bytes(b"same content")

    first = store.put_bytes(b"same content")
    stat_before = store.path_for(first).stat()
    second = store.put_bytes(b"same content")
    third = store.put_file(source)

    assert first == second == third
    assert blob_files(store) == [store.path_for(first)]
    assert store.path_for(first).stat().st_mtime_ns == stat_before.st_mtime_ns


def test_put_file_streams_large_files_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    data = os.urandom(CHUNK_SIZE * 2 + 123)
    source = tmp_path / "scan.pdf"
    source.write_bytes(data)

    sha256 = store.put_file(source)

    assert sha256 == hashlib.sha256(data).hexdigest()
    assert store.path_for(sha256).read_bytes() == data
    assert blob_files(store) == [store.path_for(sha256)]


def test_empty_content_is_a_blob_too(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha256 = store.put_bytes(b"")
    assert sha256 == hashlib.sha256(b"").hexdigest()
    assert store.path_for(sha256).read_bytes() == b""


def test_missing_blob_does_not_exist(tmp_path: Path) -> None:
    assert not BlobStore(tmp_path).exists("0" * 64)


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "A" * 64, "0" * 63, "g" * 64])
def test_path_for_refuses_anything_but_a_sha256(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        BlobStore(tmp_path).path_for(bad)


def test_default_root_is_the_data_dir(data_dir: Path) -> None:
    store = BlobStore()
    sha256 = store.put_bytes(b"x")
    assert store.path_for(sha256).is_relative_to(data_dir.resolve())
