"""A socket lives only as long as its session is a login (rooms/sessions.py): closed
with 4401 by a logout in its browser, by its process's re-check every heartbeat
(an expired or deleted session, a changed password, a deactivated user), at once
when the user is saved, and at its next write (a message trusts its process's latest
re-check, while nothing heard since casts doubt on it). Against both channel layers."""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rooms import receivers, selectors, services, sessions
from rooms.models import Message
from rooms.selectors import SESSION_ROOMS, session_data_decode, sessions_logged_in, sessions_logged_in_until
from rooms.services import session_rooms_update
from rooms.session_store import SessionStore as RoomsSessionStore
from rooms.sessions import CLOSE_LOGGED_OUT, session_watch_get
from tests.helpers import Browser, join, say

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

CLOSED = {"type": "websocket.close", "code": CLOSE_LOGGED_OUT}
# Far longer than any test: only a logout, a saved user or a write can close a socket in time.
NO_HEARTBEAT = 600


@dataclass(frozen=True)
class Recheck:
    keys: frozenset[str]  # the session keys checked
    alive: frozenset[str]  # those still a login
    queries: int


class Rechecks:
    """This process's session re-checks, as they happen."""

    def __init__(self):
        self.done: asyncio.Queue[Recheck] = asyncio.Queue()

    async def next(self, *, keys: set[str] | None = None) -> Recheck:
        """The next re-check (of exactly ``keys``, if given)."""
        async with asyncio.timeout(5):
            while True:
                recheck = await self.done.get()
                if keys is None or recheck.keys == keys:
                    return recheck


@pytest.fixture
async def rechecks(settings, monkeypatch):
    """A heartbeat of 0.05 s, and every re-check with the queries it made. Request it
    before the sockets (``logged_in``): its teardown then comes after theirs, and waits
    for the re-check task to end, which it does with the process's last socket."""
    settings.CHAT_PRESENCE_HEARTBEAT = 0.05
    loop = asyncio.get_running_loop()
    checks = Rechecks()

    def counted(*, keys):
        # In the thread of database_sync_to_async: the queries of that thread's connection.
        with CaptureQueriesContext(connection) as queries:
            alive = sessions_logged_in_until(keys=keys)
        loop.call_soon_threadsafe(checks.done.put_nowait, Recheck(frozenset(keys), frozenset(alive), len(queries)))
        return alive

    monkeypatch.setattr(sessions, "sessions_logged_in_until", counted)
    yield checks
    if task := session_watch_get().task:
        async with asyncio.timeout(5):
            await task


@pytest.fixture
def fast_hasher(settings):
    # The default hasher takes its time on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@sync_to_async
def session_expire(browser: Browser) -> None:
    Session.objects.filter(session_key=browser.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))


@sync_to_async
def session_delete(browser: Browser) -> None:
    Session.objects.filter(session_key=browser.session_key).delete()


# Changes that send no signal (QuerySet.update): only a re-check can notice them.
@sync_to_async
def password_update(user) -> None:
    get_user_model().objects.filter(pk=user.pk).update(password=make_password(None))


@sync_to_async
def deactivation_update(user) -> None:
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


@sync_to_async
def session_rooms_read(browser: Browser) -> list[str]:
    return SessionStore(browser.session_key).get(SESSION_ROOMS, [])


count_messages = sync_to_async(Message.objects.count)


async def assert_open(socket, room: str) -> None:
    """The socket still works: a message it sends in ``room`` comes back."""
    await say(socket, room, "still here")
    assert (await socket.receive_json_from())["text"] == "still here"


async def test_logging_out_closes_the_sockets_of_that_browser_only(logged_in, users, chat_rooms, settings):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    here = await logged_in(users["alice"])
    here_tabs = [await here.open_tab(), await here.open_tab()]
    elsewhere_tab = await (await logged_in(users["alice"])).open_tab()  # alice's phone: a session of its own
    for tab in [*here_tabs, elsewhere_tab]:
        await join(tab, "lobby")
    bob_tab = await (await logged_in(users["bob"])).open_tab()
    await join(bob_tab, "random")

    await here.log_out()
    for tab in here_tabs:
        assert await tab.receive_output() == CLOSED
    await assert_open(elsewhere_tab, "lobby")
    await assert_open(bob_tab, "random")


