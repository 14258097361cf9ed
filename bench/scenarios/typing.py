"""Scenario: who is typing in a chat room of N (rooms/typing.py). One room on one daphne process:
a message to everyone with nobody typing; K users starting to type (the list sent to every other
member); K typing on as pages do (a ``typing`` every 2 s each), which should reach no page and
cost next to nothing; a message to everyone meanwhile, which typing should not slow; then K
stopping (their lists emptied by the server's TTL, 5 s). Measured: the server CPU and Redis
commands of each, idle use subtracted, per typing command and per start."""

import time

from bench.context import Bench
from bench.procs import client_running, cpu_delta, cpu_rate, cpu_settle, cpu_snapshot, site_script, site_serving
from bench.scenarios import connect_check, delivery_check, per_frame_us, tracebacks_check, ws_of

SCENARIO = "typing"
ROOM = "bench-typing"
# A page's pace while its user types, and the chat's CHAT_TYPING_TTL (a stop waits for it).
INTERVAL_S, TTL_S = 2.0, 5.0


def typing_run(*, bench: Bench) -> dict:
    sizes = bench.sizes
    room_size, typists, seconds = sizes.typing
    site = bench.site(name="chat")
    # Users of their own ("t..."): the chat scenario's ("u...") may share the site's database.
    setup = site_script(
        site=site, module="chat_setup", args=["--users", str(room_size), "--prefix", "t", "--rooms", ROOM], timeout=600
    )[0]
    result: dict = {
        "layer": bench.layer_other,
        "backend": setup["backend"],
        "room": room_size,
        "typists": typists,
        "interval_s": INTERVAL_S,
    }
    with (
        client_running(name="typing-client", workdir=bench.workdir, pinning=bench.pinning) as client,
        site_serving(site=site, count=1, layer=bench.layer_other, pinning=bench.pinning) as urls,
    ):
        url = urls[0]
        daphne = {"daphne": site.pids[0]}
        both = daphne | {"redis": bench.redis.pid}
        conns = [
            {
                "url": f"{ws_of(url=url)}/ws/chat/",
                "origin": url,
                "cookie": user["cookie"],
                "user": user["username"],
                "room": ROOM,
            }
            for user in setup["users"]
        ]
        connect = client.call(
            "connect",
            timeout=sizes.chat_connect_deadline + 120,
            group="room",
            conns=conns,
            ready="joined",
            send_join=True,
            concurrency=50,
            deadline=sizes.chat_connect_deadline,
        )
        connect_check(bench=bench, scenario=SCENARIO, what=f"room of {room_size}: join", result=connect)
        cpu_settle(pids=daphne, below=0.5, window=1.0, timeout=sizes.chat_settle_timeout * 3)
        commands_before = bench.redis.commands_processed()
        idle_rate = cpu_rate(pids=daphne, seconds=sizes.chat_idle_seconds)
        idle_commands_rate = (bench.redis.commands_processed() - commands_before) / sizes.chat_idle_seconds
        result["idle_core_pct"] = round(100 * idle_rate, 2)

        def measured(*, used: dict[str, float], elapsed: float, commands: int) -> dict:
            """Server CPU and Redis commands beyond idle's (both raw too: /proc counts in 10 ms ticks)."""
            extra = max(0.0, used["daphne"] - idle_rate * elapsed)
            return {
                "daphne_cpu_ms": round(extra * 1000, 1),
                "daphne_cpu_ms_raw": round(used["daphne"] * 1000, 1),
                "redis_commands": max(0, round(commands - idle_commands_rate * elapsed)),
                "redis_commands_raw": commands,
            }

        def message(*, what: str) -> dict:
            answer = client.call("chat_broadcast", timeout=120, group="room", room=ROOM, wait=30)
            delivery_check(bench=bench, scenario=SCENARIO, what=f"message to the room, {what}", answer=answer)
            return {key: answer[key] for key in ("expected", "delivered", "delivery_pct", "latency_ms", "duplicates")}

        def action(*, name: str, wait: float) -> tuple[dict, dict]:
            """Start or stop typing; its cost until every other socket was told and the process idles
            again, and the client's answer."""
            commands_before, before, started = (
                bench.redis.commands_processed(),
                cpu_snapshot(pids=both),
                time.monotonic(),
            )
            answer = client.call(
                "chat_typing", timeout=wait + 60, group="room", room=ROOM, action=name, typists=typists, wait=wait
            )
            cpu_settle(pids=daphne, below=idle_rate + 0.05, window=0.5, timeout=sizes.chat_settle_timeout)
            used, elapsed = cpu_delta(before=before, after=cpu_snapshot(pids=both)), time.monotonic() - started
            bench.check(
                scenario=SCENARIO,
                name=f"{name}: {answer['told']}/{answer['watched']} sockets sent the list",
                ok=answer["complete"],
                detail=f"{answer['frames']} typing frames seen",
            )
            cost = measured(used=used, elapsed=elapsed, commands=bench.redis.commands_processed() - commands_before)
            summary = {key: answer[key] for key in ("watched", "told", "complete", "time_to_last_ms", "frames")}
            return summary | cost | {
                "cpu_per_typist_ms": round(cost["daphne_cpu_ms"] / typists, 2),
                "cpu_per_frame_us": per_frame_us(cpu_seconds=cost["daphne_cpu_ms"] / 1000, frames=answer["frames"]),
            }, answer

        # A process's first message is slower (connections, caches): not the one typing is compared with.
        message(what="warming up")
        result["message_alone"] = message(what="nobody typing")
        result["start"], _ = action(name="start", wait=30)
        # Typing on: nothing to wait for but time. No list changes, so no page should be sent anything.
        commands_before, before, window_start = bench.redis.commands_processed(), cpu_snapshot(pids=both), time.time()
        time.sleep(seconds)
        used, window_end = cpu_delta(before=before, after=cpu_snapshot(pids=both)), time.time()
        commands = bench.redis.commands_processed() - commands_before
        result["message_typing"] = message(what=f"{typists} typing")
        # The lists empty by the server's TTL, after the last typing: the wait includes it.
        result["end"], stop = action(name="stop", wait=TTL_S + 30)
        sent = sum(window_start <= at < window_end for at in stop["sent_at"])
        frames = sum(window_start <= at < window_end for at in stop["frames_at"])
        elapsed = window_end - window_start
        cost = measured(used=used, elapsed=elapsed, commands=commands)
        result["typing_on"] = (
            {"seconds": round(elapsed, 2), "typing_sent": sent, "frames": frames}
            | cost
            | {
                "cpu_per_typing_us": per_frame_us(cpu_seconds=cost["daphne_cpu_ms"] / 1000, frames=sent),
                "redis_commands_per_typing": round(cost["redis_commands"] / sent, 2) if sent else None,
            }
        )
        bench.check(
            scenario=SCENARIO,
            name=f"typing on: {sent} typing sent, {frames} frames to pages (their lists did not change)",
            ok=sent > 0 and frames == 0,
        )
        result["server_errors"] = tracebacks_check(bench=bench, scenario=SCENARIO, site=site)
        client.call("close", timeout=120, group="room")
    return result
