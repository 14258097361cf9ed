"""The sketchpad's loads: drawers at a page's pace with watchers, and a flooder (on a board or a
liveblog socket) whose every frame must be relayed, refused out loud, or followed by a final close."""

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed

from bench import wire
from bench.client.state import (
    ClientState,
    Conn,
    CursorTally,
    Expectation,
    Opening,
    SentDraw,
    conn_abort,
    conn_close,
    cpu_seconds,
    errors_sum,
    failure_reason,
    url_check,
)
from bench.stats import summary


async def op_sketch_step(
    *,
    state: ClientState,
    boards: list[dict],
    tag: str,
    seconds: float,
    interval: float,
    frames_per_stroke: int,
    drain: float,
    movers: str | None = None,
    cursor_rate: float = 20.0,
) -> dict:
    """Every drawer of every board sends a draw batch each ``interval`` seconds for ``seconds``;
    every watcher and every other drawer of the board should receive each batch. Meanwhile every
    socket of the group ``movers``, if given, on the first board, moves its cursor ``cursor_rate``
    times a second (``cursors_move``): the report's "cursors".

    ``boards``: [{"name", "drawers": group, "watchers": group}]. A batch is known by its stroke
    id and the batch number encoded in its first point; its send time is looked up here, so
    relay latency is measured on one clock (perf_counter) in one process.
    """
    expect = Expectation()
    state.expect = expect
    state.draws.clear()
    for conn in (
        conn for board in boards for name in ("drawers", "watchers") for conn in state.groups.get(board[name], [])
    ):
        conn.errors.clear()
    receivers_by_board = {}
    drawer_tasks = []
    started = time.monotonic()
    stop_at = started + seconds
    counts = Counter()

    async def drawer_run(*, conn: Conn, board: str, receivers: int, number: int) -> None:
        stroke_number, batch = 0, 0
        next_at = time.monotonic()
        while True:
            finishing = time.monotonic() >= stop_at
            batch += 1
            done = finishing or batch >= frames_per_stroke
            stroke = f"{tag}d{number}s{stroke_number}"
            text = wire.draw_frame(stroke=stroke, batch=batch, done=done)
            state.draws[(stroke, batch)] = SentDraw(sent_at=time.perf_counter(), sender=conn, board=board)
            expect.expected += receivers
            try:
                await conn.ws.send(text)
            except ConnectionClosed:
                expect.expected -= receivers
                counts["send_failed"] += 1
                return
            counts["sent"] += 1
            if finishing:
                return
            if done:
                stroke_number, batch = stroke_number + 1, 0
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # On the first board: they receive its batches too.
    mover_conns = [conn for conn in state.groups.get(movers, []) if conn.close_code is None] if movers else []
    number = itertools.count()
    for index, board in enumerate(boards):
        drawers = [conn for conn in state.groups.get(board["drawers"], []) if conn.close_code is None]
        watchers = [conn for conn in state.groups.get(board["watchers"], []) if conn.close_code is None]
        receivers = len(watchers) + len(drawers) - 1 + (len(mover_conns) if index == 0 else 0)
        receivers_by_board[board["name"]] = {"drawers": len(drawers), "watchers": len(watchers)}
        for conn in drawers:
            drawer_tasks.append(
                asyncio.create_task(
                    drawer_run(conn=conn, board=board["name"], receivers=receivers, number=next(number))
                )
            )
    moving = None
    if mover_conns:
        # Each cursor frame reaches the first board's drawers and watchers, and the other movers.
        receivers = sum(receivers_by_board[boards[0]["name"]].values()) + len(mover_conns) - 1
        moving = asyncio.create_task(
            cursors_move(state=state, conns=mover_conns, receivers=receivers, rate=cursor_rate, stop_at=stop_at)
        )
    cpu_before = cpu_seconds()
    await asyncio.gather(*drawer_tasks, *([moving] if moving else []))
    send_seconds = time.monotonic() - started
    expect.seal()
    complete = await expect.wait(timeout=drain)
    cursors = None
    if moving is not None:
        settled = await cursors_settle(tally=state.cursors, timeout=drain)
        errors = errors_sum(conns=mover_conns)
        cursors = {**state.cursors.report(), "complete": settled, "error_codes": dict(errors)}
        state.cursors = None
    cpu_used = cpu_seconds() - cpu_before
    report = expect.report()
    state.expect = None
    report["complete"] = complete
    report["loss_pct"] = round(100.0 - report["delivery_pct"], 3) if report["delivery_pct"] is not None else None
    report["boards"] = {
        name: {**receivers_by_board[name], **summary(values=values)} for name, values in expect.latencies.items()
    }
    report["sent"] = counts["sent"]
    report["send_failed"] = counts["send_failed"]
    report["send_seconds"] = round(send_seconds, 3)
    report["batches_per_s_per_drawer"] = round(counts["sent"] / send_seconds / max(1, len(drawer_tasks)), 2)
    report["echoes"] = state.echoes
    report["cursors"] = cursors
    report["client_cpu_pct"] = round(100 * cpu_used / (time.monotonic() - started), 1)
    report["error_codes"] = dict(
        errors_sum(conns=[conn for board in boards for conn in state.groups.get(board["drawers"], [])])
    )
    state.echoes = 0
    return report


