"""The liveblog socket, against the in-memory and the Redis channel layer."""

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import transaction

from blog.models import Post
from blog.services import post_create, post_delete, post_update
from realtime_common import streams
from realtime_common.streams import CLOSE_RESYNC

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

create = sync_to_async(post_create)


async def test_unknown_liveblog_is_refused(connect, liveblog):
    _, connected = await connect("/ws/liveblog/no-such-blog/")
    assert not connected


async def test_the_site_s_own_origin_connects(connect, liveblog):
    _, connected = await connect("/ws/liveblog/launch/")
    assert connected


async def test_any_other_origin_is_refused(connect, liveblog, hostile_origin):
    _, connected = await connect("/ws/liveblog/launch/", origin=hostile_origin)
    assert not connected


async def test_created_updated_deleted_reach_the_page_in_order(connect, liveblog):
    socket, connected = await connect("/ws/liveblog/launch/")
    assert connected

    post = await create(liveblog=liveblog, body="Hello <b>world</b>")
    created = await socket.receive_json_from()
    assert created == {
        "type": "post.created",
        "liveblog": "launch",
        "seq": 1,
        "post": {
            "id": post.pk,
            "html": "<p>Hello &lt;b&gt;world&lt;/b&gt;</p>",
            "created": post.created.isoformat(),
            "updated": post.updated.isoformat(),
        },
    }

    await sync_to_async(post_update)(post=post, body="Hello again")
    updated = await socket.receive_json_from()
    assert (updated["type"], updated["seq"], updated["post"]["html"]) == ("post.updated", 2, "<p>Hello again</p>")

    post_id = post.pk
    await sync_to_async(post_delete)(post=post)
    assert await socket.receive_json_from() == {
        "type": "post.deleted",
        "liveblog": "launch",
        "seq": 3,
        "post": {"id": post_id},
    }


async def test_every_open_page_receives_the_post(connect, liveblog):
    pages = [(await connect("/ws/liveblog/launch/"))[0] for _ in range(3)]
    await create(liveblog=liveblog, body="To all")
    for page in pages:
        assert (await page.receive_json_from())["post"]["html"] == "<p>To all</p>"


async def test_other_liveblogs_pages_receive_nothing(connect, liveblog):
    other = await sync_to_async(type(liveblog).objects.create)(slug="other", title="Other")
    other_page, _ = await connect("/ws/liveblog/other/")
    await create(liveblog=liveblog, body="Only for launch")
    await create(liveblog=other, body="For other")
    # Had the first post leaked, it would arrive before this one.
    assert (await other_page.receive_json_from())["post"]["html"] == "<p>For other</p>"


async def test_a_rolled_back_save_broadcasts_nothing(connect, liveblog):
    socket, _ = await connect("/ws/liveblog/launch/")

    @sync_to_async
    def save_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            post_create(liveblog=liveblog, body="Never happened")
            raise RuntimeError("rolled back")

    await save_then_fail()
    await create(liveblog=liveblog, body="Committed")
    frame = await socket.receive_json_from()
    # The rolled-back post took its seq with it: the next event is seq 1.
    assert (frame["seq"], frame["post"]["html"]) == (1, "<p>Committed</p>")
    assert await sync_to_async(Post.objects.count)() == 1


async def test_broadcast_waits_for_the_commit(connect, liveblog):
    socket, _ = await connect("/ws/liveblog/launch/")

    @sync_to_async
    def save_in_transaction():
        with transaction.atomic():
            post_create(liveblog=liveblog, body="Inside")
            # Not committed yet, so not sent yet: the callback waits for commit.
            assert len(transaction.get_connection().run_on_commit) == 1

    await save_in_transaction()
    assert (await socket.receive_json_from())["post"]["html"] == "<p>Inside</p>"


async def test_management_command_publishes(connect, liveblog):
    socket, _ = await connect("/ws/liveblog/launch/")
    await sync_to_async(call_command)("post", "launch", "From the shell")
    assert (await socket.receive_json_from())["post"]["html"] == "<p>From the shell</p>"


async def test_since_replays_what_was_missed_then_goes_live_without_duplicates(connect, liveblog):
    for body in ["one", "two", "three"]:
        await create(liveblog=liveblog, body=body)

    socket, _ = await connect("/ws/liveblog/launch/?since=1")
    replayed = [await socket.receive_json_from() for _ in range(2)]
    assert [(frame["seq"], frame["post"]["html"]) for frame in replayed] == [(2, "<p>two</p>"), (3, "<p>three</p>")]

    await create(liveblog=liveblog, body="four")
    assert (await socket.receive_json_from())["seq"] == 4


