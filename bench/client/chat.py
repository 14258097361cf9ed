"""The chat's loads: presence after a join, leave or close; one message to a room; rooms at a steady send rate;
some of a room typing."""

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter

from websockets.exceptions import ConnectionClosed

from bench import wire
from bench.client.ops import op_expect_wait
from bench.client.state import (
    ClientState,
    Expectation,
    PresenceWatch,
    TypingWatch,
    conn_close,
    cpu_seconds,
    errors_sum,
)


async def op_chat_presence(
    *, state: ClientState, actor_group: str, action: str, room: str, watch_group: str, wait: float
) -> dict:
    """The first socket of ``actor_group`` joins, leaves or closes; wait until every socket of
    ``watch_group`` in the room was sent the resulting presence (the actor in, or out)."""
    actor = state.groups[actor_group][0]
    watchers = {conn for conn in state.groups.get(watch_group, []) if conn.close_code is None}
    watch = PresenceWatch(
        username=actor.user,
        present=action == "join",
        room=room,
        pending=set(watchers),
        watched=len(watchers),
        started=time.time(),
    )
    state.presence = watch
    if not watch.pending:
        watch.done.set()  # nobody to tell
    answer_wait = None
    if action == "join":
        actor.ready = asyncio.get_running_loop().create_future()
        answer_wait = actor.ready
        await actor.ws.send(json.dumps({"command": "join", "room": room}))
    elif action == "leave":
        await actor.ws.send(json.dumps({"command": "leave", "room": room}))
    elif action == "close":
        await conn_close(conn=actor)
        state.groups[actor_group].remove(actor)
    else:
        raise ValueError(f"unknown action {action!r}")
    with contextlib.suppress(TimeoutError):  # bounded: who was not told by then is counted
        await asyncio.wait_for(watch.done.wait(), wait)
    answered_at = None
    if answer_wait is not None:
        with contextlib.suppress(TimeoutError, ConnectionError):
            answered_at = await asyncio.wait_for(asyncio.shield(answer_wait), 1.0)
    state.presence = None
    seen = watch.watched - len(watch.pending)
    return {
        "action": action,
        "watched": watch.watched,
        "told": seen,
        "complete": not watch.pending,
        "presence_frames": watch.frames,
        "time_to_last_ms": round((watch.last_at - watch.started) * 1000, 3)
        if watch.last_at and not watch.pending
        else None,
        "actor_answer_ms": round((answered_at - watch.started) * 1000, 3) if answered_at else None,
        "started_at": watch.started,
    }


async def op_chat_broadcast(*, state: ClientState, group: str, room: str, wait: float) -> dict:
    """One message from the first socket of the group; every socket of the room (the sender's too) should get it."""
    members = {conn for conn in state.groups.get(group, []) if conn.room == room and conn.close_code is None}
    if not members:
        return {**Expectation().report(), "complete": False, "sender_errors": {}, "buckets": {}, "span_s": None}
    sender = min(members, key=lambda conn: conn.index)
    state.expect = Expectation(expected=len(members), members=members)
    state.expect.seal()
    text = wire.chat_text(step=0, number=0, ts=time.time())
    await sender.ws.send(json.dumps({"command": "send", "room": room, "text": text}))
    result = await op_expect_wait(state=state, wait=wait)
    result["sender_errors"] = dict(sender.errors)
    return result


