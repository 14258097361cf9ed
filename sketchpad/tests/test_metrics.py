"""The sketchpad's own metrics (boards/metrics.py): strokes stored and cursor frames
relayed, through the board socket on both layers; thumbnails rendered, by the worker's job."""

import pytest
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from boards.services import thumbnail_render
from tests.conftest import draw

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

BOARD = "/ws/sketchpad/friday/"


def value(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"site": "sketchpad"}) or 0.0


async def test_a_stored_stroke_and_a_relayed_cursor_are_counted(connect, board):
    stored, relayed = value("sketchpad_strokes_stored_total"), value("sketchpad_cursor_frames_relayed_total")
    pages = []
    for _ in range(2):
        page, connected = await connect(BOARD)
        assert connected and (await page.receive_json_from())["type"] == "snapshot"
        pages.append(page)
    alice, bob = pages
    await alice.send_json_to(draw(done=True))
    assert (await bob.receive_json_from())["type"] == "draw"
    await alice.send_json_to({"type": "cursor", "x": 0.5, "y": 0.5})
    assert (await bob.receive_json_from())["type"] == "cursor"
    # Counted once per frame, however many pages it reaches.
    assert value("sketchpad_strokes_stored_total") - stored == 1
    assert value("sketchpad_cursor_frames_relayed_total") - relayed == 1


async def test_a_thumbnail_rendered_is_counted_with_its_time(board):
    rendered, timed = value("sketchpad_thumbnails_rendered_total"), value("sketchpad_thumbnail_render_seconds_count")
    assert await sync_to_async(thumbnail_render)(board_id=board.pk) is not None
    assert await sync_to_async(thumbnail_render)(board_id=board.pk + 1000) is None  # gone: nothing rendered
    assert value("sketchpad_thumbnails_rendered_total") - rendered == 1
    assert value("sketchpad_thumbnail_render_seconds_count") - timed == 1
