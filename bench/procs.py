"""The processes of a run: Redis, the sites' daphne processes, the baseline servers, the load
client and the sites' helper scripts; their CPU and memory read from /proc, and their pinning.

Servers and Redis run on CPU 1, clients (and this harness) on CPU 0, so that a busy client
does not slow the servers it measures. Every process started here is stopped by the context
manager that started it, also on Ctrl-C.
"""

import contextlib
import json
import os
import queue
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from bench.metrics import SiteMetrics
from realtime_common.testing.servers import LiveSite, RedisServer, free_port, healthy, stop, wait_until

REPO = Path(__file__).resolve().parents[1]
SERVER_CPU = 1
CLIENT_CPU = 0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
STARTUP_TIMEOUT = 30.0
# The CPUs this process may use before harness_pin() narrows them to the client's.
CPUS_AT_START = frozenset(os.sched_getaffinity(0))


# Every process this harness starts, so that whatever a failed cleanup left behind is stopped at exit.
STARTED: list[subprocess.Popen] = []


def processes_reap() -> list[str]:
    """Stop every process started here that still runs (a safety net behind the context managers)."""
    reaped = []
    for process in STARTED:
        if process.poll() is None:
            reaped.append(" ".join(map(str, process.args))[:120])
            stop(process)
    return reaped


# -- /proc ------------------------------------------------------------------------------------


def proc_cpu_seconds(*, pid: int) -> float:
    """User + system CPU time of a process, all its threads (also those that ended), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        data = stat.read()
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_children(*, pid: int) -> list[int]:
    """The processes ``pid`` started (granian's worker, say), from every thread's /proc children list."""
    children = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # the thread ended meanwhile
            children += map(int, Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return children


def proc_rss_bytes(*, pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def cpu_snapshot(*, pids: dict[str, int]) -> dict[str, float]:
    return {name: proc_cpu_seconds(pid=pid) for name, pid in pids.items()}


def steal_seconds(*, cpu: int) -> float:
    """The time the hypervisor gave CPU ``cpu``'s turns to another machine (/proc/stat's steal), in seconds."""
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == f"cpu{cpu}":
            return int(fields[8]) / CLOCK_TICKS
    return 0.0


@dataclass
class StealWindow:
    """The steal of the servers' CPU over a measured window: made where the window starts, read
    (``pct``) where it ends. The CPU figures of the window are only as good as this is small."""

    steal_start: float = field(default_factory=lambda: steal_seconds(cpu=SERVER_CPU))
    started: float = field(default_factory=time.monotonic)

    def pct(self) -> float:
        """The steal so far, as a percentage of the window's wall time."""
        elapsed = time.monotonic() - self.started
        return round(100 * (steal_seconds(cpu=SERVER_CPU) - self.steal_start) / elapsed, 2) if elapsed > 0 else 0.0


def cpu_delta(*, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 3) for name in before}


