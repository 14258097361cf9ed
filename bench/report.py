"""The results of a run as ``<date>.json`` (everything) and ``<date>.md`` (tables, targets, plots).

A partial run (``--only``, or one ``--layer``) is merged into the day's results instead of
replacing them, so one part can be rerun."""

import json
from pathlib import Path

from bench.context import Bench
from bench.plots import plots_write
from bench.scenarios.liveblog import SITE_PROCESSES
from bench.targets import targets_evaluate
from bench.text import DASH, fmt, ratio_text, requested, round_ratio, table
from bench.verdicts import NOISY_STEAL_PCT


def report_write(*, results: dict, bench: Bench, merge: bool) -> dict[str, Path]:
    json_path = bench.out_dir / f"{bench.stamp}.json"
    markdown_path = bench.out_dir / f"{bench.stamp}.md"
    if merge and json_path.exists():
        results = results_merge(old=json.loads(json_path.read_text()), new=results)
    plots = plots_write(results=results, out_dir=bench.out_dir, stamp=bench.stamp)
    results["plots"] = {name: path.name for name, path in plots.items()}
    results["targets"] = targets_evaluate(results=results)
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    markdown_path.write_text(markdown_render(results=results))
    return {"markdown": markdown_path, "json": json_path, **plots}


def run_stamp(*, result: dict, started: str) -> None:
    """Mark a scenario's result, and each liveblog layer's (merged one by one), with the run that made it:
    a target comparing two of them (bench/targets.py) judges only figures of one run."""
    result["run_started"] = started
    for layer in result.get("layers", {}).values():
        layer["run_started"] = started


def results_merge(*, old: dict, new: dict) -> dict:
    """Today's results with the rerun parts replaced: whole scenarios, or single liveblog layers."""
    merged = {**old, **{key: new[key] for key in ("machine", "pinning", "smoke")}}
    rerun = set(new["scenarios"]) | set(new["crashes"])
    kept_layers: set[str] = set()
    scenarios = dict(old.get("scenarios", {}))
    for name, result in new["scenarios"].items():
        if name == "liveblog" and "liveblog" in scenarios:
            kept_layers = set(scenarios["liveblog"].get("layers", {})) - set(result["layers"])
            scenarios[name] = {**result, "layers": {**scenarios["liveblog"]["layers"], **result["layers"]}}
        else:
            scenarios[name] = result
    merged["scenarios"] = scenarios
    merged["crashes"] = {
        **{key: value for key, value in old.get("crashes", {}).items() if key not in rerun},
        **new["crashes"],
    }
    merged["checks"] = [
        check
        for check in old.get("checks", [])
        if check["scenario"] not in rerun
        or (check["scenario"] == "liveblog" and check["name"].split()[0] in kept_layers)
    ] + new["checks"]
    merged["durations_s"] = {**old.get("durations_s", {}), **new["durations_s"]}
    merged["steal_pct"] = {**old.get("steal_pct", {}), **new["steal_pct"]}
    merged["runs"] = [
        *old.get("runs", [{"command": old.get("command"), "started": old.get("started")}]),
        {"command": new["command"], "started": new["started"]},
    ]
    merged["interrupted"] = new["interrupted"]
    return merged


# -- markdown -------------------------------------------------------------------------------------


def markdown_render(*, results: dict) -> str:
    machine = results["machine"]
    packages = machine["packages"]
    pinning = results.get("pinning", {})
    title = "Benchmark (smoke)" if results.get("smoke") else "Benchmark"
    parts = [
        f"# {title}, {results['started'][:10]}\n\n",
        f"`{results.get('command')}`, started {results['started']}, {fmt(results.get('duration_s'))} s"
        + (" — **interrupted**" if results.get("interrupted") else "")
        + ".\n",
    ]
    if results.get("runs"):
        parts.append(
            "Merged from: " + "; ".join(f"`{run['command']}` ({run['started']})" for run in results["runs"]) + ".\n"
        )
    parts.append("\n## Machine\n\n")
    parts.append(
        table(
            header=["", ""],
            rows=[
                ["CPUs (nproc)", f"{machine['nproc']} (allowed: {machine['cpus_allowed']})"],
                ["CPU model", machine["cpu_model"]],
                ["kernel", machine["kernel"]],
                ["memory", f"{machine['memory_mb']:,} MB"],
                ["Python", machine["python"]],
                [
                    "Django / channels / daphne / channels-redis",
                    " / ".join(packages[name] for name in ("Django", "channels", "daphne", "channels-redis")),
                ],
                [
                    "redis-py / Twisted / websockets",
                    f"{packages['redis']} / {packages['Twisted']} / {packages['websockets']}",
                ],
                ["Redis", machine["redis_server"]],
                [
                    "load average (start → end)",
                    f"{' '.join(machine['loadavg_start'])} → {' '.join(machine.get('loadavg_end', []))}",
                ],
                [
                    "pinning (servers + Redis on CPU 1, clients on CPU 0)",
                    ("**worked**" if pinning.get("worked") else "**did not work**")
                    + f": {pinning.get('pinned', 0)} processes pinned"
                    + (f"; failures: {pinning['failed']}" if pinning.get("failed") else ""),
                ],
            ],
        )
    )
    parts.append(
        "\nChannel layers: liveblog on "
        + ", ".join(results.get("layers", []))
        + f"; the other scenarios on {results.get('layer_other')}.\n"
    )
    parts.append(targets_section(results=results))
    parts.append(checks_section(results=results))
    scenarios = results.get("scenarios", {})
    for name, render in (
        ("liveblog", liveblog_section),
        ("liveblog-fragments", fragments_section),
        ("chat", chat_section),
        ("typing", typing_section),
        ("sketchpad", sketchpad_section),
        ("cursors", cursors_section),
        ("idle", idle_section),
        ("flood", flood_section),
        ("metrics-overhead", overhead_section),
    ):
        if name in scenarios:
            try:
                parts.append(render(data=scenarios[name], results=results))
            except Exception as error:  # noqa: BLE001 - one broken table must not lose the report
                parts.append(f"\n## {name}\n\nThe table could not be rendered ({error!r}); the JSON has the data.\n")
        if name in results.get("crashes", {}):
            parts.append(f"\n## {name}: CRASHED\n\n```\n{results['crashes'][name][-4000:]}\n```\n")
    parts.append(site_metrics_section(results=results))
    parts.append(limits_section())
    return "".join(parts)


