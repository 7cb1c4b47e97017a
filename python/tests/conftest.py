"""Fixtures: the real peakknn-server binary on a loopback port, and clients.

The server binary comes from $PEAKKNN_SERVER_BIN (ctest sets it to the
build's peakknn-server), else build/server/peakknn-server in the
repository. A missing binary fails the tests (it never skips them).
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import time

import pytest

import peakknn

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


class Server:
    """A running peakknn-server (--listen 127.0.0.1:0, a fresh data dir).

    `client_kwargs` (token=, tls=) are what a client needs to call it, for
    a server started with TLS or role tokens among `extra_flags`."""

    def __init__(self, binary: pathlib.Path, directory: pathlib.Path,
                 extra_flags=(), client_kwargs=None):
        self.directory = directory
        self.client_kwargs = dict(client_kwargs or {})
        self.log_path = directory / "server.log"
        port_file = directory / "ports"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(binary), "--listen=127.0.0.1:0", "--metrics_listen=",
                 f"--port_file={port_file}", f"--data_dir={directory / 'data'}",
                 *extra_flags],
                stdout=log, stderr=subprocess.STDOUT)
        self.address = f"127.0.0.1:{self._wait_for_port(port_file)}"
        self._wait_until_serving()

    def _wait_for_port(self, port_file: pathlib.Path) -> int:
        # The server writes its gRPC port to line 1 once it listens.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"peakknn-server exited with status "
                                   f"{self.process.returncode}:\n{self.log()}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if lines and lines[0].strip():
                return int(lines[0])
            time.sleep(0.02)
        raise RuntimeError(f"peakknn-server wrote no port in 30 s:\n{self.log()}")

    def _wait_until_serving(self) -> None:
        # RPCs answer UNAVAILABLE ("recovering") until collections are loaded.
        deadline = time.monotonic() + 30
        with peakknn.Client(self.address, timeout=5,
                            **self.client_kwargs) as client:
            while True:
                try:
                    client.list_collections()
                    return
                except peakknn.Unavailable:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (drain, checkpoint, exit); returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def server_binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get(
        "PEAKKNN_SERVER_BIN", REPOSITORY / "build/server/peakknn-server"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"peakknn-server not found at {path}: build it (ninja -C "
                    "build peakknn-server) or set PEAKKNN_SERVER_BIN",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the whole run; it must exit 0 on SIGTERM at the end."""
    s = Server(server_binary(), tmp_path_factory.mktemp("server"))
    yield s
    status = s.stop()
    assert status == 0, f"peakknn-server exited {status} on SIGTERM:\n{s.log()}"


@pytest.fixture
def client(server):
    with peakknn.Client(server.address, timeout=60) as c:
        yield c


@pytest.fixture
def collection_name(request, client):
    """A collection name unique to the test, dropped afterwards if created."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:64].strip("-")
    yield name
    try:
        client.drop(name)
    except peakknn.NotFound:
        pass


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(7)
