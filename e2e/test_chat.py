import json
import re
import time
import uuid

import pytest
from pages import CHAT_PASSWORD as PASSWORD
from pages import expect_live, log_in, log_in_as_staff
from playwright.sync_api import Page, expect


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def room(page: Page, slug: str):
    return page.locator(f'section.room[data-room="{slug}"]')


def message(page: Page, slug: str, text: str):
    """The message as stored: not while the sender's page still shows it as pending (sending…)."""
    return room(page, slug).locator(".message:not(.message-pending)").filter(has_text=text)


def members(page: Page, slug: str):
    return room(page, slug).locator(".members li")


def say(page: Page, slug: str, text: str) -> None:
    room(page, slug).get_by_label("Message").fill(text)
    room(page, slug).get_by_role("button", name="Send").click()


def open_chat(page: Page, base_url: str, username: str, join: str) -> Page:
    """Go to the chat, in the room ``join``, logging in on the way."""
    page.goto(f"{base_url}/chat/?join={join}")
    log_in(page, username, PASSWORD)
    expect_live(page)
    expect(room(page, join)).to_be_visible()
    return page


def chat_as(new_page, base_url: str, username: str, join: str) -> Page:
    """A new browser, with ``username`` in the room ``join``."""
    return open_chat(new_page(f"{base_url}/"), base_url, username, join)


def test_people_in_a_room_see_each_other_live_across_servers_and_no_other_room_does(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "together")
    bob = chat_as(new_page, second, "bob", "together")
    carol = chat_as(new_page, first, "carol", "elsewhere")
    for page in [alice, bob]:
        expect(members(page, "together")).to_have_text(["alice", "bob"])

    hello, reply = unique("Hello bob"), unique("Hi alice")
    say(alice, "together", hello)
    for page in [alice, bob]:
        expect(message(page, "together", hello)).to_contain_text("alice")
    expect(room(alice, "together").get_by_label("Message")).to_have_value("")
    say(bob, "together", reply)
    expect(message(alice, "together", reply)).to_contain_text("bob")

    # Sent after the others: had they reached carol, they would be on her page by now.
    aside = unique("Anyone here?")
    say(carol, "elsewhere", aside)
    expect(message(carol, "elsewhere", aside)).to_be_visible()
    expect(carol.locator(".message").filter(has_text=re.compile(f"{hello}|{reply}"))).to_have_count(0)
    expect(room(carol, "together")).to_have_count(0)


def watch_socket_servers(page: Page, base_url: str) -> list[str]:
    """The server that accepted each WebSocket the page opens, in order: the replica nginx
    names in its X-Upstream header, or, with no proxy in between, the page's own server."""
    servers = []
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")

    def handshake(event):
        headers = {name.lower(): value for name, value in event["response"]["headers"].items()}
        servers.append(headers.get("x-upstream", base_url))

    cdp.on("Network.webSocketHandshakeResponseReceived", handshake)
    return servers


def test_two_browsers_on_different_replicas_talk_to_each_other(new_page, chat):
    """Behind nginx (make compose-test), both browsers use one URL and nginx spreads their sockets
    over the chat replicas; run locally, each browser uses its own daphne process."""
    first, second = chat.urls
    alice, bob = new_page("about:blank"), new_page("about:blank")
    alice_servers, bob_servers = watch_socket_servers(alice, first), watch_socket_servers(bob, second)
    open_chat(alice, first, "alice", "replicas")
    open_chat(bob, second, "bob", "replicas")
    # nginx takes turns per request: a reload, with one extra request every other time so that
    # the turns cannot keep landing the socket on alice's replica, moves bob to the other one.
    for attempt in range(20):
        if bob_servers[-1] != alice_servers[-1]:
            break
        if attempt % 2:
            bob.request.get(f"{second}/health/")
        bob.reload()
        expect_live(bob)
    assert bob_servers[-1] != alice_servers[-1], (alice_servers, bob_servers)

    hello, reply = unique("Across replicas"), unique("Received")
    say(alice, "replicas", hello)
    expect(message(bob, "replicas", hello)).to_contain_text("alice")
    say(bob, "replicas", reply)
    expect(message(alice, "replicas", reply)).to_contain_text("bob")


