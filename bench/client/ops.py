"""Generic operations: open, close and reopen sockets, wait for post frames, publish through a
baseline server, report the client's state."""

import asyncio
import os
import time
from typing import Any

from websockets.asyncio.client import connect

from bench import wire
from bench.client.state import ClientState, Conn, Expectation, Opening, conn_close, conn_renew, cpu_seconds, url_check
from bench.stats import summary


async def op_connect(*, state: ClientState, group: str, conns: list[dict], **opening: Any) -> dict:
    """Open sockets described by ``conns`` (url, origin, cookie, user, room) into ``group``;
    ``opening``: how, any fields of Opening."""
    members = state.groups.setdefault(group, [])
    base = len(members)
    new = [Conn(index=base + number, group=group, **spec) for number, spec in enumerate(conns)]
    result = await state.conns_open(conns=new, opening=Opening(**opening))
    members.extend(result.pop("_opened"))
    result["group_size"] = len(members)
    return result


async def op_close(*, state: ClientState, group: str) -> dict:
    conns = state.groups.pop(group, [])
    started = time.monotonic()
    await asyncio.gather(*(conn_close(conn=conn) for conn in conns))
    return {"closed": len(conns), "elapsed_s": round(time.monotonic() - started, 3)}


async def op_reconnect(*, state: ClientState, group: str, concurrency: int = 200, **opening: Any) -> dict:
    """Close every socket of the group at once, then open them all again, as after a deploy;
    ``opening``: how, any fields of Opening but ``send_join`` (a reconnect never joins again)."""
    conns = state.groups.get(group, [])
    closing_at = time.time()
    await asyncio.gather(*(conn_close(conn=conn) for conn in conns))
    closed_at = time.time()
    fresh = [conn_renew(conn=conn) for conn in conns]
    result = await state.conns_open(conns=fresh, opening=Opening(send_join=False, concurrency=concurrency, **opening))
    state.groups[group] = result.pop("_opened")
    result.update(closing_at=closing_at, closed_at=closed_at, ready_at=time.time(), closed=len(conns))
    return result


async def op_expect_posts(*, state: ClientState, groups: list[str], posts: int) -> dict:
    """From now on, every socket of ``groups`` should receive ``posts`` post frames."""
    members = {conn for group in groups for conn in state.groups.get(group, [])}
    state.expect = Expectation(expected=len(members) * posts, members=members)
    state.expect.seal()
    return {"sockets": len(members), "expected": state.expect.expected}


async def op_expect_wait(*, state: ClientState, wait: float) -> dict:
    """Wait (bounded) for what the current expectation expects; its report, per bucket too."""
    expect = state.expect
    if expect is None:
        raise RuntimeError("nothing is expected: call an expect_* op first")
    complete = await expect.wait(timeout=wait)
    result = expect.report()
    result["complete"] = complete
    result["buckets"] = {
        bucket: {**summary(values=values), "delivered": len(values)}
        for bucket, values in sorted(expect.latencies.items(), key=bucket_order)
    }
    result["span_s"] = round(expect.last_at - expect.first_at, 3) if expect.first_at and expect.last_at else None
    state.expect = None
    return result


def bucket_order(item: tuple[str, list]) -> tuple:
    bucket = item[0]
    return (0, int(bucket), "") if bucket.isdigit() else (1, 0, bucket)


async def op_publish(*, state: ClientState, url: str, room: str, count: int, rate: float) -> dict:
    """Publish ``count`` post frames through a baseline server's publisher socket, ``rate`` a second."""
    url_check(url=url)
    async with connect(url, compression=None, proxy=None, ping_interval=None, open_timeout=10) as publisher:
        started = time.monotonic()
        for index in range(count):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            frame = wire.post_frame_like(index=index, ts=time.time(), seq=index + 1)
            await publisher.send(wire.relay_request(room=room, frame=frame))
        elapsed = time.monotonic() - started
    return {"published": count, "elapsed_s": round(elapsed, 3)}


async def op_status(*, state: ClientState) -> dict:
    return {
        "pid": os.getpid(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "groups": {name: len(conns) for name, conns in state.groups.items()},
        "open": sum(1 for conns in state.groups.values() for conn in conns if conn.close_code is None),
        "frame_types": dict(state.frame_types),
        "error_codes": dict(state.error_codes),
        "unmatched": dict(state.unmatched),
        "cpu_seconds": round(cpu_seconds(), 3),
    }
