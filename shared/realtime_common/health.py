"""GET /health/: is this process able to serve? Used by compose, load balancers and tests."""

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)

# Tells replicas behind a load balancer apart.
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"
# Generous: this process's channels share one queue in Redis, so a burst of group
# messages (hundreds of posts at once) delays the round trip for a second or two
# without anything being wrong.
CHECK_TIMEOUT = 5.0


@sync_to_async
def database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@dataclass
class Probe:
    channel: str
    lock: asyncio.Lock


async def channel_layer_check() -> None:
    """Send a message to this process's probe channel and receive it back.

    One channel per layer for the life of the process: the pub/sub layer keeps
    a subscription and a queue for every channel ever received on, so a fresh
    channel per check (every few seconds, for months) would leak both.
    """
    layer = get_channel_layer()
    # vars(): the pub/sub layer answers unknown attributes from its Redis connection.
    probe = vars(layer).get("health_probe")
    if probe is None:
        probe = layer.health_probe = Probe(channel=await layer.new_channel("health."), lock=asyncio.Lock())
    nonce = uuid.uuid4().hex
    # One check at a time: two receivers on one channel could take each other's message.
    async with probe.lock:
        await layer.send(probe.channel, {"type": "health.ping", "nonce": nonce})
        message = await layer.receive(probe.channel)
    if message.get("nonce") != nonce:
        raise RuntimeError("received another message than the one sent")


@never_cache
async def health(request):
    checks = {}
    for name, check in (("database", database_check), ("channel_layer", channel_layer_check)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except TimeoutError:
            # Slow, not broken in a way a traceback would explain.
            logger.warning("health check %s timed out after %.0f s", name, CHECK_TIMEOUT)
            checks[name] = "error"
        except Exception:  # any failure is a failed check
            # The details (addresses, credentials in messages) go to the log, not to the public.
            logger.exception("health check %s failed", name)
            checks[name] = "error"
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "error", "instance": INSTANCE, **checks}
    response = JsonResponse(body, status=200 if healthy else 503)
    response["X-Instance"] = INSTANCE
    return response