@pytest.mark.parametrize(
    ("change", "whole_user"),
    [
        pytest.param(session_expire, False, id="session-expired"),
        pytest.param(session_delete, False, id="session-deleted"),
        pytest.param(password_update, True, id="password-changed"),
        pytest.param(deactivation_update, True, id="user-deactivated"),
    ],
)
async def test_a_re_check_closes_the_sockets_whose_session_is_no_login_within_a_heartbeat(
    rechecks, logged_in, users, chat_rooms, change, whole_user
):
    here, elsewhere = await logged_in(users["alice"]), await logged_in(users["alice"])
    here_tabs, elsewhere_tab = [await here.open_tab(), await here.open_tab()], await elsewhere.open_tab()
    bob = await logged_in(users["bob"])
    bob_tab = await bob.open_tab()
    await join(bob_tab, "random")
    everyone = {here.session_key, elsewhere.session_key, bob.session_key}
    await rechecks.next(keys=everyone)

    await change(users["alice"] if whole_user else here)
    closed = [*here_tabs, elsewhere_tab] if whole_user else here_tabs
    for tab in closed:
        assert await tab.receive_output(timeout=5) == CLOSED
    # The re-checks go on, with the sockets still open, and find their sessions alive.
    alive = everyone - {here.session_key} - ({elsewhere.session_key} if whole_user else set())
    assert (await rechecks.next(keys=alive)).alive == alive
    if not whole_user:
        await join(elsewhere_tab, "lobby")
        await assert_open(elsewhere_tab, "lobby")
    await assert_open(bob_tab, "random")


@pytest.mark.parametrize("change", ["password", "deactivation", "deletion"])
async def test_saving_or_deleting_the_user_closes_their_sockets_at_once(
    logged_in, users, chat_rooms, settings, fast_hasher, change
):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice = users["alice"]
    tabs = [await (await logged_in(alice)).open_tab() for _ in range(2)]
    bob_tab = await (await logged_in(users["bob"])).open_tab()
    await join(bob_tab, "random")

    @sync_to_async
    def user_change():
        if change == "password":
            alice.set_password("a new password")
            alice.save()
        elif change == "deactivation":
            alice.is_active = False
            alice.save()
        else:
            alice.delete()

    await user_change()
    for tab in tabs:
        assert await tab.receive_output(timeout=5) == CLOSED
    await assert_open(bob_tab, "random")


def test_only_changes_that_may_end_a_login_have_sessions_re_checked(users, monkeypatch):
    rechecked = []
    monkeypatch.setattr(receivers, "user_sessions_recheck", lambda *, user_id: rechecked.append(user_id))
    dave = get_user_model().objects.create_user("dave")  # new: no sockets yet
    Client().force_login(dave)  # saves last_login only
    assert rechecked == []
    dave.first_name = "Dave"
    dave.save()
    dave_pk = dave.pk
    dave.delete()
    assert rechecked == [dave_pk, dave_pk]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda browser, user: session_delete(browser), id="session-deleted"),
        pytest.param(lambda browser, user: password_update(user), id="password-changed"),
    ],
)
async def test_a_message_on_a_dead_session_is_refused_and_not_stored(logged_in, users, chat_rooms, settings, change):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    await join(socket, "lobby")
    await change(alice, users["alice"])

    await say(socket, "lobby", "from beyond")
    assert await socket.receive_output() == CLOSED
    assert await count_messages() == 0


@pytest.fixture
def session_checks(monkeypatch):
    """The session keys a message_send checked itself (two queries each), in order."""
    checked = []
    check = services.session_logged_in
    monkeypatch.setattr(
        services,
        "session_logged_in",
        lambda *, session_key: checked.append(session_key) or check(session_key=session_key),
    )
    return checked


async def test_a_message_trusts_the_process_s_latest_re_check_and_checks_its_session_only_without_one(
    logged_in, users, chat_rooms, settings, session_checks
):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    await join(socket, "lobby")
    await assert_open(socket, "lobby")
    assert session_checks == [alice.session_key]  # no re-check yet: the message checked

    await session_watch_get().round_await()
    await assert_open(socket, "lobby")
    assert session_checks == [alice.session_key]  # vouched for by the re-check: no query


