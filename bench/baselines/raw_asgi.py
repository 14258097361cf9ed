"""Baseline (b): an ASGI application without Channels, served by daphne, that broadcasts
in-process: what daphne itself costs, without the channel layer, consumers or Django.

``python -m daphne -b 127.0.0.1 -p PORT bench.baselines.raw_asgi:application``
"""

from collections import defaultdict

from bench.baselines import relay_parse, room_of

ROOMS: dict[str, set] = defaultdict(set)


async def application(scope, receive, send) -> None:
    if scope["type"] == "http":
        await http_answer(receive=receive, send=send)
    elif scope["type"] == "websocket":
        await websocket_serve(scope=scope, receive=receive, send=send)


async def http_answer(*, receive, send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok\n"})


async def websocket_serve(*, scope, receive, send) -> None:
    room = room_of(path=scope["path"])
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    members = ROOMS[room]
    members.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text") is not None:
                target, frame = relay_parse(text=message["text"], default_room=room)
                outgoing = {"type": "websocket.send", "text": frame}
                for member in list(ROOMS.get(target, ())):
                    try:
                        await member(outgoing)
                    except Exception:  # noqa: BLE001, S112 - a socket closing meanwhile must not stop the broadcast
                        continue
    finally:
        members.discard(send)
