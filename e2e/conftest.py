"""Browser tests: Playwright drives Chromium against real daphne processes on one Redis.

Chromium comes from the system (Debian's package), not from Playwright's download:
CHROMIUM_PATH overrides where it is.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from pages import STAFF_PASSWORD, STAFF_USERNAME
from realtime_common.testing.servers import LiveSite

REPO = Path(__file__).resolve().parents[1]

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


def serve_site(name: str, *, tmp_path_factory, redis_url: str, servers: int = 2, workers: tuple[str, ...] = ()):
    """Yield the site as deployed: migrated, seeded, with a staff account, served by
    ``servers`` daphne processes sharing one database and one Redis, plus a
    ``runworker`` process for ``workers`` channels if any. Fails the run if any
    process logged a traceback."""
    site = LiveSite(directory=REPO / name, workdir=tmp_path_factory.mktemp(name), redis_url=redis_url)
    site.prepare()
    site.manage("seed")
    site.manage(
        "createsuperuser",
        "--no-input",
        f"--username={STAFF_USERNAME}",
        "--email=staff@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD},
    )
    site.urls = [site.serve() for _ in range(servers)]
    if workers:
        site.work(*workers)
    yield site
    site.stop()
    assert "Traceback" not in site.logs(), f"a server of {name} logged an error:\n{site.logs()}"


@pytest.fixture(scope="session")
def liveblog_site(tmp_path_factory, redis_server):
    yield from serve_site("liveblog", tmp_path_factory=tmp_path_factory, redis_url=redis_server)


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
