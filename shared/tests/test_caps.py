"""ConnectionCaps: sockets per client address and per logged-in user, per process."""

import asyncio
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser

from realtime_common.asgi import CLOSE_TOO_MANY_SOCKETS, ConnectionCaps

pytestmark = pytest.mark.django_db


class Held:
    """An inner application that keeps each socket open until the test lets it go."""

    def __init__(self):
        self.release = asyncio.Event()
        self.entered = 0
        self.arrivals = asyncio.Queue()

    async def __call__(self, scope, receive, send):
        self.entered += 1
        self.arrivals.put_nowait(scope)
        await self.release.wait()


async def open_socket(caps: ConnectionCaps, *, ip: str, user_id: str | None = None):
    """Run the middleware for one handshake until it reached the inner application or
    finished (refused); (task, what it sent)."""
    # The user as SocketLogin leaves it, from a cookie's session or a ticket's.
    user = AnonymousUser() if user_id is None else SimpleNamespace(is_authenticated=True, pk=user_id)
    scope = {"type": "websocket", "client": (ip, 40000), "user": user}
    inbox, sent = asyncio.Queue(), []
    await inbox.put({"type": "websocket.connect"})

    async def send(message):
        sent.append(message)

    task = asyncio.ensure_future(caps(scope, inbox.get, send))
    arrived = asyncio.ensure_future(caps.application.arrivals.get())
    done, _ = await asyncio.wait({task, arrived}, timeout=2, return_when=asyncio.FIRST_COMPLETED)
    assert done, "the handshake neither reached the application nor finished"
    arrived.cancel()
    return task, sent


async def test_an_address_over_its_cap_is_accepted_and_closed_with_1013_until_one_closes():
    inner = Held()
    caps = ConnectionCaps(inner, per_ip=2, per_user=100)
    first = [await open_socket(caps, ip="127.0.0.5") for _ in range(2)]
    over_task, over_sent = await open_socket(caps, ip="127.0.0.5")
    await asyncio.wait_for(over_task, 2)
    assert over_sent == [{"type": "websocket.accept"}, {"type": "websocket.close", "code": CLOSE_TOO_MANY_SOCKETS}]
    other_task, other_sent = await open_socket(caps, ip="127.0.0.6")
    assert not other_task.done() and other_sent == []
    assert inner.entered == 3

    inner.release.set()
    await asyncio.gather(*(task for task, _ in first), other_task)
    assert caps.open == {}
    inner.release.clear()
    again_task, again_sent = await open_socket(caps, ip="127.0.0.5")
    assert not again_task.done() and again_sent == []
    again_task.cancel()


async def test_a_user_over_their_cap_is_closed_whatever_their_address():
    inner = Held()
    caps = ConnectionCaps(inner, per_ip=100, per_user=1)
    held_task, _ = await open_socket(caps, ip="127.0.0.7", user_id="42")
    over_task, over_sent = await open_socket(caps, ip="127.0.0.8", user_id="42")
    await asyncio.wait_for(over_task, 2)
    assert over_sent[-1] == {"type": "websocket.close", "code": CLOSE_TOO_MANY_SOCKETS}
    # Anonymous: counted by address only.
    anonymous_task, anonymous_sent = await open_socket(caps, ip="127.0.0.8")
    assert not anonymous_task.done() and anonymous_sent == []
    held_task.cancel()
    anonymous_task.cancel()
