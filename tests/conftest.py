"""Shared fixtures: a moto S3 endpoint (child process) and local/S3 roots for store suites.

* ``moto_endpoint`` (session): URL of a moto S3 server (child process, 127.0.0.1, free port).
* ``s3_storage_options``: delta-rs/Polars ``storage_options`` for that endpoint (dummy creds).
* ``s3_bucket`` / ``s3_root``: a fresh bucket per test, and ``s3://<bucket>/root``.
* ``root_and_options``: parametrised ``(root_uri, storage_options)`` over ``local`` and ``s3``
  (the ``s3`` case carries the ``s3`` marker), for round-trip suites that must pass on both.
* ``moto_requests``: moto's access log from the start of the test, to prove which objects a
  read fetched (partition-pruning tests).
* ``moto_auth``: moto validates credentials during the test (unknown keys -> 403).

boto3 is imported lazily so suites that never touch S3 run without it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

S3_REGION = "us-east-1"
S3_DUMMY_KEY = "testing"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    """A ``moto.server`` subprocess and the file its access log goes to."""

    endpoint: str
    log_path: Path


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """Moto S3 in a child process on 127.0.0.1 and a free port.

    Not ``ThreadedMotoServer``: deltalake 1.6 holds the GIL during the network I/O of
    ``DeltaTable.history()`` and ``DeltaTable.is_deltatable()``, so an in-process server thread
    can never answer them and the call hangs until its 180 s retry timeout.
    """
    log_path = tmp_path_factory.mktemp("moto") / "access.log"
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_listening(port, proc)
        yield MotoServer(endpoint, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"moto server exited with code {proc.returncode}"
            raise RuntimeError(msg)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    msg = f"moto server did not listen on port {port} within {timeout} s"
    raise RuntimeError(msg)


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: MotoServer) -> str:
    """URL of the session's moto S3 endpoint (``http://127.0.0.1:<port>``)."""
    return moto_server.endpoint


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Any:
    """A boto3 S3 client for the moto endpoint (to create buckets or inspect objects)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_DUMMY_KEY,
        aws_secret_access_key=S3_DUMMY_KEY,
    )


@pytest.fixture
def s3_storage_options(moto_endpoint: str) -> dict[str, str]:
    """storage_options for delta-rs and Polars pointing at the moto endpoint."""
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": S3_REGION,
        "AWS_ACCESS_KEY_ID": S3_DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_DUMMY_KEY,
    }


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """Name of a new, empty bucket (unique per test)."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_root(s3_bucket: str) -> str:
    """``s3://<fresh bucket>/root``."""
    return f"s3://{s3_bucket}/root"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def root_and_options(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, dict[str, str] | None]:
    """``(root_uri, storage_options)`` for a local directory and for a moto bucket."""
    if request.param == "local":
        return str(tmp_path / "store"), None
    return request.getfixturevalue("s3_root"), request.getfixturevalue("s3_storage_options")


class MotoRequestLog:
    """Access-log lines moto served since the fixture started or :meth:`clear` was called.

    Lines look like ``127.0.0.1 - - [...] "GET /bucket/key HTTP/1.1" 200 -``.
    """

    def __init__(self, log_path: Path) -> None:
        self._path = log_path
        self._offset = log_path.stat().st_size

    @property
    def lines(self) -> list[str]:
        """Request lines logged since the last :meth:`clear`."""
        with self._path.open("rb") as handle:
            handle.seek(self._offset)
            text = handle.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if "HTTP/1." in line]

    def clear(self) -> None:
        """Forget the lines logged so far (waits briefly so in-flight lines are flushed)."""
        time.sleep(0.05)
        self._offset = self._path.stat().st_size

    def requests(self, method: str | None = None) -> list[tuple[str, str, int]]:
        """``(method, path, status)`` of each logged request, optionally of one method."""
        found = []
        for line in self.lines:
            match = re.search(r'"([A-Z]+) (\S+) HTTP/[\d.]+"\s+(\d{3})', _ANSI.sub("", line))
            if match and (method is None or match.group(1) == method):
                found.append((match.group(1), match.group(2), int(match.group(3))))
        return found

    def object_paths(self, method: str = "GET", suffix: str = "") -> list[str]:
        """Paths (``/bucket/key``, no query) requested with ``method``, ending in ``suffix``."""
        paths = [path.split("?", 1)[0] for _, path, _ in self.requests(method)]
        return [path for path in paths if path.endswith(suffix)]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def moto_requests(moto_server: MotoServer) -> MotoRequestLog:
    """Moto's request log from now on (call ``.clear()`` right before the read to inspect)."""
    return MotoRequestLog(moto_server.log_path)


@contextmanager
def moto_iam_authentication(endpoint: str) -> Iterator[None]:
    """Make the moto server check credentials (unknown keys get 403 InvalidAccessKeyId)."""
    previous = _post(f"{endpoint}/moto-api/reset-auth", b"0")[
        "PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"
    ]
    try:
        yield
    finally:
        _post(f"{endpoint}/moto-api/reset-auth", str(previous).encode())


@pytest.fixture
def moto_auth(moto_endpoint: str) -> Iterator[None]:
    """While the test runs, moto rejects requests signed with unknown access keys."""
    with moto_iam_authentication(moto_endpoint):
        yield


def _post(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))
