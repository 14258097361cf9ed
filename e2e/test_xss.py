"""Hostile input in a real browser: every field people fill in, on the pages that show it.

Each payload would set ``window.__xss`` if it ran. On every page it must show as text, literally,
and nothing may run: ``window.__xss`` stays undefined, no dialog opens, and the page records no
Content-Security-Policy violation and no console error, which also proves that the policy does
not get in the demos' way (their sockets go live, their forms post, the admin works). A last
test injects markup past the escaping on purpose and checks that the policy refuses it. The
proxy's headers, hostile input too, are checked at the end. Each person is a browser context of
their own; every wait is on something visible.
"""

import json
import re
import uuid
from pathlib import Path

import pytest
from daphne.utils import parse_x_forwarded_for
from pages import expect_live, log_in, log_in_as_staff
from playwright.sync_api import Page, expect

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "e2e-xss-password"

IMG = "<img src=x onerror=window.__xss=1>"
SCRIPT = "<script>window.__xss=1</script>"
SVG = '"><svg onload=window.__xss=1>'
# Valid in a username's model field, which the sign-up form's validator alone refuses (no spaces,
# so presence, which keeps "<process> <username>", is tested with the name as it is).
NAME_PAYLOAD = "<svg/onload=window.__xss=1>"


def unique(text: str) -> str:
    return f"{text} #{uuid.uuid4().hex[:8]}"


def tag(text: str) -> str:
    """The part ``unique`` added, to search the admin for."""
    return text.rpartition("#")[2]


def shell(site, code: str) -> None:
    site.manage("shell", "-c", code)


# --- liveblog ---------------------------------------------------------------------------

POST_PAYLOADS = [
    IMG,
    SCRIPT,
    SVG,
    "javascript:window.__xss=1",
    '<a href="javascript:window.__xss=1">click</a>',
    # urlize links "<word>.com" without a scheme as http://<word>.com: never as javascript:.
    "javascript://example.com/%0Awindow.__xss=1",
    'https://example.com/"onmouseover="window.__xss=1',
    "<iframe src=javascript:window.__xss=1></iframe>",
]

# What the posts hold: element names, link targets' schemes and every attribute named on*.
POSTS_MARKUP = """() => {
  const elements = [...document.querySelectorAll('#posts *')];
  return {
    names: [...new Set(elements.map((element) => element.localName))].sort(),
    schemes: [...new Set([...document.querySelectorAll('#posts a')].map((link) => link.protocol))].sort(),
    handlers: elements.flatMap((element) => [...element.attributes].map((attribute) => attribute.name))
      .filter((name) => name.startsWith('on')),
  };
}"""


def post_on(page: Page, text: str):
    return page.locator("#posts article").filter(has_text=text)


def expect_posts_as_text(page: Page, texts: list[str]) -> None:
    for text in texts:
        expect(post_on(page, text)).to_have_count(1)
    markup = page.evaluate(POSTS_MARKUP)
    assert set(markup["names"]) <= {"article", "div", "p", "br", "a", "footer", "time", "span"}, markup
    assert set(markup["schemes"]) <= {"http:", "https:"}, markup
    assert markup["handlers"] == [], markup
    # urlize still makes links: only of http(s) URLs.
    expect(page.locator('#posts a[href="https://example.com/ok"][rel="nofollow"]')).to_have_count(1)


