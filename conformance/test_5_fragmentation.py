"""Autobahn 5.x, fragmentation: fragmented messages reassembled, control frames
between fragments answered, and every broken sequence (fragmented control frames,
continuation without a start, a new message inside a fragmented one) failing the
connection (1002)."""

import pytest
from cases import Cases
from wsclient import CONTINUATION, PING, PONG, TEXT, Message, Pong, frame, frames_write

CASES = Cases()

HOW = {"one write": "", "frame by frame": ", frame by frame", "octet by octet": ", octet by octet"}


def fragments_refused(*, first: int, second: int):
    """Two fragments, "fragment1" (opcode ``first``, FIN clear) then "fragment2" (opcode
    ``second``): a sequence the server must refuse (1002), whichever frame breaks it."""

    def scenario(ws):
        ws.send(frame(first, "fragment1", fin=False), frame(second, "fragment2"))
        ws.expect_failure(1002)

    return scenario


CASES.register("5.1", "Send ping fragmented into 2 fragments.", fragments_refused(first=PING, second=CONTINUATION))
CASES.register("5.2", "Send pong fragmented into 2 fragments.", fragments_refused(first=PONG, second=CONTINUATION))


def message_fragments(*, parts: list[str]) -> list[bytes]:
    """One text message in ``parts`` as RFC 6455 §5.4 fragments it: a text frame, then
    continuations, FIN clear on all but the last."""
    return [
        frame(CONTINUATION if number else TEXT, part, fin=number == len(parts) - 1) for number, part in enumerate(parts)
    ]


def two_fragments(how: str):
    def scenario(ws):
        frames_write(ws=ws, frames=message_fragments(parts=["fragment1", "fragment2"]), how=how)
        ws.expect(Message("fragment1fragment2"))
        ws.close_handshake()

    return scenario


def ping_between_fragments(how: str):
    def scenario(ws):
        first, last = message_fragments(parts=["fragment1", "fragment2"])
        frames_write(ws=ws, frames=[first, frame(PING, "ping payload"), last], how=how)
        ws.expect(Pong(b"ping payload"), Message("fragment1fragment2"))
        ws.close_handshake()

    return scenario


def continuation_first(fin: bool, how: str):
    """A continuation with nothing to continue, then a whole message that must not be echoed."""

    def scenario(ws):
        frames = [frame(CONTINUATION, "non-continuation payload", fin=fin), frame(TEXT, "Hello, world!")]
        frames_write(ws=ws, frames=frames, how=how)
        ws.expect_failure(1002)

    return scenario


for number, how in enumerate(HOW, start=3):
    CASES.register(f"5.{number}", f"Send text message fragmented into 2 fragments{HOW[how]}.", two_fragments(how))
for number, how in enumerate(HOW, start=6):
    CASES.register(
        f"5.{number}",
        f"Send text message fragmented into 2 fragments, one ping with payload in-between{HOW[how]}.",
        ping_between_fragments(how),
    )
for number, how in enumerate(HOW, start=9):
    CASES.register(
        f"5.{number}",
        f"Send unfragmented text message after continuation frame with FIN = true, where there is nothing to continue{HOW[how]}.",
        continuation_first(True, how),
    )
for number, how in enumerate(HOW, start=12):
    CASES.register(
        f"5.{number}",
        f"Send unfragmented text message after continuation frame with FIN = false, where there is nothing to continue{HOW[how]}.",
        continuation_first(False, how),
    )


@CASES.add(
    "5.15",
    "Send text message fragmented into 2 fragments, then continuation frame with FIN = false where there is "
    "nothing to continue, then unfragmented text message.",
)
def case_5_15(ws):
    ws.send(
        *message_fragments(parts=["fragment1", "fragment2"]),
        frame(CONTINUATION, "fragment3", fin=False),
        frame(TEXT, "fragment4"),
    )
    ws.expect_failure(1002, may_first=[Message("fragment1fragment2")])


def continuation_then_fragmented(fin: bool):
    def scenario(ws):
        once = [frame(CONTINUATION, "fragment1", fin=fin), *message_fragments(parts=["fragment2", "fragment3"])]
        ws.send(*once, *once)
        ws.expect_failure(1002)

    return scenario


CASES.register(
    "5.16",
    "Twice: continuation frame with FIN = false (nothing to continue), then text message fragmented into 2 fragments.",
    continuation_then_fragmented(False),
)
CASES.register(
    "5.17",
    "Twice: continuation frame with FIN = true (nothing to continue), then text message fragmented into 2 fragments.",
    continuation_then_fragmented(True),
)


CASES.register(
    "5.18",
    "Send text message fragmented into 2 fragments, with both frame opcodes set to text.",
    fragments_refused(first=TEXT, second=TEXT),
)


def pings_while_fragmented(how: str):
    """Autobahn waits 1 s after the first ping; here the first pong is awaited instead."""

    def scenario(ws):
        fragments = message_fragments(parts=[f"fragment{number}" for number in range(1, 6)])
        frames_write(ws=ws, frames=[*fragments[:2], frame(PING, "pongme 1!")], how=how)
        ws.expect(Pong(b"pongme 1!"))
        frames_write(ws=ws, frames=[*fragments[2:4], frame(PING, "pongme 2!"), fragments[4]], how=how)
        ws.expect(Pong(b"pongme 2!"), Message("fragment1fragment2fragment3fragment4fragment5"))
        ws.close_handshake()

    return scenario


CASES.register(
    "5.19",
    "Send text message in 5 fragments, with a ping after the 2nd (answered before the rest is sent) and one before the 5th.",
    pings_while_fragmented("one write"),
)
CASES.register("5.20", "Same as 5.19, frame by frame.", pings_while_fragmented("frame by frame"))


@pytest.mark.parametrize("scenario", CASES.params())
def test_fragmentation(ws, scenario):
    scenario(ws)
