"""The consumers' loop over their messages (realtime_common.loops.messages_dispatch, run by the
consumer bases' ``__call__``): Channels' guarantees, each test naming the one it proves, without
a task and an ``asyncio.wait`` per message."""

import asyncio
import contextvars
import threading

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from realtime_common.consumers import AsyncSafeJsonWebsocketConsumer, SafeJsonWebsocketConsumer
from realtime_common.layers import RedisCoreLayer, RedisPubSubLayer, channel_layers
from realtime_common.loops import messages_dispatch

# Long enough for a round trip to Redis on a busy machine; a wait only runs out when something is wrong.
WAIT = 5


class Stop(Exception):
    """What the tests' handler raises on STOP, as a consumer's raises StopConsumer."""


class Broken(Exception):
    """What a source raises when a test feeds it one."""


STOP = "stop"


class Source:
    """A source of messages that a test feeds (``put``): it records, for each read it starts, how
    many dispatches had ended by then, whether it raised what it was fed, and whether a read
    cancelled finished its clean-up."""

    def __init__(self, *, name: str, handler: "Handler"):
        self.name, self.handler = name, handler
        self.queue: asyncio.Queue = asyncio.Queue()
        self.reads_started_after: list[int] = []  # by read: the dispatches ended when it started
        self.taken = 0
        self.took_one, self.took_two = asyncio.Event(), asyncio.Event()
        self.raised = asyncio.Event()
        self.cleaned = False

    def put(self, *messages) -> None:
        for message in messages:
            self.queue.put_nowait(message)

    async def __call__(self):
        self.reads_started_after.append(len(self.handler.ended))
        try:
            message = await self.queue.get()
        except asyncio.CancelledError:
            # A clean-up that awaits, as the pub/sub layer's unsubscribe does: it must be let finish.
            await asyncio.sleep(0)
            self.cleaned = True
            raise
        if isinstance(message, BaseException):
            self.raised.set()
            raise message
        self.taken += 1
        self.took_one.set()
        if self.taken == 2:
            self.took_two.set()
        return (self.name, message)


class Handler:
    """The dispatch: records what it began and ended, holds a message while ``gate`` is clear,
    raises Stop on STOP, and notes whether two dispatches ever ran at once."""

    def __init__(self):
        self.begun: list[tuple[str, object]] = []
        self.ended: list[tuple[str, object]] = []
        self.first_begun = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.running, self.overlapped = 0, False

    async def __call__(self, message: tuple[str, object]) -> None:
        self.begun.append(message)
        self.first_begun.set()
        self.running += 1
        self.overlapped |= self.running > 1
        try:
            if message[1] == STOP:
                raise Stop
            await self.gate.wait()
        finally:
            self.running -= 1
        self.ended.append(message)


def from_source(messages: list[tuple[str, object]], name: str) -> list:
    return [message for source, message in messages if source == name]


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def sources(handler) -> tuple[Source, Source]:
    return Source(name="socket", handler=handler), Source(name="layer", handler=handler)


async def dispatch_run(sources: tuple[Source, ...], handler: Handler) -> None:
    async with asyncio.timeout(WAIT):
        await messages_dispatch(sources=sources, dispatch=handler)


async def test_each_sources_messages_are_dispatched_in_the_order_received(handler, sources):
    socket, layer = sources
    socket.put(*range(100))
    layer.put(*range(100), STOP)
    with pytest.raises(Stop):
        await dispatch_run(sources, handler)
    assert from_source(handler.ended, "layer") == list(range(100))
    assert from_source(handler.ended, "socket") == list(range(len(from_source(handler.ended, "socket"))))


async def test_a_slow_handler_delays_the_next_messages_but_never_reorders_nor_overlaps_them(handler, sources):
    socket, layer = sources
    handler.gate.clear()
    socket.put("first")
    running = asyncio.ensure_future(dispatch_run(sources, handler))
    await asyncio.wait_for(handler.first_begun.wait(), WAIT)
    # Messages of both sources arrive while the first one's handler waits.
    socket.put("second", "third")
    layer.put("one", "two")
    handler.gate.set()
    layer.put(STOP)
    with pytest.raises(Stop):
        await running
    assert from_source(handler.ended, "socket")[:3] == ["first", "second", "third"]
    assert from_source(handler.ended, "layer") == ["one", "two"]
    assert not handler.overlapped


