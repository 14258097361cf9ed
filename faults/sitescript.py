"""Run inside a site's Django project (cwd: the site's folder, the site's env), as a
writer beside the servers would: a shell, an admin, `manage.py post`.

    python /path/to/faults/sitescript.py

It takes one JSON request a line on stdin, ``{"op": ..., "args": {...}}``, and
answers one JSON line on stdout, ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": ..., "type": ...}``. What Django logs goes to stderr
(the test reads it, e.g. for the one line a failed broadcast logs).
"""

import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402


def op_ping():
    return {"site": settings.SITE_NAME, "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"]}


# -- liveblog ----------------------------------------------------------------------------------


def liveblog(slug):
    from blog.models import Liveblog

    return Liveblog.objects.get(slug=slug)


def op_post(slug, body):
    from blog.services import post_create
    from blog.wire import liveblog_stream
    from realtime_common.streams import stream_seq

    live = liveblog(slug)
    post = post_create(liveblog=live, body=body)
    return {"id": post.pk, "seq": stream_seq(stream=liveblog_stream(liveblog_id=live.pk)), "at": time.time()}


def op_posts(slug, bodies, rate=None):
    """Publish many posts, ``rate`` a second (as fast as possible without); the seq after."""
    from blog.services import post_create
    from blog.wire import liveblog_stream
    from realtime_common.streams import stream_seq

    live = liveblog(slug)
    started = time.monotonic()
    for index, body in enumerate(bodies):
        if rate:
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
        post_create(liveblog=live, body=body.replace("{ts}", repr(time.time())))
    return {"seq": stream_seq(stream=liveblog_stream(liveblog_id=live.pk)), "elapsed": time.monotonic() - started}


def op_liveblog_state(slug, marker=""):
    from blog.models import Post
    from blog.wire import liveblog_stream
    from realtime_common.models import StreamEvent
    from realtime_common.streams import stream_seq

    live = liveblog(slug)
    stream = liveblog_stream(liveblog_id=live.pk)
    return {
        "seq": stream_seq(stream=stream),
        "events": StreamEvent.objects.filter(stream__name=stream).count(),
        "posts": Post.objects.filter(liveblog=live).count(),
        "marked": list(Post.objects.filter(liveblog=live, body__contains=marker).values_list("pk", "body"))
        if marker
        else [],
    }


# -- chat --------------------------------------------------------------------------------------


def op_chat_users(names, rooms=()):
    """Users with a logged-in session each (made as django.contrib.auth.login makes them); their Cookie headers."""
    from importlib import import_module

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from rooms.models import Room

    for slug in rooms:
        Room.objects.get_or_create(slug=slug, defaults={"title": slug})
    store = import_module(settings.SESSION_ENGINE).SessionStore
    User = get_user_model()
    cookies = {}
    for name in names:
        user, _ = User.objects.get_or_create(username=name, defaults={"password": make_password(None)})
        session = store()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        cookies[name] = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
    return cookies


def op_message(room, username, text):
    """A message stored as the admin or a shell would: Message.objects.create."""
    from django.contrib.auth import get_user_model

    from realtime_common.streams import stream_seq
    from rooms.models import Message, Room
    from rooms.wire import room_group

    room_row = Room.objects.get(slug=room)
    message = Message.objects.create(room=room_row, user=get_user_model().objects.get(username=username), text=text)
    return {"id": message.pk, "seq": stream_seq(stream=room_group(room_id=room_row.pk))}


def op_chat_state(room, marker=""):
    from realtime_common.streams import stream_seq
    from rooms.models import Message, Room
    from rooms.wire import room_group

    room_row = Room.objects.get(slug=room)
    return {
        "seq": stream_seq(stream=room_group(room_id=room_row.pk)),
        "messages": Message.objects.filter(room=room_row).count(),
        "marked": list(Message.objects.filter(room=room_row, text__contains=marker).values_list("pk", "text"))
        if marker
        else [],
    }


# -- sketchpad ---------------------------------------------------------------------------------


def op_boards(slugs, strokes=0, points=8):
    """Boards (made again if they exist), each with ``strokes`` stored strokes of ``points`` points,
    stored in one transaction (one change of the board, one thumbnail request)."""
    from django.db import transaction

    from boards.models import Board, Stroke
    from boards.services import board_changed

    made = {}
    for slug in slugs:
        Board.objects.filter(slug=slug).delete()
        with transaction.atomic():
            board = Board.objects.create(slug=slug, title=slug, creator="faults")
            lines = [
                [
                    [round((index + 1) / (points + 1), 4), round(((number * 37) % 100) / 100, 4)]
                    for index in range(points)
                ]
                for number in range(strokes)
            ]
            Stroke.objects.bulk_create(
                Stroke(board=board, author="faults", client_id=f"s{number}", color="#204080", width=8, points=line)
                for number, line in enumerate(lines)
            )
            Board.objects.filter(pk=board.pk).update(strokes_count=strokes, points_count=strokes * points)
            if strokes:
                board_changed(board_id=board.pk)
        made[slug] = board.pk
    return made


