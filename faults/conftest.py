"""Fault tests: the three sites served by real daphne processes on a real Redis on
loopback, with faults made for real: Redis stopped and started again, daphne and
the worker killed, a page that stops reading, a storm of sockets, a database
locked by another connection, an event write that fails.

The sites' databases are SQLite files, or with TEST_DATABASE=postgres databases in a
throwaway Postgres (``postgres_server``, one for the run): ``make faults`` runs the
faults marked ``database`` a second time that way.

Each test starts what it needs (a Redis of its own, sites served from a database
prepared once per run), waits on events with deadlines, records what it measured
(``record``) and the run ends with the table of results.
"""

import asyncio
import itertools
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
from client import BoardPage, ChatPage, LiveblogPage, all_until

from realtime_common.testing.metrics import Samples, metric_value, metrics_scrape, metrics_sum
from realtime_common.testing.sentinel import (
    RedisSentinelSet,
    redis_sentinel,  # noqa: F401 - registers the fixture
)
from realtime_common.testing.servers import (
    LiveSite,
    PostgresServer,
    RedisServer,
    free_port,
    healthy,
    stop,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]
SITESCRIPT = Path(__file__).with_name("sitescript.py")
SITES = ("liveblog", "chat", "sketchpad")

# Sockets by the thousand in one test process, and as many in the servers.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))

RESULTS: list[dict] = []


def record(fault: str, result: str, **measures) -> None:
    """One row of the run's table: the fault, what happened, and the measures (seconds unless named)."""
    RESULTS.append({"fault": fault, "result": result, **measures})


def seconds_round(**durations: float) -> dict[str, float]:
    """Measures in seconds as the table gives them, to the hundredth: finer would be noise."""
    return {name: round(seconds, 2) for name, seconds in durations.items()}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    terminalreporter.section("faults: results")
    for row in RESULTS:
        measures = ", ".join(f"{key}={value}" for key, value in row.items() if key not in ("fault", "result"))
        terminalreporter.write_line(f"{row['fault']}: {row['result']}" + (f" [{measures}]" if measures else ""))
    path = os.environ.get("FAULTS_RESULTS")
    if path:
        Path(path).write_text(json.dumps(RESULTS, indent=2) + "\n")


class ScriptError(Exception):
    def __init__(self, reply: dict):
        super().__init__(f"{reply['type']}: {reply['error']}")
        self.reply = reply