def targets_section(*, results: dict) -> str:
    targets = results.get("targets", [])
    rows = [
        [
            target["scenario"],
            target["target"],
            target["measured"],
            fmt(target.get("steal_pct"), 2, " %"),
            f"**{target['verdict']}**",
            target["note"],
        ]
        for target in targets
    ]
    steal = ", ".join(f"{name} {fmt(pct, 2)} %" for name, pct in results.get("steal_pct", {}).items())
    return (
        "\n## Targets\n\n"
        f"Steal (the hypervisor's share of the servers' CPU, from /proc/stat) over each scenario: {steal or DASH}. "
        f"A target measured under more than {NOISY_STEAL_PCT:g} % of steal is NOISY, whatever its figures; "
        'a ratio\'s range (its alternated rounds) with the target inside is "range crosses the target".\n\n'
        + (
            table(header=["scenario", "target", "measured", "steal", "verdict", "note"], rows=rows)
            if rows
            else "No scenario with targets ran.\n"
        )
    )


def checks_section(*, results: dict) -> str:
    checks = results.get("checks", [])
    failed = [check for check in checks if not check["ok"]]
    text = (
        f"\n## Delivery checks\n\n{len(checks) - len(failed)} of {len(checks)} passed "
        "(every socket connected, every frame delivered, nothing dropped unannounced).\n"
    )
    if failed:
        text += "\n" + table(
            header=["scenario", "failed check", "detail"],
            rows=[
                [check["scenario"], check["name"], check["detail"][:300].replace("\n", " ").replace("|", "\\|")]
                for check in failed
            ],
        )
    crashes = results.get("crashes", {})
    if crashes:
        text += "\n**Crashed scenarios:** " + ", ".join(crashes) + " (tracebacks below).\n"
    return text


