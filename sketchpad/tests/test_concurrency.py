"""Writers at once, each on a connection of its own (``concurrent_writers``: on Postgres,
where SQLite's single writer no longer queues them): a board's caps and counts hold
whatever strokes end, are undone and are cleared at the same moment."""

from functools import partial

import pytest

from boards import services
from boards.models import Board, Stroke
from boards.services import BoardFull, board_clear, stroke_delete, stroke_store

pytestmark = pytest.mark.django_db(transaction=True)


def stroke_end(*, board_id: int, stroke_id: str, author: str = "alice") -> str:
    """Store a finished stroke as the consumer does; what came of it."""
    try:
        stored = stroke_store(
            board_id=board_id, author=author, stroke_id=stroke_id, color="#000000", width=4, points=[[0.5, 0.5]] * 3
        )
    except BoardFull:
        return "full"
    return "stored" if stored else "refused"


def counts_check(*, board_id: int) -> tuple[int, int]:
    """The board's counts, checked against its strokes: (strokes, points)."""
    board = Board.objects.get(pk=board_id)
    strokes = list(Stroke.objects.filter(board_id=board_id).values_list("points", flat=True))
    assert (board.strokes_count, board.points_count) == (len(strokes), sum(len(points) for points in strokes))
    return board.strokes_count, board.points_count


def test_strokes_ending_at_once_on_a_nearly_full_board_take_its_last_places_and_no_more(
    concurrent_writers, board, monkeypatch
):
    monkeypatch.setattr(services, "BOARD_MAX_STROKES", 5)
    outcomes = concurrent_writers(*(partial(stroke_end, board_id=board.pk, stroke_id=f"s{n}") for n in range(8)))
    assert sorted(outcomes) == ["full"] * 3 + ["stored"] * 5
    assert counts_check(board_id=board.pk) == (5, 15)


def test_the_same_undo_from_two_tabs_at_once_counts_the_stroke_out_once(concurrent_writers, board):
    for stroke_id in ["kept", "undone"]:
        assert stroke_end(board_id=board.pk, stroke_id=stroke_id) == "stored"
    undo = partial(stroke_delete, board_id=board.pk, author="alice", stroke_id="undone")
    assert sorted(concurrent_writers(*[undo] * 4)) == [False, False, False, True]
    assert counts_check(board_id=board.pk) == (1, 3)


def test_strokes_ending_while_the_board_is_cleared_stay_counted(concurrent_writers, board):
    for n in range(3):
        stroke_end(board_id=board.pk, stroke_id=f"old{n}")
    ends = [partial(stroke_end, board_id=board.pk, stroke_id=f"new{n}") for n in range(6)]
    concurrent_writers(partial(board_clear, board_id=board.pk), *ends)
    counts_check(board_id=board.pk)