def test_liveblog_posts_show_hostile_text_as_text_live_and_after_a_reload(browse, liveblog_site):
    url = liveblog_site.urls[0]
    slug = f"xss-{uuid.uuid4().hex[:8]}"
    title, description = f"{SVG} {IMG}", f"{SCRIPT} {IMG}"
    shell(
        liveblog_site,
        "from blog.models import Liveblog\n"
        f"Liveblog.objects.create(slug={slug!r}, title={title!r}, description={description!r})\n",
    )
    reader = browse(f"{url}/{slug}/")
    staff = browse(url)
    log_in_as_staff(staff.page, url, f"/{slug}/")
    for watched in [reader, staff]:
        expect_live(watched.page)
        expect(watched.page.get_by_role("heading", level=1)).to_have_text(title)
        expect(watched.page.locator("main > p.muted").first).to_have_text(description)
    assert title in reader.page.title()

    published = [unique(payload) for payload in POST_PAYLOADS] + [unique("Links still work: https://example.com/ok")]
    for text in published:
        staff.page.get_by_label("New post").fill(text)
        staff.page.get_by_role("button", name="Publish").click()
        expect(post_on(reader.page, text)).to_be_visible()
        # The staff page has its answer (the socket's frame can reach the reader first): a text filled
        # in before it would be cleared with the form.
        expect(staff.page.get_by_label("New post")).to_have_value("")
    from_shell = [unique(f"{IMG} from manage.py"), unique(f"{SCRIPT} from manage.py")]
    for text in from_shell:
        liveblog_site.manage("post", slug, text)

    everything = published + from_shell
    for watched in [reader, staff]:
        expect_posts_as_text(watched.page, everything)  # inserted from socket frames
    reader.page.reload()
    expect_live(reader.page)
    expect_posts_as_text(reader.page, everything)  # rendered by the template

    # The admin shows the same text, and its own scripts run: the slug follows the title.
    staff.page.goto(f"{url}/admin/blog/post/?q={tag(from_shell[0])}")
    staff.page.locator("#result_list a").filter(has_text=IMG).click()
    expect(staff.page.get_by_label("Body")).to_have_value(from_shell[0])
    staff.page.goto(f"{url}/admin/blog/liveblog/add/")
    staff.page.get_by_label("Title").press_sequentially("Made in the admin")
    expect(staff.page.get_by_label("Slug")).to_have_value("made-in-the-admin")

    for watched in [reader, staff]:
        watched.assert_nothing_ran()


# --- chat -------------------------------------------------------------------------------


def chat_room(page: Page, slug: str):
    return page.locator(f'section.room[data-room="{slug}"]')


def chat_in(page: Page, url: str, slug: str, username: str) -> None:
    """Log in on the way to the chat page, joined to ``slug``."""
    page.goto(f"{url}/chat/?join={slug}")
    log_in(page, username, PASSWORD)
    expect_live(page)
    expect(chat_room(page, slug)).to_be_visible()


def say(page: Page, slug: str, text: str) -> None:
    chat_room(page, slug).get_by_label("Message").fill(text)
    chat_room(page, slug).get_by_role("button", name="Send").click()


def expect_member(page: Page, slug: str, username: str) -> None:
    expect(chat_room(page, slug).locator(".members li").filter(has_text=username)).to_have_text(username)


