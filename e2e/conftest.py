"""Browser tests: Playwright drives Chromium against real daphne processes on one Redis.

By default each site is started here (two daphne processes on a throwaway Redis).
E2E_REDIS_SHARDS=2 (`make e2e-sharded`) starts two Redis instead and gives every
site both in REDIS_URL: channels-redis shards both channel layers over them.
TEST_DATABASE=postgres (`make test-postgres`) gives each site a database of its own in
one throwaway Postgres, instead of an SQLite file each.
To test a running docker compose stack instead, set E2E_COMPOSE to the compose
command (e.g. "docker compose -p demo") and E2E_<SITE>_URL for each site
(E2E_LIVEBLOG_URL=http://127.0.0.1:8001 ...); `make compose-test` does.

Chromium comes from the system (Debian's package), not from Playwright's download:
CHROMIUM_PATH overrides where it is.
"""

import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from signal import SIGSTOP

import pytest
from pages import CHAT_PASSWORD, CHAT_ROOMS, CHAT_USERS, STAFF_PASSWORD, STAFF_USERNAME, WATCH_VIOLATIONS, Watched
from playwright.sync_api import Browser, BrowserContext, Page, expect

from realtime_common.testing.servers import (
    STARTUP_TIMEOUT,
    ComposeSite,
    LiveSite,
    PostgresServer,
    RedisServer,
    healthy,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]
# The channels each site's `runworker --layer worker` serves, as docker-compose.yml runs them: the
# sketchpad draws its thumbnails off the socket's process. A site not named here has no worker.
WORKERS = {"sketchpad": ("thumbnails",)}

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        # This machine has no network but loopback: stop Chromium phoning home.
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """The sites' REDIS_URL: one throwaway Redis, or E2E_REDIS_SHARDS of them, comma-separated
    (this replaces the fixture of realtime_common.testing.servers for the browser tests).
    channels-redis shards both channel layers over them; the cache (rate limits, thumbnail
    flags) and the chat's presence stay on the first, as in production."""
    count = int(os.environ.get("E2E_REDIS_SHARDS", "1"))
    if count < 1:
        pytest.fail(f"E2E_REDIS_SHARDS must be 1 or more, not {count}")
    shards: list[RedisServer] = []
    try:
        # One after the other: each holds its port before the next picks a free one.
        for _ in range(count):
            shards.append(RedisServer(directory=tmp_path_factory.mktemp("redis")))
            shards[-1].start()
        yield ",".join(shard.url for shard in shards)
    finally:
        for shard in shards:
            shard.stop()


def serve_site(
    name: str,
    *,
    tmp_path_factory,
    redis_url: str,
    postgres: PostgresServer | None,
    servers: int = 2,
):
    """Yield the site as deployed: migrated, seeded, with a staff account, served by
    ``servers`` daphne processes sharing one database (its own in ``postgres`` if any,
    else an SQLite file) and one REDIS_URL, plus a ``runworker`` process for its ``WORKERS``
    channels (of the "worker" layer) if any. Fails the run if any process logged a traceback."""
    url = os.environ.get(f"E2E_{name.upper()}_URL")
    if url:
        site = ComposeSite(compose=shlex.split(os.environ["E2E_COMPOSE"]), service=name, urls=[url] * servers)
    else:
        workdir = tmp_path_factory.mktemp(name)
        site = LiveSite(
            directory=REPO / name,
            workdir=workdir,
            redis_url=redis_url,
            # Named after its folder (chat0, chat1...): the screenshots' sites are a second of each.
            database_url=postgres.database_create(name=workdir.name) if postgres else None,
        )
        site.prepare()
        site.manage("seed")
        site.urls = [site.serve() for _ in range(servers)]
        if name in WORKERS:
            site.work(*WORKERS[name], layer="worker")
    site.manage(
        "createsuperuser",
        "--no-input",
        f"--username={STAFF_USERNAME}",
        "--email=staff@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD},
    )
    yield site
    site.stop()
    assert "Traceback" not in site.logs(), f"a server of {name} logged an error:\n{site.logs()}"


@pytest.fixture(scope="session")
def liveblog_site(tmp_path_factory, redis_server, postgres_server):
    yield from serve_site(
        "liveblog", tmp_path_factory=tmp_path_factory, redis_url=redis_server, postgres=postgres_server
    )


@pytest.fixture(scope="session")
def sketchpad_site(tmp_path_factory, redis_server, postgres_server):
    yield from serve_site(
        "sketchpad", tmp_path_factory=tmp_path_factory, redis_url=redis_server, postgres=postgres_server
    )


@pytest.fixture(scope="session")
def chat_site(tmp_path_factory, redis_server, postgres_server):
    yield from serve_site("chat", tmp_path_factory=tmp_path_factory, redis_url=redis_server, postgres=postgres_server)