async def test_a_session_ended_with_no_word_to_the_process_is_seen_by_its_next_re_check(
    logged_in, users, chat_rooms, settings
):
    """The window that trust leaves: a session deleted with no signal (a QuerySet.update, another
    service) while a re-check vouches for it. A message may be stored in it; the next re-check closes
    the socket, at most a heartbeat later."""
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    await join(socket, "lobby")
    watch = session_watch_get()
    await watch.round_await()
    await session_delete(alice)
    await assert_open(socket, "lobby")
    await watch.round_await()
    assert await socket.receive_output(timeout=5) == CLOSED


async def browsers_with_a_tab(logged_in, *users) -> list[Browser]:
    """A browser logged in as each user, each with a chat tab open: its session watched."""
    browsers = [await logged_in(user) for user in users]
    for browser in browsers:
        await browser.open_tab()
    return browsers


async def test_a_re_check_is_trusted_until_the_session_expires_or_two_heartbeats_pass(
    logged_in, users, chat_rooms, settings, monkeypatch
):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    soon, later = await browsers_with_a_tab(logged_in, users["alice"], users["bob"])
    expiry = timezone.now() + timedelta(seconds=30)
    await sync_to_async(Session.objects.filter(session_key=soon.session_key).update)(expire_date=expiry)
    watch = session_watch_get()
    began = time.monotonic()
    await watch.round_await()
    assert all(watch.session_confirmed(session_key=browser.session_key) for browser in (soon, later))

    # 31 s on, by the wall clock: soon's session expired; later's is still trusted.
    wall = time.time() + 31
    monkeypatch.setattr(sessions, "time", SimpleNamespace(time=lambda: wall, monotonic=time.monotonic))
    assert not watch.session_confirmed(session_key=soon.session_key)
    assert watch.session_confirmed(session_key=later.session_key)
    # Two heartbeats after the re-check began: trusted no more, whatever the wall clock says.
    ticks = began + 2 * NO_HEARTBEAT + 1
    monkeypatch.setattr(sessions, "time", SimpleNamespace(time=time.time, monotonic=lambda: ticks))
    assert not watch.session_confirmed(session_key=later.session_key)


async def test_a_saved_user_stops_the_trust_until_the_next_re_check_and_a_logout_for_good(
    logged_in, users, chat_rooms, settings
):
    """A logout is heard (session.ended) before Django deletes the session's row: a re-check in
    between still finds it a login, and must not confirm it again."""
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice, bob = await logged_in(users["alice"]), await logged_in(users["bob"])
    alice_tabs = [await alice.open_tab(), await alice.open_tab()]
    await bob.open_tab()
    watch = session_watch_get()
    await watch.round_await()
    assert watch.session_confirmed(session_key=alice.session_key)

    watch.session_end(session_key=alice.session_key)  # one of alice's tabs closed with 4401
    assert not watch.session_confirmed(session_key=alice.session_key)
    assert watch.session_confirmed(session_key=bob.session_key)
    await watch.round_await()  # the row is still there: found a login, yet not trusted
    assert not watch.session_confirmed(session_key=alice.session_key)

    watch.session_doubt(session_key=bob.session_key)  # bob was saved
    assert not watch.session_confirmed(session_key=bob.session_key)
    await watch.round_await()
    assert watch.session_confirmed(session_key=bob.session_key)
    for tab in alice_tabs:
        await tab.disconnect()


async def test_a_re_check_confirms_no_session_doubted_while_it_was_on(
    logged_in, users, chat_rooms, settings, monkeypatch
):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice, bob = await browsers_with_a_tab(logged_in, users["alice"], users["bob"])
    watch, loop = session_watch_get(), asyncio.get_running_loop()
    check = sessions.sessions_logged_in_until

    def doubted_meanwhile(*, keys):
        alive = check(keys=keys)
        # Handled by the loop before the re-check resumes: callbacks run in the order they were scheduled.
        loop.call_soon_threadsafe(partial(watch.session_doubt, session_key=alice.session_key))
        return alive

    monkeypatch.setattr(sessions, "sessions_logged_in_until", doubted_meanwhile)
    await watch.round_await()
    assert not watch.session_confirmed(session_key=alice.session_key)
    assert watch.session_confirmed(session_key=bob.session_key)  # no doubt cast on the others


