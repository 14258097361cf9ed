"""Browser tests: Playwright drives Chromium against real daphne processes on one Redis.

Chromium comes from the system (Debian's package), not from Playwright's download:
CHROMIUM_PATH overrides where it is.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from realtime_common.testing.servers import LiveSite

REPO = Path(__file__).resolve().parents[1]
STAFF_USERNAME = "editor"
STAFF_PASSWORD = "e2e-editor-password"

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
def liveblog_site(tmp_path_factory, redis_server):
    """The liveblog as deployed: two daphne processes sharing one database and one Redis."""
    site = LiveSite(directory=REPO / "liveblog", workdir=tmp_path_factory.mktemp("liveblog"), redis_url=redis_server)
    site.prepare()
    site.manage("seed")
    site.manage(
        "createsuperuser",
        "--no-input",
        f"--username={STAFF_USERNAME}",
        "--email=editor@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD},
    )
    site.urls = [site.serve(), site.serve()]
    yield site
    site.stop()
    assert "Traceback" not in site.logs(), f"a server logged an error:\n{site.logs()}"


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


def expect_live(page: Page) -> None:
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "open")


def log_in_as_staff(page: Page, base_url: str, next_path: str) -> None:
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.get_by_label("Username").fill(STAFF_USERNAME)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name=re.compile("log in", re.IGNORECASE)).click()
    expect(page).to_have_url(f"{base_url}{next_path}")
