"""The thumbnail worker: rendering, storing, telling the gallery, and coalescing requests."""

import io
import json
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.conf import settings
from django.core.cache import cache
from PIL import Image

from boards.models import Board
from boards.render import strokes_png
from boards.selectors import thumbnail_get
from boards.services import (
    THUMBNAIL_SIZE,
    board_clear,
    stroke_delete,
    stroke_store,
    thumbnail_pending_key,
    thumbnail_refresh,
    thumbnail_render,
    thumbnail_request,
)
from realtime_common.layers import WORKER_LAYER

WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


def image_of(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.convert("RGB")


def test_strokes_are_drawn_where_they_are_in_their_colours_in_order():
    strokes = [
        {"color": "#ff0000", "width": 40, "points": [[0.1, 0.5], [0.9, 0.5]]},
        {"color": "#0000ff", "width": 40, "points": [[0.5, 0.1], [0.5, 0.9]]},
        {"color": "#ff0000", "width": 64, "points": [[0.25, 0.25]]},
    ]
    image = image_of(strokes_png(strokes=strokes, size=(320, 240)))
    assert image.size == (320, 240)
    assert image.getpixel((48, 120)) == RED  # the horizontal line, well inside it
    assert image.getpixel((272, 120)) == RED
    assert image.getpixel((160, 120)) == BLUE  # the later stroke is on top
    assert image.getpixel((160, 36)) == BLUE
    assert image.getpixel((80, 60)) == RED  # a single point is a dot
    for untouched in [(0, 0), (319, 239), (240, 60), (80, 180)]:
        assert image.getpixel(untouched) == WHITE


def test_widths_are_thousandths_of_the_board_width():
    stroke = {"color": "#ff0000", "width": 50, "points": [[0.1, 0.5], [0.9, 0.5]]}
    image = image_of(strokes_png(strokes=[stroke], size=(400, 300)))
    column = [image.getpixel((200, y)) for y in range(300)]
    # 50/1000 of 400 pixels: a line 20 pixels thick, counting the edge pixels it covers half of.
    assert 19 <= sum(green < 128 for _, green, _ in column) <= 21


def test_an_empty_board_is_white():
    image = image_of(strokes_png(strokes=[], size=(320, 240)))
    assert image.getcolors() == [(320 * 240, WHITE)]


@pytest.mark.django_db
def test_rendering_stores_a_new_version_of_the_thumbnail():
    board = Board.objects.create(slug="friday", title="Friday")
    assert thumbnail_get(slug="friday") is None
    stroke_store(board_id=board.pk, author="a", stroke_id="s1", color="#0000ff", width=40, points=[[0, 0.5], [1, 0.5]])
    assert thumbnail_render(board_id=board.pk).thumbnail_version == 1
    png, version = thumbnail_get(slug="friday")
    assert (version, image_of(png).size, image_of(png).getpixel((160, 120))) == (1, THUMBNAIL_SIZE, BLUE)
    assert thumbnail_render(board_id=board.pk).thumbnail_version == 2

    board.delete()
    assert thumbnail_render(board_id=board.pk) is None


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_changes_queues_one_rendering_and_the_worker_shows_it_in_the_gallery(
    board, channel_layer, worker_layer
):
    store = sync_to_async(stroke_store)
    for number in range(5):
        await store(
            board_id=board.pk, author="a", stroke_id=f"s{number}", color="#ff0000", width=8, points=[[0.5, 0.5]]
        )
    assert await worker_layer.receive(settings.THUMBNAIL_CHANNEL) == {"type": "thumbnail.render", "board": board.pk}
    # Nothing else was queued: the next message on the channel is this one.
    await worker_layer.send(settings.THUMBNAIL_CHANNEL, {"type": "marker"})
    assert await worker_layer.receive(settings.THUMBNAIL_CHANNEL) == {"type": "marker"}

    # The worker, as `manage.py runworker thumbnails` runs it, with a gallery listening.
    from config.asgi import application

    gallery = await channel_layer.new_channel()
    await channel_layer.group_add("gallery", gallery)
    worker = ApplicationCommunicator(application, {"type": "channel", "channel": settings.THUMBNAIL_CHANNEL})
    await worker.send_input({"type": "thumbnail.render", "board": board.pk})
    shown = await channel_layer.receive(gallery)
    worker.stop()
    assert json.loads(shown["text"]) == {"type": "thumbnails", "boards": {"friday": "/friday/thumbnail.png?v=1"}}
    png, _ = await sync_to_async(thumbnail_get)(slug="friday")
    assert image_of(png).getpixel((160, 120)) == RED

    # Once the worker has begun, the next change asks again.
    await store(board_id=board.pk, author="a", stroke_id="later", color="#ff0000", width=8, points=[[0.1, 0.1]])
    assert await worker_layer.receive(settings.THUMBNAIL_CHANNEL) == {"type": "thumbnail.render", "board": board.pk}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("channel_layer")
def test_a_deleted_board_is_not_rendered(board):
    board_id = board.pk
    board.delete()
    thumbnail_refresh(board_id=board_id)
    assert cache.get(thumbnail_pending_key(board_id=board_id)) is None
    assert not Board.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_without_a_worker_requests_pile_up_to_a_warning_not_an_error(settings, caplog):
    # The in-memory layer cannot reach a worker in another process; its channel fills up.
    settings.CHANNEL_LAYERS = {
        alias: {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1}}
        for alias in ("default", WORKER_LAYER)
    }
    first, second = (Board.objects.create(slug=slug, title=slug) for slug in ["one", "two"])
    with caplog.at_level(logging.WARNING, logger="boards.services"):
        thumbnail_request(board_id=first.pk)
        thumbnail_request(board_id=second.pk)
    assert "is `manage.py runworker --layer worker thumbnails` running?" in caplog.text
    # The lost request does not hold back the next one.
    assert cache.get(thumbnail_pending_key(board_id=first.pk)) is True
    assert cache.get(thumbnail_pending_key(board_id=second.pk)) is None


