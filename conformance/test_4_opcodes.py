"""Autobahn 4.x, opcodes: the reserved non-control (3-7) and control (11-15) opcodes
fail the connection (1002), and nothing after them is acted on."""

import pytest
from cases import Cases
from wsclient import Message, frame, message, ping

CASES = Cases()
HELLO = "Hello, world!"
RESERVED_PAYLOAD = "reserved opcode payload"


def reserved_alone(opcode: int, payload: str):
    def scenario(ws):
        ws.send(frame(opcode, payload))
        ws.expect_failure(1002)

    return scenario


def reserved_after_a_message(opcode: int, payload: str, *, chop: int | None = None):
    """A valid message, the reserved opcode, then a Ping that must not be answered."""

    def scenario(ws):
        ws.send(message(HELLO), frame(opcode, payload), ping(), chop=chop)
        ws.expect_failure(1002, may_first=[Message(HELLO)])

    return scenario


for group, kind, first in (("4.1", "non-control", 3), ("4.2", "control", 11)):
    CASES.register(f"{group}.1", f"Send frame with reserved {kind} opcode {first}.", reserved_alone(first, ""))
    CASES.register(
        f"{group}.2",
        f"Send frame with reserved {kind} opcode {first + 1} and non-empty payload.",
        reserved_alone(first + 1, RESERVED_PAYLOAD),
    )
    CASES.register(
        f"{group}.3",
        f"Send small text message, then frame with reserved {kind} opcode {first + 2}, then ping.",
        reserved_after_a_message(first + 2, ""),
    )
    CASES.register(
        f"{group}.4",
        f"Send small text message, then frame with reserved {kind} opcode {first + 3} and non-empty payload, then ping.",
        reserved_after_a_message(first + 3, HELLO),
    )
    CASES.register(
        f"{group}.5",
        f"Send small text message, then frame with reserved {kind} opcode {first + 4} and non-empty payload, "
        "then ping, octet by octet.",
        reserved_after_a_message(first + 4, HELLO, chop=1),
    )


@pytest.mark.parametrize("scenario", CASES.params())
def test_opcodes(ws, scenario):
    scenario(ws)
