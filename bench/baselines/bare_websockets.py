"""Baseline (a): a bare ``websockets`` broadcast server, one process, one thread: Python's floor.

``python -m bench.baselines.bare_websockets --port PORT``. Uncompressed, like daphne's sockets,
and pinging every 20 s like daphne, so idle costs compare too.
"""

import argparse
import asyncio
import logging
import resource
from collections import defaultdict
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

from bench.baselines import relay_parse, room_of

ROOMS: dict[str, set[ServerConnection]] = defaultdict(set)


def health_answer(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/health/":
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def connection_handle(connection: ServerConnection) -> None:
    room = room_of(path=connection.request.path)
    members = ROOMS[room]
    members.add(connection)
    try:
        async for text in connection:
            target, frame = relay_parse(text=text, default_room=room)
            broadcast(ROOMS.get(target, ()), frame)
    finally:
        members.discard(connection)


async def main(*, port: int) -> None:
    async with serve(
        connection_handle,
        "127.0.0.1",
        port,
        compression=None,
        process_request=health_answer,
        ping_interval=20,
        ping_timeout=30,
        max_size=65536,
        backlog=1024,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    logging.basicConfig(level=logging.WARNING)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(port=parser.parse_args().port))
