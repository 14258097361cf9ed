"""Live cursors: where the other pages' pointers are on a board, and whose they are.

**Never stored.** A cursor frame is relayed to the board's other pages, encoded
once for all of them (``relay_message``), and forgotten: no database, no
snapshot. A page that joins sees each cursor when it next moves. What is kept is
per socket (``CursorSender``): whether the others show its cursor, when it last
moved, and its place among the board's cursors.

**A cursor looks like its author, and is its socket's.** Every page shows it
with a name and a colour derived from the author id its strokes carry
(``author_badge``), the same in every process, and tells it apart by a random id
per socket: two tabs of one browser are one author and two cursors.

**At most CURSORS_PER_BOARD per board, over every process.** Before its first
move is relayed a cursor takes one of the board's numbered places in the cache
(Redis when REDIS_URL is set, shared by every process) with ``cache.add``, so
two pages never get the same one. It keeps it only while its page sends
positions, and gives it back when its socket closes or ``CURSOR_IDLE_SECONDS``
after its last position: nothing else holds it, not ``x: null`` (a pointer that
left the board keeps it that long, so moving in and out costs no new claim),
so idle sockets cannot hold a board's places. A cursor that finds no
free place is not relayed; it tries again at most once every
CLAIM_RETRY_SECONDS. A place is leased for PLACE_LEASE_IDLE_LIMITS idle limits
and renewed every half one while the cursor moves: the places of a process that
died (SIGKILL) come free by themselves within 20 s. While the cache is away, a
cursor frame that needs it (a claim, a renewal) is dropped without a word to
its page, and the outage is logged once.

**Idle cursors are ended by their own process.** One task per process (per
running event loop) looks at the cursors of that process that hold a place,
SWEEPS_PER_IDLE_LIMIT times per idle limit, and sends each idle one's consumer
``cursor.idle``; the consumer checks again (it may have moved meanwhile), tells
the others (x and y null) and frees the place. There is no timer per socket,
and the task runs only while a cursor of the process holds a place.

**Rate.** Pages send at most 20 cursor frames a second; past CURSOR_RATE a
second (bursts of CURSOR_BURST) they are dropped without a word, as the next one
carries the position anyway; removals count too, or alternating them with moves
would double what a page gets relayed. They count towards the socket's frame
rate too.
"""

import hashlib
import logging
import math
import random
import secrets
import time
from typing import NamedTuple

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from realtime_common.layers import REDIS_DOWN, error_text
from realtime_common.loops import Rounds, loop_local
from realtime_common.outages import OutageLog
from realtime_common.throttle import TokenBucket

from .wire import Cursor, cursor_frame

logger = logging.getLogger(__name__)

CURSORS_PER_BOARD = 50
# Above the page's 20 a second, so that frames bunched up by the network still pass.
CURSOR_RATE, CURSOR_BURST = 25, 25
# A cursor refused for want of a free place claims again no sooner than this (seconds):
# a claim reads all of the board's places, a round trip to Redis.
CLAIM_RETRY_SECONDS = 1.0
# A cursor's id, per socket: 6 random bytes, 8 characters; unique among a board's 50 cursors.
CURSOR_ID_BYTES = 6
PLACE_LEASE_IDLE_LIMITS = 2
# Idle cursors are taken off at most a tenth of the limit late.
SWEEPS_PER_IDLE_LIMIT = 10

# Colours that read well on the white board, each with the name it lends to the pseudonym.
COLORS = (
    ("Red", "#cf222e"),
    ("Orange", "#bc4c00"),
    ("Gold", "#9a6700"),
    ("Green", "#1a7f37"),
    ("Teal", "#0f766e"),
    ("Blue", "#0969da"),
    ("Navy", "#0a3069"),
    ("Violet", "#6639ba"),
    ("Purple", "#8250df"),
    ("Pink", "#bf3989"),
    ("Brown", "#7c4a1e"),
    ("Grey", "#59636e"),
)
ANIMALS = (
    "Fox",
    "Owl",
    "Otter",
    "Heron",
    "Lynx",
    "Hare",
    "Wren",
    "Seal",
    "Badger",
    "Crane",
    "Moth",
    "Newt",
    "Robin",
    "Bison",
    "Koala",
    "Panda",
)


class Badge(NamedTuple):
    name: str
    color: str


