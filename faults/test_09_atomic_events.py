"""9. The event write fails: a post, or a chat message, must then not be stored
either (realtime_common.streams.LiveModel stores a row and its event in one
transaction, whoever writes).

Made to fail for real, in two ways:

- in the database: a trigger refuses every insert into the events table, and
  real processes write: ``manage.py post``, and a chat socket's ``send`` served
  by daphne;
- in a writer process: every writer of posts and messages (the services, a bare
  ``save()``, ``objects.create``, an update, a delete, the caller's own
  ``atomic()``), with ``realtime_common.streams.stream_events_insert`` patched to raise.

Either way no post, no message, no change is left, no seq is used up, and no
page hears of anything; once the fault is gone the next event takes the next seq.
"""

import pytest
from client import ChatPage, LiveblogPage, pages_open
from conftest import database_connect, record, tracebacks

from realtime_common.testing.metrics import metric_value

pytestmark = pytest.mark.database

# A trigger refusing every event insert, and its removal, in each database's dialect.
TRIGGER = {
    "sqlite": [
        """CREATE TRIGGER faults_no_events BEFORE INSERT ON realtime_common_streamevent
        BEGIN SELECT RAISE(ABORT, 'fault injected: no event'); END""",
    ],
    "postgres": [
        """CREATE FUNCTION faults_no_events() RETURNS trigger LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'fault injected: no event'; END $$""",
        """CREATE TRIGGER faults_no_events BEFORE INSERT ON realtime_common_streamevent
        FOR EACH ROW EXECUTE FUNCTION faults_no_events()""",
    ],
}
TRIGGER_DROP = {
    "sqlite": ["DROP TRIGGER faults_no_events"],
    "postgres": ["DROP TRIGGER faults_no_events ON realtime_common_streamevent", "DROP FUNCTION faults_no_events()"],
}


def sql(site, statements: dict[str, list[str]]) -> None:
    connection = database_connect(site)
    try:
        for statement in statements["postgres" if site.database_url else "sqlite"]:
            connection.execute(statement)
    finally:
        connection.close()


async def test_a_failed_event_write_leaves_nothing(sites):
    liveblog = sites("liveblog", servers=1)
    chat = sites("chat", servers=1)
    blog_script, chat_script = liveblog.script(), chat.script()
    cookies = await chat_script.acall("chat_users", names=["atom", "watch"])
    blog_page = LiveblogPage(name="blog", slug="djangocon", urls=[liveblog.daphnes[0].url])
    writer, watcher = (
        ChatPage(name=f"chat-{user}", rooms=["lobby"], cookie=cookies[user], urls=[chat.daphnes[0].url])
        for user in cookies
    )
    pages = [blog_page, writer, watcher]
    async with pages_open(pages=pages):
        await chat_script.acall(
            "message", room="lobby", username="watch", text="one to delete"
        )  # for the delete writer
        await watcher.until(lambda: watcher.has("lobby", "one to delete"), timeout=5)
        blog_before = await blog_script.acall("liveblog_state", slug="djangocon")
        chat_before = await chat_script.acall("chat_state", room="lobby")
        # In the database: every event insert is refused.
        for site in (liveblog, chat):
            sql(site, TRIGGER)
        try:
            liveblog.manage("post", "djangocon", "atomic: manage.py post")
            raise AssertionError("manage.py post succeeded without its event")
        except AssertionError as error:
            assert "fault injected: no event" in str(error), error
        frames_before = len(writer.frames)
        assert await writer.say("lobby", "atomic: the socket's send")
        # The consumer fails on the write (the database's IntegrityError is not a fault it
        # answers with an error frame): its socket closes, and the page comes back with since.
        await writer.until(lambda: writer.closes and writer.ready, timeout=10, what="the writer's socket back")
        socket_close = writer.closes[0][1]

        # In a writer process: every writer, the event write patched to fail.
        blog_writers = await blog_script.acall(
            "writers_without_events", slug="djangocon", room=None, username=None, marker="atomic:"
        )
        chat_writers = await chat_script.acall(
            "writers_without_events", slug=None, room="lobby", username="atom", marker="atomic:"
        )
        outcomes = {**blog_writers["outcome"], **chat_writers["outcome"]}
        for site in (liveblog, chat):
            sql(site, TRIGGER_DROP)

        # Nothing left behind: no row, no event, no seq used up, nothing sent.
        blog_after = await blog_script.acall("liveblog_state", slug="djangocon", marker="atomic:")
        chat_after = await chat_script.acall("chat_state", room="lobby", marker="atomic:")
        assert blog_after["marked"] == [] and chat_after["marked"] == [], (blog_after, chat_after)
        assert (blog_after["seq"], blog_after["events"], blog_after["posts"]) == (
            blog_before["seq"],
            blog_before["events"],
            blog_before["posts"],
        )
        assert (chat_after["seq"], chat_after["messages"]) == (chat_before["seq"], chat_before["messages"])
        assert len(outcomes) == 9, outcomes
        assert all(outcome.startswith("RuntimeError: fault injected") for outcome in outcomes.values()), outcomes
        assert blog_writers["post_kept"] and chat_writers["message_kept"], (blog_writers, chat_writers)
        assert not [frame for _, frame in blog_page.frames if frame.get("type", "").startswith("post.")]
        assert len(writer.frames) >= frames_before and not watcher.has("lobby", "atomic: the socket's send")

        # The fault gone: the next event takes the next seq, and every page gets it.
        posted = await blog_script.acall("post", slug="djangocon", body="after the fault")
        assert posted["seq"] == blog_before["seq"] + 1
        await blog_page.until(lambda: blog_page.has("after the fault"), timeout=5)
        assert blog_page.seqs == [blog_before["seq"] + 1]
        assert await writer.say("lobby", "after the fault")
        await watcher.until(lambda: watcher.has("lobby", "after the fault"), timeout=5)
        assert watcher.seqs["lobby"] == chat_before["seq"] + 1

        # Prometheus saw it too: one event sent live to the liveblog's page (the one after the fault), and the
        # chat's one crashed socket counted closed once, the others open.
        blog_shown, chat_shown = liveblog.daphnes[0].metrics(), chat.daphnes[0].metrics()
        assert metric_value(blog_shown, "realtime_event_delay_seconds_count") == 1, blog_shown
        assert metric_value(chat_shown, "realtime_closes_total") == 1, chat_shown
        assert metric_value(chat_shown, "realtime_sockets_open") == 2, chat_shown
        unexpected = [line for line in tracebacks(chat.daphnes[0].text()) if "Exception inside application" not in line]
        assert unexpected == [] and tracebacks(liveblog.daphnes[0].text()) == []
        record(
            "9. the event write fails (a DB trigger under manage.py post and a chat socket's send; "
            f"{len(outcomes)} writers in a process with the event write patched to fail)",
            f"every write failed whole: no post, no message, no seq used, nothing sent; the chat socket closed ({socket_close}) "
            "and came back; the next event took the next seq",
        )