def liveblog_section(*, data: dict, results: dict) -> str:
    text = (
        f"\n## 1. Liveblog fan-out\n\n{data['posts']} posts at {data['rate']:g}/s, saved by another process; "
        "the site on "
        f"{next(iter(data['layers'].values()), {}).get('processes', 2)} daphne processes (sockets split evenly), "
        "the baselines on one process. The site on as many uvicorn and granian processes (the conformance "
        "suite's commands, `realtime_common.testing.servers.server_command`) runs at one size, on the second layer. "
        f"At each size the site and the bare websockets server alternate, runs of each: {data.get('rounds', 1)} "
        "(#1, #2...; the order flipped each round): ÷ bare is a run's ratio to the bare run of its round. "
        "Latency: from the `time.time()` in the post's body, taken just before the save, to the frame's arrival. "
        "CPU: utime+stime from /proc between the first post and the last frame; per delivered frame.\n\n"
    )
    configs = []
    for name, layer in data["layers"].items():
        configs.append((f"site, {name} ({layer['backend'].rsplit('.', 1)[-1]})", layer["rows"], layer))
        configs.append((f"baseline: bare, beside {name}", layer.get("bare_rows", []), None))
    # The same site served by another server instead of daphne (bench.scenarios.liveblog.OTHER_SERVERS).
    for name, served in data.get("servers", {}).items():
        configs.append((f"site on {name}, {served['layer']}", served["rows"], served))
        configs.append((f"baseline: bare, beside {name}", served.get("bare_rows", []), None))
    configs += [(f"baseline: {name}", baseline["rows"], None) for name, baseline in data.get("baselines", {}).items()]
    rows = [
        [label, *fanout_cells(row=row, ratio=round_ratio(layer=layer, row=row) if layer else None)]
        for label, config_rows, layer in configs
        for row in config_rows
    ]
    text += table(
        header=[
            "config",
            "N",
            "connected",
            "delivered %",
            "p50 ms",
            "p99 ms",
            "slowest post to its last socket, ms",
            "backlog (p50 slope; first 5 → last 5 p50)",
            "server CPU s",
            "µs CPU / frame",
            "÷ bare",
            "Redis µs / frame",
            "client CPU",
            "steal",
        ],
        rows=rows,
    )
    served_by = {
        **data["layers"],
        **{f"{name}, {served['layer']}": served for name, served in data.get("servers", {}).items()},
    }
    ratio_rows = [
        [
            name,
            f"{figures['sockets']:,}",
            spread_text(spread=figures["per_frame_us"].get("site")),
            spread_text(spread=figures["per_frame_us"].get("bare")),
            ratio_text(ratio=figures["ratio"]),
            fmt(figures["steal_pct_max"], 2, " %"),
        ]
        for name, layer in served_by.items()
        for figures in layer.get("ratios", [])
    ]
    if ratio_rows:
        text += "\nThe site over the bare server, round by round:\n\n" + table(
            header=[
                "layer (server: daphne unless named)",
                "N",
                "site µs / frame",
                "bare µs / frame",
                "÷ bare: median (range)",
                "steal at most",
            ],
            rows=ratio_rows,
        )
    benchmark = data.get("redis_benchmark") or {}
    text += (
        f"\nBaseline (c), Redis alone: {fmt(benchmark.get('requests_per_s'), 0)} PUBLISH/s "
        f"(`{benchmark.get('command', '')}`)"
        if "requests_per_s" in benchmark
        else f"\nBaseline (c), Redis alone: {benchmark.get('error', 'not run')}"
    ) + ".\n"
    for name, layer in served_by.items():
        text += tracebacks_markdown(errors=layer.get("server_errors"), who=f"{name}: the servers")
    profiles = [
        (row["label"], row["profile"])
        for layer in data["layers"].values()
        for row in layer["rows"]
        if row.get("profile")
    ]
    for label, profile in profiles:
        text += f"\nProfile of {label}: {profile_markdown(profile=profile)}\n"
    per_post = per_post_table(data=data)
    if per_post:
        text += per_post
    for name in ("liveblog-latency", "liveblog-cpu-per-frame"):
        text += plot_markdown(results=results, name=name)
    return text


def fanout_cells(*, row: dict, ratio: float | None) -> list[str]:
    """A fan-out row's cells after its label; ``ratio``: its CPU per frame over the bare server's."""
    backlog = row["backlog"]
    return [
        f"{requested(row=row):,}",
        f"{row['connect']['connected']:,}"
        + (f" ({row['connect']['failed']} failed)" if row["connect"]["failed"] else ""),
        fmt(row["delivery_pct"], 2),
        fmt(row["latency_ms"]["p50"]),
        fmt(row["latency_ms"]["p99"]),
        fmt(row["time_to_last_ms_max"]),
        (
            f"{'**yes**: ' + backlog['reason'] if backlog['backlog'] else 'no'} "
            f"({fmt(backlog['slope_ms_per_post'], 2)} ms/post; "
            f"{fmt(backlog['first5_p50_ms'])}→{fmt(backlog['last5_p50_ms'])})"
        ),
        fmt(row["server_cpu_s"], 2),
        fmt(row["server_cpu_per_frame_us"]),
        fmt(ratio, 1, "×"),
        fmt(row["redis_cpu_per_frame_us"]),
        fmt(row["client_cpu_pct"], 0, " %"),
        fmt(row.get("server_cpu_steal_pct"), 2, " %"),
    ]


def spread_text(*, spread: dict | None) -> str:
    """A state's figures over alternated runs (``bench.stats.values_spread``): median (min – max)."""
    if spread is None:
        return DASH
    return f"{fmt(spread['median'], 1)} ({fmt(spread['min'], 1)} – {fmt(spread['max'], 1)})"


def broadcast_cells(*, broadcast: dict) -> list[str]:
    """One message to a whole room: how much of it was delivered, and how fast."""
    latency = broadcast.get("latency_ms", {})
    return [
        f"{fmt(broadcast.get('delivery_pct'), 2)} % delivered "
        f"({broadcast.get('delivered', 0):,}/{broadcast.get('expected', 0):,})",
        f"p50 {fmt(latency.get('p50'))} ms, p95 {fmt(latency.get('p95'))} ms",
        f"max {fmt(latency.get('max'))} ms",
    ]