async def test_a_source_is_read_at_most_one_message_ahead_of_its_dispatch(handler, sources):
    """Back-pressure: a consumer slower than its source stops reading it (Channels reads none
    ahead; one more, a constant, is what lets a message cost one task step)."""
    socket, _ = sources
    handler.gate.clear()
    socket.put(*range(10), STOP)
    running = asyncio.ensure_future(dispatch_run(sources, handler))
    # Held by the first message's handler, the source gives a second, and no third.
    async with asyncio.timeout(WAIT):
        await socket.took_two.wait()
    handler.gate.set()
    with pytest.raises(Stop):
        await running
    assert from_source(handler.ended, "socket") == list(range(10))
    assert all(ended >= read - 1 for read, ended in enumerate(socket.reads_started_after))


async def test_a_handlers_exception_ends_the_loop_and_propagates(handler, sources):
    socket, layer = sources
    socket.put("before", STOP, "after")
    with pytest.raises(Stop):
        await dispatch_run(sources, handler)
    assert handler.ended == [("socket", "before")]


async def test_a_sources_exception_propagates_once_the_dispatch_under_way_returned(handler, sources):
    socket, layer = sources
    handler.gate.clear()
    socket.put("held")
    running = asyncio.ensure_future(dispatch_run(sources, handler))
    await asyncio.wait_for(handler.first_begun.wait(), WAIT)
    layer.put(Broken("the layer failed"))
    handler.gate.set()
    with pytest.raises(Broken):
        await running
    assert handler.ended == [("socket", "held")]


async def test_messages_read_before_a_source_raised_are_dispatched_before_its_exception(handler, sources):
    """A ``websocket.disconnect`` read ahead while the layer fails still runs its handler (the
    groups left, the presence ended), and its StopConsumer ends the consumer."""
    socket, layer = sources
    handler.gate.clear()
    socket.put("held", STOP)
    running = asyncio.ensure_future(dispatch_run(sources, handler))
    async with asyncio.timeout(WAIT):
        await socket.took_two.wait()
        layer.put(Broken("the layer failed"))
        await layer.raised.wait()
    handler.gate.set()
    with pytest.raises(Stop):
        await running
    assert handler.begun == [("socket", "held"), ("socket", STOP)]


async def test_on_exit_every_source_is_cancelled_and_awaited_and_no_task_is_left(handler, sources):
    """The pub/sub layer unsubscribes a consumer's channel, and the core layer forgets its
    memberships, when its receive is cancelled: the exit must let that clean-up finish."""
    socket, layer = sources
    socket.put(STOP)
    with pytest.raises(Stop):
        await dispatch_run(sources, handler)
    assert layer.cleaned
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_source_that_swallows_its_cancellation_is_cancelled_again(handler, sources):
    """As Python 3.11's asyncio.wait_for does, under redis-py's every command, when the cancellation
    lands as the command completes: Channels' exit would wait for that source for ever."""
    socket, _ = sources
    swallowed = []

    async def swallowing():
        try:
            return await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            swallowed.append(True)
        return await socket()  # goes on to wait for a message that never comes

    socket.put(STOP)
    running = asyncio.ensure_future(messages_dispatch(sources=(socket, swallowing), dispatch=handler))
    # Waited for, not awaited under a timeout: that would cancel Channels' exit, which then gives up.
    await asyncio.wait([running], timeout=WAIT)
    assert running.done() and isinstance(running.exception(), Stop)
    assert swallowed == [True] and socket.cleaned
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_source_that_swallows_its_cancellation_still_ends_when_the_exit_is_cancelled_too(handler, sources):
    """A second cancellation during the exit (daphne's, after a consumer was slow to end) waits for
    the sources, then ends the task cancelled: a source left running would keep its loop open."""
    socket, _ = sources
    swallowed = asyncio.Event()

    async def swallowing():
        try:
            return await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            swallowed.set()
        return await socket()

    handler.gate.clear()
    socket.put("held")
    running = asyncio.ensure_future(messages_dispatch(sources=(socket, swallowing), dispatch=handler))
    await asyncio.wait_for(handler.first_begun.wait(), WAIT)
    running.cancel()
    await asyncio.wait_for(swallowed.wait(), WAIT)
    running.cancel()
    await asyncio.wait([running], timeout=WAIT)
    assert running.cancelled() and socket.cleaned
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_the_dispatching_task_cancelled_cancels_and_awaits_every_source(handler, sources):
    """What daphne does to an application that outlives its socket's close by too long."""
    socket, layer = sources
    handler.gate.clear()
    socket.put("held")
    running = asyncio.ensure_future(dispatch_run(sources, handler))
    await asyncio.wait_for(handler.first_begun.wait(), WAIT)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert layer.cleaned
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_every_message_is_dispatched_in_the_calling_task_with_its_context(sources):
    """As in Channels: a context variable set by one handler (Django keeps its database
    connection in one) is seen by the next, whichever source its message came from."""
    socket, layer = sources
    seen = contextvars.ContextVar("seen", default=None)
    tasks, values, first_done = set(), [], asyncio.Event()

    async def dispatch(message):
        tasks.add(asyncio.current_task())
        values.append(seen.get())
        seen.set(message)
        first_done.set()
        if message == ("layer", STOP):
            raise Stop

    running = asyncio.ensure_future(messages_dispatch(sources=sources, dispatch=dispatch))
    socket.put("first")
    await asyncio.wait_for(first_done.wait(), WAIT)
    layer.put(STOP)
    with pytest.raises(Stop):
        await asyncio.wait_for(running, WAIT)
    assert tasks == {running}
    assert values == [None, ("socket", "first")]


