"""The fragments page's socket (HTML for htmx), against the in-memory and the Redis channel layer."""

import json
import re
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from blog import consumers
from blog.models import Post
from blog.services import post_create, post_delete, post_update
from blog.wire import post_fragment
from realtime_common import streams
from realtime_common.consumers import frame_encode

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

create = sync_to_async(post_create)
URL = "/ws/liveblog/launch/fragments/"


def article(html: str, *, post_id: int) -> str:
    """The <article> of the post in ``html``, as written (the template puts no other article inside)."""
    return re.search(rf'<article class="post" id="post-{post_id}".*?</article>', html, re.DOTALL).group()


def page_article(*, post_id: int) -> str:
    return article(Client().get("/launch/fragments/").content.decode(), post_id=post_id)


async def connected_page(connect) -> object:
    socket, connected = await connect(URL)
    assert connected
    await socket.receive_from()  # the list as it is now
    return socket


async def test_unknown_liveblog_is_refused(connect, liveblog):
    _, connected = await connect("/ws/liveblog/no-such-blog/fragments/")
    assert not connected


async def test_connect_sends_the_list_as_it_is_now_and_leaves_the_badge_to_the_page(connect, liveblog):
    first = await create(liveblog=liveblog, body="first")
    second = await create(liveblog=liveblog, body="second")
    socket, _ = await connect(URL)
    html = await socket.receive_from()

    # The badge is the page's extension's (htmx-socket-state.js): a swapped-in one would replace the element it updates.
    assert "connection-state" not in html
    assert html.lstrip().startswith('<section class="posts" id="posts" hx-swap-oob="true"')
    # Newest first, each exactly as the page renders it.
    assert html.index(f'id="post-{second.pk}"') < html.index(f'id="post-{first.pk}"')
    page = await sync_to_async(page_article)(post_id=first.pk)
    assert article(html, post_id=first.pk) == page


async def test_created_updated_deleted_arrive_as_oob_swaps_in_seq_order(connect, liveblog):
    socket = await connected_page(connect)

    post = await create(liveblog=liveblog, body="Hello")
    created = await socket.receive_from()
    assert created.strip().startswith(
        f'<div id="posts" hx-swap-oob="afterbegin"><article class="post" id="post-{post.pk}"'
    )
    assert article(created, post_id=post.pk) == await sync_to_async(page_article)(post_id=post.pk)

    await sync_to_async(post_update)(post=post, body="Hello again")
    updated = await socket.receive_from()
    assert updated.strip().startswith(f'<article class="post" id="post-{post.pk}" hx-swap-oob="true"')
    assert "<p>Hello again</p>" in updated
    # Once htmx took the hx-swap-oob attribute out, the article is the page's, byte for byte.
    page = await sync_to_async(page_article)(post_id=post.pk)
    assert article(updated, post_id=post.pk).replace(' hx-swap-oob="true"', "") == page

    post_id = post.pk
    await sync_to_async(post_delete)(post=post)
    assert (await socket.receive_from()).strip() == f'<article id="post-{post_id}" hx-swap-oob="delete"></article>'


async def test_untrusted_text_is_escaped(connect, liveblog):
    socket = await connected_page(connect)
    await create(liveblog=liveblog, body='<script>alert(1)</script><img src=x onerror="alert(2)">')
    html = await socket.receive_from()
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html


async def test_a_post_the_list_already_shows_is_replaced_not_added_twice(connect, liveblog, monkeypatch):
    # The seq is read before the posts: a post committed in between is in the list,
    # and its "created" event is replayed after it.
    post = await create(liveblog=liveblog, body="in between")
    real_snapshot = consumers.post_snapshot
    monkeypatch.setattr(consumers, "post_snapshot", lambda *, liveblog: (0, real_snapshot(liveblog=liveblog)[1]))
    socket, _ = await connect(URL)
    assert f'id="post-{post.pk}"' in await socket.receive_from()
    replayed = await socket.receive_from()
    assert replayed.strip().startswith(f'<article class="post" id="post-{post.pk}" hx-swap-oob="true"')

    # Live events after the list are not affected.
    later = await create(liveblog=liveblog, body="later")
    assert f'hx-swap-oob="afterbegin"><article class="post" id="post-{later.pk}"' in await socket.receive_from()