def per_post_table(*, data: dict) -> str:
    """Per post, at the largest N of each layer: the backlog in detail."""
    rows = []
    for name, layer in data["layers"].items():
        if not layer["rows"]:
            continue
        row = layer["rows"][-1]
        rows.append([f"{name}, N={requested(row=row):,} p50"] + [fmt(post["p50"], 0) for post in row["per_post"]])
        rows.append([f"{name}, N={requested(row=row):,} last"] + [fmt(post["last"], 0) for post in row["per_post"]])
    if not rows:
        return ""
    posts = len(rows[0]) - 1
    return "\nPer post (ms), largest N: p50, and the time to the last socket:\n\n" + table(
        header=["", *[str(i) for i in range(posts)]], rows=rows
    )


def chat_section(*, data: dict, results: dict) -> str:
    text = (
        f"\n## 2. Chat\n\nLayer {data['layer']} (`{data['backend']}`); rate limit {data['rate_limit'][0]} messages "
        f"per {data['rate_limit'][1]} s per user.\n"
    )
    big = data.get("big_room")
    if big:
        idle = big.get("idle", {})
        connect = big["connect"]
        text += (
            f"\n### One room of {big['sockets_requested']:,} users, one daphne process\n\n"
            f"Joined: {connect['connected']:,}/{connect['requested']:,} in {fmt(connect['elapsed_s'], 1)} s"
            + (f" (failures: {connect['failures']})" if connect["failures"] else "")
            + f"; the process settled after {fmt(big.get('settle_after_joins_s'), 1)} s.\n\n"
        )
        rows = [
            [
                "idle, daphne",
                f"{fmt(idle.get('daphne_core_pct'), 2)} % of a core over {fmt(idle.get('seconds'))} s",
                DASH,
                DASH,
            ],
            [
                "idle, Redis",
                f"{fmt(idle.get('redis_core_pct'), 2)} % of a core",
                f"{fmt(idle.get('redis_commands_per_s'))} commands/s",
                DASH,
            ],
        ]
        for label, action in big.get("actions", {}).items():
            rows.append(
                [
                    f"{label} ({action['told']:,}/{action['watched']:,} told)",
                    (
                        f"{fmt(action['daphne_cpu_ms'])} ms CPU ({fmt(action['daphne_cpu_ms_raw'])} raw), "
                        f"Redis {fmt(action['redis_cpu_ms'])} ms"
                    ),
                    f"{fmt(action['redis_commands'])} Redis commands ({fmt(action.get('redis_commands_raw'))} raw)",
                    f"last told after {fmt(action['time_to_last_ms'])} ms"
                    + ("" if action["settled"] else " (CPU did not settle)"),
                ]
            )
        rows.append(["one message to everyone", *broadcast_cells(broadcast=big.get("broadcast", {}))])
        storm = big.get("reconnect", {})
        if storm:
            rows.append(
                [
                    "everyone reconnects at once",
                    f"{storm['rejoined']:,}/{storm['sockets']:,} rejoined after {fmt(storm['rejoined_after_s'], 2)} s",
                    (
                        f"< 10 % of a core after {fmt(storm['settled_below_10pct_after_s'], 2)} s; "
                        f"idle level after {fmt(storm['back_to_idle_level_after_s'], 2)} s"
                    ),
                    f"peak {fmt(storm['peak_core_pct'])} % of a core",
                ]
            )
        text += table(header=["what", "server cost, or result", "Redis, or latency", "timing"], rows=rows)
        text += (
            "\nCosts run from the action until every other socket was told and the process was back at its "
            "idle level, idle use subtracted."
        )
        if cycles := big.get("action_cycles"):
            text += (
                f" Each action's row is the median of {len(cycles)} cycles (a user each: join, leave, join again, "
                "close); by cycle, ms: "
                + "; ".join(
                    ", ".join(f"{label} {fmt(figures['daphne_cpu_ms'])}" for label, figures in cycle.items())
                    if cycle
                    else "the user's socket did not open"
                    for cycle in cycles
                )
                + "."
            )
        text += "\n"
        if big.get("profile"):
            text += f"\nProfile: {profile_markdown(profile=big['profile'])}\n"
    for key, label in (
        ("rooms", "site, 2 daphne processes"),
        ("rooms_postgres", "site on Postgres, 2 daphne processes, one run"),
        ("rooms_bare", "bare websockets server"),
    ):
        rooms = data.get(key)
        if not rooms:
            continue
        text += f"\n### Rooms at stepped send rates: {label} ({rooms['sockets']:,} sockets)\n\n"
        rows = [
            [
                step["rate"],
                fmt(step["achieved_rate"]),
                step["skipped_rate_limit"],
                fmt(step["delivery_pct"], 2),
                fmt(step["latency_ms"]["p50"]),
                fmt(step["latency_ms"]["p99"]),
                fmt(step["deliveries_per_s"], 0),
                "yes" if step["held"] else "**no**",
                ", ".join(f"{name} {pct}" for name, pct in step["server_core_pct"].items()),
                fmt(step.get("server_cpu_ms_per_message"), 2),
                fmt(step["client_cpu_pct_sending"], 0, " %"),
                ", ".join(f"{code}: {count}" for code, count in step["error_codes"].items()) or DASH,
            ]
            for step in rooms["steps"]
        ]
        text += table(
            header=[
                "msg/s",
                "achieved",
                "skipped (rate limit)",
                "delivered %",
                "p50 ms",
                "p99 ms",
                "deliveries/s",
                "held",
                "server % of a core",
                "server CPU ms a message (idle subtracted)",
                "client CPU",
                "errors",
            ],
            rows=rows,
        )
        text += f"\nIdle (every socket open, nobody talking): {fmt(rooms.get('idle_core_pct'), 2)} % of a core.\n"
        best = rooms.get("best")
        text += (
            f"\nHighest step held (100 % delivered, p99 ≤ 100 ms): {fmt(best and best['rate'])} msg/s, "
            f"{fmt(best and best['deliveries_per_s'], 0)} deliveries/s."
        )
        if rooms.get("client_saturated"):
            text += " **The client was saturated (≥ 90 % CPU) on some step: those numbers are the client's limit.**"
        text += "\n"
    runs = data.get("rooms_runs", {})
    if runs:
        text += (
            f"\nThe tables show each side's median run of {len(runs['site'])}, the site and the bare server "
            "alternated. Highest step held, deliveries/s, by round: "
            + "; ".join(
                f"{state} " + ", ".join(fmt(run["best"] and run["best"]["deliveries_per_s"], 0) for run in state_runs)
                for state, state_runs in runs.items()
            )
            + f". The site over the bare server, round by round: {ratio_text(ratio=data.get('rooms_ratio'))}; "
            f"steal at most {fmt(data.get('rooms_steal_pct_max'), 2)} %.\n"
        )
    text += tracebacks_markdown(errors=data.get("server_errors"), who="The servers")
    return text + plot_markdown(results=results, name="chat-steps")