@pytest.mark.django_db(transaction=True)
async def test_a_lost_request_is_rendered_at_the_workers_next_tick(board, channel_layer, worker_layer):
    from config.asgi import application

    await sync_to_async(stroke_store)(
        board_id=board.pk, author="a", stroke_id="s1", color="#ff0000", width=8, points=[[0.5, 0.5]]
    )
    # The request is lost: taken off the channel by a worker that died before rendering.
    assert await worker_layer.receive(settings.THUMBNAIL_CHANNEL) == {"type": "thumbnail.render", "board": board.pk}
    gallery = await channel_layer.new_channel()
    await channel_layer.group_add("gallery", gallery)

    worker = ApplicationCommunicator(application, {"type": "channel", "channel": settings.THUMBNAIL_CHANNEL})
    await worker.send_input({"type": "worker.tick"})
    shown = await channel_layer.receive(gallery)
    worker.stop()
    assert json.loads(shown["text"]) == {"type": "thumbnails", "boards": {"friday": "/friday/thumbnail.png?v=1"}}
    board = await sync_to_async(Board.objects.get)(pk=board.pk)
    assert (board.thumbnail_of, board.strokes_version) == (1, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("channel_layer")
def test_catching_up_renders_only_boards_behind_their_strokes_a_batch_at_a_time(monkeypatch):
    from boards import services

    monkeypatch.setattr(services, "THUMBNAIL_CATCH_UP_BATCH", 2)
    boards = [Board.objects.create(slug=f"b{number}", title=f"B{number}") for number in range(4)]
    for board in boards[:3]:
        stroke_store(board_id=board.pk, author="a", stroke_id="s", color="#0000ff", width=8, points=[[0.5, 0.5]])
    thumbnail_render(board_id=boards[0].pk)  # up to date already
    assert services.thumbnails_catch_up() == 2
    assert services.thumbnails_catch_up() == 0
    rendered = dict(Board.objects.values_list("slug", "thumbnail_version"))
    assert rendered == {"b0": 1, "b1": 1, "b2": 1, "b3": 0}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("channel_layer")
def test_every_change_of_the_strokes_moves_the_board_ahead_of_its_thumbnail(board):
    stroke_store(board_id=board.pk, author="a", stroke_id="s1", color="#0000ff", width=8, points=[[0.5, 0.5]])
    thumbnail_render(board_id=board.pk)
    for change in [
        lambda: stroke_store(
            board_id=board.pk, author="a", stroke_id="s2", color="#0000ff", width=8, points=[[0.1, 0.1]]
        ),
        lambda: stroke_delete(board_id=board.pk, author="a", stroke_id="s2"),
        lambda: board_clear(board_id=board.pk),
    ]:
        before = Board.objects.get(pk=board.pk).strokes_version
        change()
        board.refresh_from_db()
        assert board.strokes_version == before + 1 > board.thumbnail_of


def test_runworker_is_the_worker_that_outlives_the_channel_layer():
    from django.core.management import get_commands, load_command_class

    from realtime_common.worker import ResilientWorker

    assert load_command_class(get_commands()["runworker"], "runworker").worker_class is ResilientWorker