# Each mover's number, in the y of its cursor frames: never the same twice in one client.
MOVER_NUMBERS = itertools.count(1)


async def cursors_move(*, state: ClientState, conns: list[Conn], receivers: int, rate: float, stop_at: float) -> None:
    """Each socket of ``conns`` moves its cursor ``rate`` times a second until ``stop_at``, as a page
    does; each frame should reach ``receivers`` sockets. Counted in ``state.cursors``."""
    tally = state.cursors = CursorTally(receivers=receivers)

    async def move(conn: Conn, mover: int) -> None:
        next_at = time.monotonic()
        for sequence in range(1, wire.BATCH_SCALE + 1):
            if time.monotonic() >= stop_at:
                return
            tally.sent[(mover, sequence)] = (time.perf_counter(), conn)
            try:
                await conn.ws.send(wire.cursor_frame(mover=mover, sequence=sequence))
            except ConnectionClosed:
                del tally.sent[(mover, sequence)]
                return
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(move(conn, next(MOVER_NUMBERS)) for conn in conns))


async def cursors_settle(*, tally: CursorTally, timeout: float) -> bool:
    """Until every copy of every cursor frame arrived (True), or ``timeout`` seconds passed."""
    stop_at = time.monotonic() + timeout
    while tally.delivered < tally.expected():
        if time.monotonic() >= stop_at:
            return False
        await asyncio.sleep(0.05)
    return True


