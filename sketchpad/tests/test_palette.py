"""The board page's palette (boards/templates/boards/board.html): a page can only send what it offers,
so everything it offers must be a colour and a width the server accepts as they are."""

import re

import pytest

from boards.wire import frame_parse
from tests.conftest import draw

pytestmark = pytest.mark.django_db

RADIO = re.compile(r'<input type="radio" name="(color|width)" value="([^"]*)" title="([^"]*)"( checked)?>')


def test_every_colour_and_width_of_the_palette_is_one_the_server_accepts_unchanged(client, board):
    radios = RADIO.findall(client.get(f"/{board.slug}/").content.decode())
    colors = [value for group, value, _, _ in radios if group == "color"]
    widths = [int(value) for group, value, _, _ in radios if group == "width"]
    assert len(colors) >= 2 and len(widths) >= 2
    for color in colors:
        assert frame_parse(draw(color=color)).color == color
    for width in widths:
        assert frame_parse(draw(width=width)).width == width
    # One choice of each group is made from the start, and each has a name of its own for screen readers.
    assert sorted(group for group, _, _, checked in radios if checked) == ["color", "width"]
    assert len({title for _, _, title, _ in radios}) == len(radios)
