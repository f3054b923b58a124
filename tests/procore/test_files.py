"""File downloads against the fake: redirects to another host, where the token goes, size cap,
expired URLs and the re-read-once rule."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from procore import api
from procore.client import ProcoreClient, ProcoreConfig
from procore.errors import FileTooLarge, FileUrlExpired, TooManyRedirects
from sources.procore import download_invoice_files, read_project
from tests.procore.fake_procore import FakeProcore
from tests.storage.bundles import PROJECT_ID, sample_bundle


async def attachment_url(client: ProcoreClient, requisition_id: int = 7001) -> str:
    (requisition,) = await api.list_requisitions(client, PROJECT_ID, ids=[requisition_id])
    return requisition["attachments"][0]["url"]


async def test_download_follows_the_redirect_and_keeps_the_token_off_the_storage_host(
    procore_client: ProcoreClient, fake_procore: FakeProcore, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "downloads"
    tmp_path.mkdir()
    fake_procore.world.storage_hops = 3
    downloaded = await procore_client.download(
        await attachment_url(procore_client), tmp_path, 10**6
    )
    expected = sample_bundle().files["files/7001/lien-waiver.pdf"]
    assert downloaded.path.read_bytes() == expected
    assert downloaded.path.parent == tmp_path
    assert downloaded.sha256 == hashlib.sha256(expected).hexdigest()
    assert downloaded.byte_size == len(expected)
    first_hop = fake_procore.requests[-1]
    assert first_hop.path.startswith("/storage/files/")
    assert first_hop.authorization == f"Bearer {fake_procore.issued_tokens[0]}"
    assert len(fake_procore.storage_hits) == 3
    assert fake_procore.storage_url.startswith("http://localhost:")
    assert [hit.authorization for hit in fake_procore.storage_hits] == [None, None, None]


async def test_more_than_five_redirects_are_refused(
    procore_client: ProcoreClient, fake_procore: FakeProcore, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "downloads"
    tmp_path.mkdir()
    fake_procore.world.storage_hops = 6  # API host → hop 1 → … → hop 6: six redirects
    with pytest.raises(TooManyRedirects):
        await procore_client.download(await attachment_url(procore_client), tmp_path, 10**6)
    assert len(fake_procore.storage_hits) == 5
    assert list(tmp_path.iterdir()) == []
    fake_procore.world.storage_hops = 5  # five redirects: allowed
    downloaded = await procore_client.download(
        await attachment_url(procore_client), tmp_path, 10**6
    )
    assert downloaded.byte_size > 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_size_cap_keeps_nothing(
    procore_client: ProcoreClient, fake_procore: FakeProcore, tmp_path: Path, chunked: bool
) -> None:
    fake_procore.world.chunked_files = chunked
    tmp_path = tmp_path / "downloads"
    tmp_path.mkdir()
    size = len(sample_bundle().files["files/7001/lien-waiver.pdf"])
    with pytest.raises(FileTooLarge) as refused:
        await procore_client.download(await attachment_url(procore_client), tmp_path, size - 1)
    assert list(tmp_path.iterdir()) == []
    # The size is known when the storage declared it; a chunked answer is cut off at the cap.
    assert (refused.value.byte_size, refused.value.max_bytes) == (
        None if chunked else size,
        size - 1,
    )
    downloaded = await procore_client.download(await attachment_url(procore_client), tmp_path, size)
    assert downloaded.byte_size == size


async def test_an_expired_url_is_reported(
    procore_client: ProcoreClient, fake_procore: FakeProcore, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "downloads"
    tmp_path.mkdir()
    url = await attachment_url(procore_client)
    fake_procore.world.expire_file_urls()
    with pytest.raises(FileUrlExpired) as raised:
        await procore_client.download(url, tmp_path, 10**6)
    assert "sig=" not in str(raised.value)


async def test_invoice_files_reread_the_invoice_once_when_urls_expired(
    procore_client: ProcoreClient, fake_procore: FakeProcore, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "downloads"
    tmp_path.mkdir()
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    invoice = next(invoice for invoice in snapshot.invoices if invoice.id == 7001)
    fake_procore.world.expire_file_urls()
    fake_procore.clear_logs()
    files = await download_invoice_files(procore_client, PROJECT_ID, invoice, tmp_path, 10**6)
    bundle = sample_bundle()
    assert files.attachments[60001].path.read_bytes() == bundle.files["files/7001/lien-waiver.pdf"]
    assert files.signed_pdf is not None
    assert files.signed_pdf.path.read_bytes() == bundle.files["files/7001/signed.pdf"]
    rereads = fake_procore.api_requests("/rest/v1.1/requisitions")
    assert len(rereads) == 1
    assert rereads[0].query.getall("filters[id][]") == ["7001"]


async def test_invoice_files_give_up_after_one_reread(
    procore_client: ProcoreClient, fake_procore: FakeProcore, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "downloads"
    tmp_path.mkdir()
    snapshot = await read_project(procore_client, PROJECT_ID, since=None)
    invoice = next(invoice for invoice in snapshot.invoices if invoice.id == 7002)
    fake_procore.world.files.clear()  # the storage no longer has the file: 404 every time
    with pytest.raises(FileUrlExpired):
        await download_invoice_files(procore_client, PROJECT_ID, invoice, tmp_path, 10**6)
    assert len(fake_procore.api_requests("/rest/v1.1/requisitions")) == 2  # sync + one re-read


@pytest.mark.parametrize(
    ("url", "sends"),
    [
        ("https://storage.procore.com/api/v5/files/x", True),
        ("https://procore.com/x", True),
        ("https://api.procore.com/rest/v1.0/x", True),
        ("http://storage.procore.com/x", False),  # not over TLS
        ("https://s3.amazonaws.com/bucket/x", False),
        ("https://procore.com.evil.example/x", False),
        ("https://evilprocore.com/x", False),
        ("https://api.procore.com:8443/x", True),
    ],
)
def test_token_goes_only_to_procore_hosts(url: str, sends: bool) -> None:
    client = ProcoreClient(ProcoreConfig(client_id="id", client_secret="secret", company_id=1))
    assert client._sends_token_to(url) is sends