def rlimit_raise() -> int:
    """Open files up to the hard limit, for this process and every child it starts (they inherit it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- pinning ----------------------------------------------------------------------------------


@dataclass
class Pinning:
    """Which processes were pinned to which CPU, and whether it held (checked thread by thread)."""

    possible: bool = field(default_factory=lambda: {SERVER_CPU, CLIENT_CPU} <= CPUS_AT_START)
    records: list[dict] = field(default_factory=list)

    def pid_pin(self, *, name: str, pid: int, cpu: int) -> bool:
        if not self.possible:
            self.records.append(
                {
                    "name": name,
                    "pid": pid,
                    "cpu": cpu,
                    "ok": False,
                    "detail": f"CPUs {SERVER_CPU} and {CLIENT_CPU} not both available",
                }
            )
            return False
        detail = ""
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    os.sched_setaffinity(int(tid), {cpu})
                except ProcessLookupError:
                    continue  # the thread ended meanwhile
            # Threads started later inherit the affinity of the thread that starts them.
            ok = all(os.sched_getaffinity(int(tid)) == {cpu} for tid in os.listdir(f"/proc/{pid}/task"))
        except OSError as error:
            ok, detail = False, str(error)
        self.records.append({"name": name, "pid": pid, "cpu": cpu, "ok": ok, "detail": detail})
        return ok

    def pid_check(self, *, name: str, pid: int, cpu: int) -> bool:
        """Still pinned, every thread (including those started since)?"""
        try:
            ok = all(os.sched_getaffinity(int(tid)) == {cpu} for tid in os.listdir(f"/proc/{pid}/task"))
        except OSError as error:
            self.records.append(
                {"name": f"{name} (recheck)", "pid": pid, "cpu": cpu, "ok": False, "detail": str(error)}
            )
            return False
        if not ok:
            self.records.append(
                {"name": f"{name} (recheck)", "pid": pid, "cpu": cpu, "ok": False, "detail": "threads moved"}
            )
        return ok

    def summary(self) -> dict:
        failed = [record for record in self.records if not record["ok"]]
        return {
            "possible": self.possible,
            "pinned": len(self.records) - len(failed),
            "failed": failed[:10],
            "worked": self.possible and bool(self.records) and not failed,
        }


def harness_pin() -> None:
    """This process (and what it starts, until re-pinned) on the client CPU."""
    if {SERVER_CPU, CLIENT_CPU} <= CPUS_AT_START:
        os.sched_setaffinity(0, {CLIENT_CPU})


# -- Redis ------------------------------------------------------------------------------------


@dataclass
class Listener:
    """A process started here that listens on a loopback port: Redis, or a baseline server."""

    process: subprocess.Popen
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Redis(Listener):
    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *words: str) -> bytes:
        """One command over a plain socket (RESP); the raw reply."""
        request = f"*{len(words)}\r\n" + "".join(f"${len(word)}\r\n{word}\r\n" for word in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(request.encode())
            reply = b""
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if reply_complete(reply=reply):
                    return reply
        return reply

    def info(self, *, section: str) -> dict[str, str]:
        reply = self.command("INFO", section).decode()
        return dict(line.split(":", 1) for line in reply.splitlines()[1:] if ":" in line)

    def commands_processed(self) -> int:
        return int(self.info(section="stats")["total_commands_processed"])


def reply_complete(*, reply: bytes) -> bool:
    if reply.startswith(b"$"):
        header, _, body = reply.partition(b"\r\n")
        return len(body) >= int(header[1:]) + 2
    return reply.endswith(b"\r\n")


@contextmanager
def redis_running(*, workdir: Path, pinning: Pinning) -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (make bench installs it with the system deps)")
    port = free_port()
    directory = workdir / f"redis-{port}"
    directory.mkdir(parents=True)
    # The tests' throwaway Redis, started the same way: no persistence, loopback only.
    server = RedisServer(directory=directory, port=port)
    try:
        server.start()
        STARTED.append(server.process)
        pinning.pid_pin(name="redis-server", pid=server.process.pid, cpu=SERVER_CPU)
        yield Redis(process=server.process, port=port)
    finally:
        server.stop()


def redis_benchmark(*, port: int, requests: int) -> dict:
    """Redis's own floor for publishing, in requests a second: ``redis-benchmark -t publish``, or,
    where redis-benchmark has no such test (7.0 has not: it prints nothing), the explicit
    command ``PUBLISH <channel> <300-byte message>``, a liveblog frame's size."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"error": "redis-benchmark is not installed"}
    base = [binary, "-h", "127.0.0.1", "-p", str(port), "-n", str(requests), "-q"]
    attempts = [[*base, "-t", "publish"], [*base, "PUBLISH", "bench-publish", "x" * 300]]
    for command in attempts:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        # -q prints e.g. "PUBLISH: 123456.79 requests per second, p50=0.215 msec" after carriage-return progress.
        lines = [line for line in result.stdout.replace("\r", "\n").splitlines() if "requests per second" in line]
        if lines:
            line = lines[-1].strip().replace("x" * 300, "<300 bytes>")
            rps = float(line.split("requests per second")[0].rsplit(":", 1)[1])
            shown = " ".join(command[:-1] + ["<300 bytes>"]) if command is attempts[-1] else " ".join(command)
            return {"requests": requests, "requests_per_s": rps, "line": line[:160], "command": shown}
    return {
        "error": f"no result from redis-benchmark (stderr: {result.stderr[-200:]!r})",
        "command": " ".join(attempts[0]),
    }


# -- the sites --------------------------------------------------------------------------------