def op_render_seconds(slug):
    """How long the worker's rendering of this board takes here."""
    from boards.models import Board
    from boards.render import strokes_png
    from boards.selectors import stroke_list
    from boards.services import THUMBNAIL_SIZE

    board = Board.objects.get(slug=slug)
    started = time.monotonic()
    strokes_png(strokes=stroke_list(board_id=board.pk), size=THUMBNAIL_SIZE)
    return time.monotonic() - started


def op_boards_state(slugs=None):
    from boards.models import Board, Stroke

    boards = Board.objects.all() if slugs is None else Board.objects.filter(slug__in=slugs)
    return {
        board.slug: {
            "strokes_version": board.strokes_version,
            "thumbnail_of": board.thumbnail_of,
            "thumbnail_version": board.thumbnail_version,
            "strokes": Stroke.objects.filter(board=board).count(),
        }
        for board in boards.defer("thumbnail")
    }


def op_thumbnail_refresh(slug):
    """The worker's job, done here: render the board and tell the galleries."""
    from boards.models import Board
    from boards.services import thumbnail_refresh

    thumbnail_refresh(board_id=Board.objects.get(slug=slug).pk)
    return Board.objects.get(slug=slug).thumbnail_version


def op_strokes(slug):
    from boards.models import Stroke

    return list(Stroke.objects.filter(board__slug=slug).values_list("client_id", flat=True))


# -- atomic events -----------------------------------------------------------------------------


def op_writers_without_events(slug, room, username, marker):
    """Every writer of posts and messages, with the event write made to fail (as a full disk or
    a lost connection would); what each raised. Nothing may be left behind."""
    from unittest import mock

    from django.contrib.auth import get_user_model
    from django.db import transaction

    from realtime_common import streams

    live = room_row = existing_post = existing_message = None
    if slug:  # the liveblog
        from blog.models import Post
        from blog.services import post_create, post_delete, post_update

        live = liveblog(slug)
        existing_post = Post.objects.filter(liveblog=live).first()
        original_body = existing_post.body  # post_update sets the instance's body before it saves
    if room:  # the chat
        from rooms.models import Message, Room
        from rooms.services import message_create

        room_row = Room.objects.get(slug=room)
        user = get_user_model().objects.get(username=username)
        existing_message = Message.objects.filter(room=room_row).first()

    def failing_insert(*args, **kwargs):
        raise RuntimeError("fault injected: the event was not stored")

    writers = {}
    if live:
        writers |= {
            "post_create (services, the page's form, manage.py post)": lambda: post_create(
                liveblog=live, body=f"{marker} service"
            ),
            "Post.objects.create (a shell)": lambda: Post.objects.create(
                liveblog=live, body=f"{marker} objects.create"
            ),
            "Post(...).save() (a bare save)": lambda: Post(liveblog=live, body=f"{marker} bare save").save(),
            "post_update (the admin's change form)": lambda: post_update(post=existing_post, body=f"{marker} update"),
            "post_delete (the admin's delete)": lambda: post_delete(post=existing_post),
            "save() inside the caller's atomic()": lambda: atomic_save(Post(liveblog=live, body=f"{marker} atomic")),
        }
    if room_row:
        writers |= {
            "message_create (the chat's socket)": lambda: message_create(
                room=room_row, user=user, text=f"{marker} socket"
            ),
            "Message.objects.create (the admin, a shell)": lambda: Message.objects.create(
                room=room_row, user=user, text=f"{marker} shell"
            ),
            "Message.delete() (the admin)": lambda: existing_message.delete(),
        }

    def atomic_save(instance):
        with transaction.atomic():
            instance.save()

    outcome = {}
    # Every event is stored by stream_events_insert (realtime_common.streams.stream_extend).
    with mock.patch.object(streams, "stream_events_insert", side_effect=failing_insert):
        for name, write in writers.items():
            try:
                write()
                outcome[name] = "no error"
            except Exception as error:  # noqa: BLE001 - reported
                outcome[name] = f"{type(error).__name__}: {error}"
    kept = {}
    if live:
        kept["post_kept"] = Post.objects.filter(pk=existing_post.pk, body=original_body).exists()
    if room_row:
        kept["message_kept"] = Message.objects.filter(pk=existing_message.pk).exists()
    return {"outcome": outcome, **kept}


OPS = {name[3:]: function for name, function in globals().items() if name.startswith("op_")}


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = OPS[request["op"]](**request.get("args", {}))
            reply = {"ok": True, "result": result}
        except Exception as error:  # noqa: BLE001 - reported to the test
            reply = {
                "ok": False,
                "type": type(error).__name__,
                "error": str(error),
                "traceback": traceback.format_exc(),
            }
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