def test_an_anonymous_visitor_is_sent_to_the_login_page(new_page, chat):
    page = new_page(f"{chat.urls[0]}/chat/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/chat/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    # DEBUG is off: the demo accounts are neither made nor shown.
    expect(page.locator("#demo-users")).to_have_count(0)


def test_logging_out_in_one_tab_closes_the_socket_in_the_other(new_page, chat):
    url = chat.urls[0]
    first_tab = chat_as(new_page, url, "alice", "logout")
    second_tab = first_tab.context.new_page()
    second_tab.goto(f"{url}/chat/")
    expect_live(second_tab)
    expect(room(second_tab, "logout")).to_be_visible()  # the session's rooms, without asking

    second_tab.get_by_role("button", name=re.compile("Log out")).click()
    expect(second_tab).to_have_url(re.compile(r"/accounts/login/$"))
    expect(first_tab.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(first_tab.locator("#logged-out")).to_be_visible()
    expect(room(first_tab, "logout").get_by_role("button", name="Send")).to_be_disabled()


def test_logging_out_in_one_browser_leaves_the_same_user_s_other_browser_live(new_page, chat):
    first, second = chat.urls
    laptop = chat_as(new_page, first, "alice", "devices")
    phone = chat_as(new_page, second, "alice", "devices")

    laptop.get_by_role("button", name=re.compile("Log out")).click()
    expect(laptop).to_have_url(re.compile(r"/accounts/login/$"))
    text = unique("Still on the phone")
    say(phone, "devices", text)
    expect(message(phone, "devices", text)).to_be_visible()
    expect_live(phone)


def expect_logged_out(page: Page, slug: str) -> None:
    """The page stopped for good (4401 is final) and says the login ended."""
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(page.locator("#logged-out")).to_be_visible()
    expect(page.get_by_role("link", name="Log in again")).to_be_visible()
    expect(room(page, slug).get_by_role("button", name="Send")).to_be_disabled()


def test_a_password_change_closes_the_user_s_pages_in_every_browser(new_page, chat):
    first, second = chat.urls
    pages = [chat_as(new_page, first, "dave", "password"), chat_as(new_page, second, "dave", "password")]
    bob = chat_as(new_page, first, "bob", "password")

    # Elsewhere (another process, with a signal): every session of dave's is no login any more.
    chat.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "dave = get_user_model().objects.get(username='dave')\n"
        "dave.set_password('a new password for dave')\n"
        "dave.save()\n",
    )
    for page in pages:
        expect_logged_out(page, "password")
    expect(members(bob, "password")).to_have_text(["bob"])
    pages[0].reload()
    expect(pages[0]).to_have_url(re.compile(r"/accounts/login/\?next=/chat/$"))


def test_a_page_whose_session_ended_while_it_was_offline_stops_and_says_so(new_page, chat):
    page = chat_as(new_page, chat.urls[0], "erin", "expired")
    page.context.set_offline(True)
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    # What an expiry does to the session, without a signal: gone from the database.
    chat.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.sessions.models import Session\n"
        "erin = str(get_user_model().objects.get(username='erin').pk)\n"
        "for session in Session.objects.all():\n"
        "    if session.get_decoded().get('_auth_user_id') == erin:\n"
        "        session.delete()\n",
    )
    page.context.set_offline(False)
    # The handshake without a login is accepted, then closed with 4401: not refused,
    # which a browser cannot tell from a network error, and would retry for ever.
    expect_logged_out(page, "expired")


def test_a_reload_puts_the_user_back_in_their_rooms(new_page, chat):
    page = chat_as(new_page, chat.urls[0], "alice", "reload-a")
    page.locator('[data-join="reload-b"]').click()
    expect(room(page, "reload-b")).to_be_visible()
    text = unique("Before the reload")
    say(page, "reload-a", text)
    expect(message(page, "reload-a", text)).to_be_visible()

    page.reload()
    expect(page).to_have_url(re.compile(r"/chat/$"))
    expect_live(page)
    for slug in ["reload-a", "reload-b"]:
        expect(room(page, slug)).to_be_visible()
        expect(page.locator(f'[data-join="{slug}"]')).to_have_text("Joined")
    expect(message(page, "reload-a", text)).to_have_count(1)
    expect(members(page, "reload-b")).to_have_text(["alice"])


