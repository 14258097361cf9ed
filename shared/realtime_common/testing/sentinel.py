"""A Redis Sentinel set for tests, on loopback: a primary, a replica of it, and one
sentinel that watches the primary and promotes the replica when the primary is lost.

One sentinel is enough to fail over (its quorum is 1, and it is the majority that
elects the leader); production runs three, so that losing one machine loses neither
the primary's watch nor a vote. ``down_after_ms`` is how long the primary must stay
silent before the sentinel acts (Sentinel's down-after-milliseconds).

``redis_sentinel`` is the fixture: import it into a test module or conftest to use it.
"""

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from realtime_common.testing.servers import STARTUP_TIMEOUT, RedisServer, free_port, redis_answers, stop, wait_until


@dataclass
class RedisSentinelSet:
    """Start with ``start()``; ``env`` is what a site's settings need to reach the primary."""

    directory: Path
    master: str = "realtime"
    down_after_ms: int = 1000
    sentinel_port: int = field(default_factory=free_port)
    primary: RedisServer | None = None
    replica: RedisServer | None = None
    sentinel: subprocess.Popen | None = None
    # One client per server, by port, closed by stop(): a poll loop must not open a connection per poll.
    clients: dict[int, redis.Redis] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"REDIS_SENTINELS": f"127.0.0.1:{self.sentinel_port}", "REDIS_SENTINEL_MASTER": self.master}

    def start(self) -> None:
        """The primary, then the replica (synced), then the sentinel (which has found the replica)."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: `apt-get install redis-server` (make test does it)")
        for name in ("primary", "replica", "sentinel"):
            (self.directory / name).mkdir()
        self.primary = RedisServer(directory=self.directory / "primary")
        self.primary.start()
        self.replica = RedisServer(directory=self.directory / "replica")
        self.replica.start()
        self.client(self.replica.port).replicaof("127.0.0.1", self.primary.port)
        wait_until(
            lambda: self.client(self.replica.port).info("replication").get("master_link_status") == "up",
            timeout=STARTUP_TIMEOUT,
            what="the replica's sync",
        )
        config = self.directory / "sentinel" / "sentinel.conf"
        # Sentinel rewrites its file as it learns (replicas, the new primary): it must be its own.
        config.write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.directory / 'sentinel'}\n"
            f"sentinel monitor {self.master} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}\n"
            # Also how long before a failed failover is tried again.
            f"sentinel failover-timeout {self.master} 10000\n"
        )
        with (self.directory / "sentinel" / "sentinel.log").open("w") as log:
            self.sentinel = subprocess.Popen([binary, str(config), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: redis_answers(self.sentinel_port), timeout=STARTUP_TIMEOUT, what="sentinel", process=self.sentinel
        )
        # A sentinel that has not yet seen the replica (it asks the primary's INFO every 10 s)
        # would have nobody to promote.
        wait_until(
            lambda: len(self.client(self.sentinel_port).sentinel_slaves(self.master)) == 1,
            timeout=STARTUP_TIMEOUT,
            what="the sentinel's view of the replica",
            process=self.sentinel,
        )

    def master_port(self) -> int:
        """The primary's port as the sentinel names it now (blocking: from a coroutine, through asyncio.to_thread)."""
        host, port = self.client(self.sentinel_port).sentinel_get_master_addr_by_name(self.master)
        return int(port)

    def client(self, port: int) -> redis.Redis:
        """A synchronous client of the server on ``port``, the same one at each call."""
        if port not in self.clients:
            self.clients[port] = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=2)
        return self.clients[port]

    def stop(self) -> None:
        for client in self.clients.values():
            client.close()
        if self.sentinel is not None and self.sentinel.poll() is None:
            stop(self.sentinel)
        for server in (self.primary, self.replica):
            if server is not None:
                server.stop()


@pytest.fixture
def redis_sentinel(tmp_path) -> Iterator[RedisSentinelSet]:
    """A primary, its replica and a sentinel of the test's own, started; stopped after it."""
    directory = tmp_path / "redis-sentinel"
    directory.mkdir()
    sentinel_set = RedisSentinelSet(directory=directory)
    try:
        sentinel_set.start()
        yield sentinel_set
    finally:
        sentinel_set.stop()