async def op_chat_step(
    *,
    state: ClientState,
    groups: list[str],
    step: int,
    rate: float,
    seconds: float,
    drain: float,
    mode: str,
    window_seconds: float = 10.0,
    window_cap: int = 8,
) -> dict:
    """Send ``rate`` messages a second for ``seconds`` from the sockets of ``groups`` in turn,
    each to its own room; every socket of that room should receive it.

    ``mode`` "site" speaks the chat protocol and keeps each user under the chat's rate limit
    (``window_cap`` of its ``window_seconds`` windows, with a margin for messages that cross a
    window's edge); "bare" sends relay requests to the bare baseline, which has no limit.
    """
    senders = [conn for group in groups for conn in state.groups.get(group, []) if conn.close_code is None]
    if not senders:
        raise RuntimeError(f"no open socket in {groups} to send from")
    room_size = Counter(conn.room for conn in senders)
    errors_before = errors_sum(conns=senders)
    expect = Expectation(members=set(senders))
    state.expect = expect
    turn = itertools.cycle(senders)
    sent = skipped = 0
    cpu_before = cpu_seconds()
    started, started_at = time.monotonic(), time.time()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) + 1 - sent - skipped
        for _ in range(due):
            window = int(time.time() // window_seconds)
            for _ in range(len(senders)):
                conn = next(turn)
                if mode == "bare" or conn.window_sends.get(window, 0) < window_cap:
                    break
            else:
                skipped += 1  # every user is at its limit in this window
                continue
            conn.window_sends[window] = conn.window_sends.get(window, 0) + 1
            text = wire.chat_text(step=step, number=sent, ts=time.time())
            if mode == "bare":
                frame = wire.chat_message_like(room=conn.room, number=sent, user=conn.user or "", text=text)
                payload = wire.relay_request(room=conn.room, frame=frame)
            else:
                payload = json.dumps({"command": "send", "room": conn.room, "text": text})
            expect.expected += room_size[conn.room]
            sent += 1
            try:
                await conn.ws.send(payload)
            except ConnectionClosed:
                expect.expected -= room_size[conn.room]
        next_due = started + (sent + skipped) / rate
        await asyncio.sleep(max(0.0, min(next_due - time.monotonic(), 0.01)))
    send_seconds = time.monotonic() - started
    send_cpu = cpu_seconds() - cpu_before
    expect.seal()
    complete = await expect.wait(timeout=drain)
    report = expect.report()
    state.expect = None
    span = (expect.last_at - started_at) if expect.last_at else None
    return {
        **report,
        "complete": complete,
        "rate": rate,
        "sent": sent,
        "skipped_rate_limit": skipped,
        "send_seconds": round(send_seconds, 3),
        "achieved_rate": round(sent / send_seconds, 1) if send_seconds else None,
        "deliveries_per_s": round(expect.delivered / span, 1) if span else None,
        "client_cpu_pct_sending": round(100 * send_cpu / send_seconds, 1) if send_seconds else None,
        "error_codes": dict(errors_sum(conns=senders) - errors_before),
    }


async def op_chat_typing(
    *, state: ClientState, group: str, room: str, action: str, wait: float, typists: int = 0, interval: float = 2.0
) -> dict:
    """``start``: the last ``typists`` sockets of the group in the room type, as pages do (a ``typing``
    now and every ``interval`` s after, in the background); wait until every other socket was sent
    the list of them all. ``stop``: they stop; wait until every other socket's list is empty (the
    server's TTL). Both answer how many were told and when the last was, the typing frames received
    since the action, and (``stop``) the times of every ``typing`` sent and frame received."""
    if action == "start":
        conns = [conn for conn in state.groups.get(group, []) if conn.room == room and conn.close_code is None]
        typing, watchers = conns[len(conns) - typists :], conns[: len(conns) - typists]
        watch = state.typing = TypingWatch(room=room, watchers=set(watchers))
        frame = json.dumps({"command": "typing", "room": room})

        async def typing_keep() -> None:
            while True:
                for conn in typing:
                    with contextlib.suppress(ConnectionClosed):
                        await conn.ws.send(frame)
                        watch.sent.append(time.time())
                await asyncio.sleep(interval)

        want = frozenset(conn.user for conn in typing)
    elif action == "stop":
        watch = state.typing
        watch.task.cancel()
        want = frozenset()
    else:
        raise ValueError(f"unknown action {action!r}")
    watch.aim(users=want)
    frames_before, started = len(watch.frames), time.time()
    if action == "start":
        watch.task = asyncio.create_task(typing_keep())
    with contextlib.suppress(TimeoutError):  # bounded: who was not told by then is counted
        await asyncio.wait_for(watch.done.wait(), wait)
    answer = {
        "action": action,
        "watched": len(watch.watchers),
        "told": len(watch.matching),
        "complete": watch.done.is_set(),
        "time_to_last_ms": round((watch.last_at - started) * 1000, 3)
        if watch.done.is_set() and watch.last_at
        else None,
        "frames": len(watch.frames) - frames_before,
    }
    if action == "stop":
        answer |= {"sent_at": watch.sent, "frames_at": watch.frames}
        state.typing = None
    return answer
