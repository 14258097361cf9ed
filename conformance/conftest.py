"""The echo site served by a real server process (daphne, uvicorn and granian in turn: ``--server``
picks some), and a raw WebSocket client per test."""

import os
import secrets
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cases import CODELESS_FAILURES, SERVER_FAILS, SERVER_RACES, tracebacks_unexpected
from wsclient import WireClient

from realtime_common.testing.servers import (
    SERVERS,
    STARTUP_TIMEOUT,
    free_port,
    healthy,
    server_command,
    stop,
    wait_until,
)

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"

# How each server failed connections, over the run: "dropped" (TCP closed with no
# Close frame), "close <code>" or "close, no code". Printed at the end of the run.
FAILURES: dict[str, Counter[str]] = {server: Counter() for server in SERVERS}


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--server",
        action="append",
        choices=SERVERS,
        help="serve the echo site with this server (repeat for several); all of them by default",
    )


def pytest_generate_tests(metafunc) -> None:
    # Session scope: each server is started once, and pytest runs every test of one server before the next's.
    if "echo_server" in metafunc.fixturenames:
        servers = metafunc.config.getoption("server") or SERVERS
        metafunc.parametrize("echo_server", servers, indirect=True, scope="session")


def pytest_collection_modifyitems(items) -> None:
    """A case a server fails for good (cases.SERVER_FAILS: by Autobahn case id, by test name, or by
    test name and parameter) is a strict xfail; one it fails by a race (cases.SERVER_RACES), a
    non-strict one."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "echo_server" not in callspec.params:
            continue
        labels = {item.originalname, *callspec.id.split("-")}
        server = callspec.params["echo_server"]
        for strict, known in ((True, SERVER_FAILS[server]), (False, SERVER_RACES[server])):
            reasons = [reason for label, reason in known.items() if set(label.split()) <= labels]
            if reasons:
                item.add_marker(pytest.mark.xfail(strict=strict, reason=reasons[0]))


@dataclass(frozen=True)
class EchoServer:
    name: str
    host: str
    port: int
    log: Path

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, *, origin: str | None = None, **kwargs) -> WireClient:
        """A connection to the echo route, from the site's own origin unless told otherwise."""
        return WireClient(
            self.host,
            self.port,
            origin=origin or self.origin,
            codeless_failures=self.name in CODELESS_FAILURES,
            **kwargs,
        )


@pytest.fixture(scope="session")
def echo_server(request, tmp_path_factory) -> Iterator[EchoServer]:
    """A server serving echo_site.asgi for the whole run: daphne started as the sites' is
    (realtime_common.serve), uvicorn and granian as the bench starts them (realtime_common.testing.servers.server_command)."""
    name = request.param
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "echo_site.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        # The page origin the client sends, exactly (plain http on the server's own port).
        "DJANGO_WEBSOCKET_ORIGINS": f"http://{HOST}:{port}",
        "DJANGO_SECURE_COOKIES": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)  # the in-memory channel layer
    log_path = tmp_path_factory.mktemp(name) / f"{name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            server_command(server=name, app="echo_site.asgi:application", host=HOST, port=port),
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
                what=f"{name} serving echo_site",
                process=process,
            )
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"{error}\n{log_path.read_text()}")
        yield EchoServer(name=name, host=HOST, port=port, log=log_path)
    finally:
        stop(process)
    # Whatever the cases sent, the stack must not have crashed on it.
    if crashes := tracebacks_unexpected(text=(text := log_path.read_text()), server=name):
        pytest.fail(f"the echo site logged a traceback ({'; '.join(crashes)}):\n{text}")


@pytest.fixture
def ws(echo_server) -> Iterator[WireClient]:
    """A connection, handshake done, closed after the test whatever state it is in."""
    client = echo_server.connect()
    try:
        yield client
    finally:
        if client.failure:
            FAILURES[echo_server.name][client.failure] += 1
        client.shutdown()


def pytest_terminal_summary(terminalreporter) -> None:
    for server, failures in FAILURES.items():
        if failures:
            counts = ", ".join(f"{how}: {count}" for how, count in sorted(failures.items()))
            terminalreporter.write_line(f"connections {server} failed, by how: {counts}")
