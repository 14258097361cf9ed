"""Not Autobahn cases: the server listens with a backlog for a reconnect storm, not Twisted's
50 (realtime_common.serve) nor uvicorn's 2048 or granian's 1024 (their --backlog, realtime_common.testing.servers).
The kernel shows a listening socket's backlog as its Send-Q."""

import re
import subprocess
from pathlib import Path

import pytest

from realtime_common.serve import LISTEN_BACKLOG, endpoint_with_backlog


def kernel_cap() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def test_the_server_listens_with_the_storm_backlog(echo_server):
    listening = subprocess.run(
        ["ss", "--listening", "--tcp", "--numeric", "--no-header", f"sport = :{echo_server.port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # State, Recv-Q (connections waiting to be accepted), Send-Q (the backlog), local address, peer.
    assert listening[0] == "LISTEN"
    assert int(listening[2]) == min(LISTEN_BACKLOG, kernel_cap())
    assert int(listening[2]) > 50


@pytest.mark.parametrize(
    ("given", "listened"),
    [
        ("tcp:port=8012:interface=127.0.0.1", f"tcp:port=8012:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"),
        ("tcp6:port=8012", f"tcp6:port=8012:backlog={LISTEN_BACKLOG}"),
        ("unix:/run/site.sock", f"unix:/run/site.sock:backlog={LISTEN_BACKLOG}"),
        ("tcp:port=8012:backlog=128", "tcp:port=8012:backlog=128"),
        ("fd:fileno=3", "fd:fileno=3"),
    ],
)
def test_an_endpoint_gets_the_backlog_unless_it_sets_one(given, listened):
    assert endpoint_with_backlog(endpoint=given) == listened


def test_nginx_in_front_listens_with_the_same_backlog_on_each_port():
    # The compose stack's front door takes the storm first: nginx's default is 511. (The config's text:
    # nginx allows an option on one listen per address:port, e.g. the default_server's.)
    config = (Path(__file__).resolve().parents[1] / "nginx" / "default.conf").read_text()
    listens = [words.split() for words in re.findall(r"^\s*listen\s+([^;]+);", config, re.MULTILINE)]
    ports = {words[0] for words in listens}
    with_backlog = [words[0] for words in listens if f"backlog={LISTEN_BACKLOG}" in words]
    assert sorted(with_backlog) == sorted(ports) == ["8000", "8001", "8002", "8003"]
