"""Real processes for tests: a throwaway Redis, a throwaway Postgres, sites served
by daphne, or sites already running under docker compose.

Load with ``-p realtime_common.testing.servers`` (the browser tests do;
``realtime_common.testing.django_fixtures`` brings it along for the sites' tests).
"""

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(ready, *, timeout: float, what: str, process=None) -> None:
    """Poll ``ready()`` until it is true; fail with ``what`` after ``timeout`` seconds,
    or as soon as ``process`` (a Popen, or anything with its ``poll()``) has exited."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and (code := process.poll()) is not None:
            raise RuntimeError(f"{what}: the process exited with code {code}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(0.05)


def run(command: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Run a command to completion; a failure is a test failure that shows its output."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def healthy(url: str) -> bool:
    """Does the site at ``url`` answer its health check?"""
    try:
        with urllib.request.urlopen(f"{url}/health/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """The URL of a fresh Redis that lives as long as the test session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `apt-get install redis-server` (make test does it)")
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    with (directory / "redis.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    try:
        wait_until(lambda: redis_answers(port), timeout=STARTUP_TIMEOUT, what="redis-server", process=process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def redis_answers(port: int) -> bool:
    """Does a Redis on this loopback port answer PING?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A throwaway Redis that a test may stop and start again on the same port, as
    an operator restarting it would: no persistence, so a restart loses every key,
    subscription and connection. ``start()`` waits until it answers PING."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: `apt-get install redis-server` (make test does it)")
        self.starts += 1
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.directory / f"redis-{self.starts}.log").open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--dir", str(self.directory)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(lambda: redis_answers(self.port), timeout=STARTUP_TIMEOUT, what="redis-server", process=self.process)

    def stop(self, *, kill: bool = False) -> None:
        """Stop it (SIGTERM, or SIGKILL with ``kill``) and wait until it has exited."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
            self.process.wait()
        else:
            stop(self.process)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


# What the tests' databases are (TEST_DATABASE): "sqlite" (the default) or "postgres".
DATABASE_KINDS = ("sqlite", "postgres")


def database_kind_get() -> str:
    kind = os.environ.get("TEST_DATABASE", "").strip().lower() or "sqlite"
    if kind not in DATABASE_KINDS:
        raise pytest.UsageError(f"TEST_DATABASE must be one of {', '.join(DATABASE_KINDS)}, not {kind!r}")
    return kind


def postgres_program_find(*, name: str) -> str:
    """The path of a PostgreSQL server program (initdb, postgres, pg_isready), all from one
    version: the folder of the initdb on PATH, else the newest /usr/lib/postgresql/<version>/bin,
    where Debian's ``postgresql`` keeps them."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        folder = Path(initdb).resolve().parent
    else:
        versions = Path("/usr/lib/postgresql").glob("*/bin/initdb")
        newest = max(versions, key=lambda path: [int(part) for part in path.parts[-3].split(".")], default=None)
        if newest is None:
            pytest.fail("PostgreSQL is not installed: `apt-get install postgresql` (make system-deps does it)")
        folder = newest.parent
    return str(folder / name)


def postgres_account() -> dict[str, Any]:
    """Popen's arguments that run a program as Debian's ``postgres`` user when we are root
    (as CI is): PostgreSQL refuses to run as root. Otherwise none: it runs as we do."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root, and there is no postgres user to run PostgreSQL as: `apt-get install postgresql`")
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def postgres_answers(*, port: int) -> bool:
    """Does the Postgres on this loopback port accept connections?"""
    command = [postgres_program_find(name="pg_isready"), "--quiet", "--host=127.0.0.1", f"--port={port}"]
    return subprocess.run(command, timeout=10).returncode == 0


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL on a free loopback port, in a temporary directory of its
    own, removed with it: no durability (fsync off), since whatever the tests write is
    thrown away. Its only role, ``postgres``, needs no password (trust), as Redis here.

    The directory is not one of pytest's: those are private to the user running the
    tests, and under root the server runs as the ``postgres`` user (``postgres_account``)."""

    port: int = field(default_factory=free_port)
    directory: Path | None = None
    process: subprocess.Popen | None = None

    def url(self, *, name: str) -> str:
        """The DATABASE_URL of its database ``name``."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        account = postgres_account()
        self.directory = Path(tempfile.mkdtemp(prefix="test-postgres-"))
        if account:
            os.chown(self.directory, account["user"], account["group"])
        data = self.directory / "data"
        initdb = [postgres_program_find(name="initdb"), f"--pgdata={data}", "--username=postgres", "--auth=trust"]
        # The C collation sorts as SQLite does; --no-sync: nothing here needs to survive a crash.
        run([*initdb, "--encoding=UTF8", "--locale=C", "--no-sync"], timeout=60, cwd=self.directory, **account)
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # Its socket file in its own directory, not in /var/run/postgresql, which may be missing or the system's.
            "unix_socket_directories": str(self.directory),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [postgres_program_find(name="postgres"), "-D", str(data)]
        command += [flag for key, value in options.items() for flag in ("-c", f"{key}={value}")]
        log_path = self.directory / "postgres.log"
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT, **account
            )
        try:
            wait_until(
                lambda: postgres_answers(port=self.port), timeout=STARTUP_TIMEOUT, what="postgres", process=self.process
            )
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{error}\n{log_path.read_text()}") from error

    def database_create(self, *, name: str, template: str | None = None) -> str:
        """Create a database ``name``, empty or a copy of the database ``template`` (which
        nobody may be connected to); its DATABASE_URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.url(name="postgres"), autocommit=True) as connection:
            connection.execute(statement)
        return self.url(name=name)

    def stop(self) -> None:
        """Stop it by its pid (SIGINT: a fast shutdown, which ends open connections), and remove its directory."""
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """With TEST_DATABASE=postgres, a throwaway Postgres for the session, in which each
    LiveSite gets a database of its own (``database_create``); else None: each its SQLite file."""
    if database_kind_get() != "postgres":
        yield None
        return
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


# The ASGI servers a site can run on. daphne is the sites' (the Procfile, docker/start, compose);
# uvicorn and granian are measured alternatives (docs/scale.md, "Other servers"): the conformance
# suite runs against each, and the bench measures the sites served by each, with these commands.
SERVERS = ("daphne", "uvicorn", "granian")


def server_command(*, server: str, app: str, host: str, port: int) -> list[str]:
    """The command that serves the ASGI application ``app`` ("module:attribute", imported from the
    working directory) with ``server`` on ``host:port``, one process serving the sockets (granian: one worker)."""
    # Imported here, not with the module: realtime_common.serve imports daphne's server module,
    # which installs Twisted's reactor in the importing process.
    from ..consumers import FRAME_MAX_BYTES
    from ..serve import LISTEN_BACKLOG

    if server == "daphne":
        # As the Procfile runs it: the 64 KiB limit with a Close 1009, the storm backlog.
        return [sys.executable, "-m", "realtime_common.serve", "-b", host, "-p", str(port), app]
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            # uvicorn[standard]'s fast parts, as it is deployed.
            "--loop=uvloop",
            "--http=httptools",
            # The sans-I/O websockets implementation: the legacy one ("websockets") is deprecated.
            "--ws=websockets-sansio",
            # The sites' limit on what a page sends; websockets closes with 1009 over it.
            f"--ws-max-size={FRAME_MAX_BYTES}",
            # Its default is on: every frame compressed for a browser, which offers it. daphne
            # (autobahn) declines it, and the sites' frames are small: off, like daphne.
            "--ws-per-message-deflate=false",
            # No line per connection (the handshake, "connection open"): daphne logs none either.
            "--log-level=warning",
            # Channels' ProtocolTypeRouter has no "lifespan" route: with "auto", uvicorn sends the
            # lifespan scope, the router raises, and uvicorn logs it unsupported on every start.
            "--lifespan=off",
            f"--backlog={LISTEN_BACKLOG}",
            f"--host={host}",
            f"--port={port}",
            app,
        ]
    if server == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            # ASGI without lifespan ("asginl"): with "asgi", granian sends the lifespan events,
            # Channels' ProtocolTypeRouter raises, and granian logs a warning on every start.
            "--interface=asginl",
            "--loop=uvloop",
            # One worker; granian starts it as a child of its own main process.
            "--workers=1",
            f"--backlog={LISTEN_BACKLOG}",
            f"--host={host}",
            f"--port={port}",
            app,
        ]
    raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")


@dataclass
class LiveSite:
    """One site, prepared like a deployment (migrated, static files collected),
    served by as many processes of ``server`` (daphne unless told) as a test asks for, all on one database
    (``database_url``, or else an SQLite file in ``workdir``) and one channel layer."""

    directory: Path
    workdir: Path
    redis_url: str | None = None
    database_url: str | None = None
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    servers: list[subprocess.Popen] = field(default_factory=list)
    # Which of SERVERS serve() starts.
    server: str = "daphne"

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": self.secret_key,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Served over plain http on loopback: cookies cannot be Secure.
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_STATIC_ROOT": str(self.workdir / "static"),
            "PYTHONUNBUFFERED": "1",
            # Every test client comes from 127.0.0.1: the per-address cap would stop
            # load and fault tests, not protect anything (consumer tests cover the cap).
            "DJANGO_WEBSOCKETS_PER_IP": os.environ.get("DJANGO_WEBSOCKETS_PER_IP", "100000"),
        }
        env.pop("REDIS_URL", None)
        # Its own database, whatever the caller's shell says.
        env.pop("DATABASE_URL", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        else:
            env["DJANGO_DATABASE_PATH"] = str(self.workdir / "db.sqlite3")
        # Each daphne process accepts its own origins and serves its own sockets (serve),
        # whatever the caller's shell says.
        env.pop("DJANGO_WEBSOCKET_ORIGINS", None)
        env.pop("DJANGO_SOCKET_ORIGIN", None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def manage(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``manage.py`` as another process would, e.g. ``manage("post", "slug", "text")``."""
        return run(
            [sys.executable, "manage.py", *args], cwd=self.directory, env={**self.env, **(env or {})}, timeout=60
        )

    def prepare(self) -> None:
        self.manage("migrate", "--no-input")
        self.manage("collectstatic", "--no-input")

    def serve(
        self,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        wrapper: tuple[str, ...] = (),
        timeout: float = STARTUP_TIMEOUT,
    ) -> str:
        """Start one more process of ``server`` (on ``port``, or a free one; with ``env`` over the
        site's; run by ``wrapper``, e.g. valgrind, given ``timeout`` to be healthy) and return
        its base URL once it is healthy."""
        port = port or free_port()
        # Appended to: a server started again on the port of one stopped keeps the first's log.
        with (self.workdir / f"{self.server}-{port}.log").open("a") as log:
            process = subprocess.Popen(
                [
                    *wrapper,
                    *server_command(server=self.server, app="config.asgi:application", host="127.0.0.1", port=port),
                ],
                cwd=self.directory,
                # Its pages are at http://127.0.0.1:<port> (or localhost): the only
                # origins its sockets accept, as a browser tab on it sends.
                env={**self.env, "DJANGO_PUBLIC_PORTS": str(port), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.servers.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: healthy(url), timeout=timeout, what=f"{self.server} in {self.directory.name}", process=process
        )
        return url

    def work(self, *channels: str, layer: str = "default") -> None:
        """Start a ``manage.py runworker`` process for these channels of this channel layer alias."""
        with (self.workdir / f"worker-{'-'.join(channels)}.log").open("w") as log:
            self.servers.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "runworker", "--layer", layer, *channels],
                    cwd=self.directory,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def logs(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for process in self.servers:
            stop(process)
        self.servers.clear()


class Container:
    """A container started by a test, killed like a process: ``kill()``, then ``wait()``."""

    def __init__(self, container_id: str):
        self.id = container_id

    def docker(self, *args: str) -> None:
        subprocess.run(["docker", *args, self.id], check=True, capture_output=True, timeout=60)

    def kill(self) -> None:
        self.docker("kill")

    def wait(self) -> None:
        self.docker("wait")

    def poll(self) -> int | None:
        """None while running, else the exit code (-1 when the container is gone)."""
        command = ["docker", "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self.id]
        state = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.split()
        running, code = state if len(state) == 2 else ("false", "-1")
        return None if running == "true" else int(code)


@dataclass
class ComposeSite:
    """A site already running under docker compose, reached through its URL;
    ``manage.py`` runs inside its container, like ``LiveSite.manage`` does locally."""

    compose: list[str]  # e.g. ["docker", "compose", "-p", "demo"]
    service: str
    urls: list[str]
    servers: list[Container] = field(default_factory=list)
    # Its logs count from here (Unix time): a stack may have been through a fault on purpose before the
    # tests (make compose-test's failover), and what it logged then is not the tests' doing.
    since: float = field(default_factory=time.time)

    def manage(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env_flags = [flag for key, value in (env or {}).items() for flag in ("-e", f"{key}={value}")]
        return run([*self.compose, "exec", "-T", *env_flags, self.service, "python", "manage.py", *args], timeout=120)

    def serve(self) -> str:
        """Start one more container of the service, on its own port, and return its URL once healthy."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        # Its pages are reached on this port, not the stack's: the origin its sockets accept,
        # and where they open them (not on the stack's socket origin, which accepts the stack's pages only).
        origins = ["-e", f"DJANGO_WEBSOCKET_ORIGINS={url}", "-e", "DJANGO_SOCKET_ORIGIN="]
        command = [*self.compose, "run", "-d", "--no-deps", *origins, "-p", f"127.0.0.1:{port}:8000", self.service]
        container = Container(run(command, timeout=120).stdout.strip())
        self.servers.append(container)
        wait_until(
            lambda: healthy(url),
            timeout=STARTUP_TIMEOUT * 2,
            what=f"another {self.service} container",
            process=container,
        )
        return url

    def logs(self) -> str:
        # docker logs, as docker-compose v1's `logs` has no --since; daphne logs to stderr.
        logged = [
            subprocess.run(
                ["docker", "logs", "--since", f"{self.since:.3f}", container],
                capture_output=True,
                text=True,
                timeout=60,
            )
            for container in run([*self.compose, "ps", "-q", self.service], timeout=60).stdout.split()
        ]
        return "".join(result.stdout + result.stderr for result in logged)

    def stop(self) -> None:
        """Removes the containers the tests started; the stack belongs to whoever started it."""
        for container in self.servers:
            container.docker("rm", "--force")
        self.servers.clear()
