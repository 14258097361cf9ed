import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boards.wire import MAX_BATCH_POINTS, Clear, Cursor, Draw, Undo, frame_parse
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


def test_a_cursor_frame_is_normalised_and_null_means_gone():
    assert frame_parse({"type": "cursor", "x": 0.123456, "y": 1}) == Cursor(x=0.1235, y=1)
    assert frame_parse({"type": "cursor", "x": 0, "y": 0.99996}) == Cursor(x=0, y=1.0)
    assert frame_parse({"type": "cursor", "x": None, "y": None, "extra": [1]}) == Cursor(x=None, y=None)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (-0.01, 0.5),
        (0.5, 1.01),
        (10**400, 0.5),
        (math.nan, 0.5),
        (0.5, math.inf),
        (True, 0.5),
        (0.5, False),
        ("0.5", 0.5),
        (None, 0.5),
        (0.5, None),
        ([0.5], 0.5),
        ({"x": 0.5}, 0.5),
    ],
)
def test_a_cursor_off_the_board_or_not_a_pair_of_numbers_is_out_of_bounds(x, y):
    with pytest.raises(ClientError) as refused:
        frame_parse({"type": "cursor", "x": x, "y": y})
    assert refused.value.code == "out_of_bounds"


@pytest.mark.parametrize("frame", [{"type": "cursor", "x": 0.5}, {"type": "cursor", "y": 0.5}, {"type": "cursor"}])
def test_a_cursor_frame_without_x_or_y_is_invalid(frame):
    with pytest.raises(ClientError) as refused:
        frame_parse(frame)
    assert refused.value.code == "invalid_frame"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda children: st.lists(children, max_size=2) | st.dictionaries(st.text(max_size=2), children, max_size=2),
    max_leaves=4,
)


@given(x=json_values | st.floats(min_value=0, max_value=1), y=json_values | st.floats(min_value=0, max_value=1))
def test_any_cursor_frame_is_a_point_on_the_board_gone_or_refused(x, y):
    """The README's rule, written again: x and y both null, or both numbers (not booleans, not
    NaN or infinite) from 0 to 1, kept to four decimals; anything else is out_of_bounds."""
    on_board = [type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 1 for value in (x, y)]
    try:
        parsed = frame_parse({"type": "cursor", "x": x, "y": y})
    except ClientError as refused:
        assert refused.code == "out_of_bounds"
        assert not all(on_board) and (x, y) != (None, None)
    else:
        assert parsed == (Cursor(x=None, y=None) if x is None else Cursor(x=round(x, 4), y=round(y, 4)))
        assert all(on_board) or (x, y) == (None, None)
