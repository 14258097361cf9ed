"""The floors the sites are measured against, speaking one tiny protocol:

- a socket at ``/ws/<room>/`` is in that room (``/pub/`` is in none: a publisher);
- a text frame ``{"room": <room>, "frame": {...}}`` from any socket sends ``frame`` (serialised
  once) to every socket of that room, the sender's included if it is in it;
- ``GET /health/`` answers 200.
"""

import json


def room_of(*, path: str) -> str:
    """``/ws/lobby/`` → ``lobby``; anything else (``/pub/``) is in no room anyone listens to."""
    parts = [part for part in path.split("?", maxsplit=1)[0].split("/") if part]
    return parts[1] if len(parts) >= 2 and parts[0] == "ws" else "_publishers"


def relay_parse(*, text: str, default_room: str) -> tuple[str, str]:
    """(room, the frame to send as text) of a relay request."""
    request = json.loads(text)
    return request.get("room", default_room), json.dumps(request["frame"])
