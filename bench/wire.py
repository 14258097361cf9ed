"""The frames the load client sends and recognises, for the sites and the baselines alike.

Incoming frames are classified with regular expressions on the raw text rather than
``json.loads``: at tens of thousands of frames a second on one core, parsing every frame
would make the client, not the server, the bottleneck.
"""

import json
import re
import time
from datetime import UTC, datetime

# The frame "type" of a server frame. Searched in the head only: the type comes first
# in every frame the sites send, and the body can be large (presence lists).
FRAME_TYPE = re.compile(r'"type":\s*"([^"]+)"')
ERROR_CODE = re.compile(r'"code":\s*"([^"]+)"')
ROOM = re.compile(r'"room":\s*"([^"]+)"')
# A liveblog post's body as the publisher writes it; the frame carries it escaped in post.html.
POST_MARK = re.compile(r"bench-post:(\d+) bench-ts:(\d+\.\d+)")
# A chat message's text as the load client writes it.
CHAT_MARK = re.compile(r"bench-tag:s(\d+)m(\d+) bench-ts:(\d+\.\d+)")
# A draw frame: its stroke id and the x of its first point, which carries the batch number.
DRAW_STROKE = re.compile(r'"stroke":\s*"([^"]+)"')
DRAW_FIRST_X = re.compile(r'"points":\s*\[\s*\[\s*([-0-9.eE+]+)')
# A cursor frame's position; null when the cursor is gone.
CURSOR_XY = re.compile(r'"x":\s*([-0-9.eE+]+|null),\s*"y":\s*([-0-9.eE+]+|null)')

# Filler that brings a liveblog post frame to about 300 bytes, like a short real post.
POST_FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore."
# The first point's x of a draw batch is batch / BATCH_SCALE: four decimals survive the server's rounding.
BATCH_SCALE = 10_000
DRAW_COLOR = "#1f6feb"
DRAW_WIDTH = 6


# The liveblog fragments page's HTML frames (liveblog/README.md, "The two liveblog pages"), each known by its
# start and named as the JSON frame it stands for; the list sent on connect is its "snapshot".
FRAGMENT = re.compile(r"\s*<")
FRAGMENT_TYPES = (
    (re.compile(r'\s*<div id="posts" hx-swap-oob="afterbegin">'), "post.created"),
    (re.compile(r'\s*<article class="post" id="post-\d+" hx-swap-oob="true"'), "post.updated"),
    (re.compile(r'\s*<article id="post-\d+" hx-swap-oob="delete"'), "post.deleted"),
    (re.compile(r'\s*<section class="posts" id="posts" hx-swap-oob="true"'), "snapshot"),
)


def frame_type(*, text: str) -> str:
    if FRAGMENT.match(text):
        return next((kind for start, kind in FRAGMENT_TYPES if start.match(text)), "?")
    match = FRAME_TYPE.search(text, 0, 200) or FRAME_TYPE.search(text)
    return match[1] if match else "?"


def post_body(*, index: int, ts: float) -> str:
    """A liveblog post body carrying its index and its publication time."""
    return f"bench-post:{index} bench-ts:{ts:.6f} {POST_FILLER}"


def post_frame_like(*, index: int, ts: float, seq: int) -> dict:
    """The frame a liveblog page receives for a new post, for the baselines to broadcast."""
    now = datetime.fromtimestamp(ts, tz=UTC).isoformat()
    return {
        "type": "post.created",
        "liveblog": "bench",
        "seq": seq,
        "post": {"id": seq, "html": f"<p>{post_body(index=index, ts=ts)}</p>", "created": now, "updated": now},
    }


def chat_text(*, step: int, number: int, ts: float) -> str:
    return f"bench-tag:s{step}m{number} bench-ts:{ts:.6f}"


def chat_message_like(*, room: str, number: int, user: str, text: str) -> dict:
    """The chat's message frame, for the bare baseline to relay."""
    return {
        "type": "message",
        "room": room,
        "id": number,
        "user": user,
        "text": text,
        "created": datetime.now(tz=UTC).isoformat(),
    }


def relay_request(*, room: str, frame: dict) -> str:
    """What a baseline server receives: relay ``frame`` to every socket of ``room``."""
    return json.dumps({"room": room, "frame": frame})


def draw_frame(*, stroke: str, batch: int, done: bool, points: int = 4) -> str:
    """A valid draw batch whose first point encodes its batch number in the stroke."""
    x0 = batch / BATCH_SCALE
    wobble = (time.monotonic_ns() // 1000 % 1000) / 2000  # anywhere in the board, 0..0.5
    coordinates = [[x0, 0.5]] + [
        [round(0.2 + wobble + step / 100, 4), round(0.3 + step / 50, 4)] for step in range(1, points)
    ]
    return json.dumps(
        {
            "type": "draw",
            "stroke": stroke,
            "color": DRAW_COLOR,
            "width": DRAW_WIDTH,
            "points": coordinates,
            "done": done,
        }
    )


def draw_key(*, text: str) -> tuple[str, int] | None:
    """(stroke id, batch number) of a draw frame the server relayed, or None."""
    stroke = DRAW_STROKE.search(text)
    first_x = DRAW_FIRST_X.search(text)
    if not stroke or not first_x:
        return None
    return stroke[1], round(float(first_x[1]) * BATCH_SCALE)


def cursor_frame(*, mover: int, sequence: int) -> str:
    """A cursor frame whose position tells its mover (y) and its place in the mover's sequence (x):
    both at most BATCH_SCALE, whose four decimals survive the server's rounding."""
    return json.dumps({"type": "cursor", "x": sequence / BATCH_SCALE, "y": mover / BATCH_SCALE})


def cursor_key(*, text: str) -> tuple[int, int] | None:
    """(mover, sequence number) of a cursor frame the server relayed; None for a removal."""
    match = CURSOR_XY.search(text)
    if not match or "null" in match.group(0):
        return None
    return round(float(match[2]) * BATCH_SCALE), round(float(match[1]) * BATCH_SCALE)
