"""A board deleted in the admin while a page undoes a stroke or clears it: the delete
locks the board's row before its cascade deletes the strokes, as every change to a
board's strokes does, so the two queue up instead of deadlocking (on Postgres; on
SQLite they queue on its one write lock)."""

import threading

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from boards.models import Board, Stroke
from boards.services import board_clear, board_lock, stroke_delete, stroke_store
from realtime_common.testing.databases import WRITERS_TIMEOUT
from realtime_common.testing.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CHANGES = {
    "undo": lambda board_id: stroke_delete(board_id=board_id, author="alice", stroke_id="s0"),
    "clear": lambda board_id: board_clear(board_id=board_id),
}


def board_admin() -> admin.ModelAdmin:
    return admin.site.get_model_admin(Board)


def strokes_add(*, board_id: int, count: int) -> None:
    for n in range(count):
        stroke_store(
            board_id=board_id, author="alice", stroke_id=f"s{n}", color="#000000", width=4, points=[[0.5, 0.5]] * 3
        )


def lock_waiter_wait() -> None:
    """Until another connection waits for a lock (Postgres shows it in pg_locks). SQLite's
    writers wait on its one write lock, which shows nothing: there, nothing to wait for."""
    if connection.vendor != "postgresql":
        return

    def waiting() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted)")
            return cursor.fetchone()[0]

    wait_until(waiting, timeout=WRITERS_TIMEOUT, what="the admin's delete waiting for a lock")


@pytest.mark.parametrize("change", CHANGES)
def test_board_deleted_in_the_admin_while_an_undo_or_clear_holds_it(concurrent_writers, board, rf, change):
    strokes_add(board_id=board.pk, count=3)
    held = threading.Event()

    def change_run():
        # The page's change has the board first (the undo's and clear's first step), and
        # goes on once the delete waits: the order in which they deadlocked.
        with transaction.atomic():
            board_lock(board_id=board.pk)
            held.set()
            lock_waiter_wait()
            return CHANGES[change](board.pk)

    def delete_run():
        assert held.wait(timeout=WRITERS_TIMEOUT)
        board_admin().delete_model(rf.post("/admin/"), board)

    concurrent_writers(change_run, delete_run)
    assert not Board.objects.filter(pk=board.pk).exists()
    assert not Stroke.objects.filter(board_id=board.pk).exists()


def board_lock_statement(*, board_id: int) -> str:
    """The SQL that board_lock runs."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        board_lock(board_id=board_id)
    return next(query["sql"] for query in queries.captured_queries if '"boards_board"' in query["sql"])


@pytest.mark.parametrize("how", ["delete_model", "delete_queryset"])
def test_the_admin_delete_locks_the_board_before_its_strokes(board, rf, how):
    strokes_add(board_id=board.pk, count=2)
    lock = board_lock_statement(board_id=board.pk)
    # SQLite locks the whole database instead: Django leaves FOR UPDATE out there.
    assert lock.endswith("FOR UPDATE") == connection.features.has_select_for_update
    model_admin = board_admin()
    with CaptureQueriesContext(connection) as queries:
        if how == "delete_model":
            model_admin.delete_model(rf.post("/admin/"), board)
        else:
            model_admin.delete_queryset(rf.post("/admin/"), Board.objects.filter(pk=board.pk))
    statements = [query["sql"] for query in queries.captured_queries]
    strokes_first = next(index for index, statement in enumerate(statements) if '"boards_stroke"' in statement)
    assert lock in statements[:strokes_first], statements
    assert not Board.objects.filter(pk=board.pk).exists()
    assert not Stroke.objects.filter(board_id=board.pk).exists()
