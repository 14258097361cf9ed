"""The JSON on the socket, both ways, in one place: the frames a page receives and
the commands it may send. The protocol is documented in chat/README.md."""

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.core.validators import slug_re

from realtime_common.consumers import ClientError

COMMANDS = ("join", "leave", "send", "typing", "members")
SLUG_MAX_LENGTH = 50
# A members command's ``after`` is a username, or a name between two: Django's usernames are at most 150.
AFTER_MAX_LENGTH = 150
# Longer texts are refused with an error frame, before they reach the database.
TEXT_MAX_LENGTH = 2000
# A seq fits a PositiveBigIntegerField: at most 18 ASCII digits, never int() of more.
# A page is in a few rooms; the rest of a longer list is ignored.
SINCE_ITEMS_MAX = 50
SEQ_LIMIT = 10**18
SINCE_ITEM = re.compile(r"(?P<room>[-a-zA-Z0-9_]{1,50}):(?P<seq>[0-9]{1,18})")
# The page's own id of a message it sends (e.g. a random UUID): a resend with the same id
# stores nothing new. Fits Message.client_id, and any log line, as is.
CLIENT_ID_MAX_LENGTH = 64
CLIENT_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{CLIENT_ID_MAX_LENGTH}}}")


@dataclass(frozen=True)
class Command:
    name: str
    room: str
    since: int | None = None
    text: str = ""
    client_id: str | None = None  # a send's, when the page gave one
    after: str = ""  # a members command's: the names after this one ("": from the first)


def command_parse(content: dict) -> Command:
    """The page's command, checked; ClientError when it is not one."""
    name = content.get("command")
    if not isinstance(name, str) or name not in COMMANDS:
        raise ClientError("unknown_command", f"command must be one of: {', '.join(COMMANDS)}.")
    room = content.get("room")
    if not isinstance(room, str) or len(room) > SLUG_MAX_LENGTH or not slug_re.match(room):
        raise ClientError("invalid_room", "room must be a room's slug: letters, digits, - and _.")
    since = content.get("since") if name == "join" else None
    # bool is an int in Python, but true is no seq.
    if since is not None and (type(since) is not int or not 0 <= since < SEQ_LIMIT):
        raise ClientError("invalid_since", "since must be a seq (an integer, 0 or more).")
    text, client_id = "", None
    if name == "send":
        # Checked before the text: a refusal of the text then names the message it refuses.
        client_id = content.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id)):
            detail = f"client_id must be 1 to {CLIENT_ID_MAX_LENGTH} characters: ASCII letters, digits, - and _."
            raise ClientError("invalid_client_id", detail)
        text = content.get("text")
        text = text.strip() if isinstance(text, str) else ""
        if not 1 <= len(text) <= TEXT_MAX_LENGTH:
            detail = f"text must be 1 to {TEXT_MAX_LENGTH} characters, not counting spaces around it."
            raise ClientError("invalid_text", detail, client_id=client_id)
    after = content.get("after") if name == "members" else None
    if after is None:
        after = ""
    elif not isinstance(after, str) or len(after) > AFTER_MAX_LENGTH:
        raise ClientError("invalid_after", f"after must be a username: a string of at most {AFTER_MAX_LENGTH}.")
    return Command(name=name, room=room, since=since, text=text, client_id=client_id, after=after)


def since_parse(query_string: bytes) -> dict[str, int]:
    """``?since=lobby:12,random:40`` → {"lobby": 12, "random": 40}; malformed items are skipped."""
    values = parse_qs(query_string.decode("latin-1")).get("since", [])
    items = (SINCE_ITEM.fullmatch(item) for value in values for item in value.split(",")[:SINCE_ITEMS_MAX])
    return {match["room"]: int(match["seq"]) for match in items if match}


def message_frame(*, message, seq: int) -> dict:
    return {
        "type": "message",
        "room": message.room.slug,
        "seq": seq,
        "id": message.pk,
        "user": message.user.get_username(),
        "text": message.text,
        "created": message.created.isoformat(),
        # The sender's page matches it to the message it shows as pending; null when it gave none.
        "client_id": message.client_id,
    }


def message_deleted_frame(*, message, seq: int) -> dict:
    return {"type": "message.deleted", "room": message.room.slug, "seq": seq, "id": message.pk}


def joined_frame(*, room, history: list[dict], members: list[str], count: int, more: bool) -> dict:
    """``members``: the first CHAT_MEMBERS_LISTED of the ``count`` in the room, sorted; ``more`` is the history's."""
    return {
        "type": "joined",
        "room": room.slug,
        "title": room.title,
        "history": history,
        "more": more,
        "members": members,
        "count": count,
    }


def left_frame(*, room) -> dict:
    return {"type": "left", "room": room.slug}


def presence_change_frame(*, slug: str, joined: list[str], left: list[str], count: int) -> dict:
    """Who came and who went, and how many are in the room now: the page adds and removes them."""
    return {"type": "presence", "room": slug, "joined": joined, "left": left, "count": count}


def presence_members_frame(*, slug: str, members: list[str], count: int) -> dict:
    """The first page of members, after the page may have missed a change: the page replaces its list."""
    return {"type": "presence", "room": slug, "members": members, "count": count}


def members_frame(*, slug: str, after: str, members: list[str], count: int, more: bool) -> dict:
    """The answer to ``members``: a page of the names after ``after``, and whether more come after them."""
    return {"type": "members", "room": slug, "after": after, "members": members, "count": count, "more": more}


def typing_frame(*, slug: str, users: list[str]) -> dict:
    """Who is typing in the room, the page's own user left out: the page shows it as it is."""
    return {"type": "typing", "room": slug, "users": users}


def room_group(*, room_id: int) -> str:
    return f"room-{room_id}"


def typing_group(*, room_id: int) -> str:
    """The processes with sockets in the room (one listener each, not the sockets): who types (rooms/typing.py)."""
    return f"typing-{room_id}"


def user_group(*, user_id: int) -> str:
    """Every socket of one user, in every tab, browser and process."""
    return f"user-{user_id}"


def session_group(*, session_key: str) -> str:
    """Every socket of one browser's login. Named by a hash of the key, never the key
    itself: the key is a credential, and group names reach Redis and its logs."""
    return f"session-{hashlib.sha256(session_key.encode()).hexdigest()[:32]}"