def typing_section(*, data: dict, results: dict) -> str:
    rows = []
    for key, label in (("start", f"{data['typists']} start typing"), ("end", f"{data['typists']} stop (TTL)")):
        phase = data.get(key, {})
        rows.append(
            [
                label,
                f"{phase.get('told', 0):,}/{phase.get('watched', 0):,} told, {phase.get('frames', 0):,} frames",
                f"{fmt(phase.get('daphne_cpu_ms'))} ms CPU"
                + (f" ({fmt(phase['cpu_per_typist_ms'])} ms per typist)" if "cpu_per_typist_ms" in phase else ""),
                f"last told after {fmt(phase.get('time_to_last_ms'))} ms",
            ]
        )
    on = data.get("typing_on", {})
    rows.append(
        [
            f"typing on, {fmt(on.get('seconds'))} s",
            f"{on.get('typing_sent', 0)} `typing` sent, {on.get('frames', 0)} frames to pages",
            f"{fmt(on.get('cpu_per_typing_us'))} µs CPU per `typing` ({fmt(on.get('daphne_cpu_ms_raw'))} ms raw)",
            f"{on.get('redis_commands', 0)} Redis commands beyond idle's ({on.get('redis_commands_raw', 0)} raw)",
        ]
    )
    rows += [
        [label, *broadcast_cells(broadcast=data.get(key, {}))]
        for key, label in (
            ("message_alone", "one message to all, nobody typing"),
            ("message_typing", "the same, typing on"),
        )
    ]
    return section_render(
        heading="2b. Chat: who is typing",
        intro=(
            f"Layer {data['layer']}; one room of {data['room']:,} users on one daphne process; {data['typists']} "
            f"of them type, each sending `typing` every {data['interval_s']:g} s as a page does. Idle: "
            f"{fmt(data.get('idle_core_pct'), 2)} % of a core, subtracted from every cost below."
        ),
        header=["what", "result", "server cost, or latency", "timing"],
        rows=rows,
        data=data,
    )


def sketchpad_section(*, data: dict, results: dict) -> str:
    text = (
        f"\n## 3. Sketchpad\n\nLayer {data['layer']}; one daphne process; each drawer sends a batch of 4 points every "
        f"{data['interval_ms']:g} ms. Latency: from the send to each other socket's receipt, "
        "on one clock in the client process.\n\n"
    )
    steps = list(data.get("steps", []))
    rows = [
        [
            step["label"],
            fmt(step["batches_per_s_per_drawer"]),
            f"{step['delivered']:,}/{step['expected']:,}",
            fmt(step["loss_pct"], 3),
            fmt(step["latency_ms"]["p50"]),
            fmt(step["latency_ms"]["p99"]),
            fmt(step["latency_ms"]["max"]),
            ", ".join(f"{name} {pct}" for name, pct in step["server_core_pct"].items()),
            fmt(step["server_cpu_per_frame_us"]),
            fmt(step["client_cpu_pct"], 0, " %"),
            ", ".join(f"{code}: {count}" for code, count in step["error_codes"].items()) or DASH,
        ]
        for step in steps + ([data["boards"]] if data.get("boards") else [])
    ]
    text += table(
        header=[
            "load",
            "batches/s per drawer",
            "relayed",
            "loss %",
            "p50 ms",
            "p99 ms",
            "max ms",
            "server % of a core",
            "µs CPU / frame",
            "client CPU",
            "errors",
        ],
        rows=rows,
    )
    text += f"\nMost drawers on one board with p99 ≤ 100 ms: {data.get('max_drawers_p99_within_100ms')}.\n"
    text += tracebacks_markdown(errors=data.get("server_errors"), who="The server")
    return text + plot_markdown(results=results, name="sketchpad-drawers")


