"""A moto S3 endpoint that a test can stop and restart on the same port, keeping its state.

moto keeps its buckets in module globals of the process it runs in, so a ``ThreadedMotoServer``
restarted *in the same process* still has every bucket and object. The server cannot run in the
pytest process itself: deltalake 1.6 holds the GIL during some S3 I/O (``DeltaTable.history()``),
so an in-process server thread never answers and the call hangs for its 180 s retry timeout.
:class:`RestartableMoto` therefore runs the ``ThreadedMotoServer`` in a child process and drives
it over a pipe (``stop()`` closes the listening socket: connections are refused; ``start()`` binds
the same port again).
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int, conn: Any) -> None:  # child process
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server: Any = None
    while True:
        command = conn.recv()
        if command == "start" and server is None:
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
        elif command == "stop" and server is not None:
            server.stop()
            server = None
        elif command == "exit":
            if server is not None:
                server.stop()
            conn.send("ok")
            return
        conn.send("ok")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RestartableMoto:
    """moto S3 in a child process on a free port; ``stop()``/``start()`` keep buckets and objects."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(self.port, child), daemon=True)
        self._proc.start()
        self.start()

    def _command(self, command: str) -> None:
        self._conn.send(command)
        if not self._conn.poll(60):
            raise RuntimeError(f"moto helper did not answer {command!r}")
        self._conn.recv()

    def start(self) -> None:
        self._command("start")
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto did not listen on {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._command("stop")
        deadline = time.monotonic() + 30
        while _listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto still listening on {self.port}")
            time.sleep(0.05)

    def close(self) -> None:
        try:
            self._command("exit")
        finally:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def storage_options(self, **extra: str) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            **extra,
        }
