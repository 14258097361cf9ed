"""Autobahn 1.x, framing: text and binary messages of every payload length encoding
(7-bit, 16-bit, 64-bit lengths and their edges), whole and written in chops."""

import pytest
from cases import Cases
from wsclient import Message, message

CASES = Cases()
LENGTHS = [0, 125, 126, 127, 128, 65535, 65536]
# Sent after an empty message, so that a missing echo shows at once, not after a timeout.
MARKER = "marker"


def echo(payload: str | bytes, *, chop: int | None = None):
    def scenario(ws):
        ws.send(message(payload), chop=chop)
        if payload:
            ws.expect(Message(payload))
        else:
            ws.send(message(MARKER))
            ws.expect(Message(payload), Message(MARKER))
        ws.close_handshake()

    return scenario


for group, kind, payload in (("1.1", "text", lambda n: "*" * n), ("1.2", "binary", lambda n: b"\xfe" * n)):
    for number, length in enumerate(LENGTHS, start=1):
        CASES.register(f"{group}.{number}", f"Send {kind} message with payload {length}.", echo(payload(length)))
    CASES.register(
        f"{group}.8",
        f"Send {kind} message with payload 65536, written in chops of 997 octets.",
        echo(payload(65536), chop=997),
    )


@pytest.mark.parametrize("scenario", CASES.params())
def test_framing(ws, scenario):
    scenario(ws)
