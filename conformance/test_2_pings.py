"""Autobahn 2.x, pings and pongs: every Ping answered by a Pong with its payload,
control frame payloads of at most 125 octets, unsolicited Pongs ignored."""

import pytest
from cases import Cases
from wsclient import PING, Pong, frame, ping, pong

CASES = Cases()


def pong_for(payload: bytes, *, chop: int | None = None):
    def scenario(ws):
        ws.send(ping(payload), chop=chop)
        ws.expect(Pong(payload))
        ws.close_handshake()

    return scenario


CASES.register("2.1", "Send ping without payload.", pong_for(b""))
CASES.register("2.2", "Send ping with small text payload.", pong_for(b"Hello, world!"))
CASES.register("2.3", "Send ping with small binary (non UTF-8) payload.", pong_for(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"))
CASES.register("2.4", "Send ping with binary payload of 125 octets.", pong_for(b"\xfe" * 125))


@CASES.add("2.5", "Send ping with binary payload of 126 octets: control frames carry at most 125.")
def case_2_5(ws):
    ws.send(frame(PING, b"\xfe" * 126))
    ws.expect_failure(1002)


CASES.register(
    "2.6", "Send ping with binary payload of 125 octets, written octet by octet.", pong_for(b"\xfe" * 125, chop=1)
)


@CASES.add("2.7", "Send unsolicited pong without payload: nothing comes back.")
def case_2_7(ws):
    ws.send(pong())
    # The Close must be the first thing the server sends.
    ws.close_handshake()


@CASES.add("2.8", "Send unsolicited pong with payload: nothing comes back.")
def case_2_8(ws):
    ws.send(pong(b"unsolicited pong payload"))
    ws.close_handshake()


@CASES.add("2.9", "Send unsolicited pong with payload, then ping with payload: only the ping is answered.")
def case_2_9(ws):
    ws.send(pong(b"unsolicited pong payload"), ping(b"ping payload"))
    ws.expect(Pong(b"ping payload"))
    ws.close_handshake()


def ten_pings(*, chop: int | None):
    def scenario(ws):
        payloads = [f"payload-{number}".encode() for number in range(10)]
        for payload in payloads:
            ws.send(ping(payload), chop=chop)
        ws.expect(*[Pong(payload) for payload in payloads])
        ws.close_handshake()

    return scenario


CASES.register("2.10", "Send 10 pings with payload: 10 pongs, in order.", ten_pings(chop=None))
CASES.register("2.11", "Send 10 pings with payload, written octet by octet: 10 pongs, in order.", ten_pings(chop=1))


@pytest.mark.parametrize("scenario", CASES.params())
def test_pings_and_pongs(ws, scenario):
    scenario(ws)