def test_a_page_that_was_offline_gets_what_it_missed_once_and_in_order(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "offline")
    bob = chat_as(new_page, second, "bob", "offline")
    before = unique("Before")
    say(bob, "offline", before)
    expect(message(alice, "offline", before)).to_be_visible()

    alice.context.set_offline(True)
    expect(alice.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    missed = [unique("Missed one"), unique("Missed two")]
    for text in missed:
        say(bob, "offline", text)
        expect(message(bob, "offline", text)).to_be_visible()
    alice.context.set_offline(False)

    expect_live(alice)
    for text in [before, *missed]:
        expect(message(alice, "offline", text)).to_have_count(1)
    assert room(alice, "offline").locator(".message-text").all_inner_texts() == [before, *missed]


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "markup")
    bob = chat_as(new_page, second, "bob", "markup")
    dialogs = []
    for page in [alice, bob]:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    payload = unique('<img src=x onerror="alert(1)"><script>window.pwned=1</script><b>bold</b>')
    say(alice, "markup", payload)
    expect(message(bob, "markup", payload)).to_have_count(1)

    bob.reload()  # and from the history, too
    for page in [alice, bob]:
        text = message(page, "markup", payload).locator(".message-text")
        expect(text).to_have_text(payload)
        expect(room(page, "markup").locator(".messages img, .messages script, .messages b")).to_have_count(0)
        assert page.evaluate("window.pwned") is None
    assert dialogs == []


def test_presence_lists_both_and_drops_one_when_their_last_tab_closes(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "presence")
    bob = chat_as(new_page, second, "bob", "presence")
    expect(members(alice, "presence")).to_have_text(["alice", "bob"])

    bob_again = bob.context.new_page()
    bob_again.goto(f"{first}/chat/")
    expect(members(bob_again, "presence")).to_have_text(["alice", "bob"])
    bob.close()
    # bob's other tab keeps him listed: alice's list changes next when carol comes, and still has bob.
    chat_as(new_page, second, "carol", "presence")
    expect(members(alice, "presence")).to_have_text(["alice", "bob", "carol"])

    bob_again.close()
    expect(members(alice, "presence")).to_have_text(["alice", "carol"])


def test_who_is_typing_shows_on_the_other_s_page_until_their_message_arrives(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "typing")
    bob = chat_as(new_page, second, "bob", "typing")
    expect(members(alice, "typing")).to_have_text(["alice", "bob"])
    alice_typing, bob_typing = room(alice, "typing").locator(".typing"), room(bob, "typing").locator(".typing")

    text = unique("Typed on one server, seen on the other")
    room(alice, "typing").get_by_label("Message").fill(text)
    expect(bob_typing).to_have_text("alice is typing…")
    expect(bob_typing).to_be_visible()
    room(alice, "typing").get_by_role("button", name="Send").click()
    expect(message(bob, "typing", text)).to_be_visible()
    # Her message drops her at once, long before the 5 s without typing would.
    expect(bob_typing).to_be_hidden(timeout=2_000)
    expect(alice_typing).to_be_hidden()  # nobody's page lists its own user


# For the chat's shell (manage.py shell -c). The group of a room, as channels-redis's pub/sub
# layer names it: each process subscribes to it, and publishes to it, on the one Redis of
# REDIS_URL that a hash of this name picks.
GROUP_CHANNEL = """
import json
import os
from django.conf import settings
from rooms.models import Room
from rooms.wire import room_group
import redis
from redis.sentinel import Sentinel

def group_channel(room):
    return settings.CHANNEL_LAYERS['default']['CONFIG']['prefix'] + '__group__' + room_group(room_id=room.pk)

# Each Redis of the channel layer: those REDIS_URL lists, or the one primary its sentinels name.
if settings.REDIS_SENTINEL:
    sentinel = settings.REDIS_SENTINEL
    clients = [Sentinel(sentinel.sentinels).master_for(sentinel.master, db=sentinel.db, decode_responses=True)]
else:
    clients = [redis.Redis.from_url(url, decode_responses=True) for url in settings.REDIS_URLS]
"""