def sign_up(page: Page, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.locator("#id_password1").fill(f"{PASSWORD}-Strong1")
    page.locator("#id_password2").fill(f"{PASSWORD}-Strong1")
    page.get_by_role("button", name="Sign up").click()


def expect_message(page: Page, slug: str, username: str, text: str) -> None:
    message = chat_room(page, slug).locator(".message").filter(has_text=text)
    expect(message.locator(".message-text")).to_have_text(text)
    expect(message.locator(".message-user")).to_have_text(username)


def test_chat_titles_usernames_and_messages_show_hostile_text_as_text(browse, chat_site):
    url = chat_site.urls[0]
    suffix = uuid.uuid4().hex[:8]
    slug, title = f"xss-{suffix}", f"{SVG}{IMG}{SCRIPT}"
    reader_name = f"reader-{suffix}"
    # Sign-up refuses "<" in a username, but the model field does not: a shell, an import or
    # another user model may make one, and every page must still show it as text.
    shell(
        chat_site,
        "from django.contrib.auth import get_user_model\n"
        "from rooms.models import Room\n"
        f"for name in {[reader_name, NAME_PAYLOAD]!r}:\n"
        "    user, _ = get_user_model().objects.get_or_create(username=name)\n"
        f"    user.set_password({PASSWORD!r})\n"
        "    user.save()\n"
        f"Room.objects.create(slug={slug!r}, title={title!r})\n",
    )

    reader = browse(f"{url}/")
    chat_in(reader.page, url, slug, reader_name)
    expect(chat_room(reader.page, slug).locator(".room-title")).to_have_text(title)
    expect(chat_room(reader.page, slug)).to_have_attribute("aria-label", title)
    picker = reader.page.locator(".room-picker li").filter(has=reader.page.locator(f'[data-join="{slug}"]'))
    expect(picker).to_contain_text(title)

    hostile = browse(f"{url}/")
    chat_in(hostile.page, url, slug, NAME_PAYLOAD)
    expect_member(reader.page, slug, NAME_PAYLOAD)
    texts = [unique(IMG), unique(SCRIPT), unique(SVG)]
    for text in texts:
        say(hostile.page, slug, text)
        expect_message(reader.page, slug, NAME_PAYLOAD, text)

    # Sign-up: a username with "<" is refused, and the form shows it back as a value, inert.
    newcomer = browse(f"{url}/accounts/signup/")
    refused_name = f"{NAME_PAYLOAD}{suffix}"
    sign_up(newcomer.page, refused_name)
    expect(newcomer.page.locator(".errorlist")).to_contain_text("valid username")
    expect(newcomer.page.get_by_label("Username")).to_have_value(refused_name)
    # The worst the validator lets through: letters, digits and @ . + - _ only.
    valid_name = f"x.__xss+@onerror-{suffix}"
    sign_up(newcomer.page, valid_name)
    expect(newcomer.page).not_to_have_url(re.compile(r"/accounts/signup/"))
    newcomer.page.goto(f"{url}/chat/?join={slug}")
    expect_live(newcomer.page)
    expect(chat_room(newcomer.page, slug)).to_be_visible()
    expect_member(reader.page, slug, valid_name)
    from_newcomer = unique(f"javascript:window.__xss=1 {IMG}")
    say(newcomer.page, slug, from_newcomer)
    expect_message(reader.page, slug, valid_name, from_newcomer)

    # History replayed into a reloaded page, and the room list, rendered by the template.
    reader.page.reload()
    expect_live(reader.page)
    for text in texts:
        expect_message(reader.page, slug, NAME_PAYLOAD, text)
    expect_message(reader.page, slug, valid_name, from_newcomer)
    reader.page.goto(f"{url}/")
    expect(reader.page.locator(".room-list a").filter(has_text=title)).to_have_text(title)

    # The admin lists the same text, and its scripts run: the slug follows the title.
    staff = browse(f"{url}/")
    log_in_as_staff(staff.page, url, "/admin/")
    staff.page.goto(f"{url}/admin/rooms/message/?q={tag(texts[0])}")
    expect(staff.page.locator("#result_list")).to_contain_text(f"{NAME_PAYLOAD} in {title}: {texts[0]}")
    staff.page.goto(f"{url}/admin/auth/user/?q=%3Csvg")
    staff.page.locator("#result_list a").filter(has_text=NAME_PAYLOAD).click()
    expect(staff.page.get_by_label("Username")).to_have_value(NAME_PAYLOAD)
    staff.page.goto(f"{url}/admin/rooms/room/add/")
    staff.page.get_by_label("Title").press_sequentially("Made in the admin")
    expect(staff.page.get_by_label("Slug")).to_have_value("made-in-the-admin")

    for watched in [reader, hostile, newcomer, staff]:
        watched.assert_nothing_ran()


# --- sketchpad --------------------------------------------------------------------------

GREEN, WHITE = "#00ff00", "#ffffff"
HOSTILE_COLORS = [
    '#000000"><img src=x onerror=window.__xss=1>',
    "red",
    "url(javascript:window.__xss=1)",
    "#00f",
    "#0000ff;background:url(x)",
]

# The colour of the board's canvas at a point in board coordinates (0..1), as "#rrggbb".
CANVAS_PIXEL = """([x, y]) => {
  const canvas = document.getElementById('canvas');
  const [r, g, b] = canvas.getContext('2d')
    .getImageData(Math.floor(x * canvas.width), Math.floor(y * canvas.height), 1, 1).data;
  return '#' + [r, g, b].map((value) => value.toString(16).padStart(2, '0')).join('');
}"""

# From the page, over a socket of its own to its board: each hostile colour in a stroke across
# y = 0.25, answered by an error frame each; then a good stroke across y = 0.75. Returns the errors.
SEND_HOSTILE_STROKES = """async ({ colors, good }) => {
  const url = new URL(document.getElementById('board').dataset.socketUrl, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url);
  const frames = [];
  let wake = () => {};
  socket.onmessage = (event) => { frames.push(JSON.parse(event.data)); wake(); };
  const deadline = Date.now() + 10000;
  const next = async (type) => {
    for (;;) {
      const index = frames.findIndex((frame) => frame.type === type);
      if (index >= 0) return frames.splice(index, 1)[0];
      if (Date.now() > deadline) throw new Error(`no ${type} frame; got ${JSON.stringify(frames)}`);
      await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 250); });
    }
  };
  await next('snapshot');
  const errors = [];
  for (const [index, color] of colors.entries()) {
    socket.send(JSON.stringify({ type: 'draw', stroke: `hostile-${index}`, color, width: 24,
                                 points: [[0.1, 0.25], [0.9, 0.25]], done: true }));
    errors.push(await next('error'));
  }
  socket.send(JSON.stringify({ type: 'draw', stroke: 'good', color: good, width: 24,
                               points: [[0.1, 0.75], [0.9, 0.75]], done: true }));
  return errors;
}"""


def test_sketchpad_board_titles_and_stroke_colours_cannot_carry_markup(browse, sketchpad_site):
    first, second = sketchpad_site.urls
    title = f"{SVG}{IMG}"[:100]
    alice = browse(first)
    expect_live(alice.page)
    alice.page.get_by_label("New board").fill(title)
    alice.page.get_by_role("button", name="Create board").click()
    expect(alice.page.locator("#board")).to_have_attribute("aria-busy", "false")
    path = re.sub(r"^https?://[^/]+", "", alice.page.url)
    expect(alice.page.get_by_role("heading", level=1)).to_have_text(title)
    assert title in alice.page.title()

    bob = browse(second)
    expect_live(bob.page)
    slug = path.strip("/")
    expect(bob.page.locator(f'[data-board="{slug}"] .board-title')).to_have_text(title)
    received: list[str] = []
    bob.page.on("websocket", lambda socket: socket.on("framereceived", lambda payload: received.append(payload)))
    bob.page.goto(f"{second}{path}")
    expect(bob.page.locator("#board")).to_have_attribute("aria-busy", "false")

    errors = alice.page.evaluate(SEND_HOSTILE_STROKES, {"colors": HOSTILE_COLORS, "good": GREEN})
    assert [error["code"] for error in errors] == ["invalid_frame"] * len(HOSTILE_COLORS), errors
    # The good stroke was sent after the hostile ones, on the same socket: once Bob has it,
    # he would have had anything they had caused.
    bob.page.wait_for_function(f"() => ({CANVAS_PIXEL})([0.5, 0.75]) === {GREEN!r}")
    assert bob.page.evaluate(CANVAS_PIXEL, [0.5, 0.25]) == WHITE
    frames = [json.loads(payload) for payload in received if isinstance(payload, str)]
    relayed = [
        frame for frame in frames if frame.get("color") in HOSTILE_COLORS or "hostile" in str(frame.get("stroke"))
    ]
    assert relayed == [], relayed
    assert not [payload for payload in received if "__xss" in str(payload)], received

    for watched in [alice, bob]:
        watched.assert_nothing_ran()


# --- the policy itself ------------------------------------------------------------------

# Markup that got past the escaping, and code from strings: all refused by the CSP.
INJECT = """() => {
  document.body.insertAdjacentHTML('beforeend',
    '<img alt="" src="" onerror="window.__xss = 1"><p id="styled" style="color: rgb(255, 0, 0)">styled</p>');
  const script = document.createElement('script');
  script.textContent = 'window.__xss = 1';
  document.body.append(script);
  setTimeout('window.__xss = 1');
  try { new WebSocket('ws://127.0.0.1:9/'); } catch (error) { /* refused either way */ }
}"""
REFUSED = ["script-src-attr", "style-src-attr", "script-src-elem", "script-src", "connect-src"]


# A page of each site: the chat's that needs no login has no socket.
@pytest.mark.parametrize(
    ("name", "path"), [("liveblog", "/djangocon/"), ("chat", "/accounts/login/"), ("sketchpad", "/")]
)
def test_the_policy_refuses_inline_code_and_foreign_sockets(browse, request, name, path):
    site = request.getfixturevalue(f"{name}_site")
    url = site.urls[0]
    watched = browse("about:blank")
    response = watched.page.goto(f"{url}{path}")
    header = response.headers["content-security-policy"]
    policy = {}
    for directive in header.split(";"):
        directive_name, *sources = directive.split()
        policy[directive_name] = " ".join(sources)
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    sockets = policy["connect-src"].split()
    page_origin = re.match(r"https?://[^/]+", watched.page.url).group(0)
    assert sockets[0] == "'self'" and re.sub(r"^http", "ws", page_origin) in sockets, policy
    assert all(re.fullmatch(r"wss?://[^/*]+", source) for source in sockets[1:]), policy
    assert "unsafe" not in header and "'nonce-" not in header and "'sha" not in header
    if name != "chat":
        expect_live(watched.page)
    watched.assert_nothing_ran()

    watched.page.evaluate(INJECT)
    watched.page.wait_for_function(
        "(refused) => refused.every((directive) => window.__violations.some((v) => v.directive === directive))",
        arg=REFUSED,
    )
    assert watched.page.evaluate("typeof window.__xss") == "undefined"
    assert watched.page.evaluate("getComputedStyle(document.getElementById('styled')).color") != "rgb(255, 0, 0)"
    # The same, as the other tests see them: their check for violations is not blind.
    assert {violation["directive"] for violation in watched.violations} == set(REFUSED), watched.violations
    assert all("Content Security Policy" in error for error in watched.errors), watched.errors


# --- hostile headers --------------------------------------------------------------------


def nginx_statements(text: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """The simple directives of an nginx config, each with the blocks it is in: ``((block, ...), [name, args...])``."""
    statements, blocks, words, word, quote, comment = [], [], [], "", None, False
    for char in text:
        if comment:
            comment = char != "\n"
        elif quote:
            if char == quote:
                quote = None
            else:
                word += char
        elif char in "'\"":
            quote = char
        elif char == "#" and not word:
            comment = True
        elif char.isspace() or char in "{};":
            if word:
                words.append(word)
                word = ""
            if char == "{":
                blocks.append(" ".join(words))
                words = []
            elif char == "}":
                blocks.pop()
            elif char == ";":
                statements.append((tuple(blocks), words))
                words = []
        else:
            word += char
    return statements


def test_nginx_sets_the_client_address_itself_for_daphne():
    """daphne --proxy-headers takes the leftmost address of X-Forwarded-For: nginx must replace
    the header, not append to what the client sent. (No Docker engine here: the config's text.)"""
    statements = nginx_statements((REPO / "nginx" / "default.conf").read_text())
    headers = [(blocks, words[1:]) for blocks, words in statements if words[0] == "proxy_set_header"]
    assert ((), ["X-Forwarded-For", "$remote_addr"]) in headers
    assert not [words for _, words in statements if any("$proxy_add_x_forwarded_for" in word for word in words)]
    # A block with a proxy_set_header of its own inherits none of the others, X-Forwarded-For included.
    assert [blocks for blocks, _ in headers if blocks] == []
    assert "--proxy-headers" in (REPO / "docker" / "start").read_text()

    # Why appending is wrong: the client's own value comes first, and daphne takes it.
    spoofed = {b"X-Forwarded-For": [b"203.0.113.7, 198.51.100.20"]}
    assert parse_x_forwarded_for(spoofed, original_addr=["10.0.0.5", 1234])[0] == ["203.0.113.7", 0]
