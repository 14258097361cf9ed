"""8. The database is locked past its busy timeout: another connection holds
SQLite's write lock (BEGIN IMMEDIATE), or on Postgres every table's EXCLUSIVE
lock (which lets plain reads through, as SQLite's WAL does), for 3 s, while the
timeout (SQLite's busy timeout, Postgres' lock_timeout) is 0.5 s here
(DJANGO_DATABASE_TIMEOUT; 20 s by default).

A frame whose handling must write then gets the error ``busy`` (the consumer
bases turn the database's OperationalError into it, for every site), the socket
stays open, and nothing is half written: no message, no stroke, no count that
disagrees with the rows; the stroke drawn meanwhile is erased from every
screen. Pages still connect (reads go on under SQLite's WAL), and once the lock
is gone the same writes succeed.
"""

import asyncio
import time

import pytest
from client import BoardPage, ChatPage, LiveblogPage, pages_open
from conftest import database_connect, log_count, record, seconds_round, tracebacks
from psycopg import sql

from realtime_common.testing.metrics import metric_value

pytestmark = pytest.mark.database

TIMEOUT = 0.5
HOLD = 3.0
ENV = {"DJANGO_DATABASE_TIMEOUT": str(TIMEOUT)}


def lock(site):
    """Another connection holding every write off the site's database until its ROLLBACK."""
    connection = database_connect(site)
    if not site.database_url:
        connection.execute("BEGIN IMMEDIATE")
        return connection
    # Postgres has no lock on a whole database: every table's EXCLUSIVE lock stops
    # every write (and SELECT ... FOR UPDATE), and no plain read.
    tables = [name for (name,) in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    connection.execute("BEGIN")
    connection.execute(
        sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
    )
    return connection


async def test_database_locked_past_its_timeout(sites):
    chat = sites("chat", servers=1, env=ENV)
    sketchpad = sites("sketchpad", servers=1, env=ENV)
    liveblog = sites("liveblog", servers=1, env=ENV)
    chat_script, pad_script = chat.script(), sketchpad.script()
    cookies = await chat_script.acall("chat_users", names=["writer", "reader"])
    await pad_script.acall("boards", slugs=["locked"])
    writer, reader = (
        ChatPage(name=f"chat-{user}", rooms=["lobby"], cookie=cookies[user], urls=[chat.daphnes[0].url])
        for user in cookies
    )
    drawer, watcher = (
        BoardPage(name=name, slug="locked", urls=[sketchpad.daphnes[0].url]) for name in ("drawer", "watcher")
    )
    pages = [writer, reader, drawer, watcher]
    async with pages_open(pages=pages):
        late = LiveblogPage(name="late", slug="djangocon", urls=[liveblog.daphnes[0].url])
        held = [lock(site) for site in (chat, sketchpad)]
        locked_at = time.monotonic()
        try:
            # A message: refused with "busy" once the timeout is over.
            sent = time.monotonic()
            assert await writer.say("lobby", "while locked")
            await writer.until(lambda: writer.errors, timeout=TIMEOUT + 2, what="busy for the message")
            message_busy = time.monotonic() - sent
            # Joining a room writes the session: refused the same way.
            assert await writer.send({"command": "join", "room": "random"})
            await writer.until(lambda: len(writer.errors) >= 2, timeout=TIMEOUT + 2, what="busy for the join")
            # A stroke: drawn live on the other screen, then refused when it ends, and erased everywhere.
            assert await drawer.draw("locked", [[0.1, 0.1], [0.2, 0.2]], done=False)
            await watcher.until(lambda: "locked" in watcher.drawing, timeout=5, what="stroke in progress")
            sent = time.monotonic()
            assert await drawer.draw("locked", [[0.3, 0.3]], done=True)
            await drawer.until(lambda: drawer.errors, timeout=TIMEOUT + 2, what="busy for the stroke")
            stroke_busy = time.monotonic() - sent
            # Reading goes on: a page connects to the liveblog meanwhile.
            pages.append(late)
            await late.start()
            assert time.monotonic() - locked_at < HOLD, "the lock was not held through the writes"
            await asyncio.sleep(max(0.0, locked_at + HOLD - time.monotonic()))
        finally:
            for connection in held:
                connection.execute("ROLLBACK")
                connection.close()
        assert [error["code"] for error in writer.errors] == ["busy", "busy"], writer.errors
        assert [error["code"] for error in drawer.errors] == ["busy"], drawer.errors
        await watcher.until(lambda: "locked" not in watcher.strokes, timeout=5, what="erased")

        # Unlocked: the same writes succeed, on the same sockets.
        assert await writer.say("lobby", "after the lock")
        await reader.until(lambda: reader.has("lobby", "after the lock"), timeout=5, what="message after")
        assert await drawer.draw("unlocked", [[0.5, 0.5], [0.6, 0.6]], done=True)
        await watcher.until(lambda: "unlocked" in watcher.strokes, timeout=5, what="stroke after")
        assert await writer.send({"command": "join", "room": "random"})
        await writer.until(lambda: "random" in writer.joined, timeout=5, what="join after")

        # Nothing half written.
        state = await chat_script.acall("chat_state", room="lobby", marker="lock")
        assert [text for _, text in state["marked"]] == ["after the lock"], state
        assert not reader.has("lobby", "while locked")
        boards = await pad_script.acall("boards_state", slugs=["locked"])
        strokes = await pad_script.acall("strokes", slug="locked")
        assert strokes == ["unlocked"] and boards["locked"]["strokes"] == 1, (strokes, boards)
        for page in pages:
            assert page.closes == [], (page.name, page.closes)
        for site in (chat, sketchpad, liveblog):
            server = site.daphnes[0]
            assert server.alive() and tracebacks(server.text()) == [], server.text()
        refusals = log_count(
            chat.daphnes[0].text() + sketchpad.daphnes[0].text(), "refused a frame: the database failed"
        )
        assert refusals == 3
        # What Prometheus sees of them: the same error frames, by their code, and nothing else refused.
        chat_shown, pad_shown = (site.daphnes[0].metrics() for site in (chat, sketchpad))
        assert metric_value(chat_shown, "realtime_error_frames_total", code="busy") == 2, chat_shown
        assert metric_value(pad_shown, "realtime_error_frames_total", code="busy") == 1, pad_shown
        assert metric_value(chat_shown, "realtime_error_frames_total") == 2, chat_shown
        assert metric_value(pad_shown, "realtime_error_frames_total") == 1, pad_shown
        how = "Postgres: every table EXCLUSIVE" if chat.database_url else "SQLite: BEGIN IMMEDIATE"
        record(
            f"8. database locked {HOLD:.0f} s by another connection ({how}), busy timeout {TIMEOUT} s",
            "chat message and join, finished stroke: error 'busy', socket open, nothing stored, the stroke erased "
            "from the other screen; a liveblog page connected meanwhile; the same writes succeed after",
            **seconds_round(message_busy_s=message_busy, stroke_busy_s=stroke_busy),
        )
