"""database_sync_to_async_sending: what a call commits is sent from the event loop, in commit
order, before the call returns, and whatever happens to the caller; a rollback sends nothing;
a hung layer holds a bounded queue."""

import asyncio
import json
import threading
from types import SimpleNamespace

import pytest
from django.db import transaction

from realtime_common.broadcast import GROUP_SENDS, CommittedSends, database_sync_to_async_sending, group_send_on_commit
from tests.liveapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch):
    """What reaches the channel layer, in order: (group, message). Each send yields to the loop
    a few times first (0 to 3, by its seq), as a real one does: sends started by several tasks
    would overtake one another."""
    sent: list[tuple[str, dict]] = []
    arrived = asyncio.Event()
    failing: set[str] = set()  # groups whose sends raise
    first_held = threading.Event()  # the send of seq 1 waits for it; set from the start unless a test clears it
    first_held.set()

    async def group_send(group, message):
        if message.get("seq") == 1:
            await asyncio.to_thread(first_held.wait, 10)
        for _ in range(message.get("seq", 0) * 7 % 4):
            await asyncio.sleep(0)
        if group in failing:
            raise ConnectionError("Redis went away")
        sent.append((group, message))
        arrived.set()

    def hop_refused(function):
        raise AssertionError("a committed change hopped back to the loop from the ORM's thread")

    monkeypatch.setattr("realtime_common.broadcast.get_channel_layer", lambda: SimpleNamespace(group_send=group_send))
    monkeypatch.setattr("realtime_common.broadcast.async_to_sync", hop_refused)
    return SimpleNamespace(messages=sent, arrived=arrived, failing=failing, first_held=first_held)


async def sent_count(sent, count: int) -> None:
    while len(sent.messages) < count:
        sent.arrived.clear()
        await asyncio.wait_for(sent.arrived.wait(), 10)


async def test_what_a_call_commits_is_sent_from_the_loop_before_it_returns(sent):
    note = await database_sync_to_async_sending(Note.objects.create, board="a", text="one")
    ((group, message),) = sent.messages
    assert group == "notes-a"
    assert json.loads(message["text"])["id"] == note.pk
    assert isinstance(message["committed"], float)


async def test_a_rollback_sends_nothing(sent):
    def save_then_fail():
        with transaction.atomic():
            Note.objects.create(board="a", text="never")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await database_sync_to_async_sending(save_then_fail)
    await database_sync_to_async_sending(Note.objects.create, board="a", text="kept")
    await sent_count(sent, 1)
    assert [json.loads(message["text"])["text"] for _, message in sent.messages] == ["kept"]


async def test_concurrent_calls_are_sent_in_the_order_of_their_commits(sent):
    """The first send is held until every call has committed and returned: a send started
    meanwhile for another call would overtake it."""
    committed: list[str] = []
    sent.first_held.clear()

    def create(*, text: str) -> None:
        Note.objects.create(board="a", text=text)
        committed.append(text)  # the ORM's one thread: in commit order
        if len(committed) == 30:
            sent.first_held.set()

    await asyncio.gather(*(database_sync_to_async_sending(create, text=str(number)) for number in range(30)))
    await sent_count(sent, 30)
    assert [json.loads(message["text"])["text"] for _, message in sent.messages] == committed
    assert [message["seq"] for _, message in sent.messages] == list(range(1, 31))


async def test_a_cancelled_caller_s_commit_is_still_sent(sent):
    started, release = threading.Event(), threading.Event()

    def create_when_released() -> None:
        started.set()
        release.wait(10)
        Note.objects.create(board="a", text="after the cancel")

    call = asyncio.ensure_future(database_sync_to_async_sending(create_when_released))
    await asyncio.to_thread(started.wait, 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    release.set()
    await sent_count(sent, 1)
    assert json.loads(sent.messages[0][1]["text"])["text"] == "after the cancel"


async def test_a_send_that_fails_is_logged_and_the_next_ones_still_go(sent, caplog, monkeypatch):
    sent.failing.add("unreachable")  # raises ConnectionError, one of REDIS_DOWN: logged once per outage
    monkeypatch.setattr(GROUP_SENDS, "failures", 0)  # no outage logged already by another test

    def create_two() -> None:
        with transaction.atomic():
            group_send_on_commit(group="unreachable", messages=[{"type": "note.lost"}])
            Note.objects.create(board="a", text="after")

    await database_sync_to_async_sending(create_two)
    await sent_count(sent, 1)
    assert [group for group, _ in sent.messages] == ["notes-a"]
    assert "the channel layer is unavailable (ConnectionError: Redis went away)" in caplog.text


async def test_while_the_layer_hangs_the_oldest_waiting_sends_are_given_up(monkeypatch, caplog):
    monkeypatch.setattr(CommittedSends, "QUEUE_LIMIT", 5)
    monkeypatch.setattr(GROUP_SENDS, "failures", 0)  # no outage logged already by another test
    taken, released, sent = asyncio.Event(), asyncio.Event(), []

    def send_of(number: int):
        async def send(*, committed: float) -> None:
            taken.set()
            await released.wait()  # the layer hangs until released
            sent.append(number)

        return send

    sends = CommittedSends()
    first = sends.put(sends=[(send_of(1), 0.0, 1)])
    await taken.wait()  # the sending task took the first, and hangs in it
    waiting = [sends.put(sends=[(send_of(number), 0.0, 3)]) for number in range(2, 12)]  # 3 messages each
    assert len(sends.queue) == 5 and all(future.done() for future in waiting[:5])  # 2 to 6 given up
    given_up = [record for record in caplog.records if "given up" in record.getMessage()]
    assert len(given_up) == 1 and "3 group messages given up" in given_up[0].getMessage()  # the outage's first
    released.set()
    await asyncio.gather(first, *waiting)
    assert sent == [1, 7, 8, 9, 10, 11]


async def test_a_sending_task_that_ends_leaves_no_caller_waiting(caplog):
    taken = asyncio.Event()

    async def hanging(*, committed: float) -> None:
        taken.set()
        await asyncio.Event().wait()

    sends = CommittedSends()
    first = sends.put(sends=[(hanging, 0.0, 1)])
    await taken.wait()
    waiting = [sends.put(sends=[(hanging, 0.0, 1)]) for _ in range(3)]
    sends.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sends.task
    assert all(future.done() for future in [first, *waiting]) and not sends.queue
    assert "3 committed changes not sent: the sending task ended" in caplog.text