async def test_missing_more_than_the_stream_keeps_sends_the_list_again_and_stays_open(connect, liveblog, monkeypatch):
    monkeypatch.setattr(Post, "live_retention", 2)
    socket = await connected_page(connect)
    real_send = streams.group_send_on_commit
    monkeypatch.setattr(streams, "group_send_on_commit", lambda **kwargs: None)
    for body in ["lost one", "lost two", "lost three"]:
        await create(liveblog=liveblog, body=body)
    monkeypatch.setattr(streams, "group_send_on_commit", real_send)
    await create(liveblog=liveblog, body="arrives")

    # Event 1 was pruned: the gap cannot be filled, so the page gets the whole list.
    html = await socket.receive_from()
    assert 'id="posts" hx-swap-oob="true"' in html
    assert [body in html for body in ["lost one", "lost two", "lost three", "arrives"]] == [True] * 4
    after = await create(liveblog=liveblog, body="after")
    assert f'id="post-{after.pk}"' in await socket.receive_from()


async def test_deleting_the_liveblog_shows_it_gone_and_closes_for_good(connect, liveblog):
    socket = await connected_page(connect)
    await sync_to_async(liveblog.delete)()
    html = await socket.receive_from()
    assert '<p class="errorlist" id="liveblog-gone" role="alert" hx-swap-oob="true">' in html
    assert "connection-state" not in html  # the page's extension shows the final close as "Disconnected"
    # 4404, final: the page's extension reconnects after any other code, 1000 included.
    assert await socket.receive_output() == {"type": "websocket.close", "code": 4404}


async def test_each_event_is_rendered_once_for_every_page(connect, liveblog):
    pages = [await connected_page(connect) for _ in range(3)]
    post_fragment.cache_clear()
    await create(liveblog=liveblog, body="To all")
    received = [await page.receive_from() for page in pages]
    assert len(set(received)) == 1
    assert (post_fragment.cache_info().misses, post_fragment.cache_info().hits) == (1, 2)


async def test_the_json_socket_still_sends_json(connect, liveblog):
    socket, _ = await connect("/ws/liveblog/launch/")
    await create(liveblog=liveblog, body="json")
    assert (await socket.receive_json_from())["post"]["html"] == "<p>json</p>"


def test_an_edit_shows_as_edited_from_the_server(liveblog):
    post = post_create(liveblog=liveblog, body="first")
    # Stamped a minute later, as an edit made then would be (updated is auto_now).
    Post.objects.filter(pk=post.pk).update(updated=post.created + timedelta(minutes=1))
    html = post_fragment(text=frame_encode(frame=Post.objects.get(pk=post.pk).live_frame(event="updated", seq=2)))
    assert '<span class="edited"> · edited</span>' in html
    assert '<span class="edited"> · edited</span>' in page_article(post_id=post.pk)
    fresh = post_fragment(text=frame_encode(frame=post.live_frame(event="created", seq=1)))
    assert '<span class="edited" hidden> · edited</span>' in fresh


def test_the_page_loads_htmx_configured_for_the_csp_and_one_extension_of_ours(liveblog):
    html = Client().get("/launch/fragments/").content.decode()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)[1]
    assert json.loads(config) == {"allowEval": False, "includeIndicatorStyles": False, "allowScriptTags": False}
    assert re.findall(r'<script (?:type="module" )?src="([^"]*)"', html) == [
        "/static/frontend/vendor/htmx/htmx.min.js",
        "/static/frontend/vendor/htmx-ext-ws/ws.min.js",
        "/static/frontend/js/htmx-socket-state.js",
    ]
    assert 'id="frontend-socket"' not in html  # the extension imports socket.js by path: no preload
    assert 'hx-ext="ws,socket-state" ws-connect="/ws/liveblog/launch/fragments/"' in html
    assert 'href="/launch/"' in html
    assert 'href="/launch/fragments/"' in Client().get("/launch/").content.decode()  # and the JSON page links here


@pytest.mark.parametrize(
    ("back", "expected"), [("/launch/fragments/", "/launch/fragments/"), ("https://elsewhere.example/", "/launch/")]
)
def test_a_plain_form_post_goes_back_to_its_own_page_of_this_site(liveblog, back, expected):
    client = Client()
    client.force_login(get_user_model().objects.create_user("ed", password="x", is_staff=True))
    response = client.post("/launch/publish/", {"body": "news", "next": back}, HTTP_ACCEPT="text/html")
    assert (response.status_code, response["Location"]) == (302, expected)