async def test_messages_make_no_task_each(handler, sources):
    """The lever: Channels makes a task per message read (and an asyncio.wait per dispatch);
    here a source has one task for the consumer's life."""
    socket, layer = sources
    loop = asyncio.get_running_loop()
    made = []

    def task_counted(loop, coro, **kwargs):
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    socket.put(*range(50))
    layer.put(*range(50), STOP)
    loop.set_task_factory(task_counted)
    try:
        with pytest.raises(Stop):
            await messages_dispatch(sources=sources, dispatch=handler)
    finally:
        loop.set_task_factory(None)
    assert len(handler.ended) >= 50
    assert len(made) == len(sources)


class Pushed:
    """A pushed source (the pub/sub layer's channel, ResilientLoopLayer.channel_push): started once
    with the function to give each message to; a test then pushes them (``push``)."""

    def __init__(self, *, name: str, fail: BaseException | None = None):
        self.name, self.fail = name, fail
        self.deliver = None
        self.started = asyncio.Event()

    async def __call__(self, deliver) -> None:
        if self.fail is not None:
            raise self.fail
        self.deliver = deliver
        self.started.set()

    def push(self, *messages) -> None:
        for message in messages:
            self.deliver((self.name, message))


async def test_pushed_messages_are_dispatched_in_the_order_they_came_one_at_a_time_among_the_others(handler, sources):
    socket, _ = sources
    pushed = Pushed(name="layer")
    handler.gate.clear()
    socket.put("first")
    running = asyncio.ensure_future(messages_dispatch(sources=[socket], dispatch=handler, pushed=[pushed]))
    await asyncio.wait_for(handler.first_begun.wait(), WAIT)
    await asyncio.wait_for(pushed.started.wait(), WAIT)
    # Pushed while the first one's handler waits, then more of both.
    pushed.push(*range(50))
    socket.put("second")
    async with asyncio.timeout(WAIT):
        await socket.took_two.wait()
    handler.gate.set()
    pushed.push(*range(50, 100), STOP)
    with pytest.raises(Stop):
        await asyncio.wait_for(running, WAIT)
    assert from_source(handler.ended, "layer") == list(range(100))
    assert from_source(handler.ended, "socket") == ["first", "second"]
    # Two of the 50 pushed while "first" was dispatched were out; the others waited, as a read source's
    # would have: "second", read meanwhile, comes after those two, not behind all 50.
    assert handler.ended.index(("socket", "second")) == 3
    assert not handler.overlapped