async def op_flood(
    *,
    state: ClientState,
    url: str,
    origin: str,
    kind: str,
    receiver_group: str,
    seconds: float,
    reconnect: bool,
    drain: float,
) -> dict:
    """Send valid frames on one socket as fast as the socket takes them, for ``seconds``.

    ``kind`` "sketchpad": draw batches, each known to the receiver by (stroke, batch); the server
    relays some and refuses the rest with ``rate_limited``, then closes with 4429 (a flooder
    that ``reconnect``s comes back with a fresh socket). "liveblog": any frame, which the server
    answers with ``read_only`` (and, if it limits the rate, ``rate_limited`` and 4429 too).
    Counted: what was sent, what the receiver got, what the sender was told, so that a frame
    dropped without a word shows up.
    """
    url_check(url=url)
    receivers = set(state.groups.get(receiver_group, []))
    expect = Expectation(members=receivers)
    state.expect = expect
    state.draws.clear()
    connections = []
    started = time.monotonic()
    stop_at = started + seconds
    attempt = 0
    while time.monotonic() < stop_at:
        conn = Conn(index=attempt, group="flood", url=url, origin=origin)
        record = {
            "sent": 0,
            "sent_keys": [],
            "close_code": None,
            "errors": Counter(),
            "open_failed": None,
            "answers_trailed_s": None,
            "answers_wait": None,
        }
        connections.append((conn, record))
        try:
            opening = Opening(ready="snapshot" if kind == "sketchpad" else "open", open_timeout=10, ready_timeout=10)
            await state.conn_open(conn=conn, opening=opening)
        except Exception as error:  # noqa: BLE001 - counted, and the flood goes on
            record["open_failed"] = failure_reason(error=error, conn=conn)
            await conn_abort(conn=conn)
            await asyncio.sleep(0.1)
            attempt += 1
            continue
        stroke_number, batch = 0, 0
        try:
            while time.monotonic() < stop_at:
                if kind == "sketchpad":
                    batch += 1
                    done = batch >= 100
                    stroke = f"f{attempt}s{stroke_number}"
                    text = wire.draw_frame(stroke=stroke, batch=batch, done=done)
                    state.draws[(stroke, batch)] = SentDraw(sent_at=time.perf_counter(), sender=conn, board="flood")
                    record["sent_keys"].append((stroke, batch))
                    if done:
                        stroke_number, batch = stroke_number + 1, 0
                else:
                    text = json.dumps({"type": "flood", "n": record["sent"]})
                await conn.ws.send(text)
                record["sent"] += 1
                if record["sent"] % 50 == 0:
                    await asyncio.sleep(0)  # let the readers (this socket's answers, the receiver) run
        except ConnectionClosed:
            pass
        if conn.ws.close_code is None:
            # Out of time. The server may be far behind (it reads faster than it handles):
            # wait while its answers keep coming, bounded by ``drain``, then close.
            sent_until = time.monotonic()
            if kind == "liveblog":
                record["answers_wait"] = await answers_wait(
                    conn=conn,
                    progress=lambda conn=conn: sum(conn.errors.values()),
                    target=record["sent"],
                    quiet=2.0,
                    limit=drain,
                )
            else:
                # The board answers with relays to the receiver as well as with refusals.
                record["answers_wait"] = await answers_wait(
                    conn=conn,
                    progress=lambda conn=conn: sum(conn.errors.values()) + expect.delivered,
                    target=None,
                    quiet=2.0,
                    limit=drain,
                )
            record["answers_trailed_s"] = round(time.monotonic() - sent_until, 3)
            await conn_close(conn=conn)
        elif conn.reader is not None:
            await asyncio.wait([conn.reader], timeout=5)
        record["close_code"] = conn.close_code
        record["errors"] = Counter(conn.errors)
        attempt += 1
        if not reconnect:
            break
    sending_seconds = time.monotonic() - started
    expect.seal()
    # The receiver's frames trail the sender's: wait until they stop coming (bounded).
    settle_until = time.monotonic() + drain
    last = -1
    while time.monotonic() < settle_until and expect.delivered != last:
        last = expect.delivered
        await asyncio.sleep(0.5)
    state.expect = None
    received_keys = {key for (_, _, key) in expect.seen}
    sent = sum(record["sent"] for _, record in connections)
    errors = Counter()
    silent = pending = 0
    per_connection = []
    for _, record in connections:
        errors.update(record["errors"])
        told = sum(record["errors"].values())
        if kind == "sketchpad":
            got = [index for index, key in enumerate(record["sent_keys"]) if key in received_keys]
            last_received = got[-1] if got else -1
            # Before the last frame that got through, every missing frame must have been refused out loud.
            missing_before = (last_received + 1) - len(got)
            unanswered = max(0, missing_before - told)
            # After it: refused out loud, or the socket was closed with 4429 (which tells the sender).
            after = record["sent"] - (last_received + 1)
            if not final_close(code=record["close_code"]):
                unanswered += max(0, after - max(0, told - missing_before))
            accepted = len(got)
        else:
            accepted = 0
            # Answers come in order: frames past the last answer followed the server's decision to
            # close, and a final close code (4429) is what tells the sender about them.
            unanswered = 0 if final_close(code=record["close_code"]) else max(0, record["sent"] - told)
        if record["answers_wait"] == "limit":
            # Answers were still coming when the wait ended: the rest is a backlog, not a loss.
            pending += unanswered
            unanswered = 0
        silent += unanswered
        per_connection.append(
            {
                "sent": record["sent"],
                "relayed": accepted,
                "refused": dict(record["errors"]),
                "close_code": record["close_code"],
                "silently_dropped": unanswered,
                "open_failed": record["open_failed"],
                "answers_trailed_s": record["answers_trailed_s"],
            }
        )
    return {
        "kind": kind,
        "seconds": round(seconds, 3),
        "sending_and_answers_s": round(sending_seconds, 3),
        "answers_trailed_s": max((record["answers_trailed_s"] or 0 for _, record in connections), default=None),
        "connections": len(connections),
        "sent": sent,
        "receiver_got": expect.delivered,
        "receiver_duplicates": expect.duplicates,
        "errors": dict(errors),
        "close_codes": dict(Counter(str(record["close_code"]) for _, record in connections)),
        "silently_dropped": silent,
        "still_pending_at_wait_limit": pending,
        "per_connection": per_connection[:5] + ([{"more": len(per_connection) - 5}] if len(per_connection) > 5 else []),
    }


def final_close(*, code: int | None) -> bool:
    """A close code that tells a flooder it was refused (4400-4499 are final in these sites: 4429)."""
    return code is not None and 4400 <= code <= 4499


async def answers_wait(
    *, conn: Conn, progress: Callable[[], int], target: int | None, quiet: float, limit: float
) -> str:
    """Until ``progress()`` (answers so far) reaches ``target`` ("all"), or made no progress for
    ``quiet`` seconds ("quiet"), or the socket closed ("closed"), or ``limit`` seconds passed
    while answers were still coming ("limit": a backlog, not a loss)."""
    stop_at = time.monotonic() + limit
    last, changed_at = -1, time.monotonic()
    while (now := time.monotonic()) < stop_at:
        if conn.close_code is not None:
            return "closed"
        told = progress()
        if target is not None and told >= target:
            return "all"
        if told != last:
            last, changed_at = told, now
        elif now - changed_at > quiet:
            return "quiet"
        await asyncio.sleep(0.05)
    return "limit"
