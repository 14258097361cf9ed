"""Scenario 2, chat.

One room of N users (each a logged-in session of its own) on one daphne process: idle cost,
the cost of one more user joining, leaving, joining again and closing (ACTION_CYCLES times, a
user each), one message to everyone, and everyone
reconnecting at once. Then 100 rooms of 10 users over two processes at a stepped send rate,
against the bare websockets server relaying by room, the two alternated; each step's server CPU
per message, idle use subtracted. Then the site's steps once more, on a throwaway Postgres.
"""

import time
from contextlib import ExitStack

from bench.context import Bench, profile_record, profiler_running
from bench.procs import (
    LineProcess,
    Sampler,
    StealWindow,
    bare_running,
    client_running,
    cpu_delta,
    cpu_settle,
    cpu_snapshot,
    site_prepare,
    site_script,
    site_serving,
)
from bench.scenarios import connect_check, delivery_check, runs_alternate, tracebacks_check, ws_of
from bench.stats import p99_within, ratios_summary
from realtime_common.testing.servers import PostgresServer

SCENARIO = "chat"
BIG_ROOM = "bench-big"
# Reconnected sockets count as settled once the process uses less than this share of a core over a second.
SETTLED_BELOW = 0.10
# The steps' pass mark: every message to every member, p99 within this.
STEP_P99_MS = 100.0
# One more user joins the big room, leaves, joins again and closes, this many times (a user each):
# one such action is ~100 ms of CPU, read in /proc's 10 ms ticks with the idle level subtracted,
# and varied by ±40 % from one to the next.
ACTION_CYCLES = 3
ACTIONS = (("join", "join"), ("leave", "leave"), ("rejoin", "join"), ("close", "close"))