def author_badge(*, author: str) -> Badge:
    """The name and colour of the author's cursor: a digest of the author id, so the
    same in every process (Python's hash() differs between them), and telling no
    more than the id itself, which is public."""
    digest = hashlib.blake2b(author.encode(), digest_size=2).digest()
    color_name, color = COLORS[digest[0] % len(COLORS)]
    return Badge(name=f"{color_name} {ANIMALS[digest[1] % len(ANIMALS)]}", color=color)


def place_key(*, board_id: int, number: int) -> str:
    return f"cursor-place-{board_id}-{number}"


def place_lease() -> int:
    # Whole seconds: Redis leases are; and never 0, which would store nothing.
    return math.ceil(PLACE_LEASE_IDLE_LIMITS * settings.CURSOR_IDLE_SECONDS)


def place_claim(*, board_id: int, holder: str) -> str | None:
    """The key of a free place among the board's cursors, now the holder's; None when all are taken."""
    keys = [place_key(board_id=board_id, number=number) for number in range(CURSORS_PER_BOARD)]
    taken = cache.get_many(keys)
    free = [key for key in keys if key not in taken]
    # Pages claiming at the same moment mostly try different places, and lose fewer races.
    random.shuffle(free)
    return next((key for key in free if cache.add(key, holder, timeout=place_lease())), None)


# Cursor frames that needed the cache while it was away were dropped, without a word to their page.
PLACE_HOLDS = OutageLog(
    logger=logger,
    failing="cursors: could not claim or renew a place (%s); cursors are not relayed meanwhile",
    working="cursors: places are claimed again ({failures} cursor frames were dropped)",
)

PLACE_RELEASES = OutageLog(
    logger=logger,
    failing="cursors: could not free a place (%s); its lease ends by itself",
    working="cursors: places are freed again ({failures} were left to their leases)",
)


def place_release(*, key: str, holder: str) -> None:
    try:
        # Only its own: a lease that ran out (a stalled consumer) may be another cursor's place by now.
        if cache.get(key) == holder:
            cache.delete(key)
    except REDIS_DOWN as error:
        # The socket is closing, or its cursor idle: nothing to refuse, and the lease ends anyway.
        PLACE_RELEASES.failed(error_text(error))
    else:
        PLACE_RELEASES.worked()


class CursorSender:
    """One socket's cursor: which of its page's cursor frames the other pages get."""

    def __init__(self, *, board_id: int, author: str, channel_name: str):
        self.board_id, self.author, self.channel_name = board_id, author, channel_name
        self.badge = author_badge(author=author)
        # What the other pages tell this socket's cursor by: an author's tabs are one author, but two
        # cursors. Random, not the channel name, which names the socket to the channel layer.
        self.id = secrets.token_urlsafe(CURSOR_ID_BYTES)
        self.bucket = TokenBucket(rate=CURSOR_RATE, burst=CURSOR_BURST)
        self.place: str | None = None  # the cache key of its place among the board's cursors
        self.shown = False  # the other pages show it
        # time.monotonic() of its last move (a position: not a removal), of its place's last renewal, and of
        # the earliest next claim after a refusal. Read by the sweeper, on the event loop.
        self.moved_at = self.renewed_at = self.claim_after = 0.0

    def move(self, cursor: Cursor) -> dict | None:
        """The frame the other pages get for this cursor frame, if any."""
        # Every cursor frame counts, a removal too: pages send at most 20 a second, so only a
        # page over the rate loses one, and a cursor whose removal was dropped goes once idle.
        if not self.bucket.take():
            return None
        if cursor.x is None:
            if not self.shown:
                return None
            # Not a move: a pointer that left the board keeps its place only until it is idle.
            self.shown = False
            return self.frame(x=None, y=None)
        now = time.monotonic()
        self.moved_at = now
        if not self.place_hold(now=now):
            return None
        self.shown = True
        return self.frame(x=cursor.x, y=cursor.y)

    def place_hold(self, *, now: float) -> bool:
        """Claims a place among the board's cursors, or renews its own; False: none is free, or
        the cache is away (the frame is dropped without a word: the next one tries again)."""
        if self.place is not None and now - self.renewed_at < settings.CURSOR_IDLE_SECONDS / 2:
            return True  # renewed lately: no round trip
        if self.place is None and now < self.claim_after:
            return False
        try:
            held = self.place_renew(now=now) if self.place is not None else self.place_new(now=now)
        except REDIS_DOWN as error:
            PLACE_HOLDS.failed(error_text(error))
            return False
        PLACE_HOLDS.worked()
        return held

    def place_new(self, *, now: float) -> bool:
        # Set first, so that a claim that fails (the cache away) is not tried again at every frame.
        self.claim_after = now + CLAIM_RETRY_SECONDS
        self.place = place_claim(board_id=self.board_id, holder=self.channel_name)
        if self.place is None:
            return False
        self.renewed_at = now
        async_to_sync(sweeper_watch)(cursor=self)
        return True

    def place_renew(self, *, now: float) -> bool:
        self.renewed_at = now  # first, as claim_after: a renewal that fails waits for the next one
        holder = cache.get(self.place)
        if holder == self.channel_name:
            cache.touch(self.place, timeout=place_lease())
        elif holder is not None or not cache.add(self.place, self.channel_name, timeout=place_lease()):
            # Its lease ran out (a stalled consumer) and another cursor holds the place now: the cap
            # holds, so this one claims a free place like a new cursor. (After a Redis restart, add
            # takes its place again.)
            self.place = None
            async_to_sync(sweeper_forget)(cursor=self)
            return self.place_new(now=now) if now >= self.claim_after else False
        # Watched again: a sweeper that took its consumer for gone (it stayed idle past its
        # lease, unanswered) forgot it, and would never take it off the others once idle.
        async_to_sync(sweeper_watch)(cursor=self)
        return True

    def is_idle(self, *, now: float) -> bool:
        return self.place is not None and now - self.moved_at >= settings.CURSOR_IDLE_SECONDS

    def idle_end(self) -> dict | None:
        """The sweeper found the cursor idle: unless it moved since, it ends (see ``release``)."""
        return self.release() if self.is_idle(now=time.monotonic()) else None

    def release(self) -> dict | None:
        """Gives its place back (idle, or the socket closed); the frame that takes it off the others, if shown."""
        frame = self.frame(x=None, y=None) if self.shown else None
        self.shown = False
        if self.place is not None:
            key, self.place = self.place, None
            async_to_sync(sweeper_forget)(cursor=self)
            place_release(key=key, holder=self.channel_name)
        return frame

    def frame(self, *, x: float | None, y: float | None) -> dict:
        return cursor_frame(
            cursor_id=self.id, author=self.author, name=self.badge.name, color=self.badge.color, x=x, y=y
        )


