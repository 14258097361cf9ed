"""Cases numbered as in the Autobahn testsuite, and the ones each server fails for good."""

from collections.abc import Callable

import pytest
from wsclient import WireClient


def case_id(number: str) -> str:
    return "case_" + number.replace(".", "_")


# Cases a server fails that nothing in this repository can fix, by Autobahn case id or test
# name (conftest.py marks them). Strict: the day the server passes one, the suite turns red and
# the case comes off this list.
EMPTY_MESSAGE_DROPPED = (
    "daphne never sends an empty message: WebSocketProtocol.handle_reply (daphne/ws_protocol.py) "
    "sends a websocket.send only `if message.get('bytes')` / `if message.get('text')`, so the "
    "consumer's echo of b'' or '' is dropped without a frame or an error (channels passes the "
    "empty value through; autobahn would send the empty frame). An ASGI application has no other "
    "way to send a data frame, so only a daphne fix (`is not None`) can pass this."
)
OVERSIZED_PASSED_ON = (
    "granian has no option to limit a message's size (tungstenite's defaults: 64 MiB a message, 16 MiB "
    "a frame): a message over the sites' 64 KiB reaches the application whole. The echo consumer echoes it; "
    "the sites' consumers close with 1009 themselves (frame_receive), once the message is in memory"
)
SERVER_FAILS: dict[str, dict[str, str]] = {
    "daphne": {case_id(number): EMPTY_MESSAGE_DROPPED for number in ("1.1.1", "1.2.1", "6.1.1", "6.1.2")},
    "uvicorn": {
        **{
            case_id(number): (
                "uvicorn's websockets-sansio protocol gathers a fragmented text message and decodes it only once "
                "it is whole (send_receive_event_to_app: data.decode()), and websockets reads a frame whole: "
                "invalid UTF-8 fails the connection (1007) at the message's end, not at the octet that makes it "
                "invalid (Autobahn grades this NON-STRICT)"
            )
            for number in ("6.4.1", "6.4.2", "6.4.3", "6.4.4")
        },
        case_id("7.1.5"): (
            "websockets (sans-I/O) takes a Close that comes between the fragments of a message for a protocol "
            "error ('incomplete fragmented message') and answers it with 1002, where RFC 6455 §5.4 allows control "
            "frames between fragments and the Close asks for 1000"
        ),
    },
    "granian": {
        **{
            case_id(number): (
                "granian (tungstenite) reads a frame whole before it checks its UTF-8: invalid text written in "
                "chops of one frame fails the connection when the frame is complete (Autobahn: NON-STRICT)"
            )
            for number in ("6.4.3", "6.4.4")
        },
        "test_oversized_frame_closed_with_1009": OVERSIZED_PASSED_ON,
        "test_oversized_fragmented_message_closed_with_1009": OVERSIZED_PASSED_ON,
        "test_oversized_frame_refused_on_its_header": (
            "a frame announcing 1 GiB is refused on its header (over tungstenite's 16 MiB frame limit), with a Close "
            "frame carrying no code, not 1009"
        ),
    },
}
# Cases a server fails some of the time, by a race: not strict, so that they neither pass nor
# fail the suite, but the reason is printed with each run's xfails.
SERVER_RACES: dict[str, dict[str, str]] = {
    "daphne": {},
    "uvicorn": {
        f"{test} 2097152": (
            "uvicorn answers a 2 MiB message (one frame, or 16 KiB fragments) with its Close 1009 and closes the TCP "
            "connection while the client is still writing it: the kernel answers what comes next with a reset, "
            "which discards the Close the client had not read yet (some runs in four here). daphne (autobahn) "
            "reads the rest of the message before it closes"
        )
        for test in ("test_oversized_frame_closed_with_1009", "test_oversized_fragmented_message_closed_with_1009")
    },
    "granian": {},
}
# Per server, the exceptions it logs with a traceback by design for something a client sent, by
# the start of the traceback's last line: the suite fails on any other traceback in the log.
LOGGED_TRACEBACKS: dict[str, tuple[str, ...]] = {
    "daphne": (),
    "uvicorn": (
        # Invalid UTF-8 in a fragmented text message: uvicorn's logger.exception, once per message
        # (a page can fill the log with them).
        "UnicodeDecodeError: 'utf-8' codec can't decode",
    ),
    "granian": (),
}


def tracebacks_unexpected(*, text: str, server: str) -> list[str]:
    """The last lines (the exceptions) of the tracebacks in a server's log, but those it logs by
    design (cases.LOGGED_TRACEBACKS)."""
    exceptions, in_traceback = [], False
    for line in text.splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            in_traceback = False
            if not line.startswith(LOGGED_TRACEBACKS[server]):
                exceptions.append(line)
    return exceptions


# Servers that fail a connection (RFC 6455 §7.1.7) with a Close frame carrying no status code
# instead of 1002 or 1007: the Close is a SHOULD and its code is left to the endpoint, so the
# connection is still failed at the right frame, but a page cannot tell a protocol error from
# a normal close by its code. Checked as such (wsclient's expect_failure), not marked xfail.
CODELESS_FAILURES: dict[str, str] = {
    "granian": "granian closes with an empty Close payload (no code) on every protocol error",
}

Scenario = Callable[[WireClient], None]


class Cases:
    """One group's cases, registered in Autobahn's order, for ``pytest.mark.parametrize``."""

    def __init__(self) -> None:
        self.cases: list[tuple[str, Scenario]] = []

    def add(self, number: str, description: str) -> Callable[[Scenario], Scenario]:
        def register(scenario: Scenario) -> Scenario:
            self.register(number, description, scenario)
            return scenario

        return register

    def register(self, number: str, description: str, scenario: Scenario) -> None:
        assert number not in {known for known, _ in self.cases}, f"case {number} twice"
        scenario.__doc__ = f"Autobahn case {number}: {description}"
        self.cases.append((number, scenario))

    def params(self) -> list:
        return [pytest.param(scenario, id=case_id(number)) for number, scenario in self.cases]