def cursors_section(*, data: dict, results: dict) -> str:
    alone = data["drawing_alone"]
    rows = [[alone["label"], *[DASH] * 5, *drawing_cells(step=alone)]]
    rows += [
        [
            step["label"],
            f"{step['cursors']['delivered']:,}/{step['cursors']['expected']:,}",
            fmt(step["cursors"]["latency_ms"]["p50"]),
            fmt(step["cursors"]["latency_ms"]["p99"]),
            fmt(step["cursor_cpu_per_frame_us"]),
            fmt(step["cursor_cpu_per_copy_us"]),
            *drawing_cells(step=step),
        ]
        for step in data.get("steps", [])
    ]
    return section_render(
        heading="3b. Sketchpad: live cursors",
        intro=(
            f"Layer {data['layer']}; one daphne process; one board with {alone['label']} (a batch every 30 ms), "
            "alone, then with more pages moving their cursor 20 times a second. A cursor frame's CPU: the step's "
            "server CPU beyond drawing alone's (per second), per frame sent and per copy delivered. Latencies on "
            "one clock in the client process."
        ),
        header=[
            "load",
            "cursor frames relayed",
            "cursor p50 ms",
            "cursor p99 ms",
            "µs CPU / cursor frame",
            "µs CPU / copy",
            "drawing p50 ms",
            "drawing p99 ms",
            "server % of a core",
            "client CPU",
        ],
        rows=rows,
        data=data,
    )


def drawing_cells(*, step: dict) -> list[str]:
    """How the drawing fared in a cursors step: the same columns with and without cursors."""
    return [
        fmt(step["latency_ms"]["p50"]),
        fmt(step["latency_ms"]["p99"]),
        ", ".join(f"{name} {pct}" for name, pct in step["server_core_pct"].items()),
        fmt(step["client_cpu_pct"], 0, " %"),
    ]


def idle_section(*, data: dict, results: dict) -> str:
    rows = []
    runs = sorted(
        ((label, run) for label, label_runs in data.get("runs", {}).items() for run in label_runs),
        key=lambda pair: (pair[1]["round"], pair[0] != "site"),
    )
    for label, run in runs:
        for row in run["rows"]:
            broadcast = row["broadcast"]
            rows.append(
                [
                    f"{label} #{run['round']}",
                    f"{row['count']:,}",
                    f"{row['open']:,}" + (f" ({row['connect']['failed']} failed)" if row["connect"]["failed"] else ""),
                    fmt(row["rss_mb"]),
                    fmt(row["rss_per_socket_kb"], 2),
                    fmt(row.get("memory_ratio_to_bare"), 2, "×"),
                    fmt(row["idle_core_pct"], 2),
                    fmt(broadcast["delivery_pct"], 2),
                    fmt(broadcast["latency_ms"]["p50"]),
                    fmt(broadcast["time_to_last_ms"]),
                    fmt(row.get("steal_pct"), 2, " %"),
                ]
            )
    ratios = "; ".join(
        f"{figures['count']:,} sockets: {ratio_text(ratio=figures['ratio'])}, steal at most "
        f"{fmt(figures['steal_pct_max'], 2, ' %')}"
        for figures in data.get("memory_ratios", [])
    )
    return section_render(
        heading="4. Idle sockets",
        intro=(
            f"Liveblog sockets on one daphne process (layer {data['layer']}) against the bare websockets server, "
            "alternated, each run on a freshly started process (#1, #2...: the rounds), "
            "opened in batches (100 handshakes at a time); memory is the server's RSS growth over its RSS after a "
            "warm-up, per socket. Memory per socket over the bare server's, round by round, median (range): "
            f"{ratios or DASH}."
        ),
        header=[
            "server",
            "sockets",
            "open",
            "RSS MB",
            "KB per socket",
            "÷ bare",
            "idle % of a core",
            "one post: delivered %",
            "p50 ms",
            "to the last socket, ms",
            "steal",
        ],
        rows=rows,
        data=data,
    )


def section_render(*, heading: str, intro: str, header: list[str], rows: list[list], data: dict) -> str:
    """A section that is one table: what was measured, the table, and the tracebacks its one server logged."""
    return (
        f"\n## {heading}\n\n{intro}\n\n"
        + table(header=header, rows=rows)
        + tracebacks_markdown(errors=data.get("server_errors"), who="The server")
    )