# A new room for each Redis of REDIS_URL, whose group that Redis carries: their slugs, in its order.
ROOMS_PER_REDIS = f"""{GROUP_CHANNEL}
import uuid
from channels_redis.utils import _consistent_hash

slugs = {{}}
while len(slugs) < len(clients):
    room = Room.objects.create(slug='shard-' + uuid.uuid4().hex[:8], title='A room on one Redis')
    shard = _consistent_hash(group_channel(room), len(clients))
    if shard in slugs:
        room.delete()
    else:
        slugs[shard] = room.slug
print(json.dumps([slugs[shard] for shard in sorted(slugs)]))
"""

# What each Redis of REDIS_URL holds, in its order: for the rooms in E2E_ROOMS, how many
# connections subscribe to each room's group there; its PUBLISH calls so far; and its keys
# of the chat's cache and of presence.
REDIS_STATE = f"""{GROUP_CHANNEL}
from django.core.cache import cache

rooms = Room.objects.filter(slug__in=os.environ['E2E_ROOMS'].split(','))
channels = {{room.slug: group_channel(room) for room in rooms}}
state = []
for client in clients:
    subscribers = dict(client.pubsub_numsub(*channels.values()))
    state.append({{
        'subscribers': {{slug: subscribers[channel] for slug, channel in channels.items()}},
        'publishes': client.info('commandstats').get('cmdstat_publish', {{}}).get('calls', 0),
        'cache_keys': len(list(client.scan_iter(cache.make_key('*')))),
        'presence_keys': len(list(client.scan_iter('rooms:presence:*'))),
    }})
print(json.dumps(state))
"""


def shell_output(site, *, code: str, env: dict[str, str] | None = None) -> str:
    """What ``code`` prints in the site's shell (which otherwise first lists what it imported)."""
    return site.manage("shell", "--no-imports", "-c", code, env=env).stdout


def redis_state(chat, *, slugs: list[str]) -> list[dict]:
    return json.loads(shell_output(chat, code=REDIS_STATE, env={"E2E_ROOMS": ",".join(slugs)}))


def test_rooms_on_every_redis_reach_both_servers_and_the_cache_and_presence_stay_on_the_first(new_page, chat):
    """With several Redis in REDIS_URL (`make e2e-sharded`: two), channels-redis puts each room's
    group on one of them. In a room on each, alice and bob, on different servers, see each other
    and each other's messages, and each Redis is seen to carry its room: both servers subscribe
    to the room there and nowhere else, and it publishes. With one Redis: the same, in one room."""
    first, second = chat.urls
    slugs = json.loads(shell_output(chat, code=ROOMS_PER_REDIS))
    before = redis_state(chat, slugs=slugs)
    alice = chat_as(new_page, first, "alice", slugs[0])
    bob = chat_as(new_page, second, "bob", slugs[0])
    for page in [alice, bob]:
        for slug in slugs[1:]:
            page.locator(f'[data-join="{slug}"]').click()
            expect(room(page, slug)).to_be_visible()
    for slug in slugs:
        for page in [alice, bob]:
            expect(members(page, slug)).to_have_text(["alice", "bob"])
        hello, reply = unique(f"Hello bob in {slug}"), unique(f"Hi alice in {slug}")
        say(alice, slug, hello)
        expect(message(bob, slug, hello)).to_contain_text("alice")
        say(bob, slug, reply)
        expect(message(alice, slug, reply)).to_contain_text("bob")

    after = redis_state(chat, slugs=slugs)
    for shard, slug in enumerate(slugs):
        subscribed = [state["subscribers"][slug] for state in after]
        # Locally two daphne processes; behind nginx (one URL) at least one replica.
        assert subscribed[shard] >= len(set(chat.urls)), (slug, subscribed)
        assert sum(subscribed) == subscribed[shard], (slug, subscribed)
        assert after[shard]["publishes"] > before[shard]["publishes"], (shard, before, after)
    # Django's RedisCache reads further LOCATIONs as replicas, not shards: the cache (these
    # messages' and joins' rate limits) is on the first Redis only, and presence beside it.
    first_only = [True] + [False] * (len(after) - 1)
    assert [bool(state["cache_keys"]) for state in after] == first_only, after
    assert [bool(state["presence_keys"]) for state in after] == first_only, after


