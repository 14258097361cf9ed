"""Autobahn 7.x, closing: the closing handshake answered and the TCP connection closed
by the server, whatever the Close carries when it is valid (no payload, a code, a
reason of up to 123 octets); nothing after a Close acted on; and a Close with a
1-octet payload, a reserved or undefined code, or a reason that is not UTF-8
failing the connection."""

import pytest
from cases import Cases
from wsclient import CLOSE, CONTINUATION, TEXT, Close, Message, close, close_payload, frame, message, ping

from realtime_common.consumers import FRAME_MAX_BYTES

CASES = Cases()
HELLO = "Hello World!"


def close_then(*after: bytes):
    """Close, then frames that must be ignored (§5.5.1: nothing is sent after a Close)."""

    def scenario(ws):
        ws.close_handshake(frame_bytes=close(1000) + b"".join(after))

    return scenario


@CASES.add("7.1.1", "Send a message followed by a close frame.")
def case_7_1_1(ws):
    ws.send(message(HELLO))
    ws.expect(Message(HELLO))
    ws.close_handshake()


CASES.register("7.1.2", "Send two close frames: the second is ignored.", close_then(frame(CLOSE)))
CASES.register("7.1.3", "Send a ping after the close frame: no pong.", close_then(ping()))
CASES.register("7.1.4", "Send a text message after the close frame: not echoed.", close_then(message(HELLO)))


@CASES.add("7.1.5", "Send a message fragment, then a close frame, then the last fragment.")
def case_7_1_5(ws):
    ws.close_handshake(frame_bytes=frame(TEXT, "fragment1", fin=False) + close(1000) + frame(CONTINUATION, "fragment2"))


@CASES.add("7.1.6", "Send a 64 KiB message, a small one, a close frame and a ping, back to back.")
def case_7_1_6(ws):
    # Autobahn's is 256 KiB: over the sites' limit, refused with 1009 (test_frame_size.py).
    big = ("BAsd7&jh23" * (FRAME_MAX_BYTES // 10 + 1))[:FRAME_MAX_BYTES]
    ws.send(message(big), message(HELLO), close(1000), ping())
    # Autobahn grades this one informational: the echoes may or may not beat the
    # Close, but they come in order, whole, and nothing answers the ping.
    may_first = [Message(big), Message(HELLO)]
    seen = []
    while not isinstance(got := ws.receive(), Close):
        seen.append(got)
        assert seen == may_first[: len(seen)], f"expected the echoes, then the server's Close; got {seen!r}"
    assert got.code == 1000, f"the server answered the Close with {got.code}"
    ws.expect_end()


CASES.register(
    "7.3.1",
    "Send a close frame with payload length 0 (no close code, no close reason).",
    lambda ws: ws.close_handshake(code=None, replies=(1000, None)),
)


@CASES.add("7.3.2", "Send a close frame with payload length 1.")
def case_7_3_2(ws):
    ws.send(frame(CLOSE, b"a"))
    ws.expect_failure(1002)


CASES.register(
    "7.3.3",
    "Send a close frame with payload length 2 (regular close with a code).",
    lambda ws: ws.close_handshake(1000),
)
CASES.register(
    "7.3.4", "Send a close frame with close code and close reason.", lambda ws: ws.close_handshake(1000, HELLO)
)
CASES.register(
    "7.3.5",
    "Send a close frame with close code and close reason of maximum length (123).",
    lambda ws: ws.close_handshake(frame_bytes=frame(CLOSE, close_payload(1000, "*" * 123))),
)


@CASES.add("7.3.6", "Send a close frame with close code and close reason which is too long (124): a payload of 126.")
def case_7_3_6(ws):
    ws.send(frame(CLOSE, close_payload(1000, "*" * 124)))
    ws.expect_failure(1002)


@CASES.add("7.5.1", "Send a close frame with invalid UTF-8 payload.")
def case_7_5_1(ws):
    ws.send(frame(CLOSE, close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited")))
    ws.expect_failure(1007)


def valid_code(code: int):
    """A Close with any valid code is answered with the same code or 1000 (RFC 6455
    §5.5.1: "typically echos"); Autobahn accepts either, as this does."""

    def scenario(ws):
        ws.close_handshake(frame_bytes=frame(CLOSE, close_payload(code)), replies=(code, 1000))

    return scenario


def invalid_code(code: int):
    def scenario(ws):
        ws.send(frame(CLOSE, close_payload(code)))
        ws.expect_failure(1002)

    return scenario


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
for number, code in enumerate(VALID_CODES, start=1):
    CASES.register(f"7.7.{number}", f"Send close with valid close code {code}.", valid_code(code))

# Reserved (1004), never sent (1005, 1006), unassigned (1016-2999), and 0-999, unused.
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
for number, code in enumerate(INVALID_CODES, start=1):
    CASES.register(f"7.9.{number}", f"Send close with invalid close code {code}.", invalid_code(code))
# 1015 (TLS handshake failure) MUST NOT be sent either (RFC 6455 §7.4.1). Autobahn
# dropped it from 7.9.x in 2018 without a number of its own: this is an extra case.
CASES.register("7.9.x_1015", "Send close with close code 1015 (not an Autobahn case since 2018).", invalid_code(1015))
# Past 4999 no code is defined; Autobahn grades these informational, the autobahn
# library (and this suite) fail the connection.
CASES.register("7.13.1", "Send close with close code 5000.", invalid_code(5000))
CASES.register("7.13.2", "Send close with close code 65535.", invalid_code(65535))


@pytest.mark.parametrize("scenario", CASES.params())
def test_close(ws, scenario):
    scenario(ws)
