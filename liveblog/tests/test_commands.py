import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from blog.models import Liveblog, Post
from realtime_common.models import StreamEvent

pytestmark = pytest.mark.django_db


def test_post_publishes_and_records_the_event():
    liveblog = Liveblog.objects.create(slug="launch", title="Launch")
    call_command("post", "launch", "From the command line")
    post = Post.objects.get()
    assert post.body == "From the command line"
    assert StreamEvent.objects.get(stream__name=f"liveblog-{liveblog.pk}").frame["post"]["id"] == post.pk


@pytest.mark.parametrize(("slug", "text", "message"), [("nope", "hi", "No liveblog"), ("launch", "  ", "empty")])
def test_post_refuses_bad_arguments(slug, text, message):
    Liveblog.objects.create(slug="launch", title="Launch")
    with pytest.raises(CommandError, match=message):
        call_command("post", slug, text)
    assert not Post.objects.exists()


def test_seed_is_idempotent_and_creates_the_editor_only_in_debug(settings):
    settings.DEBUG = False
    call_command("seed")
    call_command("seed")
    assert Liveblog.objects.count() == 2
    assert Post.objects.count() == 4
    assert not get_user_model().objects.exists()

    settings.DEBUG = True
    call_command("seed")
    assert get_user_model().objects.get(username="editor").is_staff
