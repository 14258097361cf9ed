"""What every scenario gets: the sizes of this run, the chosen layers, one Redis, the sites
(migrated once per run), the pinning record, and the list of delivery checks."""

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.procs import BenchSite, Pinning, Redis, site_prepare

LAYERS = ("core", "pubsub")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is. ``SIZES_FULL`` is the issue's; ``SIZES_SMOKE`` runs the same code in seconds."""

    liveblog_sockets: tuple[int, ...]
    liveblog_posts: int
    liveblog_rate: float
    liveblog_drain: float
    redis_benchmark_requests: int
    chat_big_room: int
    chat_connect_deadline: float
    chat_idle_seconds: float
    chat_action_wait: float
    chat_settle_timeout: float
    chat_storm_timeout: float
    chat_rooms: int
    chat_room_users: int
    chat_rates: tuple[int, ...]
    chat_bare_extra_rates: tuple[int, ...]
    chat_step_seconds: float
    chat_rooms_idle_seconds: float
    sketch_drawers: tuple[int, ...]
    sketch_watchers: int
    sketch_step_seconds: float
    sketch_multi: tuple[int, int, int]  # boards, drawers each, watchers each
    cursors: tuple[tuple[int, ...], int, int]  # pages moving their cursor per step, watchers, drawers
    typing: tuple[int, int, float]  # the chat room's users, how many of them type, seconds of typing on
    idle_counts: tuple[int, ...]
    idle_seconds: float
    flood_seconds: float
    profile_seconds: float
    overhead: tuple[int, int, int, float]  # liveblog sockets, rounds of metrics on and off (alternated), posts, rate
    # Its instruction count: sockets on one daphne process under callgrind, rounds (alternated), posts
    overhead_instructions: tuple[int, int, int]
    fragments: tuple[int, int, int, float]  # liveblog sockets, rounds of each page (alternated), posts, rate
    # Rounds of a site against its baseline, alternated (a ratio's median and range need three at least).
    baseline_rounds: int


# Each size as (full, smoke), side by side so that a size is added, renamed or dropped in both at once;
# a scenario's sizes share a line or two (laid out by hand, hence fmt: skip), so the table reads by scenario.
SIZES_BOTH: dict[str, tuple] = {
    "liveblog_sockets": ((500, 1000, 3000), (40,)), "liveblog_posts": (20, 5), "liveblog_rate": (4.0, 10.0),
    "liveblog_drain": (10.0, 8.0), "redis_benchmark_requests": (100_000, 5_000),
    "chat_big_room": (2000, 30), "chat_connect_deadline": (90.0, 20.0), "chat_idle_seconds": (10.0, 1.0),
    "chat_action_wait": (10.0, 8.0), "chat_settle_timeout": (6.0, 2.0), "chat_storm_timeout": (30.0, 10.0),
    "chat_rooms": (100, 4), "chat_room_users": (10, 4), "chat_rates": ((50, 100, 200, 400, 800), (8, 16)),
    "chat_bare_extra_rates": ((1600, 3200), (32,)), "chat_step_seconds": (3.0, 1.0),
    "chat_rooms_idle_seconds": (5.0, 0.5),
    "sketch_drawers": ((1, 2, 5, 10, 20), (1, 3)), "sketch_watchers": (20, 3), "sketch_step_seconds": (8.0, 1.0),
    "sketch_multi": ((5, 5, 20), (2, 2, 2)),
    "cursors": (((5, 10, 20), 20, 2), ((2,), 2, 1)),
    "typing": ((2000, 10, 10.0), (30, 2, 3.0)),
    "idle_counts": ((2000, 10000), (30, 90)), "idle_seconds": (5.0, 0.5),
    "flood_seconds": (10.0, 0.4),
    "profile_seconds": (8.0, 3.0),
    "overhead": ((1000, 5, 80, 8.0), (40, 3, 5, 10.0)),
    "overhead_instructions": ((200, 3, 20), (20, 1, 3)),
    "fragments": ((1000, 3, 40, 8.0), (40, 3, 5, 10.0)),
    "baseline_rounds": (3, 1),
}  # fmt: skip


def sizes_pick(*, smoke: bool) -> Sizes:
    return Sizes(**{name: both[1] if smoke else both[0] for name, both in SIZES_BOTH.items()})


SIZES_FULL = sizes_pick(smoke=False)
SIZES_SMOKE = sizes_pick(smoke=True)