def flood_section(*, data: dict, results: dict) -> str:
    text = (
        f"\n## 5. Flood\n\nOne client sends valid frames as fast as its socket takes them for {fmt(data['seconds'])} s "
        f"(layer {data['layer']}); "
        "the flooder reconnects after each 4429. RSS of the server sampled every 0.25 s.\n\n"
    )
    rows = []
    for kind in ("sketchpad", "liveblog"):
        row = data.get(kind)
        if not row:
            continue
        rows.append(
            [
                kind,
                row["connections"],
                f"{row['sent']:,}",
                fmt(row["sent_per_s"], 0),
                f"{row['receiver_got']:,}",
                ", ".join(f"{code}: {count:,}" for code, count in row["errors"].items()) or DASH,
                ", ".join(f"{code}: {count}" for code, count in row["close_codes"].items()),
                f"**{row['silently_dropped']:,}**" if row["silently_dropped"] else "0",
                f"{row['still_pending_at_wait_limit']:,}" if row.get("still_pending_at_wait_limit") else "0",
                fmt(row["answers_trailed_s"], 1),
                fmt(row["rss_max_mb"]),
                (
                    f"{fmt(row['rss_first_half_mb'])} → {fmt(row['rss_second_half_mb'])} "
                    f"({'bounded' if row['rss_bounded'] else '**grew**'})"
                ),
                fmt(row["client_cpu_pct"], 0, " %"),
            ]
        )
    text += table(
        header=[
            "socket",
            "connections",
            "sent",
            "sent/s",
            "receiver got",
            "sender told",
            "close codes",
            "dropped silently",
            "unanswered at the wait limit",
            "answers trailed the flood by, s",
            "max RSS MB",
            "RSS first → second half",
            "client CPU",
        ],
        rows=rows,
    )
    text += (
        "\nSketchpad: every frame up to the last one relayed is either relayed or refused with an error; "
        "frames after it are refused "
        "or follow the 4429 close. Liveblog: every frame gets `read_only` (or `rate_limited`), "
        "or follows a 4429 close.\n"
    )
    return text


def overhead_section(*, data: dict, results: dict) -> str:
    text = (
        f"\n## metrics-overhead: counting on and off\n\n{fanout_described(data=data)} on freshly started processes "
        f"with DJANGO_METRICS on and off, alternated, {data['rounds']} rounds (the order flipped each round).\n\n"
    )
    text += instructions_markdown(instructions=data["instructions"])
    text += (
        "\nIn CPU seconds, the wall-clock view: each state's runs, and the ratio on/off, spread by several % even "
        "on a quiet machine. CPU is read in 10 ms ticks, a neighbour's load comes and goes, and under this load "
        "each daphne process runs a full collection of Python's GC every ~3 s, of 60-115 ms: one more or fewer in "
        "a run's window moves its CPU by ~3 %, the whole margin judged. Hence the verdict on instructions.\n\n"
    )
    return text + alternated_markdown(data=data, states=("on", "off"))


def instructions_markdown(*, instructions: dict) -> str:
    """The callgrind runs of metrics on and off (``bench.scenarios.overhead.instructions_run``) and their ratio."""
    rows = [
        [row["label"], f"{row['instructions']:,}", f"{row['frames']:,}", fmt(row["per_frame"], 0)]
        for rows in instructions["runs"].values()
        for row in rows
    ]
    text = (
        f"Counted in CPU instructions (valgrind's callgrind; what the verdict is judged on): one daphne process, "
        f"{instructions['sockets']:,} sockets, {instructions['posts']} posts counted, each fanned out to every socket "
        f"before the next, {instructions['rounds']} × on and off, alternated.\n\n"
    )
    text += table(header=["run", "instructions", "frames delivered", "instructions per frame"], rows=sorted(rows))
    ratio = instructions["ratio"]
    if ratio:
        text += (
            f"\nRatio on/off, round by round: median {ratio['median']:.4f}, range {ratio['low']:.4f} – "
            f"{ratio['high']:.4f} ({', '.join(f'{value:.4f}' for value in ratio['values'])}): "
            f"**{instructions['verdict']}**.\n"
        )
    return text


def fragments_section(*, data: dict, results: dict) -> str:
    text = (
        f"\n## liveblog-fragments: the fragments page beside the JSON page\n\n{fanout_described(data=data)} to the "
        "JSON page's socket and to the fragments page's, alternated on the same processes, "
        f"{data['rounds']} rounds (the order flipped each round; each round on a liveblog of its own).\n\n"
    )
    text += alternated_markdown(data=data, states=("fragments", "json"))
    return text + tracebacks_markdown(errors=data.get("server_errors"), who="the servers")


def fanout_described(*, data: dict) -> str:
    """The sizes of a liveblog fan-out measured in two states (``bench.scenarios.fanout_alternate``),
    the opening both its sections share."""
    return (
        f"The liveblog's fan-out ({data['sockets']:,} sockets over {SITE_PROCESSES} processes, "
        f"{data['posts']} posts at {data['rate']:g}/s, {data['layer']} layer)"
    )


