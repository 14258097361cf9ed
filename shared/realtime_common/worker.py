"""The worker `manage.py runworker` runs: Channels' own, made to outlive the channel layer.

Channels' worker lets any error of a receive end the process, so one Redis
restart stopped the thumbnail worker (and with it all of `make run`, which
honcho stops when any process exits). This one retries with backoff and logs
one line when an outage starts and one when it ends.

It also sends each of its consumers ``{"type": "worker.tick"}`` when it starts
and every ``WORKER_TICK_SECONDS`` after: the moment to catch up on work whose
message was lost (sent while no worker listened, expired in the layer, or lost
with a worker that died mid-job).
"""

import asyncio
import logging
import time

from channels.consumer import SyncConsumer, get_handler_name
from channels.db import database_sync_to_async
from channels.worker import Worker
from django.conf import settings

from .layers import REDIS_DOWN, error_text

logger = logging.getLogger(__name__)

# The first retry comes at once (a blip), then they slow down to this.
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


class ResilientWorker(Worker):
    async def handle(self):
        ticker = asyncio.ensure_future(self.tick())
        try:
            await super().handle()
        finally:
            ticker.cancel()

    async def listener(self, channel):
        outage_started, failures = None, 0
        while True:
            try:
                message = await self.channel_layer.receive(channel)
            except Exception as error:  # noqa: BLE001 - connection errors come in many classes across redis-py versions
                if outage_started is None:
                    outage_started = time.monotonic()
                    logger.warning(
                        "worker: cannot receive on %r (%s); retrying until the channel layer is back", channel, error
                    )
                await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                failures += 1
                continue
            if outage_started is not None:
                logger.info("worker: receiving on %r again after %.1f s", channel, time.monotonic() - outage_started)
                outage_started, failures = None, 0
                self.tick_now(channel)  # what was sent during the outage may be lost: catch up
            if not message.get("type"):
                logger.error("worker: dropped a message with no type on %r", channel)
                continue
            await self.instance_queue(channel).put(message)

    def instance_queue(self, channel: str) -> asyncio.Queue:
        return self.get_or_create_application_instance(channel, {"type": "channel", "channel": channel})

    def tick_now(self, channel: str) -> None:
        self.instance_queue(channel).put_nowait({"type": "worker.tick"})

    async def tick(self):
        while True:
            for channel in self.channels:
                self.tick_now(channel)
            await asyncio.sleep(settings.WORKER_TICK_SECONDS)


class WorkerConsumer(SyncConsumer):
    """A consumer of runworker's channels. Its jobs come through the worker, so
    it listens on no channel of its own, whose receive would end it (with a
    traceback) in every Redis outage. Subclasses handle their jobs' types and
    ``worker_tick``."""

    channel_layer_alias = None  # not a configured layer: Channels gives the consumer none

    @database_sync_to_async
    def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            handler(message)
        except REDIS_DOWN as error:
            # A job that needs Redis while it is away (a cache flag, a group message):
            # the consumer lives on, and the next tick catches up on what is behind.
            logger.warning(
                "worker: %s needs Redis, which is unavailable (%s); the next tick retries",
                message["type"],
                error_text(error),
            )

    def worker_tick(self, message):
        pass