async def test_a_pushed_sources_start_that_raises_ends_the_loop_with_its_exception(handler, sources):
    socket, _ = sources
    socket.put(*range(3))
    before = asyncio.all_tasks()
    with pytest.raises(Broken):
        await asyncio.wait_for(
            messages_dispatch(sources=[socket], dispatch=handler, pushed=[Pushed(name="layer", fail=Broken())]), WAIT
        )
    # Before any dispatch, and the other source's task cancelled and awaited: none is left.
    assert handler.begun == [] and asyncio.all_tasks() - before == set()


async def test_a_pushed_backlog_is_held_back_so_the_other_sources_messages_never_queue_behind_it(handler, sources):
    """The read-ahead bound, for a pushed source: past two messages out, the rest wait in order until
    its dispatches make room, so that a page's disconnect, read meanwhile, comes after two at most."""
    socket, _ = sources
    pushed = Pushed(name="layer")
    handler.gate.clear()
    running = asyncio.ensure_future(messages_dispatch(sources=[socket], dispatch=handler, pushed=[pushed]))
    await asyncio.wait_for(pushed.started.wait(), WAIT)
    pushed.push(*range(100))
    await asyncio.wait_for(handler.first_begun.wait(), WAIT)
    socket.put("disconnect")
    await asyncio.wait_for(socket.took_one.wait(), WAIT)
    pushed.push(STOP)
    handler.gate.set()
    with pytest.raises(Stop):
        await asyncio.wait_for(running, WAIT)
    assert handler.ended.index(("socket", "disconnect")) == 2
    assert from_source(handler.ended, "layer") == list(range(100))


async def test_a_pushed_source_keeps_no_task_once_started_and_the_loop_leaves_none(handler, sources):
    """No task waits per pushed source (an idle socket keeps none for its channel), and on the way
    out the pulled source's task is cancelled and awaited, as ever."""
    socket, _ = sources
    pushed = Pushed(name="layer")
    before = asyncio.all_tasks()
    running = asyncio.ensure_future(messages_dispatch(sources=[socket], dispatch=handler, pushed=[pushed]))
    await asyncio.wait_for(pushed.started.wait(), WAIT)
    assert len(asyncio.all_tasks() - before) == 2  # the loop's own, and the socket's read
    pushed.push(STOP)
    with pytest.raises(Stop):
        await asyncio.wait_for(running, WAIT)
    assert asyncio.all_tasks() - before == set() and socket.cleaned


# -- the consumer bases, whose __call__ runs messages_dispatch --------------------------------

GROUP = "room"


class SyncRoom(SafeJsonWebsocketConsumer):
    groups = [GROUP]

    def connect(self):
        self.accept()
        self.send_json({"channel": getattr(self, "channel_name", None)})

    def receive_json(self, content, **kwargs):
        self.send_json({"echo": content})

    def room_note(self, message):
        self.send_json({"note": message["n"]})

    def room_crash(self, message):
        raise RuntimeError("a bug in a group message's handler")


class AsyncRoom(AsyncSafeJsonWebsocketConsumer):
    groups = [GROUP]

    async def connect(self):
        await self.accept()
        await self.send_json({"channel": getattr(self, "channel_name", None)})

    async def receive_json(self, content, **kwargs):
        await self.send_json({"echo": content})

    async def room_note(self, message):
        await self.send_json({"note": message["n"]})

    async def room_crash(self, message):
        raise RuntimeError("a bug in a group message's handler")


rooms = pytest.mark.parametrize("consumer", [SyncRoom, AsyncRoom])


async def room_open(consumer: type) -> tuple[WebsocketCommunicator, str | None]:
    communicator = WebsocketCommunicator(consumer.as_asgi(), "/")
    connected, _ = await communicator.connect()
    assert connected
    return communicator, (await communicator.receive_json_from())["channel"]


def crashes(consumer: type) -> float:
    return (
        REGISTRY.get_sample_value(
            "realtime_closes_total", {"site": "shared-tests", "consumer": consumer.__name__, "code": "1011"}
        )
        or 0.0
    )