# ``--size N`` with ``--only NAME``: the one size a profiling loop varies, per scenario, as (what N
# counts, the sizes with N in its place). Every other size of the scenario stays as it was.
SIZE_OPTION: dict[str, tuple[str, Callable[[Sizes, int], Sizes]]] = {
    "liveblog": ("sockets", lambda sizes, n: replace(sizes, liveblog_sockets=(n,))),
    "liveblog-fragments": ("sockets", lambda sizes, n: replace(sizes, fragments=(n, *sizes.fragments[1:]))),
    "metrics-overhead": ("sockets", lambda sizes, n: replace(sizes, overhead=(n, *sizes.overhead[1:]))),
    "chat": ("users in the big room", lambda sizes, n: replace(sizes, chat_big_room=n)),
    "typing": (
        "users in the room (typists at most as many)",
        lambda sizes, n: replace(sizes, typing=(n, min(n, sizes.typing[1]), sizes.typing[2])),
    ),
    "sketchpad": ("drawers on the board", lambda sizes, n: replace(sizes, sketch_drawers=(n,))),
    "cursors": ("pages moving their cursor", lambda sizes, n: replace(sizes, cursors=((n,), *sizes.cursors[1:]))),
    "idle": ("idle sockets", lambda sizes, n: replace(sizes, idle_counts=(n,))),
    "flood": ("seconds of flooding", lambda sizes, n: replace(sizes, flood_seconds=float(n))),
}


def sizes_resize(*, sizes: Sizes, scenario: str, size: int) -> Sizes:
    """The sizes with ``scenario``'s main size set to ``size`` (``--size``; see ``SIZE_OPTION``)."""
    return SIZE_OPTION[scenario][1](sizes, size)


def sizes_rounds(*, sizes: Sizes, rounds: int) -> Sizes:
    """The sizes with every alternation (site and baseline, metrics on and off, the two liveblog
    pages) run ``rounds`` times each (``--rounds``)."""
    return replace(
        sizes,
        baseline_rounds=rounds,
        overhead=(sizes.overhead[0], rounds, *sizes.overhead[2:]),
        overhead_instructions=(sizes.overhead_instructions[0], rounds, sizes.overhead_instructions[2]),
        fragments=(sizes.fragments[0], rounds, *sizes.fragments[2:]),
    )


@dataclass
class Bench:
    smoke: bool
    sizes: Sizes
    layers: tuple[str, ...]  # the liveblog runs on each
    layer_other: str  # the other scenarios run on this one
    profile: bool
    workdir: Path
    out_dir: Path
    stamp: str
    redis: Redis | None = None
    pinning: Pinning = field(default_factory=Pinning)
    checks: list[dict] = field(default_factory=list)
    sites: dict[str, BenchSite] = field(default_factory=dict)
    metrics_interval: float | None = None  # sample the sites' metrics this often (--metrics-plot)

    def check(self, *, scenario: str, name: str, ok: bool, detail: str = "") -> bool:
        """A 100 % expectation (every socket connected, every frame delivered, nothing dropped unannounced)."""
        self.checks.append({"scenario": scenario, "name": name, "ok": bool(ok), "detail": detail})
        return ok

    def site(self, *, name: str) -> BenchSite:
        """The site, migrated on first use, on this run's Redis."""
        if name not in self.sites:
            self.sites[name] = site_prepare(name=name, workdir=self.workdir, redis_url=self.redis.url)
            self.sites[name].metrics.interval = self.metrics_interval
        return self.sites[name]

    def artefact(self, *, name: str) -> Path:
        """Where a file next to the results goes (``<date>-<name>``)."""
        return self.out_dir / f"{self.stamp}-{name}"


@dataclass
class Profile:
    path: Path | None
    process: subprocess.Popen | None
    error: str | None = None


@contextmanager
def profiler_running(*, bench: Bench, pid: int, name: str | None, seconds: float) -> Iterator[Profile]:
    """With ``--profile`` and a ``name``: py-spy records a flamegraph of ``pid`` for ``seconds``
    (without pausing it); otherwise nothing. The outcome is in the Profile (the SVG's path, or the error)."""
    if not bench.profile or not name:
        yield Profile(path=None, process=None)
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = bench.artefact(name=f"{name}.svg")
    out.parent.mkdir(parents=True, exist_ok=True)
    log = bench.workdir / f"py-spy-{name}.log"
    command = [
        binary,
        "record",
        "-o",
        str(out),
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--nonblocking",
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    profile = Profile(path=out, process=process)
    started = time.monotonic()
    try:
        yield profile
    finally:
        try:
            process.wait(timeout=max(5.0, seconds - (time.monotonic() - started) + 30))
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=10)
        if process.returncode != 0 or not out.exists():
            profile.error = f"py-spy exited {process.returncode}: {log.read_text()[-500:]}"
            profile.path = None


def profile_record(*, profile: Profile, bench: Bench) -> dict | None:
    if profile.process is None and profile.error is None:
        return None  # not profiled
    if profile.path is None:
        return {"error": profile.error}
    return {"svg": profile.path.name}