async def test_a_socket_closed_as_logged_out_ends_the_trust_of_its_session(logged_in, users, chat_rooms, settings):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice = await logged_in(users["alice"])
    closing, other = await alice.open_tab(), await alice.open_tab()
    await join(closing, "lobby")
    await session_delete(alice)
    await say(closing, "lobby", "from beyond")  # no re-check vouches for it: checked, refused
    assert await closing.receive_output() == CLOSED
    watch = session_watch_get()
    # The other tab is still watched (its own close comes with the next re-check), and trusted by nothing.
    assert alice.session_key in watch.channels and alice.session_key in watch.ended
    await other.disconnect()
    # Forgotten with the session's last socket here: the process keeps no ended session for ever.
    assert alice.session_key not in watch.ended and alice.session_key not in watch.channels


@pytest.mark.parametrize("command", ["join", "leave"])
@pytest.mark.parametrize(
    ("change", "rooms_after"),
    [
        pytest.param(lambda browser, user: session_delete(browser), [], id="session-deleted"),
        pytest.param(lambda browser, user: password_update(user), ["lobby"], id="password-changed"),
    ],
)
async def test_joining_or_leaving_on_a_dead_session_closes_the_socket_and_changes_nothing(
    logged_in, users, chat_rooms, settings, change, rooms_after, command
):
    settings.CHAT_PRESENCE_HEARTBEAT = NO_HEARTBEAT
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    await join(socket, "lobby")
    await change(alice, users["alice"])

    await socket.send_json_to({"command": command, "room": "random" if command == "join" else "lobby"})
    assert await socket.receive_output() == CLOSED
    assert await session_rooms_read(alice) == rooms_after


async def test_a_socket_without_a_login_is_accepted_then_closed_with_4401(connect, logged_in, users, chat_rooms):
    """Not refused at the handshake: a browser sees only 1006 for that, and retries for ever."""
    expired = await logged_in(users["alice"])
    await session_expire(expired)
    changed = await logged_in(users["bob"])
    await password_update(users["bob"])
    cookies = {
        "none": [],
        "unknown": [(b"cookie", f"{settings.SESSION_COOKIE_NAME}=not-a-session".encode())],
        "expired": [expired.cookie],
        "password-changed": [changed.cookie],
    }
    for name, headers in cookies.items():
        socket, connected = await connect("/ws/chat/", headers=headers)
        assert connected, name
        assert await socket.receive_output() == CLOSED, name
        assert await socket.receive_nothing(), name


async def test_re_checks_cost_two_queries_per_heartbeat_however_many_sockets(rechecks, logged_in, users, chat_rooms):
    alice = await logged_in(users["alice"])
    await alice.open_tab()
    assert (await rechecks.next(keys={alice.session_key})).queries == 2

    browsers = [alice] + [await logged_in(users[name]) for name in ["alice", "bob", "carol", "sam"] * 3]
    for browser in browsers:
        for _ in range(2):
            await browser.open_tab()
    keys = {browser.session_key for browser in browsers}
    recheck = await rechecks.next(keys=keys)
    assert (len(recheck.keys), len(recheck.alive), recheck.queries) == (13, 13, 2)


def test_a_re_check_decodes_and_judges_only_the_sessions_that_changed_and_still_sees_every_change(users, monkeypatch):
    """The decoded data is cached by its text (selectors.session_data_decode), and each verdict by the
    session's text and its user's row (selectors.login_verdict): a round of 2,000 sockets' sessions decodes
    and judges those that changed, not 2,000. What ends a login is seen all the same."""
    browsers = {}
    for name in ["alice", "bob"]:
        client = Client()
        client.force_login(users[name])
        browsers[name] = client.cookies[settings.SESSION_COOKIE_NAME].value
    decoded, judged = [], []
    decode = RoomsSessionStore.decode
    monkeypatch.setattr(RoomsSessionStore, "decode", lambda self, data: decoded.append(data) or decode(self, data))
    valid = selectors.session_login_valid
    monkeypatch.setattr(selectors, "session_login_valid", lambda **kwargs: judged.append(1) or valid(**kwargs))
    for cache in (session_data_decode, selectors.session_text_user_pk, selectors.login_verdict_cached):
        cache.cache_clear()
    keys = set(browsers.values())

    def recheck() -> tuple[set[str], int, int]:
        """The sessions still a login, and how many were decoded and judged to tell."""
        decoded.clear()
        judged.clear()
        return sessions_logged_in(keys=keys), len(decoded), len(judged)

    assert recheck() == (keys, 2, 2)
    assert recheck() == (keys, 0, 0)  # nothing changed
    assert session_rooms_update(session_key=browsers["alice"], join="lobby")  # alice's data changes
    assert recheck() == (keys, 1, 1)
    # A password changed without a signal: bob's session text is as cached, his row is not.
    get_user_model().objects.filter(pk=users["bob"].pk).update(password=make_password(None))
    assert recheck() == ({browsers["alice"]}, 0, 1)
    # A setting a verdict depends on: judged again, all of them.
    with override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.AllowAllUsersModelBackend"]):
        assert recheck() == (set(), 0, 2)  # the backend the sessions name is no longer configured
    Session.objects.filter(session_key=browsers["alice"]).delete()
    assert recheck() == (set(), 0, 0)