async def test_since_up_to_date_replays_nothing(connect, liveblog):
    await create(liveblog=liveblog, body="one")
    socket, _ = await connect("/ws/liveblog/launch/?since=1")
    await create(liveblog=liveblog, body="two")
    assert (await socket.receive_json_from())["seq"] == 2


async def test_a_lost_broadcast_is_filled_in_from_the_database(connect, liveblog, monkeypatch):
    socket, _ = await connect("/ws/liveblog/launch/")
    real_send = streams.group_send_on_commit
    monkeypatch.setattr(streams, "group_send_on_commit", lambda **kwargs: None)
    await create(liveblog=liveblog, body="lost on the way")
    monkeypatch.setattr(streams, "group_send_on_commit", real_send)
    await create(liveblog=liveblog, body="arrives")

    frames = [await socket.receive_json_from() for _ in range(2)]
    assert [(frame["seq"], frame["post"]["html"]) for frame in frames] == [
        (1, "<p>lost on the way</p>"),
        (2, "<p>arrives</p>"),
    ]


@pytest.mark.parametrize("since", ["0", "99", "abc", "-1", "%C2%B2", "9" * 5000, "1" * 19])
async def test_since_that_cannot_be_replayed_asks_for_a_resync(connect, liveblog, monkeypatch, since):
    monkeypatch.setattr(Post, "live_retention", 2)
    for body in ["one", "two", "three", "four"]:
        await create(liveblog=liveblog, body=body)

    socket, connected = await connect(f"/ws/liveblog/launch/?since={since}")
    assert connected
    assert await socket.receive_json_from() == {"type": "resync"}
    assert await socket.receive_output() == {"type": "websocket.close", "code": CLOSE_RESYNC}


async def test_frames_from_the_page_get_an_error_and_the_socket_stays_open(connect, liveblog):
    socket, _ = await connect("/ws/liveblog/launch/")
    for frame in ["not json", '{"type": "post.created"}']:
        await socket.send_to(text_data=frame)
        assert (await socket.receive_json_from())["code"] == "read_only"
    await socket.send_to(bytes_data=b"\x00\xff")
    assert (await socket.receive_json_from())["code"] == "read_only"

    await create(liveblog=liveblog, body="still live")
    assert (await socket.receive_json_from())["post"]["html"] == "<p>still live</p>"


async def test_deleting_the_liveblog_resyncs_its_open_pages(connect, liveblog):
    # Its posts go with it, unannounced one by one (their stream went first): the page
    # is told to reload what it shows, and so finds the liveblog gone.
    socket, _ = await connect("/ws/liveblog/launch/")
    await create(liveblog=liveblog, body="one")
    assert (await socket.receive_json_from())["seq"] == 1
    await sync_to_async(liveblog.delete)()
    assert await sync_to_async(Post.objects.count)() == 0
    assert await socket.receive_json_from() == {"type": "resync"}
    assert await socket.receive_output() == {"type": "websocket.close", "code": CLOSE_RESYNC}


async def test_a_page_flooding_its_socket_is_refused_then_closed(connect, liveblog, monkeypatch):
    from blog.consumers import LiveblogConsumer
    from realtime_common import consumers

    # No refill, so the test does not depend on how fast it runs.
    monkeypatch.setattr(LiveblogConsumer, "frame_rate", 0)
    monkeypatch.setattr(LiveblogConsumer, "frame_burst", 1)
    monkeypatch.setattr(consumers, "REFUSALS_PER_SECOND", 0)
    monkeypatch.setattr(consumers, "REFUSAL_BURST", 2)
    socket, _ = await connect("/ws/liveblog/launch/")
    for _ in range(6):
        await socket.send_to(text_data="{}")
    codes = [(await socket.receive_json_from())["code"] for _ in range(3)]
    assert codes == ["read_only", "rate_limited", "rate_limited"]
    assert await socket.receive_output() == {"type": "websocket.close", "code": consumers.CLOSE_FLOODING}


async def test_a_frame_over_64_kib_closes_the_socket_with_1009(connect, liveblog):
    from realtime_common.consumers import CLOSE_TOO_BIG

    socket, _ = await connect("/ws/liveblog/launch/")
    await socket.send_to(text_data="x" * (64 * 1024 + 1))
    assert await socket.receive_output() == {"type": "websocket.close", "code": CLOSE_TOO_BIG}
