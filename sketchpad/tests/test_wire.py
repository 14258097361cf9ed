import math

import pytest

from boards.wire import MAX_BATCH_POINTS, Clear, Draw, Undo, frame_parse
from realtime_common.consumers import ClientError
from tests.conftest import draw


def test_a_draw_frame_is_normalised():
    frame = draw(points=[(0, 1), (0.123456, 0.5)], color="#FFaa00", width=64, done=True)
    assert frame_parse(frame) == Draw(stroke="s1", color="#ffaa00", width=64, points=[[0, 1], [0.1235, 0.5]], done=True)


def test_undo_and_clear():
    assert frame_parse({"type": "undo", "stroke": "a-B_9"}) == Undo(stroke="a-B_9")
    assert frame_parse({"type": "clear"}) == Clear()


def test_a_batch_may_have_256_points_or_none():
    assert len(frame_parse(draw(points=[(0.5, 0.5)] * MAX_BATCH_POINTS)).points) == MAX_BATCH_POINTS
    assert frame_parse(draw(points=[], done=True)).points == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"type": "paint"}, "unknown_type"),
        ({"type": None}, "unknown_type"),
        ({"stroke": ""}, "invalid_frame"),
        ({"stroke": "a b"}, "invalid_frame"),
        ({"stroke": "x" * 65}, "invalid_frame"),
        ({"stroke": 7}, "invalid_frame"),
        ({"color": "red"}, "invalid_frame"),
        ({"color": "#ff000"}, "invalid_frame"),
        ({"color": "#ff0000\n"}, "invalid_frame"),
        ({"width": 0}, "invalid_frame"),
        ({"width": 65}, "invalid_frame"),
        ({"width": 4.5}, "invalid_frame"),
        ({"width": "4"}, "invalid_frame"),
        ({"width": True}, "invalid_frame"),
        ({"done": "yes"}, "invalid_frame"),
        ({"done": None}, "invalid_frame"),
        ({"points": "0.5,0.5"}, "invalid_frame"),
        ({"points": [[0.5]]}, "invalid_frame"),
        ({"points": [[0.5, 0.5, 0.5]]}, "invalid_frame"),
        ({"points": [["0.5", 0.5]]}, "invalid_frame"),
        ({"points": [[True, 0.5]]}, "invalid_frame"),
        ({"points": [[math.nan, 0.5]]}, "invalid_frame"),
        ({"points": [[math.inf, 0.5]]}, "invalid_frame"),
        ({"points": [{"x": 0.5, "y": 0.5}]}, "invalid_frame"),
        ({"points": [[-0.01, 0.5]]}, "out_of_bounds"),
        ({"points": [[0.5, 1.01]]}, "out_of_bounds"),
        ({"points": [[10**400, 0.5]]}, "out_of_bounds"),
        ({"points": [[0.5, 0.5]] * (MAX_BATCH_POINTS + 1)}, "too_many_points"),
    ],
)
def test_bad_frames_are_refused_with_a_code(changes, code):
    with pytest.raises(ClientError) as refused:
        frame_parse({**draw(), **changes})
    assert refused.value.code == code
    assert refused.value.detail


@pytest.mark.parametrize("missing", ["stroke", "color", "width", "points", "done"])
def test_every_draw_field_is_required(missing):
    frame = draw()
    del frame[missing]
    with pytest.raises(ClientError, match=missing):
        frame_parse(frame)