class CursorSweeper(Rounds):
    """This process's cursors that hold a place, in memory, while they hold it; and the
    task that finds the idle ones, SWEEPS_PER_IDLE_LIMIT times per idle limit, while
    there are any (``Rounds``). Used on the event loop only (``sweeper_watch``, ``sweeper_forget``)."""

    def __init__(self):
        self.cursors: set[CursorSender] = set()
        super().__init__(
            name="cursors",
            members=self.cursors,
            period=lambda: settings.CURSOR_IDLE_SECONDS / SWEEPS_PER_IDLE_LIMIT,
            round=self.sweep,
        )
        self.outages = OutageLog(
            logger=logger,
            failing="cursors: could not tell an idle cursor's consumer (%s); retrying every sweep",
            working="cursors: idle cursors are told again",
        )

    def watch(self, cursor: CursorSender) -> None:
        self.cursors.add(cursor)
        self.rounds_start()

    def forget(self, cursor: CursorSender) -> None:
        self.cursors.discard(cursor)
        if not self.cursors:
            self.rounds_wake()  # the task ends now, not a sweep later

    async def sweep(self) -> None:
        now = time.monotonic()
        for cursor in [cursor for cursor in self.cursors if cursor.is_idle(now=now)]:
            if now - cursor.moved_at > place_lease():
                # Its consumer never answered (it ended without disconnect()), and its place has
                # expired meanwhile: telling it again would only fill a dead channel.
                self.cursors.discard(cursor)
            else:
                await self.idle_tell(cursor=cursor)

    async def idle_tell(self, *, cursor: CursorSender) -> None:
        # To the consumer, which alone changes its cursor: it may have moved since this sweep began.
        try:
            await get_channel_layer().send(cursor.channel_name, {"type": "cursor.idle"})
        except (ChannelFull, *REDIS_DOWN) as error:
            self.outages.failed(error_text(error))  # the cursor stays watched: the next sweep tries again
        else:
            self.outages.worked()


sweeper_get = loop_local(CursorSweeper)


async def sweeper_watch(*, cursor: CursorSender) -> None:
    """Async, though it awaits nothing: a sync consumer calls it through ``async_to_sync``, which
    runs it on the event loop, whose own sweeper (``loop_local``) and task it reaches only there."""
    sweeper_get().watch(cursor)


async def sweeper_forget(*, cursor: CursorSender) -> None:
    sweeper_get().forget(cursor)
