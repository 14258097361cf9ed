import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from blog.models import Post
from blog.services import post_create

pytestmark = pytest.mark.django_db

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_user("ed", password="x", is_staff=True))
    return client


def test_index_lists_liveblogs(client, liveblog):
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/launch/"' in response.content
    assert b"Launch &lt;day&gt;" in response.content


def test_page_shows_posts_newest_first_escaped_with_the_seq_to_resume_from(client, liveblog):
    post_create(liveblog=liveblog, body="first")
    post_create(liveblog=liveblog, body=XSS)
    response = client.get("/launch/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-seq="2"' in html
    assert 'data-socket-url="/ws/liveblog/launch/"' in html
    assert html.index("&lt;script&gt;alert(2)&lt;/script&gt;") < html.index("<p>first</p>")
    assert "<script>alert(2)" not in html and "<img src=x" not in html


def test_page_of_unknown_liveblog_is_404(client):
    assert client.get("/nope/").status_code == 404


def test_publish_form_only_for_staff(client, liveblog):
    assert 'id="publish"' not in client.get("/launch/").content.decode()
    client.force_login(get_user_model().objects.create_user("ed", password="x", is_staff=True))
    assert 'id="publish"' in client.get("/launch/").content.decode()


def test_snapshot_is_the_list_and_its_seq(client, liveblog):
    older = post_create(liveblog=liveblog, body="older")
    newer = post_create(liveblog=liveblog, body="newer <b>")
    snapshot = client.get("/launch/posts/").json()
    assert snapshot["seq"] == 2
    assert [post["id"] for post in snapshot["posts"]] == [newer.pk, older.pk]
    assert snapshot["posts"][0]["html"] == "<p>newer &lt;b&gt;</p>"


def test_anonymous_cannot_publish(client, liveblog):
    response = client.post("/launch/publish/", {"body": "spam"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    # The page's fetch is told, rather than redirected to a login page it would take for success.
    response = client.post("/launch/publish/", {"body": "spam"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json() == {"errors": {"session": ["Your session expired: log in again."]}}
    assert not Post.objects.exists()


def test_staff_publishes_with_fetch(staff_client, liveblog):
    response = staff_client.post("/launch/publish/", {"body": "  news  "}, HTTP_ACCEPT="application/json")
    assert response.status_code == 201
    assert Post.objects.get(pk=response.json()["id"]).body == "news"


def test_staff_publishes_with_a_plain_form(staff_client, liveblog):
    response = staff_client.post("/launch/publish/", {"body": "news"}, HTTP_ACCEPT="text/html")
    assert (response.status_code, response["Location"]) == (302, "/launch/")


@pytest.mark.parametrize("body", ["", "   ", "x" * 10_001])
def test_invalid_post_is_refused_and_nothing_stored(staff_client, liveblog, body):
    response = staff_client.post("/launch/publish/", {"body": body}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "body" in json.loads(response.content)["errors"]
    assert not Post.objects.exists()


def test_publish_needs_csrf(liveblog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_user("ed", password="x", is_staff=True))
    assert client.post("/launch/publish/", {"body": "forged"}).status_code == 403


def test_a_post_longer_than_10000_characters_is_refused(staff_client, liveblog):
    response = staff_client.post("/launch/publish/", {"body": "x" * 10_001}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and "body" in response.json()["errors"]
    assert not Post.objects.exists()


def test_the_largest_post_frame_stays_under_256_kib(liveblog):
    from blog.services import post_create
    from blog.wire import post_frame
    from realtime_common.consumers import frame_encode

    # Every character a link or an escaped one, the worst the rendering can do.
    body = " ".join(["https://e.x/\\"] * 768) + "<" * (10_000 - 768 * 13)
    post = post_create(liveblog=liveblog, body=body[:10_000])
    assert len(frame_encode(frame=post_frame(post=post, event="created", seq=1)).encode()) < 256 * 1024