@dataclass
class BenchSite(LiveSite):
    """A LiveSite on a chosen channel layer (``REDIS_CHANNEL_LAYER``: core or pubsub), counting
    its metrics or not (``metrics_on``: DJANGO_METRICS), which ``metrics`` reads; served by
    ``server``: daphne as the sites are, or uvicorn or granian as the conformance suite checked them."""

    layer: str | None = None
    metrics_on: bool = True
    metrics: SiteMetrics = field(default_factory=SiteMetrics)
    # How much of each log tracebacks() has read: the site (and its logs) serves several scenarios.
    log_marks: dict[Path, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        if self.layer:
            env["REDIS_CHANNEL_LAYER"] = self.layer
        env["DJANGO_METRICS"] = "1" if self.metrics_on else "0"
        return env

    @property
    def script_env(self) -> dict[str, str]:
        """For bench.sitescripts run in the site's folder: the site's env, and this repo importable."""
        return {**self.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    @property
    def pids(self) -> list[int]:
        """Every process serving: those started here, and their children (granian's worker
        does the work; its main process only watches it)."""
        return [pid for process in self.servers for pid in (process.pid, *proc_children(pid=process.pid))]

    def tracebacks(self) -> str:
        """The first traceback any of its processes logged since the last call, or ''."""
        logs = ""
        for path in sorted(self.workdir.glob("*.log")):
            text = path.read_text(errors="replace")
            logs += text[self.log_marks.get(path, 0) :]
            self.log_marks[path] = len(text)
        at = logs.find("Traceback")
        return logs[max(0, at - 300) : at + 3000] if at >= 0 else ""


def site_prepare(*, name: str, workdir: Path, redis_url: str, database_url: str | None = None) -> BenchSite:
    """A site with a fresh migrated database, SQLite in its folder or ``database_url`` (static files are not
    needed: only sockets and /health/ are used)."""
    site = BenchSite(
        directory=REPO / name,
        workdir=workdir / f"{name}-{int(time.time() * 1000) % 10**8}",
        redis_url=redis_url,
        database_url=database_url,
    )
    site.workdir.mkdir(parents=True)
    (site.workdir / "static").mkdir()  # empty, but there: WhiteNoise warns about a missing STATIC_ROOT
    site.manage("migrate", "--no-input")
    return site


@contextmanager
def site_serving(
    *, site: BenchSite, count: int, layer: str, pinning: Pinning, server: str = "daphne"
) -> Iterator[list[str]]:
    """``count`` processes of the site on ``layer`` served by ``server``, pinned to the server CPU
    (a granian worker too); their URLs. With metrics on, what their /metrics moved meanwhile is
    kept in ``site.metrics``."""
    site.layer, site.server = layer, server
    try:
        urls = []
        for _ in range(count):
            try:
                urls.append(site.serve())
            except (RuntimeError, TimeoutError) as error:
                raise RuntimeError(f"{error}\n--- its log ---\n{site.logs()[-3000:]}") from error
            finally:
                STARTED.extend(process for process in site.servers if process not in STARTED)
            started = site.servers[-1].pid
            for pid in (started, *proc_children(pid=started)):
                pinning.pid_pin(name=f"{server} {site.directory.name}", pid=pid, cpu=SERVER_CPU)
        if site.metrics_on:
            site.metrics.started(site=site.directory.name, urls=urls)
        yield urls
        if site.metrics_on:
            site.metrics.stopped(layer=layer)
    finally:
        site.metrics.sampling_stop()
        site.stop()
        site.server = "daphne"


# valgrind runs Python some 50 times slower: the site's startup (imports, Django's setup) takes ~20 s.
CALLGRIND_STARTUP_TIMEOUT = 300.0


@dataclass
class Callgrind:
    """One daphne process run by valgrind's callgrind, counting the CPU instructions it runs only
    between ``counting_start`` and ``counting_stop``: a figure that a neighbour's load does not
    change (CPU seconds do, by several %)."""

    url: str
    pid: int
    out: Path

    def counting_start(self) -> None:
        callgrind_control(pid=self.pid, option="--instr=on")

    def counting_stop(self) -> int:
        """Stop counting and write the counts out (callgrind names the file ``<out>.1``): the instructions counted."""
        callgrind_control(pid=self.pid, option="--instr=off")
        callgrind_control(pid=self.pid, option="--dump")
        return callgrind_totals(text=self.out.with_name(f"{self.out.name}.1").read_text())


def callgrind_control(*, pid: int, option: str) -> None:
    """Tell a running callgrind to do something; callgrind_control returns once it has done it."""
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120)


def callgrind_totals(*, text: str) -> int:
    """The instructions a callgrind dump counted: its ``totals:`` line (``summary:`` where it has none)."""
    lines = text.splitlines()
    for key in ("totals:", "summary:"):
        for line in lines:
            if line.startswith(key):
                return int(line.split()[1])
    raise ValueError("not a callgrind dump: no totals: or summary: line")


@contextmanager
def callgrind_serving(*, site: BenchSite, layer: str, pinning: Pinning) -> Iterator[Callgrind]:
    """One daphne process of the site on ``layer`` under callgrind, not counting until told to
    (``--instr-atstart=no``: the startup is not the frames' cost). PYTHONHASHSEED is fixed, so
    that two runs of the same code hash, and so iterate sets and dicts, alike."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (make system-deps installs it)")
    site.layer = layer
    out = site.workdir / f"callgrind-{time.monotonic_ns()}.out"
    wrapper = ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")
    try:
        try:
            url = site.serve(env={"PYTHONHASHSEED": "0"}, wrapper=wrapper, timeout=CALLGRIND_STARTUP_TIMEOUT)
        finally:
            STARTED.extend(process for process in site.servers if process not in STARTED)
        pinning.pid_pin(name=f"callgrind daphne {site.directory.name}", pid=site.servers[-1].pid, cpu=SERVER_CPU)
        yield Callgrind(url=url, pid=site.servers[-1].pid, out=out)
    finally:
        site.stop()


def site_script(*, site: BenchSite, module: str, args: list[str], timeout: float) -> list[dict]:
    """Run ``python -m bench.sitescripts.<module>`` in the site's folder and env; its JSON output lines."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.sitescripts.{module}", *args],
        cwd=site.directory,
        env=site.script_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.sitescripts.{module} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


# -- baseline servers -------------------------------------------------------------------------


@dataclass
class Server(Listener):
    name: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@contextmanager
def server_running(*, name: str, command: list[str], port: int, workdir: Path, pinning: Pinning) -> Iterator[Server]:
    log_path = workdir / f"{name}-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    STARTED.append(process)
    server = Server(name=name, process=process, port=port, log=log_path)
    try:
        wait_until(lambda: healthy(server.url), timeout=STARTUP_TIMEOUT, what=name, process=process)
        pinning.pid_pin(name=name, pid=process.pid, cpu=SERVER_CPU)
        yield server
    finally:
        stop(process)


@contextmanager
def bare_running(*, workdir: Path, pinning: Pinning) -> Iterator[Server]:
    """Baseline (a): a bare ``websockets`` server, Python's floor."""
    port = free_port()
    command = [sys.executable, "-m", "bench.baselines.bare_websockets", "--port", str(port)]
    with server_running(name="bare-websockets", command=command, port=port, workdir=workdir, pinning=pinning) as server:
        yield server


@contextmanager
def raw_asgi_running(*, workdir: Path, pinning: Pinning) -> Iterator[Server]:
    """Baseline (b): a raw ASGI app (no Channels) served by daphne, the server's floor."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "bench.baselines.raw_asgi:application",
    ]
    with server_running(name="raw-asgi-daphne", command=command, port=port, workdir=workdir, pinning=pinning) as server:
        yield server


# -- line-protocol child processes: the load client, the liveblog publisher ------------------


class ChildError(RuntimeError):
    pass


class LineProcess:
    """A child process driven by one JSON request a line on stdin, one reply a line on stdout."""

    def __init__(self, *, name: str, command: list[str], cwd: Path, env: dict[str, str] | None, log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
            )
        STARTED.append(self.process)
        self.replies: queue.Queue = queue.Queue()
        self.numbers = iter(range(1, 1 << 62))
        self.cpu_log: list[dict] = []
        threading.Thread(target=self.stdout_read, name=f"{name}-stdout", daemon=True).start()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stdout_read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                self.replies.put(json.loads(line))
        self.replies.put(None)

    def call(self, op: str, *, timeout: float, **args) -> dict:
        """Send a request and wait (bounded) for its reply; a failure raises ChildError with its traceback."""
        number = next(self.numbers)
        try:
            self.process.stdin.write(json.dumps({"id": number, "op": op, "args": args}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise ChildError(f"{self.name} is gone ({error}); its log:\n{self.log_tail()}") from error
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.replies.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise ChildError(
                    f"{self.name}: no answer to {op} within {timeout:.0f}s; its log:\n{self.log_tail()}"
                ) from None
            if reply is None:
                raise ChildError(f"{self.name} exited ({self.process.poll()}) during {op}; its log:\n{self.log_tail()}")
            if reply.get("id") == number:
                break
        if "client_cpu" in reply:
            self.cpu_log.append({"op": op, **reply["client_cpu"]})
        if not reply.get("ok"):
            raise ChildError(f"{self.name}: {op} failed:\n{reply.get('error')}")
        result = reply["result"]
        if isinstance(result, dict) and "client_cpu" in reply:
            result["client_cpu"] = reply["client_cpu"]
        return result

    def submit(self, op: str, *, timeout: float, **args) -> Future:
        """The same as ``call``, answered in a Future, so the harness can sample the servers meanwhile."""
        return self.executor.submit(self.call, op, timeout=timeout, **args)

    def log_tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stop(self.process)
        self.executor.shutdown(wait=False, cancel_futures=True)


@contextmanager
def client_running(*, name: str, workdir: Path, pinning: Pinning) -> Iterator[LineProcess]:
    """A load client process (bench.client), pinned to the client CPU (it pins itself; checked here)."""
    client = LineProcess(
        name=name, command=[sys.executable, "-m", "bench.client"], cwd=REPO, env=None, log=workdir / f"{name}.log"
    )
    try:
        status = client.call("status", timeout=30)
        if pinning.possible:
            pinning.records.append(
                {
                    "name": name,
                    "pid": client.pid,
                    "cpu": CLIENT_CPU,
                    "ok": status["affinity"] == [CLIENT_CPU],
                    "detail": "",
                }
            )
        yield client
    finally:
        client.stop()


@contextmanager
def publisher_running(*, site: BenchSite, slug: str) -> Iterator[LineProcess]:
    """The liveblog publisher (bench.sitescripts.liveblog_publish): posts saved by another process."""
    publisher = LineProcess(
        name="publisher",
        command=[sys.executable, "-m", "bench.sitescripts.liveblog_publish", "--slug", slug],
        cwd=site.directory,
        env=site.script_env,
        log=site.workdir / f"publisher-{site.layer}.log",
    )
    try:
        yield publisher
    finally:
        publisher.stop()


# -- sampling ---------------------------------------------------------------------------------


class Sampler:
    """Samples CPU seconds and RSS of some processes every ``interval`` seconds on a thread."""

    def __init__(self, *, pids: dict[str, int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, dict[str, float], dict[str, int]]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="sampler", daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.take()
            self.stopping.wait(self.interval)

    def take(self) -> None:
        try:
            cpu = cpu_snapshot(pids=self.pids)
            rss = {name: proc_rss_bytes(pid=pid) for name, pid in self.pids.items()}
        except OSError:
            return  # a process ended; the caller notices through its own checks
        self.samples.append((time.time(), cpu, rss))

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.take()


def cpu_rate(*, pids: dict[str, int], seconds: float) -> float:
    """Fraction of one core the processes used together over the next ``seconds``."""
    before, started = cpu_snapshot(pids=pids), time.monotonic()
    time.sleep(seconds)
    after, elapsed = cpu_snapshot(pids=pids), time.monotonic() - started
    return sum(cpu_delta(before=before, after=after).values()) / elapsed


def cpu_settle(*, pids: dict[str, int], below: float, window: float, timeout: float) -> float | None:
    """Seconds until the processes use less than ``below`` of a core over a ``window``-second
    window (sliding, sampled every 0.25 s); None if not within ``timeout``."""
    started = time.monotonic()
    history = [(started, sum(cpu_snapshot(pids=pids).values()))]
    while (now := time.monotonic()) - started < timeout:
        time.sleep(0.25)
        now = time.monotonic()
        history.append((now, sum(cpu_snapshot(pids=pids).values())))
        older = [sample for sample in history if sample[0] <= now - window]
        if older:
            then, used = older[-1]
            if (history[-1][1] - used) / (now - then) < below:
                return round(now - started, 3)
    return None
