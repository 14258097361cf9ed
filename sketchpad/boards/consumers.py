from asgiref.sync import async_to_sync
from django.db import OperationalError

from realtime_common.broadcast import group_send_logged
from realtime_common.consumers import ClientError, SafeJsonWebsocketConsumer, relay_message
from realtime_common.metrics import site_inc
from realtime_common.worker import WorkerConsumer

from .cursors import CursorSender, sweeper_forget
from .drawing import Drawing
from .metrics import CURSOR_FRAMES_RELAYED
from .selectors import author_get, board_get, board_has_room, stroke_exists, stroke_list, thumbnail_urls
from .services import (
    BoardFull,
    author_new,
    board_clear,
    stroke_delete,
    stroke_store,
    thumbnail_refresh,
    thumbnails_catch_up,
)
from .wire import (
    BOARD_MAX_POINTS,
    BOARD_MAX_STROKES,
    CLEAR_FRAME,
    GALLERY_GROUP,
    Clear,
    Cursor,
    Draw,
    Undo,
    board_group,
    draw_frame,
    erase_frame,
    frame_parse,
    snapshot_frame,
    thumbnails_frame,
)

BOARD_FULL = f"The board is full: at most {BOARD_MAX_STROKES} strokes and {BOARD_MAX_POINTS} points."


class BoardConsumer(SafeJsonWebsocketConsumer):
    """One page's connection to one board: its strokes in, everyone else's out, live.

    Sync on purpose: every handler runs in the one thread Django's ORM uses, so it calls
    the ORM as a view does. What belongs to the event loop (the channel layer, the cursor
    sweeper's task) it reaches through ``async_to_sync``, which runs the call on the loop."""

    # A page sends a draw batch every 30 ms per finger or pen, and up to 20 cursor frames a
    # second (53 a second in all while one pointer draws); this leaves room for several.
    frame_rate, frame_burst = 100, 200

    def connect(self):
        board = board_get(slug=self.scope["url_route"]["kwargs"]["slug"])
        if board is None:
            self.close()  # before accept(), this refuses the handshake
            return
        self.board_id = board.pk
        self.group = board_group(board_id=board.pk)
        # A socket without the board page's session (a script) draws under a name of its own.
        self.author = author_get(session=self.scope.get("session")) or author_new()
        user = self.scope.get("user")
        self.may_clear = self.author == board.creator or bool(user and user.is_staff)
        self.drawing = Drawing()
        self.cursor = CursorSender(board_id=board.pk, author=self.author, channel_name=self.channel_name)
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()
        # Group messages wait until connect() returns, so nothing arrives before the snapshot.
        self.send_json(snapshot_frame(strokes=stroke_list(board_id=self.board_id), you=self.author))

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A consumer that crashed or was cancelled never ran disconnect(): its cursor leaves the sweeper.
            if hasattr(self, "cursor"):
                await sweeper_forget(cursor=self.cursor)

    def disconnect(self, code):
        if not hasattr(self, "group"):
            return
        # First: the group_discard below fails while Redis is away, and the cursor must go anyway.
        self.cursor_relay(self.cursor.release())
        async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)
        # A stroke its author never finished is not stored: take it off the other screens.
        for stroke_id in self.drawing.abandon():
            self.broadcast(erase_frame(stroke_id=stroke_id, author=self.author))

    def receive_json(self, content, **kwargs):
        match frame_parse(content):
            case Draw() as draw:
                self.on_draw(draw)
            case Undo(stroke=stroke_id):
                self.on_undo(stroke_id)
            case Clear():
                self.on_clear()
            case Cursor() as cursor:
                self.cursor_relay(self.cursor.move(cursor))

    def on_draw(self, draw: Draw):
        if draw.stroke not in self.drawing:
            if stroke_exists(board_id=self.board_id, author=self.author, stroke_id=draw.stroke):
                raise ClientError("duplicate_stroke", "You have a stroke with this id already: use a new one.")
            if not board_has_room(board_id=self.board_id):
                raise ClientError("board_full", BOARD_FULL)
        stroke = self.drawing.add(draw)
        if draw.done:
            self.drawing.finish(draw.stroke)
            try:
                stored = stroke_store(
                    board_id=self.board_id,
                    author=self.author,
                    stroke_id=draw.stroke,
                    color=stroke.color,
                    width=stroke.width,
                    points=stroke.points,
                )
            except BoardFull:
                self.broadcast(erase_frame(stroke_id=draw.stroke, author=self.author))
                raise ClientError("board_full", f"{BOARD_FULL} The stroke was erased.") from None
            except OperationalError:
                # The database is locked past its timeout: nothing was stored. Take the stroke
                # off every screen; the sender gets "busy" (realtime_common.consumers).
                self.broadcast(erase_frame(stroke_id=draw.stroke, author=self.author))
                raise
            if stored is None:
                self.broadcast(erase_frame(stroke_id=draw.stroke, author=self.author))
                raise ClientError("not_stored", "The stroke could not be stored, so it was erased.")
        self.broadcast(draw_frame(draw=draw, author=self.author), skip=self.channel_name)

    def on_clear(self):
        if not self.may_clear:
            raise ClientError("not_your_board", "Only the board's creator and staff may clear it.")
        board_clear(board_id=self.board_id)
        self.broadcast(CLEAR_FRAME)

    def on_undo(self, stroke_id: str):
        if not stroke_delete(board_id=self.board_id, author=self.author, stroke_id=stroke_id):
            raise ClientError("not_your_stroke", "You can only undo your own finished strokes.")
        self.broadcast(erase_frame(stroke_id=stroke_id, author=self.author))

    def cursor_idle(self, message):
        """This process's cursor sweeper found the page's cursor idle (boards/cursors.py)."""
        self.cursor_relay(self.cursor.idle_end())

    def cursor_relay(self, frame: dict | None):
        """To every other page: its cursor is never stored, nor sent back to it."""
        if frame is not None:
            site_inc(CURSOR_FRAMES_RELAYED)
            self.broadcast(frame, skip=self.channel_name)

    def broadcast(self, frame: dict, *, skip: str | None = None):
        """Send the frame to every page on the board, except the channel ``skip``.

        What it tells is stored already (or, mid-stroke, need not be): while Redis
        is away the failure is logged once, and the pages get a new snapshot when
        it is back (layer_reconnected)."""
        async_to_sync(group_send_logged)(group=self.group, message=relay_message(frame=frame, skip=skip))

    def layer_reconnected(self, message):
        # Strokes finished, undone or cleared while Redis was away never reached this page.
        self.send_json(snapshot_frame(strokes=stroke_list(board_id=self.board_id), you=self.author))


class GalleryConsumer(SafeJsonWebsocketConsumer):
    """The gallery page's socket: each board's latest thumbnail, as the worker renders it."""

    groups = [GALLERY_GROUP]
    read_only_detail = "This socket only sends."

    def connect(self):
        self.accept()
        # Everything, so a page that reconnects has not missed a rendering.
        self.send_json(thumbnails_frame(boards=thumbnail_urls()))

    def layer_reconnected(self, message):
        # Renderings announced while Redis was away never reached this page.
        self.send_json(thumbnails_frame(boards=thumbnail_urls()))


class ThumbnailConsumer(WorkerConsumer):
    """Runs in `manage.py runworker --layer worker thumbnails`: renders boards for the gallery."""

    def thumbnail_render(self, message):
        thumbnail_refresh(board_id=message["board"])

    def worker_tick(self, message):
        thumbnails_catch_up()
