"""PNG plots of a run's results (matplotlib, Agg backend: no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after matplotlib.use: the backend must be chosen first

from bench.metrics import DELAY, SAMPLE_INTERVAL
from bench.text import median_rows
from realtime_common.testing.metrics import histogram_quantile, metrics_delta

SITE_COLOURS = {"liveblog": "tab:blue", "chat": "tab:orange", "sketchpad": "tab:green"}
STYLES = {"core": "tab:blue", "pubsub": "tab:orange", "bare": "tab:green", "raw_asgi": "tab:red"}


def liveblog_configs(*, liveblog: dict) -> dict[str, list[dict]]:
    """Rows by configuration, one per size (the median run of its rounds): each layer's, the bare
    server's (its runs beside every layer), then the other baselines'."""
    layers = liveblog.get("layers", {}).values()
    configs = {layer["layer"]: median_rows(rows=layer["rows"]) for layer in layers}
    configs["bare"] = median_rows(rows=[row for layer in layers for row in layer.get("bare_rows", [])])
    configs.update({name: baseline["rows"] for name, baseline in liveblog.get("baselines", {}).items()})
    return configs


def liveblog_latency_plot(*, liveblog: dict, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, rows in liveblog_configs(liveblog=liveblog).items():
        sockets = [row["sockets"] for row in rows]
        colour = STYLES.get(name)
        axes.plot(sockets, [row["latency_ms"]["p50"] for row in rows], "o-", color=colour, label=f"{name} p50")
        axes.plot(sockets, [row["latency_ms"]["p99"] for row in rows], "s--", color=colour, label=f"{name} p99")
    axes.set_xlabel("sockets")
    axes.set_ylabel("post → socket latency (ms)")
    axes.set_title(f"Liveblog fan-out: {liveblog['posts']} posts at {liveblog['rate']:g}/s")
    axes_finish(axes=axes, legend_columns=2)
    return figure_save(figure=figure, path=path)


def liveblog_cpu_plot(*, liveblog: dict, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, rows in liveblog_configs(liveblog=liveblog).items():
        sockets = [row["sockets"] for row in rows]
        colour = STYLES.get(name)
        axes.plot(
            sockets, [row["server_cpu_per_frame_us"] for row in rows], "o-", color=colour, label=f"{name} (server)"
        )
        if any(row.get("redis_cpu_per_frame_us") is not None for row in rows):
            with_redis = [
                (row["server_cpu_per_frame_us"] or 0) + (row["redis_cpu_per_frame_us"] or 0)
                if row["server_cpu_per_frame_us"] is not None
                else None
                for row in rows
            ]
            axes.plot(sockets, with_redis, "s:", color=colour, label=f"{name} (server + Redis)")
    axes.set_xlabel("sockets")
    axes.set_ylabel("server CPU per delivered frame (µs)")
    axes.set_title("Liveblog fan-out: server CPU per delivered frame")
    axes_finish(axes=axes)
    return figure_save(figure=figure, path=path)


def chat_steps_plot(*, chat: dict, path: Path) -> Path:
    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, key in (("site", "rooms"), ("bare", "rooms_bare")):
        steps = chat.get(key, {}).get("steps", [])
        rates = [step["rate"] for step in steps]
        colour = STYLES["pubsub" if name == "site" else "bare"]
        latency.plot(rates, [step["latency_ms"]["p99"] for step in steps], "o-", color=colour, label=f"{name} p99")
        throughput.plot(rates, [step["deliveries_per_s"] for step in steps], "o-", color=colour, label=name)
    latency.axhline(100, color="grey", linestyle=":", label="100 ms")
    latency.set_xscale("log")
    latency.set_yscale("log")
    latency.set_xlabel("messages/s offered")
    latency.set_ylabel("p99 latency (ms)")
    latency.legend(fontsize="small")
    throughput.set_xscale("log")
    throughput.set_yscale("log")
    throughput.set_xlabel("messages/s offered")
    throughput.set_ylabel("deliveries/s")
    throughput.legend(fontsize="small")
    figure.suptitle("Chat: rooms at stepped send rates")
    for axes in (latency, throughput):
        axes.grid(True, which="both", alpha=0.3)
    return figure_save(figure=figure, path=path)


def sketchpad_plot(*, sketchpad: dict, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(7, 4.5))
    steps = sketchpad.get("steps", [])
    drawers = [step["drawers"] for step in steps]
    axes.plot(drawers, [step["latency_ms"]["p50"] for step in steps], "o-", label="p50")
    axes.plot(drawers, [step["latency_ms"]["p99"] for step in steps], "s--", label="p99")
    axes.axhline(100, color="grey", linestyle=":", label="100 ms")
    axes.set_xlabel("drawers on one board")
    axes.set_ylabel("relay latency (ms)")
    axes.set_title("Sketchpad: relay latency against drawers")
    axes_finish(axes=axes)
    return figure_save(figure=figure, path=path)


def metrics_timeline_plot(*, timeline: list[dict], path: Path) -> Path:
    """docs/operating.md's picture: each site's open sockets and its delay p99 (commit to frame sent, from
    the histogram's buckets between two samples) over a run, from the metrics the bench sampled."""
    figure, (sockets_axes, delay_axes) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    start = min(sample["t"] for sample in timeline)
    for site in sorted({sample["site"] for sample in timeline}):
        samples = sorted((sample for sample in timeline if sample["site"] == site), key=lambda sample: sample["t"])
        times, sockets, delay_times, delays = [], [], [], []
        for previous, sample in zip([None, *samples], samples, strict=False):
            if previous and sample["t"] - previous["t"] > 2 * SAMPLE_INTERVAL:
                times.append(float("nan"))  # the site was not served meanwhile: no line across
                sockets.append(float("nan"))
            times.append(sample["t"] - start)
            sockets.append(sample["sockets"])
            if previous:
                delta = metrics_delta(before=previous["delay"], after=sample["delay"])
                # A counter going back is another process (the site served again): no delay from it.
                p99 = histogram_quantile(delta, DELAY, 0.99) if min(delta.values(), default=0) >= 0 else None
                if p99 is not None:
                    delay_times.append(sample["t"] - start)
                    delays.append(p99 * 1000)
        colour = SITE_COLOURS.get(site)
        sockets_axes.plot(times, sockets, "-", color=colour, label=site)
        delay_axes.plot(delay_times, delays, "o", markersize=3, color=colour, label=site)
    sockets_axes.set_ylabel("realtime_sockets_open")
    sockets_axes.set_title(f"The sites' own metrics over a bench run (sampled every {SAMPLE_INTERVAL:g} s)")
    sockets_axes.legend(fontsize="small")
    sockets_axes.grid(True, alpha=0.3)
    delay_axes.set_ylabel("event delay p99 (ms)")
    delay_axes.set_xlabel("seconds into the run")
    delay_axes.set_ylim(bottom=0)
    delay_axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def axes_finish(*, axes, legend_columns: int = 1) -> None:
    """The scale, grid and legend of a one-axes plot: y logarithmic, as latencies and costs span
    orders of magnitude between the smallest and the largest load."""
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncol=legend_columns)


def figure_save(*, figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plots_write(*, results: dict, out_dir: Path, stamp: str) -> dict[str, Path]:
    """Every plot the results have data for; a plot that fails is skipped, not fatal."""
    scenarios = results.get("scenarios", {})
    wanted = []
    if "liveblog" in scenarios:
        wanted += [
            ("liveblog-latency", liveblog_latency_plot, {"liveblog": scenarios["liveblog"]}),
            ("liveblog-cpu-per-frame", liveblog_cpu_plot, {"liveblog": scenarios["liveblog"]}),
        ]
    if "chat" in scenarios:
        wanted.append(("chat-steps", chat_steps_plot, {"chat": scenarios["chat"]}))
    if "sketchpad" in scenarios:
        wanted.append(("sketchpad-drawers", sketchpad_plot, {"sketchpad": scenarios["sketchpad"]}))
    written = {}
    for name, plot, data in wanted:
        try:
            written[name] = plot(**data, path=out_dir / f"{stamp}-{name}.png")
        except Exception as error:  # noqa: BLE001 - a plot is an extra; the report says what failed
            results.setdefault("plot_errors", {})[name] = repr(error)
            plt.close("all")
    return written