class Script:
    """A writer process inside a site (faults/sitescript.py): one JSON request and reply a line."""

    def __init__(self, site: "FaultSite", name: str = "script"):
        self.log_path = site.workdir / f"{name}-{len(list(site.workdir.glob(f'{name}-*.log')))}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SITESCRIPT)],
                cwd=site.directory,
                env=site.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.call("ping")

    def call(self, op: str, **args):
        self.process.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"sitescript died:\n{self.log()}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise ScriptError(reply)
        return reply["result"]

    async def acall(self, op: str, **args):
        return await asyncio.to_thread(self.call, op, **args)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                stop(self.process)


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> float:
        """Send the signal; the time.monotonic() it was sent at."""
        at = time.monotonic()
        os.kill(self.process.pid, signum)
        return at

    def metrics(self) -> Samples:
        """What its /metrics shows now (a daphne's, over loopback; the worker's on its DJANGO_METRICS_PORT)."""
        return metrics_scrape(url=f"{self.url}/metrics")

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class FaultSite(LiveSite):
    """A LiveSite started from a database prepared once per run, with settings of the test's (``extra``)."""

    extra: dict[str, str] = field(default_factory=dict)
    static: Path | None = None
    daphnes: list[Server] = field(default_factory=list)
    workers: list[Server] = field(default_factory=list)
    scripts: list[Script] = field(default_factory=list)

    __hash__ = object.__hash__  # a site is itself, whatever its fields say

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        if self.static is not None:
            env["DJANGO_STATIC_ROOT"] = str(self.static)
        return {**env, **self.extra}

    def daphne_start(self, *, backlog: int | None = None) -> Server:
        """One more daphne process, not waited for (see ``daphne_ready``). ``backlog``:
        its listen queue (Twisted's default is 50)."""
        port = free_port()
        where = ["-b", "127.0.0.1", "-p", str(port)]
        if backlog:
            where = ["-e", f"tcp:port={port}:interface=127.0.0.1:backlog={backlog}"]
        server = self.server_start(
            command=["-m", "realtime_common.serve", *where, "config.asgi:application"],
            name=f"daphne-{port}",
            port=port,
            env={"DJANGO_PUBLIC_PORTS": str(port)},
        )
        self.daphnes.append(server)
        return server

    @staticmethod
    def daphne_ready(server: Server, timeout: float = 30.0) -> None:
        wait_until(lambda: healthy(server.url), timeout=timeout, what="daphne", process=server.process)

    def worker(self) -> Server:
        """The thumbnail worker, serving its metrics on a port of its own (its Server's url)."""
        port = free_port()
        server = self.server_start(
            command=["manage.py", "runworker", "--layer", "worker", "thumbnails"],
            name=f"worker-{len(self.workers)}",
            port=port,
            env={"DJANGO_METRICS_PORT": str(port)},
        )
        self.workers.append(server)
        return server

    def server_start(self, *, command: list[str], name: str, port: int, env: dict[str, str]) -> Server:
        """Python running ``command`` in the site's folder with the site's environment and ``env``, its
        output in ``<name>.log`` (what a test reads as its Server's text), answering HTTP on ``port``;
        stopped with the site (``stop``), whatever the test did to it."""
        log = self.workdir / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, *command],
                cwd=self.directory,
                env={**self.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.servers.append(process)
        return Server(url=f"http://127.0.0.1:{port}", process=process, log=log)

    def script(self) -> Script:
        script = Script(self)
        self.scripts.append(script)
        return script

    def stop(self) -> None:
        for script in self.scripts:
            script.close()
        self.scripts.clear()
        for process in self.servers:
            if process.poll() is None:
                stop(process)
        self.servers.clear()


@dataclass(frozen=True)
class Prepared:
    """A site migrated and seeded once per run, copied by every test that serves it: its
    folder (static files, the SQLite file) and, on Postgres, its database's name."""

    workdir: Path
    database: str | None = None


def prepare(name: str, root: Path, postgres: PostgresServer | None) -> Prepared:
    workdir = root / name
    workdir.mkdir()
    database = f"{name}_prepared" if postgres else None
    site = LiveSite(
        directory=REPO / name,
        workdir=workdir,
        database_url=postgres.database_create(name=database) if postgres else None,
    )
    site.prepare()
    site.manage("seed")
    return Prepared(workdir=workdir, database=database)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, postgres_server):
    root = tmp_path_factory.mktemp("prepared")
    done: dict[str, Prepared] = {}

    def get(name: str) -> Prepared:
        if name not in done:
            done[name] = prepare(name, root, postgres_server)
        return done[name]

    return get


# Names for the tests' copies of the prepared databases, unique over the run.
COPIES = itertools.count()


def database_connect(site: LiveSite) -> sqlite3.Connection | psycopg.Connection:
    """A connection of the test's own to the site's database, in autocommit: statements run
    as written (a test's BEGIN holds its locks until its ROLLBACK)."""
    if site.database_url:
        return psycopg.connect(site.database_url, autocommit=True)
    return sqlite3.connect(str(site.workdir / "db.sqlite3"), isolation_level=None, timeout=10)


@pytest.fixture
def redis(tmp_path):
    """A Redis of the test's own, which it may stop and start again on the same port."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory=directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sites(prepared, redis, tmp_path, postgres_server):
    """``sites(name, servers=2, env={...}, worker=False)``: a site served by that many
    daphne processes (plus the thumbnail worker), on the test's Redis (or, with
    ``sentinel``, on the primary it names) and a fresh copy of the prepared database.
    Stopped after the test."""
    started: list[FaultSite] = []

    def start(
        name: str,
        *,
        servers: int = 2,
        env: dict[str, str] | None = None,
        worker: bool = False,
        backlog: int | None = None,
        sentinel: RedisSentinelSet | None = None,
    ) -> FaultSite:
        template = prepared(name)
        workdir = tmp_path / name
        workdir.mkdir()
        database_url = None
        if postgres_server:
            copy = f"{name}_{next(COPIES)}"
            database_url = postgres_server.database_create(name=copy, template=template.database)
        for path in template.workdir.glob("db.sqlite3*"):
            shutil.copy(path, workdir / path.name)
        site = FaultSite(
            directory=REPO / name,
            workdir=workdir,
            redis_url=None if sentinel else redis.url,
            database_url=database_url,
            extra={**(sentinel.env if sentinel else {}), **(env or {})},
            static=template.workdir / "static",
        )
        started.append(site)
        # Started together, waited for together: each takes a second or two to load Django.
        launched = [site.daphne_start(backlog=backlog) for _ in range(servers)]
        for server in launched:
            site.daphne_ready(server)
        if worker:
            site.worker()
        return site

    yield start
    for site in started:
        site.stop()


RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def tracebacks(text: str) -> list[str]:
    """The log records (their first lines) that carry a traceback, once each."""
    records, record = [], ""
    for line in text.splitlines():
        if RECORD.match(line):
            record = line
        elif line.startswith("Traceback") and (not records or records[-1] is not record):
            records.append(record)
    return records


async def wait_for_log(server: "Server", needle: str, *, timeout: float) -> float:
    """Poll the server's log until a line holds ``needle``; the seconds it took."""
    started = time.monotonic()
    while needle not in server.text():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{needle!r} not logged within {timeout} s:\n{server.text()[-3000:]}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def metrics_until(servers: list[Server], condition, *, timeout: float, what: str) -> Samples:
    """Poll the servers' /metrics until ``condition`` holds for their samples summed (one
    server's, or a site's over its processes); those samples."""
    started = time.monotonic()
    while True:
        shown = metrics_sum(*[await asyncio.to_thread(server.metrics) for server in servers])
        if condition(shown):
            return shown
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"metrics: not {what} within {timeout} s: {shown}")
        await asyncio.sleep(0.05)


