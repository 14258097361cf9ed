"""The echo site served by a real daphne process, and a raw WebSocket client per test."""

import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from wsclient import WireClient

from realtime_common.testing.servers import STARTUP_TIMEOUT, free_port, healthy, stop, wait_until

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"

# How the server failed connections, over the run: "dropped" (TCP closed with no
# Close frame) or "close <code>". Printed at the end of the run.
FAILURES: Counter[str] = Counter()


@dataclass(frozen=True)
class EchoServer:
    host: str
    port: int
    log: Path

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, *, origin: str | None = None, **kwargs) -> WireClient:
        """A connection to the echo route, from the site's own origin unless told otherwise."""
        return WireClient(self.host, self.port, origin=origin or self.origin, **kwargs)


@pytest.fixture(scope="session")
def echo_server(tmp_path_factory) -> Iterator[EchoServer]:
    """daphne serving echo_site.asgi for the whole run, started as the sites' is (realtime_common.serve)."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "echo_site.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        # The page origin the client sends, exactly (plain http on daphne's own port).
        "DJANGO_WEBSOCKET_ORIGINS": f"http://{HOST}:{port}",
        "DJANGO_SECURE_COOKIES": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)  # the in-memory channel layer
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "realtime_common.serve", "-b", HOST, "-p", str(port), "echo_site.asgi:application"],
            cwd=HERE,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_until(
                lambda: healthy(f"http://{HOST}:{port}"),
                timeout=STARTUP_TIMEOUT,
                what="daphne serving echo_site",
                process=process,
            )
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"{error}\n{log_path.read_text()}")
        yield EchoServer(host=HOST, port=port, log=log_path)
    finally:
        stop(process)
    # Whatever the cases sent, the stack must not have crashed on it.
    if "Traceback" in (text := log_path.read_text()):
        pytest.fail(f"the echo site logged a traceback:\n{text}")


@pytest.fixture
def ws(echo_server) -> Iterator[WireClient]:
    """A connection, handshake done, closed after the test whatever state it is in."""
    client = echo_server.connect()
    try:
        yield client
    finally:
        if client.failure:
            FAILURES[client.failure] += 1
        client.shutdown()


def pytest_terminal_summary(terminalreporter) -> None:
    if FAILURES:
        counts = ", ".join(f"{how}: {count}" for how, count in sorted(FAILURES.items()))
        terminalreporter.write_line(f"connections the server failed, by how: {counts}")