def chat_run(*, bench: Bench) -> dict:
    sizes = bench.sizes
    site = bench.site(name="chat")
    site.layer = bench.layer_other
    room_slugs = [f"bench-r{number}" for number in range(sizes.chat_rooms)]
    big_users = sizes.chat_big_room + ACTION_CYCLES  # the room, and the users who join, leave and close
    users_needed = big_users + sizes.chat_rooms * sizes.chat_room_users
    setup = site_script(
        site=site,
        module="chat_setup",
        args=["--users", str(users_needed), "--rooms", BIG_ROOM, *room_slugs],
        timeout=600,
    )[0]
    users = setup["users"]
    limit_messages, limit_seconds = setup["rate_limit"]
    result: dict = {"layer": bench.layer_other, "backend": setup["backend"], "rate_limit": setup["rate_limit"]}
    with ExitStack() as stack:
        client = stack.enter_context(client_running(name="chat-client", workdir=bench.workdir, pinning=bench.pinning))
        urls = stack.enter_context(site_serving(site=site, count=1, layer=bench.layer_other, pinning=bench.pinning))
        result["big_room"] = big_room_run(
            bench=bench, client=client, url=urls[0], pid=site.pids[0], users=users[:big_users]
        )
        # A second process for the rooms: sockets alternate between the two.
        urls.append(site.serve())
        site.metrics.process_added(url=urls[-1])
        bench.pinning.pid_pin(name="daphne chat", pid=site.pids[-1], cpu=1)
        rooms_users = users[big_users:]
        site_pids = {f"daphne-{number}": pid for number, pid in enumerate(site.pids)}
        site_conns = rooms_conns(urls=urls, users=rooms_users, room_slugs=room_slugs, room_users=sizes.chat_room_users)
        # The bare server runs beside the site's processes, so that the two alternate run by run.
        bare = stack.enter_context(bare_running(workdir=bench.workdir, pinning=bench.pinning))
        bare_conns = [
            {
                "url": f"{ws_of(url=bare.url)}/ws/{room_slugs[number // sizes.chat_room_users]}/",
                "user": user["username"],
                "room": room_slugs[number // sizes.chat_room_users],
            }
            for number, user in enumerate(rooms_users)
        ]

        def rooms_measure(*, state: str, round_number: int) -> dict:
            site_state = state == "site"
            return rooms_run(
                bench=bench,
                client=client,
                conns=site_conns if site_state else bare_conns,
                pids={**site_pids, "redis": bench.redis.pid} if site_state else {"bare": bare.pid},
                mode=state,
                rates=sizes.chat_rates if site_state else sizes.chat_rates + sizes.chat_bare_extra_rates,
                window=(limit_messages, limit_seconds) if site_state else None,
            ) | {"round": round_number}

        runs = runs_alternate(states=("site", "bare"), rounds=sizes.baseline_rounds, measure=rooms_measure)
        result["server_errors"] = tracebacks_check(bench=bench, scenario=SCENARIO, site=site)
        result["rooms_postgres"] = rooms_postgres_run(bench=bench, client=client, room_slugs=room_slugs)
        result["client_cpu_log"] = client.cpu_log[-40:]
    result["rooms_runs"] = runs
    # The steps tables and plot show each side's median run; the ratio is round by round.
    result["rooms"] = runs_median(runs=runs["site"])
    result["rooms_bare"] = runs_median(runs=runs["bare"])
    result["rooms_ratio"] = ratios_summary(
        numerators=[best_deliveries(run=run) for run in runs["site"]],
        denominators=[best_deliveries(run=run) for run in runs["bare"]],
    )
    result["rooms_steal_pct_max"] = max(
        step["steal_pct"] for state_runs in runs.values() for run in state_runs for step in run["steps"]
    )
    return result


def rooms_conns(*, urls: list[str], users: list[dict], room_slugs: list[str], room_users: int) -> list[dict]:
    """The rooms' sockets of the site, alternating between its processes (``urls``), ``room_users`` to a room."""
    return [
        {
            "url": f"{ws_of(url=urls[number % len(urls)])}/ws/chat/",
            "origin": urls[number % len(urls)],
            "cookie": user["cookie"],
            "user": user["username"],
            "room": room_slugs[number // room_users],
        }
        for number, user in enumerate(users)
    ]


def rooms_postgres_run(*, bench: Bench, client: LineProcess, room_slugs: list[str]) -> dict:
    """The site's rooms steps again, once, with the site on a throwaway Postgres (production's
    database: connections kept, health checks on) instead of SQLite: what a message costs there.
    Postgres runs on the servers' CPU; its own CPU is not in the message's (Redis's is not either)."""
    sizes = bench.sizes
    postgres = PostgresServer()
    postgres.start()
    try:
        bench.pinning.pid_pin(name="postgres", pid=postgres.process.pid, cpu=1)  # its backends inherit the CPU
        site = site_prepare(
            name="chat",
            workdir=bench.workdir,
            redis_url=bench.redis.url,
            database_url=postgres.database_create(name="chat"),
        )
        setup = site_script(
            site=site,
            module="chat_setup",
            args=["--users", str(sizes.chat_rooms * sizes.chat_room_users), "--rooms", *room_slugs],
            timeout=600,
        )[0]
        with site_serving(site=site, count=2, layer=bench.layer_other, pinning=bench.pinning) as urls:
            run = rooms_run(
                bench=bench,
                client=client,
                conns=rooms_conns(
                    urls=urls, users=setup["users"], room_slugs=room_slugs, room_users=sizes.chat_room_users
                ),
                pids={**{f"daphne-{number}": pid for number, pid in enumerate(site.pids)}, "redis": bench.redis.pid},
                mode="site",
                rates=sizes.chat_rates,
                window=tuple(setup["rate_limit"]),
            )
        return run | {
            "backend": setup["backend"],
            "server_errors": tracebacks_check(bench=bench, scenario=SCENARIO, site=site),
        }
    finally:
        postgres.stop()


def message_cpu_ms(*, used: float, idle_rate: float, elapsed: float, sent: int) -> float | None:
    """The servers' CPU per message sent (ms), their idle use over the step taken out; read in
    10 ms ticks, so coarse under a second of CPU."""
    return round(1000 * max(0.0, used - idle_rate * elapsed) / sent, 2) if sent else None


def best_deliveries(*, run: dict) -> float:
    """The deliveries/s of a rooms run's highest held step; 0 if it held none."""
    return run["best"]["deliveries_per_s"] if run["best"] else 0


def runs_median(*, runs: list[dict]) -> dict:
    """Of repeated rooms runs, the one with the median ``best_deliveries`` (the lower of the middle two)."""
    return sorted(runs, key=lambda run: best_deliveries(run=run))[(len(runs) - 1) // 2]


def big_room_run(*, bench: Bench, client: LineProcess, url: str, pid: int, users: list[dict]) -> dict:
    sizes = bench.sizes
    redis = bench.redis
    members, extras = users[:-ACTION_CYCLES], users[-ACTION_CYCLES:]
    chat_url = f"{ws_of(url=url)}/ws/chat/"

    def conn_spec(*, user: dict) -> dict:
        return {"url": chat_url, "origin": url, "cookie": user["cookie"], "user": user["username"], "room": BIG_ROOM}

    daphne = {"daphne": pid}
    both = {"daphne": pid, "redis": redis.pid}
    result: dict = {"sockets_requested": len(members)}
    # Joins are spread out a little (50 handshakes at a time), as real arrivals are.
    connect = client.call(
        "connect",
        timeout=sizes.chat_connect_deadline + 120,
        group="big",
        conns=[conn_spec(user=user) for user in members],
        ready="joined",
        send_join=True,
        concurrency=50,
        deadline=sizes.chat_connect_deadline,
    )
    result["connect"] = connect
    connect_check(bench=bench, scenario=SCENARIO, what=f"room of {len(members)}: join", result=connect)
    result["sockets"] = connect["connected"]
    # Let the joins' presence updates finish before measuring idle (bounded: report if they never do).
    result["settle_after_joins_s"] = cpu_settle(
        pids=daphne, below=0.5, window=1.0, timeout=sizes.chat_settle_timeout * 3
    )
    with profiler_running(
        bench=bench,
        pid=pid,
        name="chat",
        # A cycle takes ~3 s (four actions, each settled): py-spy records its whole duration, so no more.
        seconds=sizes.chat_idle_seconds + sizes.chat_settle_timeout * 2 + 6 * ACTION_CYCLES,
    ) as profile:
        commands_before, before, started = redis.commands_processed(), cpu_snapshot(pids=both), time.monotonic()
        time.sleep(sizes.chat_idle_seconds)  # measuring idle: nothing to wait for but time
        used, elapsed = cpu_delta(before=before, after=cpu_snapshot(pids=both)), time.monotonic() - started
        commands = redis.commands_processed() - commands_before
        idle_rate = used["daphne"] / elapsed
        result["idle"] = {
            "seconds": round(elapsed, 2),
            "daphne_core_pct": round(100 * idle_rate, 2),
            "redis_core_pct": round(100 * used["redis"] / elapsed, 2),
            "redis_commands_per_s": round(commands / elapsed, 1),
        }
        idle_commands_rate = commands / elapsed
        cycles = []
        for number, extra in enumerate(extras, start=1):
            group = f"extra-{number}"
            extra_connect = client.call(
                "connect", timeout=60, group=group, conns=[conn_spec(user=extra)], ready="open", deadline=30
            )
            connect_check(bench=bench, scenario=SCENARIO, what=f"extra user #{number}'s socket", result=extra_connect)
            cpu_settle(pids=daphne, below=idle_rate + 0.05, window=0.5, timeout=sizes.chat_settle_timeout)
            if not extra_connect["connected"]:
                cycles.append(None)  # counted, as a cycle that did not reach every socket
                continue
            cycles.append(
                {
                    label: presence_action_measure(
                        bench=bench,
                        client=client,
                        action=action,
                        label=f"{label} #{number}",
                        actor_group=group,
                        pids=both,
                        idle_rate=idle_rate,
                        idle_commands_rate=idle_commands_rate,
                    )
                    for label, action in ACTIONS
                }
            )
    result["profile"] = profile_record(profile=profile, bench=bench)
    result["action_cycles"] = cycles
    result["actions"] = actions_median(cycles=cycles)
    # Per cycle; None where the user's socket did not open, or one of the two did not reach every socket.
    result["join_plus_close_cpu_ms"] = [
        round(cycle["join"]["daphne_cpu_ms"] + cycle["close"]["daphne_cpu_ms"], 1)
        if cycle and cycle["join"]["complete"] and cycle["close"]["complete"]
        else None
        for cycle in cycles
    ]
    broadcast = client.call("chat_broadcast", timeout=120, group="big", room=BIG_ROOM, wait=30)
    delivery_check(bench=bench, scenario=SCENARIO, what="message to the whole room", answer=broadcast)
    result["broadcast"] = {
        key: broadcast[key]
        for key in ("expected", "delivered", "delivery_pct", "latency_ms", "duplicates", "sender_errors")
    }
    result["reconnect"] = storm_measure(bench=bench, client=client, pid=pid, idle_rate=idle_rate)
    client.call("close", timeout=120, group="big")
    return result


def actions_median(*, cycles: list[dict]) -> dict:
    """Of the cycles' figures, for each action, the cycle whose CPU was the median (the lower of the middle
    two); cycles whose user's socket did not open (None) left out."""
    cycles = [cycle for cycle in cycles if cycle]
    if not cycles:
        return {}
    middle = (len(cycles) - 1) // 2
    return {
        label: sorted((cycle[label] for cycle in cycles), key=lambda figures: figures["daphne_cpu_ms"])[middle]
        for label, _ in ACTIONS
    }


def presence_action_measure(
    *,
    bench: Bench,
    client: LineProcess,
    action: str,
    label: str,
    actor_group: str,
    pids: dict[str, int],
    idle_rate: float,
    idle_commands_rate: float,
) -> dict:
    """The server CPU and Redis commands of one join / leave / close, from the action until every
    other socket was told and the process is back to its idle level; idle use subtracted."""
    sizes = bench.sizes
    redis = bench.redis
    commands_before, before, started = redis.commands_processed(), cpu_snapshot(pids=pids), time.monotonic()
    answer = client.call(
        "chat_presence",
        timeout=sizes.chat_action_wait + 60,
        actor_group=actor_group,
        action=action,
        room=BIG_ROOM,
        watch_group="big",
        wait=sizes.chat_action_wait,
    )
    settled = cpu_settle(
        pids={"daphne": pids["daphne"]}, below=idle_rate + 0.05, window=0.5, timeout=sizes.chat_settle_timeout
    )
    used, elapsed = cpu_delta(before=before, after=cpu_snapshot(pids=pids)), time.monotonic() - started
    commands = redis.commands_processed() - commands_before
    bench.check(
        scenario=SCENARIO,
        name=f"{label}: {answer['told']}/{answer['watched']} sockets told by presence",
        ok=answer["complete"],
        detail=f"{answer['presence_frames']} presence frames seen",
    )
    return {
        "complete": answer["complete"],
        "told": answer["told"],
        "watched": answer["watched"],
        "time_to_last_ms": answer["time_to_last_ms"],
        "actor_answer_ms": answer["actor_answer_ms"],
        "elapsed_s": round(elapsed, 3),
        "settled": settled is not None,
        "daphne_cpu_ms_raw": round(used["daphne"] * 1000, 1),
        "daphne_cpu_ms": round(max(0.0, used["daphne"] - idle_rate * elapsed) * 1000, 1),
        "redis_cpu_ms": round(used["redis"] * 1000, 1),
        # Idle commands come in bursts (heartbeats): the subtraction is rough, so the raw count is kept too.
        "redis_commands_raw": commands,
        "redis_commands": max(0, round(commands - idle_commands_rate * elapsed)),
    }


def storm_measure(*, bench: Bench, client: LineProcess, pid: int, idle_rate: float) -> dict:
    """Every socket of the room closed and reconnected at once (a deploy); the time until the
    process is back under 10 % of a core over a second, counted from the close."""
    sizes = bench.sizes
    with Sampler(pids={"daphne": pid}, interval=0.25) as sampler:
        answer = client.call(
            "reconnect",
            timeout=sizes.chat_storm_timeout + 120,
            group="big",
            ready="joined",
            concurrency=200,
            deadline=sizes.chat_storm_timeout,
        )
        connect_check(bench=bench, scenario=SCENARIO, what="reconnect storm: rejoined", result=answer)
        deadline = answer["closing_at"] + sizes.chat_storm_timeout
        settled_at = idle_at = None
        while time.time() < deadline and (settled_at is None or idle_at is None):
            settled_at = settled_at or window_below(
                samples=sampler.samples, after=answer["ready_at"], below=SETTLED_BELOW
            )
            idle_at = idle_at or window_below(
                samples=sampler.samples, after=answer["ready_at"], below=idle_rate * 1.25 + 0.02
            )
            time.sleep(0.25)
    return {
        "sockets": answer["closed"],
        "rejoined": answer["connected"],
        "failures": answer["failures"],
        "rejoined_after_s": round(answer["ready_at"] - answer["closing_at"], 3),
        "settled_below_10pct_after_s": round(settled_at - answer["closing_at"], 3) if settled_at else None,
        "back_to_idle_level_after_s": round(idle_at - answer["closing_at"], 3) if idle_at else None,
        "timeout_s": sizes.chat_storm_timeout,
        "peak_core_pct": peak_rate(samples=sampler.samples),
    }


def window_below(*, samples: list, after: float, below: float, window: float = 1.0) -> float | None:
    """The end of the first ``window``-second window ending after ``after`` in which the process
    used less than ``below`` of a core; None if there is none yet."""
    for end_index, (end_time, end_cpu, _) in enumerate(samples):
        if end_time < after:
            continue
        starts = [(t, cpu) for t, cpu, _ in samples[:end_index] if t <= end_time - window]
        if starts:
            start_time, start_cpu = starts[-1]
            if (end_cpu["daphne"] - start_cpu["daphne"]) / (end_time - start_time) < below:
                return end_time
    return None


def peak_rate(*, samples: list) -> float | None:
    rates = [
        (later[1]["daphne"] - earlier[1]["daphne"]) / (later[0] - earlier[0])
        for earlier, later in zip(samples[::4], samples[4::4], strict=False)
        if later[0] > earlier[0]
    ]
    return round(100 * max(rates), 1) if rates else None


def rooms_run(
    *,
    bench: Bench,
    client: LineProcess,
    conns: list[dict],
    pids: dict[str, int],
    mode: str,
    rates: tuple[int, ...],
    window: tuple[int, int] | None,
) -> dict:
    """Rooms of a few users each, at stepped total send rates; the highest step that held
    (every message to every member, p99 within 100 ms)."""
    sizes = bench.sizes
    label = "site" if mode == "site" else "bare"
    connect = client.call(
        "connect",
        timeout=sizes.chat_connect_deadline + 120,
        group="rooms",
        conns=conns,
        ready="joined" if mode == "site" else "open",
        send_join=mode == "site",
        concurrency=50,
        deadline=sizes.chat_connect_deadline,
    )
    connect_check(bench=bench, scenario=SCENARIO, what=f"{len(conns)} users in rooms ({label})", result=connect)
    servers = {name: pid for name, pid in pids.items() if name != "redis"}
    if mode == "site":
        # Settled near idle, so that the connects' tail is not taken for the idle use subtracted below.
        cpu_settle(pids=servers, below=0.10, window=1.0, timeout=sizes.chat_settle_timeout)
    # What the servers use with every socket open and nobody talking (heartbeats, re-checks):
    # subtracted from each step's CPU to give a message's own.
    before, started = cpu_snapshot(pids=servers), time.monotonic()
    time.sleep(sizes.chat_rooms_idle_seconds)
    idle_rate = sum(cpu_delta(before=before, after=cpu_snapshot(pids=servers)).values()) / (time.monotonic() - started)
    steps = []
    best = None
    for number, rate in enumerate(rates, start=1):
        before, started, steal = cpu_snapshot(pids=pids), time.monotonic(), StealWindow()
        answer = client.call(
            "chat_step",
            timeout=sizes.chat_step_seconds + 120,
            groups=["rooms"],
            step=number,
            rate=rate,
            seconds=sizes.chat_step_seconds,
            drain=5.0,
            mode=mode,
            window_seconds=window[1] if window else 10,
            # A margin of 2 under the limit: a message sent at a window's very end may be counted in the next.
            window_cap=max(1, window[0] - 2) if window else 1 << 30,
        )
        used, elapsed = cpu_delta(before=before, after=cpu_snapshot(pids=pids)), time.monotonic() - started
        held = answer["delivery_pct"] == 100.0 and p99_within(latency=answer["latency_ms"], limit_ms=STEP_P99_MS)
        step = {
            "rate": rate,
            "sent": answer["sent"],
            "achieved_rate": answer["achieved_rate"],
            "skipped_rate_limit": answer["skipped_rate_limit"],
            "expected": answer["expected"],
            "delivered": answer["delivered"],
            "delivery_pct": answer["delivery_pct"],
            "latency_ms": answer["latency_ms"],
            "deliveries_per_s": answer["deliveries_per_s"],
            "error_codes": answer["error_codes"],
            "held": held,
            "server_core_pct": {name: round(100 * seconds / elapsed, 1) for name, seconds in used.items()},
            "server_cpu_ms_per_message": message_cpu_ms(
                used=sum(used[name] for name in servers), idle_rate=idle_rate, elapsed=elapsed, sent=answer["sent"]
            ),
            "client_cpu_pct": answer["client_cpu"]["pct"],
            "client_cpu_pct_sending": answer["client_cpu_pct_sending"],
            "steal_pct": steal.pct(),
        }
        steps.append(step)
        if held:
            best = step
        if number == 1:
            # The lowest step is expected to deliver everything; higher ones may be overload.
            delivery_check(
                bench=bench,
                scenario=SCENARIO,
                what=f"rooms ({label}) at {rate} msg/s",
                answer=answer,
                notes={"errors": answer["error_codes"]},
            )
        if not held and number > len(sizes.chat_rates):
            break  # the extra steps (bare only) go on only while the server holds
    client.call("close", timeout=120, group="rooms")
    return {
        "sockets": connect["connected"],
        "idle_core_pct": round(100 * idle_rate, 2),
        "connect": {key: connect[key] for key in ("requested", "connected", "failed", "failures", "elapsed_s")},
        "steps": steps,
        "best": {"rate": best["rate"], "deliveries_per_s": best["deliveries_per_s"], "p99": best["latency_ms"]["p99"]}
        if best
        else None,
        "client_saturated": any((step["client_cpu_pct_sending"] or 0) >= 90 for step in steps),
    }