def log_count(text: str, needle: str) -> int:
    return sum(needle in line for line in text.splitlines())


def urls_spread(*, site: LiveSite, number: int) -> list[str]:
    """The site's daphnes' URLs for page ``number``: pages alternate between the servers, each
    page able to use the others when its own is gone."""
    urls = [server.url for server in site.daphnes]
    start = number % len(urls)
    return urls[start:] + urls[:start]


class DemoPages(NamedTuple):
    """Four pages of each demo, spread over its site's servers."""

    blogs: list[LiveblogPage]
    chats: list[ChatPage]
    boards: list[BoardPage]


async def demo_pages_make(*, sites: tuple[LiveSite, ...], scripts: tuple[Script, ...], board: str) -> DemoPages:
    """The liveblog "djangocon"'s pages, a chat page in "lobby" for each of four users made now,
    and the pages of ``board``, made now; none open yet. ``sites`` and ``scripts``: the liveblog's,
    the chat's and the sketchpad's."""
    liveblog, chat, sketchpad = sites
    _, chat_script, pad_script = scripts
    cookies = await chat_script.acall("chat_users", names=["ann", "ben", "cat", "dan"])
    await pad_script.acall("boards", slugs=[board])
    return DemoPages(
        blogs=[
            LiveblogPage(name=f"blog{n}", slug="djangocon", urls=urls_spread(site=liveblog, number=n)) for n in range(4)
        ],
        chats=[
            ChatPage(name=f"chat-{user}", rooms=["lobby"], cookie=cookie, urls=urls_spread(site=chat, number=n))
            for n, (user, cookie) in enumerate(cookies.items())
        ],
        boards=[BoardPage(name=f"board{n}", slug=board, urls=urls_spread(site=sketchpad, number=n)) for n in range(4)],
    )


async def events_write(*, pages: DemoPages, scripts: tuple[Script, ...], text: str, username: str, stroke: str) -> dict:
    """One write of each demo: a post and a chat message (``username``'s) of ``text``, and a
    finished ``stroke`` drawn on the first board page; the post as stored."""
    blog_script, chat_script, _ = scripts
    post = await blog_script.acall("post", slug="djangocon", body=text)
    await chat_script.acall("message", room="lobby", username=username, text=text)
    assert await pages.boards[0].draw(stroke, [[0.1, 0.1], [0.2, 0.2]], done=True)
    return post


async def events_reached(*, pages: DemoPages, text: str, stroke: str, timeout: float) -> float:
    """Wait until the post and the message of ``text`` reach every liveblog and chat page, and
    ``stroke`` every board page; the seconds until the last of the three had reached all its pages."""
    waited = await asyncio.gather(
        all_until(pages.blogs, lambda page: page.has(text), timeout=timeout, what=f"post {text!r}"),
        all_until(pages.chats, lambda page: page.has("lobby", text), timeout=timeout, what=f"message {text!r}"),
        all_until(pages.boards, lambda page: stroke in page.strokes, timeout=timeout, what=f"stroke {stroke!r}"),
    )
    return max(waited)


async def demo_flows(
    *, pages: DemoPages, scripts: tuple[Script, ...], text: str, daphnes: list[Server]
) -> list[Samples]:
    """Before a fault: a write of each demo (``text``, stroke "before") reaches every page, and every
    daphne says its channel layer is up; each daphne's /metrics, to compare with after the fault."""
    await events_write(pages=pages, scripts=scripts, text=text, username="ann", stroke="before")
    await events_reached(pages=pages, text=text, stroke="before", timeout=5)
    shown = [server.metrics() for server in daphnes]
    assert {metric_value(samples, "realtime_channel_layer_up") for samples in shown} == {1}, shown
    return shown


SIGTERM, SIGKILL, SIGSTOP, SIGCONT = signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT
