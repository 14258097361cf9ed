"""What the browser tests do on a page, shared by all of them."""

import re
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Page, expect

STAFF_USERNAME = "staff"
STAFF_PASSWORD = "e2e-staff-password"
CHAT_PASSWORD = "e2e-chat-password"
# dave and erin lose their logins in the tests, and frank and grace go over the message
# limit, so no other test uses them.
CHAT_USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]
# A room of its own for each test, so no test sees another's members or messages.
CHAT_ROOMS = ["replicas", "together", "elsewhere", "logout", "devices", "password", "expired"]
CHAT_ROOMS += [
    "reload-a",
    "reload-b",
    "offline",
    "markup",
    "presence",
    "crash",
    "sites",
    "limits",
    "socket-domain",
    "typing",
    "pending",
    "pending-stored",
    "pending-paced",
    "pending-refused",
    "pending-text",
    "pending-unload",
    "flooding",
    "not-entered",
    "phone",
]


def expect_live(page: Page) -> None:
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "open")


def log_in_as_staff(page: Page, base_url: str, next_path: str) -> None:
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.get_by_label("Username").fill(STAFF_USERNAME)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name=re.compile("log in", re.IGNORECASE)).click()
    expect(page).to_have_url(f"{base_url}{next_path}")


def log_in(page: Page, username: str, password: str) -> None:
    """Log in on the login page the browser is on (Django's LoginView); it then follows ``next``."""
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


# Every CSP violation, kept by the test (it outlives navigations) and in the page (to wait on).
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  const violation = { directive: event.effectiveDirective, blocked: event.blockedURI, sample: event.sample,
                      source: event.sourceFile, line: event.lineNumber };
  window.__violations.push(violation);
  window.__reportViolation(violation);
}, true);
"""


@dataclass
class Watched:
    """A page in a browser context of its own, and whatever would show that something ran or was refused."""

    page: Page
    violations: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location['url']})")

    def assert_nothing_ran(self) -> None:
        assert self.page.evaluate("typeof window.__xss") == "undefined", f"a payload ran on {self.page.url}"
        assert self.dialogs == [], self.dialogs
        assert self.violations == [], f"the CSP refused something of our own on {self.page.url}: {self.violations}"
        assert self.errors == [], f"console errors on {self.page.url}: {self.errors}"