@rooms
@pytest.mark.django_db
async def test_the_disconnect_ends_the_consumer_cleanly(consumer, layer):
    """StopConsumer, which the disconnect's handler raises, ends the consumer without an error."""
    socket, _ = await room_open(consumer)
    await layer.group_send(GROUP, {"type": "room.note", "n": 1})
    assert await socket.receive_json_from(timeout=WAIT) == {"note": 1}
    await socket.disconnect(timeout=WAIT)
    assert socket.future.done() and socket.future.exception() is None


@rooms
@pytest.mark.django_db
async def test_a_group_handlers_exception_ends_the_consumer_and_propagates_counted_crashed(consumer, layer):
    crashed_before = crashes(consumer)
    socket, _ = await room_open(consumer)
    await layer.group_send(GROUP, {"type": "room.crash"})
    with pytest.raises(RuntimeError, match="a bug in a group message's handler"):
        await socket.wait(timeout=WAIT)
    assert crashes(consumer) - crashed_before == 1


class SyncAlone(SyncRoom):
    groups = []
    channel_layer_alias = "not-configured"


class AsyncAlone(AsyncRoom):
    groups = []
    channel_layer_alias = "not-configured"


@pytest.mark.parametrize("consumer", [SyncAlone, AsyncAlone])
@pytest.mark.django_db
async def test_without_a_channel_layer_a_consumer_still_works(consumer):
    socket, channel = await room_open(consumer)
    await socket.send_json_to({"n": 1})
    assert (channel, await socket.receive_json_from(timeout=WAIT)) == (None, {"echo": {"n": 1}})
    await socket.disconnect(timeout=WAIT)
    assert socket.future.exception() is None


@rooms
@pytest.mark.django_db
async def test_the_pubsub_layers_channel_is_released_on_exit_and_unsubscribed(consumer, redis_server, settings):
    settings.CHANNEL_LAYERS = channel_layers(prefix="dispatch-test", redis_urls=[redis_server], kind="pubsub")
    layer: RedisPubSubLayer = get_channel_layer()
    socket, channel = await room_open(consumer)
    (shard,) = layer._get_layer()._shards
    assert channel in shard._subscribed_to
    await socket.disconnect(timeout=WAIT)
    assert channel not in layer._get_layer().channels and channel not in shard._subscribed_to
    await layer.flush()


@rooms
@pytest.mark.django_db
async def test_the_core_layers_receive_is_cancelled_on_exit_and_forgets_a_crashed_consumers_groups(
    consumer, redis_server, settings
):
    """A consumer that crashed never discarded its groups: the cancelled receive makes its
    process stop refreshing them, so that they expire (RedisCoreLayer.receive)."""
    settings.CHANNEL_LAYERS = channel_layers(prefix="dispatch-test", redis_urls=[redis_server], kind="core")
    layer: RedisCoreLayer = get_channel_layer()
    socket, channel = await room_open(consumer)
    assert channel in layer.memberships[GROUP]
    await layer.group_send(GROUP, {"type": "room.crash"})
    with pytest.raises(RuntimeError):
        await socket.wait(timeout=WAIT)
    assert GROUP not in layer.memberships and not await core_group_holds(layer=layer, channel=channel)
    await layer.flush()


async def core_group_holds(*, layer: RedisCoreLayer, channel: str) -> bool:
    """Whether GROUP's sorted set in Redis still holds ``channel``: a crashed consumer's channel left
    there got the group's messages, buffered by its process, until GROUP_EXPIRY (a day)."""
    connection = layer.connection(layer.consistent_hash(GROUP))
    return await connection.zscore(layer._group_key(GROUP), channel) is not None


@rooms
@pytest.mark.django_db
async def test_a_crashed_consumer_leaves_its_pubsub_groups_and_the_last_member_unsubscribes_them(
    consumer, redis_server, settings
):
    """A consumer that crashed never ran its group_discard: its channel stayed in the group's set,
    which never emptied, and the group stayed subscribed for the process's life."""
    settings.CHANNEL_LAYERS = channel_layers(prefix="dispatch-test", redis_urls=[redis_server], kind="pubsub")
    layer: RedisPubSubLayer = get_channel_layer()
    socket, _ = await room_open(consumer)
    loop_layer = layer._get_layer()
    group_channel = loop_layer._get_group_channel_name(GROUP)
    (shard,) = loop_layer._shards
    assert group_channel in shard._subscribed_to
    await layer.group_send(GROUP, {"type": "room.crash"})
    with pytest.raises(RuntimeError):
        await socket.wait(timeout=WAIT)
    assert group_channel not in loop_layer.groups and group_channel not in shard._subscribed_to
    await layer.flush()


