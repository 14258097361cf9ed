"""GET /health/: is this process able to serve? Used by compose, load balancers and tests."""

import asyncio
import logging
import os
import socket
import uuid

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


async def channel_layer_check() -> None:
    """Send a message to a fresh channel of this process and receive it back."""
    layer = get_channel_layer()
    channel = await layer.new_channel("health.")
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.ping", "nonce": nonce})
    message = await layer.receive(channel)
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
        except Exception:  # noqa: BLE001 - any failure is a failed check
            # The details (addresses, credentials in messages) go to the log, not to the public.
            logger.exception("health check %s failed", name)
            checks[name] = "error"
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "error", "instance": INSTANCE, **checks}
    response = JsonResponse(body, status=200 if healthy else 503)
    response["X-Instance"] = INSTANCE
    return response
