"""``python -m bench.client``: pin to the client CPU, raise the open-files limit, then answer the
harness's requests in order, one JSON object a line (see bench.client)."""

import asyncio
import json
import logging
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable

from bench.client.chat import op_chat_broadcast, op_chat_presence, op_chat_step, op_chat_typing
from bench.client.drawing import op_flood, op_sketch_step
from bench.client.ops import (
    op_close,
    op_connect,
    op_expect_posts,
    op_expect_wait,
    op_publish,
    op_reconnect,
    op_status,
)
from bench.client.state import ClientState, cpu_seconds, logger

# CPU 0 takes the clients, CPU 1 the servers (see bench.procs).
CLIENT_CPU = 0

OPS: dict[str, Callable[..., Awaitable[dict]]] = {
    "connect": op_connect,
    "close": op_close,
    "reconnect": op_reconnect,
    "expect_posts": op_expect_posts,
    "expect_wait": op_expect_wait,
    "publish": op_publish,
    "chat_presence": op_chat_presence,
    "chat_broadcast": op_chat_broadcast,
    "chat_step": op_chat_step,
    "chat_typing": op_chat_typing,
    "sketch_step": op_sketch_step,
    "flood": op_flood,
    "status": op_status,
}


async def requests_serve() -> None:
    """Read requests from stdin (on a thread: asyncio has no portable async stdin) and answer them in order."""
    loop = asyncio.get_running_loop()
    requests: asyncio.Queue = asyncio.Queue()

    def stdin_read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(requests.put_nowait, line)
        loop.call_soon_threadsafe(requests.put_nowait, None)

    threading.Thread(target=stdin_read, name="stdin", daemon=True).start()
    state = ClientState()
    while (line := await requests.get()) is not None:
        request = json.loads(line)
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        reply: dict = {"id": request.get("id")}
        try:
            reply["result"] = await OPS[request["op"]](state=state, **request.get("args", {}))
            reply["ok"] = True
        except Exception:  # noqa: BLE001 - the harness reports it; the client keeps serving
            reply["ok"] = False
            reply["error"] = traceback.format_exc()
        wall = time.monotonic() - wall_before
        used = cpu_seconds() - cpu_before
        reply["client_cpu"] = {
            "seconds": round(used, 3),
            "wall_s": round(wall, 3),
            "pct": round(100 * used / wall, 1) if wall > 0 else None,
        }
        sys.stdout.write(json.dumps(reply, default=str) + "\n")
        sys.stdout.flush()
    for group in list(state.groups):
        await op_close(state=state, group=group)


def main() -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s client %(levelname)s %(name)s: %(message)s"
    )
    try:
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {CLIENT_CPU})  # before any thread starts, so they all inherit it
    except OSError as error:
        logger.warning("could not pin the client to CPU %d: %s", CLIENT_CPU, error)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(requests_serve())


if __name__ == "__main__":
    main()
