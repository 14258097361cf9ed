"""`make run`, as a new user runs it: every site served, with a private Redis when
redis-server exists (so the worker and presence work as in production) and the
in-memory layer otherwise, each said in one line; each process's metrics URL printed
and answering; Ctrl-C stops every process.

It serves the fixed ports 8001-8003 of a local `make run`, so `make compose-test`
(whose stack holds those ports) leaves this file out."""

import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from realtime_common.testing.servers import healthy, wait_until

REPO = Path(__file__).resolve().parents[1]
SITES = {"liveblog": 8001, "chat": 8002, "sketchpad": 8003}
# The chat daphne's second port, where its pages open their sockets (Procfile).
CHAT_SOCKET_PORT = 8012


def health_of(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as response:
        return json.load(response)


def metrics_text(url: str) -> str | None:
    """The metrics at ``url``, or None while nothing listens there yet (the worker may start
    serving them after the sites answer); any HTTP error fails the test."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError:
        raise
    except urllib.error.URLError:
        return None


@pytest.mark.parametrize("redis_installed", [True, False], ids=["private-redis", "no-redis-server"])
def test_make_run_serves_every_site_and_ctrl_c_stops_everything(tmp_path, redis_installed):
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "MAKEFLAGS", "MAKELEVEL"}}
    if not redis_installed:
        env["REDIS_SERVER"] = str(tmp_path / "no-redis-server-here")
    log = (tmp_path / "make-run.log").open("w+")
    run = subprocess.Popen(
        ["make", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        for port in SITES.values():
            wait_until(
                lambda port=port: healthy(f"http://127.0.0.1:{port}"),
                timeout=120,
                what=f"make run :{port}",
                process=run,
            )
        output = Path(log.name).read_text()
        if redis_installed:
            assert "==> A private Redis for this run at redis://127.0.0.1:" in output
            assert output.count("Using the Redis pubsub channel layer at redis://127.0.0.1:") >= len(SITES)
        else:
            assert "==> No redis-server found: the in-memory channel layer" in output
            assert output.count("Using the in-memory channel layer") >= len(SITES)
        assert all(health_of(port)["channel_layer"] == "ok" for port in [*SITES.values(), CHAT_SOCKET_PORT])

        # One line names every process's metrics URL: each site's own port, and the worker's.
        metrics_line = re.search(r"^==> Metrics.*$", output, re.MULTILINE)
        assert metrics_line, output
        urls = dict(re.findall(r"(\w+) (http://127\.0\.0\.1:\d+/metrics)", metrics_line[0]))
        assert urls.keys() == {*SITES, "thumbnails"}
        assert all(urls[site] == f"http://127.0.0.1:{port}/metrics" for site, port in SITES.items())
        for url in urls.values():
            wait_until(lambda url=url: metrics_text(url) is not None, timeout=60, what=url, process=run)
            text = metrics_text(url)
            assert "# TYPE realtime_sockets_open gauge" in text and "process_cpu_seconds_total" in text, text
    finally:
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal signals the whole group
        run.wait(timeout=60)
    # Nothing of the run is left: no process in its group, and the ports are free again.
    with pytest.raises(ProcessLookupError):
        os.killpg(run.pid, 0)
    assert not any(healthy(f"http://127.0.0.1:{port}") for port in [*SITES.values(), CHAT_SOCKET_PORT])
    assert metrics_text(urls["thumbnails"]) is None