def alternated_markdown(*, data: dict, states: tuple[str, str]) -> str:
    """The runs of two states alternated (``bench.scenarios.runs_alternate``), then each state's CPU
    per frame and the ratio of the first state to the second, round by round."""
    rows = [
        [
            row["label"],
            fmt(row["server_cpu_per_frame_us"], 2),
            fmt(row["server_cpu_s"], 3),
            f"{row['delivered']:,}/{row['expected']:,}",
            fmt(row["latency_ms"]["p99"]),
            fmt(row["server_cpu_steal_pct"], 2),
        ]
        for row in sorted((row for rows in data["runs"].values() for row in rows), key=lambda row: row["label"])
    ]
    text = table(
        header=["run", "server CPU per frame (µs)", "server CPU (s)", "delivered", "p99 ms", "steal (%)"], rows=rows
    )
    per_frame, ratio = data.get("per_frame_us", {}), data.get("ratio")
    if ratio:
        text += "\n" + "; ".join(
            f"{state}: median {fmt(per_frame[state]['median'], 2)} µs ({fmt(per_frame[state]['min'], 2)} – "
            f"{fmt(per_frame[state]['max'], 2)})"
            for state in states
        )
        verdict = f": **{data['verdict']}**" if "verdict" in data else ""
        text += (
            f". Ratio {states[0]}/{states[1]}, round by round: median {ratio['median']:.3f}, range "
            f"{ratio['low']:.3f} – {ratio['high']:.3f}, interquartile {ratio['q1']:.3f} – {ratio['q3']:.3f} "
            f"({', '.join(f'{value:.3f}' for value in ratio['values'])}){verdict}; "
            f"steal at most {fmt(data['steal_pct_max'], 2)} %.\n"
        )
    return text


def site_metrics_section(*, results: dict) -> str:
    """What each scenario moved in its sites' own /metrics, beside the bench's figures above."""
    rows = []
    for name, data in results.get("scenarios", {}).items():
        for site, counts in data.get("site_metrics", {}).items():
            rows.append(
                [
                    name,
                    site,
                    fmt(counts["frames_sent"]),
                    fmt(counts["frames_received"]),
                    counts_cell(counts=counts["handshakes"]),
                    counts_cell(counts=counts["closes"]),
                    counts_cell(counts=counts["error_frames"]),
                    fmt(counts["slow_readers_closed"]),
                    fmt(counts["delay_count"]),
                    fmt(counts["delay_p99_ms"]),
                ]
            )
    if not rows:
        return ""
    return (
        "\n## The sites' own metrics\n\nWhat each scenario moved in its daphne processes' `/metrics` (summed).\n\n"
        + table(
            header=[
                "scenario",
                "site",
                "frames sent",
                "frames received",
                "handshakes",
                "closes by code",
                "error frames",
                "slow readers closed",
                "delays observed",
                "delay p99 (ms, from buckets)",
            ],
            rows=rows,
        )
    )


def counts_cell(*, counts: dict[str, int]) -> str:
    return ", ".join(f"{key or '—'} {value:,}" for key, value in counts.items()) or DASH


def tracebacks_markdown(*, errors: str | None, who: str) -> str:
    """The start of the tracebacks ``who`` logged, if any: the JSON has more."""
    return f"\n**{who} logged tracebacks**:\n\n```\n{errors[:2000]}\n```\n" if errors else ""


def plot_markdown(*, results: dict, name: str) -> str:
    """The plot, if the run drew it (a plot without data, or that failed, is left out)."""
    plots = results.get("plots", {})
    return f"\n![{name}]({plots[name]})\n" if name in plots else ""


def profile_markdown(*, profile: dict) -> str:
    """A link to the profile's flamegraph, or why there is none."""
    return f"[{profile['svg']}]({profile['svg']})" if "svg" in profile else f"failed: {profile.get('error')}"


def limits_section() -> str:
    return """
## How to read this

- CPU comes from /proc/<pid>/stat (utime + stime, all threads), in 10 ms ticks: costs under ~50 ms,
  and every number of a smoke run, are coarse.
- Server processes and Redis share CPU 1; the load client, the liveblog publisher, redis-benchmark and
  this harness share CPU 0. A client near 100 % CPU means the client, not the server, set the pace.
- Latencies are wall-clock (`time.time()`) between processes on one machine, except the sketchpad's
  (one clock in the client process).
- The baselines run one process; the site's liveblog runs two, and its CPU is their sum.
- The chat rooms' highest step is bounded by the step ladder: the site's by the chat's per-user rate
  limit (users × limit), the bare server's by the extra steps; a server that holds every step has not
  shown its limit.
- The machine may be shared: the load average at the start and end is in the table above, and the
  steal time (the hypervisor giving CPU 1's turns to another machine) of each scenario and run is in
  the tables. Over 5 % of steal, a target is NOISY: rerun it (`--only NAME`) when the machine is quiet.
- Each ratio against a baseline comes from runs of the site and the baseline alternated (the order
  flipped each round), judged on its range: a drift of the machine falls on both alike.
"""
