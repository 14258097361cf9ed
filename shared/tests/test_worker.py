"""runworker's worker (realtime_common.worker): it outlives channel layer
outages, logs each outage once, and ticks its consumers to catch up."""

import asyncio
import logging

import pytest

from realtime_common import worker as worker_module
from realtime_common.worker import ResilientWorker


class FlakyLayer:
    """A channel layer whose receives fail ``failures`` times, then deliver ``messages``."""

    def __init__(self, *, failures: int, messages: list[dict]):
        self.failures = failures
        self.messages = messages

    async def receive(self, channel):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        if self.messages:
            return self.messages.pop(0)
        await asyncio.Event().wait()


@pytest.fixture
def received():
    return asyncio.Queue()


@pytest.fixture
def application(received):
    async def record(scope, receive, send):
        while True:
            await received.put(await receive())

    return record


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch, settings):
    monkeypatch.setattr(worker_module, "RETRY_DELAYS", (0, 0.01))
    settings.WORKER_TICK_SECONDS = 3600


async def next_message(received) -> dict:
    return await asyncio.wait_for(received.get(), timeout=5)


async def test_an_outage_is_retried_logged_once_and_followed_by_a_catch_up_tick(application, received, caplog):
    job = {"type": "thumbnail.render", "board": 7}
    worker = ResilientWorker(application, ["jobs"], FlakyLayer(failures=50, messages=[job]))
    with caplog.at_level(logging.INFO, logger="realtime_common.worker"):
        running = asyncio.ensure_future(worker.handle())
        try:
            assert await next_message(received) == {"type": "worker.tick"}  # on start
            assert await next_message(received) == {"type": "worker.tick"}  # after the outage
            assert await next_message(received) == job
        finally:
            running.cancel()
    lines = [record for record in caplog.records if record.name == "realtime_common.worker"]
    assert [record.levelno for record in lines] == [logging.WARNING, logging.INFO]
    assert "cannot receive on 'jobs'" in lines[0].getMessage()
    assert "receiving on 'jobs' again" in lines[1].getMessage()
    assert not running.done() or running.cancelled()


async def test_a_message_without_a_type_is_dropped_with_an_error_not_a_crash(application, received, caplog):
    job = {"type": "thumbnail.render", "board": 1}
    worker = ResilientWorker(application, ["jobs"], FlakyLayer(failures=0, messages=[{"board": 1}, job]))
    running = asyncio.ensure_future(worker.handle())
    try:
        assert await next_message(received) == {"type": "worker.tick"}
        assert await next_message(received) == job
    finally:
        running.cancel()
    assert "dropped a message with no type" in caplog.text


async def test_ticks_come_every_worker_tick_seconds(application, received, settings):
    settings.WORKER_TICK_SECONDS = 0.05
    worker = ResilientWorker(application, ["a", "b"], FlakyLayer(failures=0, messages=[]))
    running = asyncio.ensure_future(worker.handle())
    try:
        ticks = [await next_message(received) for _ in range(6)]
    finally:
        running.cancel()
    assert ticks == [{"type": "worker.tick"}] * 6
    assert set(worker.application_instances) == {"a", "b"}
