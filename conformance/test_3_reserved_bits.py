"""Autobahn 3.x, reserved bits: no extension is negotiated, so a frame with any RSV
bit set fails the connection (1002), and nothing after it is acted on."""

import pytest
from cases import Cases
from wsclient import BINARY, CLOSE, PING, TEXT, Message, frame, frames_write, message, ping

CASES = Cases()
HELLO = "Hello, world!"


@CASES.add("3.1", "Send small text message with RSV = 1.")
def case_3_1(ws):
    ws.send(frame(TEXT, HELLO, rsv=1))
    ws.expect_failure(1002)


def after_a_message(rsv: int, how: str):
    """A valid message, the same with RSV set, then a Ping that must not be answered."""

    def scenario(ws):
        frames_write(ws=ws, frames=[message(HELLO), frame(TEXT, HELLO, rsv=rsv), ping()], how=how)
        ws.expect_failure(1002, may_first=[Message(HELLO)])

    return scenario


CASES.register("3.2", "Send small text message, then again with RSV = 2, then ping.", after_a_message(2, "one write"))
CASES.register(
    "3.3",
    "Send small text message, then again with RSV = 3, then ping, frame by frame.",
    after_a_message(3, "frame by frame"),
)
CASES.register(
    "3.4",
    "Send small text message, then again with RSV = 4, then ping, octet by octet.",
    after_a_message(4, "octet by octet"),
)


@CASES.add("3.5", "Send small binary message with RSV = 5.")
def case_3_5(ws):
    ws.send(frame(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5))
    ws.expect_failure(1002)


@CASES.add("3.6", "Send ping with RSV = 6.")
def case_3_6(ws):
    # Autobahn's own 3.6 sends a binary frame here despite its description; this sends the Ping.
    ws.send(frame(PING, HELLO, rsv=6))
    ws.expect_failure(1002)


@CASES.add("3.7", "Send close with RSV = 7.")
def case_3_7(ws):
    ws.send(frame(CLOSE, rsv=7))
    ws.expect_failure(1002)


@pytest.mark.parametrize("scenario", CASES.params())
def test_reserved_bits(ws, scenario):
    scenario(ws)