class OwnBackend(ModelBackend):
    """A project's own check of a user, which may read more than the user's row."""

    refused: set[str] = set()

    def user_can_authenticate(self, user):
        return user.get_username() not in self.refused and super().user_can_authenticate(user)


def test_a_project_s_own_check_of_a_user_is_made_every_re_check(users):
    own = f"{__name__}.OwnBackend"
    with override_settings(AUTHENTICATION_BACKENDS=[own, "django.contrib.auth.backends.ModelBackend"]):
        client = Client()
        client.force_login(users["alice"], backend=own)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert sessions_logged_in(keys=[key]) == {key}
        OwnBackend.refused.add("alice")  # nothing in her row or session changed
        try:
            assert sessions_logged_in(keys=[key]) == set()
        finally:
            OwnBackend.refused.clear()


def test_a_user_row_that_cannot_be_a_cache_key_is_judged_all_the_same(users):
    client = Client()
    client.force_login(users["alice"])
    text = Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value).session_data
    row = selectors.user_rows_read(pks=[users["alice"].pk])[users["alice"].pk]
    config = selectors.login_config_get()
    assert selectors.login_verdict(text=text, user_row=row, config=config)
    # date_joined, the last field, as a JSONField's value would read: a dict.
    unhashable = (*row[:-1], {"joined": "then"})
    with pytest.raises(TypeError):
        hash(unhashable)
    assert selectors.login_verdict(text=text, user_row=unhashable, config=config) is True
    is_active = [field.attname for field in get_user_model()._meta.concrete_fields].index("is_active")
    deactivated = (*unhashable[:is_active], False, *unhashable[is_active + 1 :])
    assert selectors.login_verdict(text=text, user_row=deactivated, config=config) is False


async def test_the_re_check_task_ends_with_the_process_s_last_socket(rechecks, logged_in, users, chat_rooms):
    tabs = [await (await logged_in(users[name])).open_tab() for name in ["alice", "bob"]]
    task = session_watch_get().task
    assert task is not None and not task.done()
    await tabs[0].disconnect()
    await rechecks.next()
    assert not task.done()
    await tabs[1].disconnect()
    async with asyncio.timeout(5):
        await task
    assert session_watch_get().task is None
    # And a new socket starts a new one.
    carol = await logged_in(users["carol"])
    await carol.open_tab()
    assert (await rechecks.next(keys={carol.session_key})).queries == 2


async def test_re_checks_survive_a_failing_database_and_log_the_outage_once(
    rechecks, logged_in, users, chat_rooms, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="rooms.sessions")
    alice = await logged_in(users["alice"])
    tab = await alice.open_tab()
    counted, failures = sessions.sessions_logged_in_until, 3

    def failing(*, keys):
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("the database is down")
        return counted(keys=keys)

    monkeypatch.setattr(sessions, "sessions_logged_in_until", failing)
    for _ in range(2):  # the first that works, after three that failed, and the next: the first is over
        await rechecks.next(keys={alice.session_key})
    logged = [(record.levelname, record.getMessage()) for record in caplog.records if record.name == "rooms.sessions"]
    assert logged == [
        ("WARNING", "sessions: a re-check failed (ConnectionError('the database is down')); retrying every heartbeat"),
        ("INFO", "sessions: re-checks work again"),
    ]
    # Still at work.
    await session_delete(alice)
    assert await tab.receive_output(timeout=5) == CLOSED