class Slow:
    """A slow handler's wait (a database write, a lock): ``begun`` once it waits, until ``go``.
    Threading events: the sync base's handlers run in a thread of their own."""

    def __init__(self):
        self.begun, self.go = threading.Event(), threading.Event()

    def wait(self) -> None:
        self.begun.set()
        assert self.go.wait(WAIT)


class SyncSlowRoom(SyncRoom):
    slow = Slow()  # each test sets its own

    def websocket_disconnect(self, message):
        self.slow.wait()
        super().websocket_disconnect(message)

    def room_slow_crash(self, message):
        self.slow.wait()
        raise RuntimeError("a bug in a group message's slow handler")


class AsyncSlowRoom(AsyncRoom):
    slow = Slow()

    async def websocket_disconnect(self, message):
        await asyncio.to_thread(self.slow.wait)
        await super().websocket_disconnect(message)

    async def room_slow_crash(self, message):
        await asyncio.to_thread(self.slow.wait)
        raise RuntimeError("a bug in a group message's slow handler")


slow_rooms = pytest.mark.parametrize("consumer", [SyncSlowRoom, AsyncSlowRoom])


def receives_noted(*, layer, monkeypatch) -> asyncio.Queue:
    """A queue that gets every message ``layer``'s receive returns (to the consumers opened from now on)."""
    returned: asyncio.Queue = asyncio.Queue()
    receive = layer.receive

    async def noted(channel):
        message = await receive(channel)
        returned.put_nowait(message)
        return message

    monkeypatch.setattr(layer, "receive", noted, raising=False)
    return returned


def pushes_noted(*, layer: RedisPubSubLayer, monkeypatch) -> asyncio.Queue:
    """A queue that gets every message ``layer`` pushes to the consumers opened from now on (channel_push)."""
    returned: asyncio.Queue = asyncio.Queue()
    push = layer.channel_push

    async def noted(channel, deliver):
        def delivered(message):
            deliver(message)
            returned.put_nowait(message)

        await push(channel, delivered)

    monkeypatch.setattr(layer, "channel_push", noted, raising=False)
    return returned


async def notes_queued_behind(*, slow: Slow, layer, returned: asyncio.Queue, read: int) -> None:
    """Once the consumer's slow handler waits: three group messages sent, until ``read`` of them came
    out of the layer. The core layer's task reads one ahead (with the slow one's, two out), then waits
    for a dispatch, out of the layer's receive, the others in the layer; the pub/sub layer pushes all
    three, which wait in the consumer's loop."""
    await asyncio.to_thread(slow.begun.wait, WAIT)
    for n in range(3):
        await layer.group_send(GROUP, {"type": "room.note", "n": n})
    async with asyncio.timeout(WAIT):
        assert [(await returned.get())["n"] for _ in range(read)] == list(range(read))


@slow_rooms
@pytest.mark.django_db
async def test_a_consumer_that_ends_with_group_messages_waiting_releases_its_pubsub_channel(
    consumer, redis_server, settings, monkeypatch
):
    """No receive of the layer is under way to clean up when it is cancelled (the channel's messages
    are pushed): the consumer's loop releases the channel as it ends, or it stayed in the layer,
    and subscribed, for good."""
    settings.CHANNEL_LAYERS = channel_layers(prefix="dispatch-test", redis_urls=[redis_server], kind="pubsub")
    layer: RedisPubSubLayer = get_channel_layer()
    returned, slow = pushes_noted(layer=layer, monkeypatch=monkeypatch), Slow()
    monkeypatch.setattr(consumer, "slow", slow)
    socket, channel = await room_open(consumer)
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await notes_queued_behind(slow=slow, layer=layer, returned=returned, read=3)
    slow.go.set()
    await socket.wait(timeout=WAIT)
    (shard,) = layer._get_layer()._shards
    assert channel not in layer._get_layer().channels and channel not in shard._subscribed_to
    await layer.flush()