@pytest.fixture
def browse(browser: Browser):
    """Opens ``url`` in a new browser context, watched for anything run or refused (pages.Watched)."""
    contexts = []

    def open_page(url: str) -> Watched:
        context = browser.new_context()
        contexts.append(context)
        watched = Watched(page=context.new_page())
        context.expose_binding("__reportViolation", lambda source, violation: watched.violations.append(violation))
        context.add_init_script(WATCH_VIOLATIONS)
        watched.page.on("console", lambda message: watched.console(message))
        watched.page.on("pageerror", lambda error: watched.errors.append(str(error)))

        def on_dialog(dialog):
            watched.dialogs.append(dialog.message)
            dialog.dismiss()

        watched.page.on("dialog", on_dialog)
        watched.page.goto(url)
        return watched

    yield open_page
    for context in contexts:
        context.close()


@dataclass
class OwnServer:
    """A server of a site (a daphne process, or a container of the compose stack) of the test's own."""

    url: str
    freeze: Callable[[], None]  # SIGSTOP: its sockets stay open, but it reads and answers nothing
    restart: Callable[[], None]  # SIGKILL (what it had read dies with it), then start it on its port again


def own_server_start(site: LiveSite | ComposeSite) -> OwnServer:
    url = site.serve()
    server = site.servers[-1]
    if isinstance(site, ComposeSite):

        def restart() -> None:
            server.kill()
            server.wait()
            server.docker("start")  # the container keeps its port
            wait_until(lambda: healthy(url), timeout=STARTUP_TIMEOUT * 2, what=f"the {site.service} container again")

        return OwnServer(url=url, freeze=lambda: server.docker("kill", "--signal=SIGSTOP"), restart=restart)

    def restart() -> None:
        server.kill()
        server.wait()
        site.serve(port=int(url.rsplit(":", 1)[1]))

    return OwnServer(url=url, freeze=lambda: server.send_signal(SIGSTOP), restart=restart)


@pytest.fixture
def own_server_of() -> Callable[[LiveSite | ComposeSite], OwnServer]:
    """``own_server_of(site)``: one more server of the site, which the test may freeze or restart."""
    return own_server_start


@pytest.fixture
def new_page(browser: Browser):
    """Pages in separate browser contexts: separate cookies, like separate people."""
    contexts: list[BrowserContext] = []

    def open_page(url: str) -> Page:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield open_page
    for context in contexts:
        context.close()


def chat_accounts_create(site: LiveSite | ComposeSite, *, rooms: list[str]) -> None:
    """The users the tests log in as (DEBUG is off: the seed makes no demo users), and these rooms."""
    site.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from rooms.models import Room\n"
        f"for name in {CHAT_USERS!r}:\n"
        "    user, _ = get_user_model().objects.get_or_create(username=name)\n"
        f"    user.set_password({CHAT_PASSWORD!r})\n"
        "    user.save()\n"
        f"for slug in {rooms!r}:\n"
        "    Room.objects.get_or_create(slug=slug, defaults={'title': slug.replace('-', ' ').title()})\n",
    )


@pytest.fixture(scope="module")
def chat(chat_site):
    """The chat site, with the users and rooms these tests use."""
    chat_accounts_create(chat_site, rooms=CHAT_ROOMS)
    return chat_site


# The screenshots' own sites (make screenshots): fresh databases holding only what `manage.py seed`
# makes, on a Redis of their own, so no room, board or post of the other tests shows in the pictures,
# and nothing the pictures' pages do reaches those tests' servers (same group and channel names).
# Never a compose stack's (make compose-test leaves test_screenshots.py out): they must hold only the seed.


@pytest.fixture(scope="module")
def demo_redis(tmp_path_factory) -> Iterator[str]:
    server = RedisServer(directory=tmp_path_factory.mktemp("demo-redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def demo_liveblog(tmp_path_factory, demo_redis, postgres_server):
    yield from serve_site(
        "liveblog", tmp_path_factory=tmp_path_factory, redis_url=demo_redis, postgres=postgres_server, servers=1
    )


@pytest.fixture(scope="module")
def demo_chat(tmp_path_factory, demo_redis, postgres_server):
    """The seeded chat (its rooms: Lobby, Random, Staff room) and users to log in as, in no other room."""
    for site in serve_site("chat", tmp_path_factory=tmp_path_factory, redis_url=demo_redis, postgres=postgres_server):
        chat_accounts_create(site, rooms=[])
        yield site


@pytest.fixture(scope="module")
def demo_sketchpad(tmp_path_factory, demo_redis, postgres_server):
    yield from serve_site(
        "sketchpad", tmp_path_factory=tmp_path_factory, redis_url=demo_redis, postgres=postgres_server
    )
