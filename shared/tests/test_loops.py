import asyncio
import gc
import weakref

from realtime_common.loops import loop_local


class Thing:
    pass


def test_each_event_loop_has_its_own_and_keeps_it_while_it_runs():
    thing_get = loop_local(Thing)

    async def twice() -> tuple[Thing, Thing]:
        return thing_get(), thing_get()

    first, again = asyncio.run(twice())
    other, _ = asyncio.run(twice())
    assert first is again
    assert other is not first


def test_what_a_loop_made_goes_with_the_loop():
    thing_get = loop_local(Thing)

    async def made() -> weakref.ref:
        return weakref.ref(thing_get())

    loop = asyncio.new_event_loop()
    thing = loop.run_until_complete(made())
    assert thing() is not None  # kept while its loop is
    loop.close()
    del loop
    gc.collect()
    assert thing() is None