@rooms
@pytest.mark.django_db
async def test_a_pubsub_unsubscribe_held_behind_a_publish_completes_before_the_consumer_ends_and_logs_no_error(
    consumer, redis_server, settings, monkeypatch, caplog
):
    """The consumer's channel is unsubscribed as it ends (MessagesLoop, channel_release), which waits
    for its Redis's lock behind publishes (seconds, under load). channels-redis's clean-up, in its
    receive, was cut short there by a second cancellation, logged an error per socket and left the
    channel subscribed; here it goes on, and the consumer ends once it is done."""
    settings.CHANNEL_LAYERS = channel_layers(prefix="dispatch-test", redis_urls=[redis_server], kind="pubsub")
    layer: RedisPubSubLayer = get_channel_layer()
    loop_layer = layer._get_layer()
    unsubscribing, unsubscribe = asyncio.Event(), loop_layer.channel_unsubscribe

    async def noted(**kwargs):
        unsubscribing.set()
        await unsubscribe(**kwargs)

    monkeypatch.setattr(loop_layer, "channel_unsubscribe", noted)
    socket, channel = await room_open(consumer)
    # Another member: the disconnect's group_discard leaves the group subscribed, and needs no lock.
    await layer.group_add(GROUP, await layer.new_channel())
    (shard,) = loop_layer._shards
    await shard._lock.acquire()  # a publish under way
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    try:
        await asyncio.wait_for(unsubscribing.wait(), WAIT)
        ended_before_its_release = socket.future.done()
    finally:
        shard._lock.release()
    await socket.wait(timeout=WAIT)
    assert not ended_before_its_release and channel not in shard._subscribed_to
    assert [record.getMessage() for record in caplog.records if record.levelname == "ERROR"] == []
    await layer.flush()


@slow_rooms
@pytest.mark.django_db
async def test_a_consumer_that_crashes_with_two_group_messages_out_releases_its_core_channel(
    consumer, redis_server, settings, monkeypatch
):
    """As above: the core layer's receive, never cancelled, did not forget the memberships of a
    consumer that crashed, which its process then refreshed for good."""
    settings.CHANNEL_LAYERS = channel_layers(prefix="dispatch-test", redis_urls=[redis_server], kind="core")
    layer: RedisCoreLayer = get_channel_layer()
    returned, slow = receives_noted(layer=layer, monkeypatch=monkeypatch), Slow()
    monkeypatch.setattr(consumer, "slow", slow)
    socket, channel = await room_open(consumer)
    await layer.group_send(GROUP, {"type": "room.slow_crash"})
    assert (await asyncio.wait_for(returned.get(), WAIT))["type"] == "room.slow_crash"
    await notes_queued_behind(slow=slow, layer=layer, returned=returned, read=1)
    slow.go.set()
    with pytest.raises(RuntimeError, match="slow handler"):
        await socket.wait(timeout=WAIT)
    assert GROUP not in layer.memberships and channel not in layer.receive_buffer
    assert not await core_group_holds(layer=layer, channel=channel)
    await layer.flush()


@rooms
@pytest.mark.django_db
async def test_group_messages_make_no_task_each_in_either_base(consumer):
    """The lever, in the bases: Channels' __call__ made a task per message read from the layer."""
    socket, _ = await room_open(consumer)
    layer = get_channel_layer()
    loop, made = asyncio.get_running_loop(), []

    def task_counted(loop, coro, **kwargs):
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(task_counted)
    try:
        for n in range(20):
            await layer.group_send(GROUP, {"type": "room.note", "n": n})
        assert [await socket.receive_json_from(timeout=WAIT) for _ in range(20)] == [{"note": n} for n in range(20)]
    finally:
        loop.set_task_factory(None)
    # Tasks that group_send and the sync base's sends make are not the consumer's reads.
    assert [coro for coro in made if coro.__qualname__ == "InMemoryChannelLayer.receive"] == []
    await socket.disconnect(timeout=WAIT)