LIMIT_SETTINGS = (
    "from django.conf import settings; print(settings.CHAT_RATE_LIMIT_MESSAGES, settings.CHAT_RATE_LIMIT_SECONDS)"
)


def sends_until_refused(*, pages: list[Page], slug: str, most: int) -> int:
    """Send from each page in turn until one is refused with rate_limited; how many were stored before."""
    for sent in range(most):
        page = pages[sent % len(pages)]
        text = unique(f"Message {sent + 1}")
        say(page, slug, text)
        refused = page.locator('#chat-error[data-code="rate_limited"]')
        expect(message(page, slug, text).or_(refused)).to_be_visible()
        if refused.is_visible():
            return sent
    return most


def test_the_message_limit_counts_a_user_s_messages_on_every_server_together(new_page, chat):
    """The limit counts in the cache (the first Redis), which every process shares: a user sending
    through two servers in turn is refused after CHAT_RATE_LIMIT_MESSAGES in all, not on each."""
    limit, seconds = map(int, shell_output(chat, code=LIMIT_SETTINGS).split())
    # The count starts again in each window of `seconds`, so a run across two proves nothing; the
    # next user's run then starts just after the turn of the window, and fits in the new one.
    for username in ["frank", "grace"]:
        pages = [chat_as(new_page, url, username, "limits") for url in chat.urls]
        window = int(time.time() // seconds)
        accepted = sends_until_refused(pages=pages, slug="limits", most=2 * limit + 1)
        if int(time.time() // seconds) == window:
            break
    else:
        pytest.fail("both runs spanned two windows of the limit")
    assert accepted == limit


@pytest.fixture
def doomed_server(chat):
    """One more chat server (a daphne process, or a container of the compose stack), for the test to kill."""
    url = chat.serve()
    return url, chat.servers[-1]


def test_presence_drops_a_user_whose_server_process_died(new_page, chat, doomed_server):
    doomed_url, doomed_process = doomed_server
    alice = chat_as(new_page, chat.urls[0], "alice", "crash")
    bob = chat_as(new_page, doomed_url, "bob", "crash")
    expect(members(alice, "crash")).to_have_text(["alice", "bob"])

    doomed_process.kill()  # no goodbye: bob's entry is left to expire
    doomed_process.wait()
    expect(bob.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    # Within CHAT_PRESENCE_TTL + CHAT_PRESENCE_HEARTBEAT (6 + 2 seconds).
    expect(members(alice, "crash")).to_have_text(["alice"], timeout=20_000)


def test_the_chat_the_sketchpad_and_the_liveblog_keep_their_logins_side_by_side(
    new_page, chat, sketchpad_site, liveblog_site
):
    """One browser, the three sites on one host: cookies ignore ports, so each site's
    session cookie must have a name of its own or opening one site logs you out of another."""
    chat_url, sketchpad_url, liveblog_url = chat.urls[0], sketchpad_site.urls[0], liveblog_site.urls[0]
    page = open_chat(new_page(chat_url), chat_url, "alice", "sites")
    text = unique("Before the other sites")
    say(page, "sites", text)
    expect(message(page, "sites", text)).to_be_visible()

    # The board puts an author id in the sketchpad's session: it starts one of its own.
    page.goto(f"{sketchpad_url}/sandbox/")
    expect_live(page)
    log_in_as_staff(page, liveblog_url, "/djangocon/")
    expect(page.get_by_label("New post")).to_be_visible()

    page.goto(f"{chat_url}/chat/")
    expect_live(page)
    text = unique("After the other sites")
    say(page, "sites", text)
    expect(message(page, "sites", text)).to_be_visible()

    page.goto(f"{liveblog_url}/djangocon/")
    expect_live(page)
    expect(page.get_by_label("New post")).to_be_visible()


def test_a_page_closed_for_flooding_says_so_rather_than_that_it_was_logged_out(new_page, chat):
    url = chat.urls[0]
    connections = []

    def relay(connection):
        connection.connect_to_server()  # frames pass both ways as they are
        connections.append(connection)

    page = new_page(f"{url}/")
    page.route_web_socket(re.compile(r"/ws/chat/"), relay)
    open_chat(page, url, "alice", "flooding")
    # What the server does to a page that keeps sending past its frame rate (docs/security.md: 4429).
    connections[-1].close(code=4429, reason="flooding")

    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(page.locator("#chat-ended")).to_contain_text("sent too much too fast")
    expect(page.locator("#logged-out")).to_be_hidden()
    expect(room(page, "flooding").get_by_role("button", name="Send")).to_be_disabled()


def test_a_room_not_entered_again_after_a_reconnect_shows_it_and_can_be_joined_again(new_page, chat):
    url = chat.urls[0]
    connections, replaced = [], []
    refusal = {
        "type": "error",
        "code": "unavailable",
        "detail": "The server cannot reach Redis.",
        "room": "not-entered",
    }

    # On the page's second connection, the room's first joined frame becomes the error frame the
    # server sends for a room of the session it could not enter on connect (chat/README.md: the handshake).
    def relay(connection):
        connections.append(connection)
        reconnected = len(connections) > 1
        server = connection.connect_to_server()
        connection.on_message(server.send)

        def from_server(frame):
            if reconnected and not replaced and isinstance(frame, str):
                data = json.loads(frame)
                if (data["type"], data.get("room")) == ("joined", "not-entered"):
                    replaced.append(frame)
                    frame = json.dumps(refusal)
            connection.send(frame)

        server.on_message(from_server)

    page = new_page(f"{url}/")
    page.route_web_socket(re.compile(r"/ws/chat/"), relay)
    open_chat(page, url, "alice", "not-entered")
    before = unique("Said before")
    say(page, "not-entered", before)
    expect(message(page, "not-entered", before)).to_be_visible()
    connections[-1].close(code=1011, reason="dropped")  # the page reconnects

    join_again = room(page, "not-entered").get_by_role("button", name="Join again")
    expect(join_again).to_be_visible()
    expect(page.locator('[data-join="not-entered"]')).to_be_enabled()
    expect(message(page, "not-entered", before)).to_be_visible()  # what it showed stays
    expect(room(page, "not-entered").get_by_role("button", name="Leave")).to_be_hidden()

    join_again.click()
    expect(join_again).to_be_hidden()
    expect(page.locator('[data-join="not-entered"]')).to_be_disabled()
    after = unique("Said after")
    say(page, "not-entered", after)
    expect(message(page, "not-entered", after)).to_be_visible()
    expect(message(page, "not-entered", before)).to_have_count(1)


def test_on_a_phone_the_room_the_user_is_in_comes_before_the_list_of_every_room(new_page, chat):
    url = chat.urls[0]
    page = new_page(f"{url}/")
    page.set_viewport_size({"width": 390, "height": 844})
    open_chat(page, url, "alice", "phone")
    picker = page.get_by_role("navigation", name="Rooms")
    expect(picker).to_be_visible()
    assert room(page, "phone").bounding_box()["y"] < picker.bounding_box()["y"]
    # The conversation and the box to write in are on the first screen, with no scrolling.
    expect(room(page, "phone").get_by_label("Message")).to_be_in_viewport(ratio=1)
    # First in the page's order too, not only on the screen: the Tab key, and a screen reader, meet the
    # room the user is in before the list of every room.
    # (The Tab key goes on from the element with the focus: the chat's start, made focusable for the test.)
    page.locator("#chat").evaluate("(chat) => { chat.tabIndex = -1; chat.focus(); }")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('#joined-rooms') !== null")
    # On a wide screen the list of every room stays at the left.
    page.set_viewport_size({"width": 1200, "height": 800})
    assert picker.bounding_box()["x"] < room(page, "phone").bounding_box()["x"]
