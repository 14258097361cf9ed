"""Cases numbered as in the Autobahn testsuite, and the ones daphne fails for good."""

from collections.abc import Callable

import pytest
from wsclient import WireClient

# Cases daphne fails that nothing in this repository can fix. Strict: the day
# daphne passes one, the suite turns red and the case comes off this list.
EMPTY_MESSAGE_DROPPED = (
    "daphne never sends an empty message: WebSocketProtocol.handle_reply (daphne/ws_protocol.py) "
    "sends a websocket.send only `if message.get('bytes')` / `if message.get('text')`, so the "
    "consumer's echo of b'' or '' is dropped without a frame or an error (channels passes the "
    "empty value through; autobahn would send the empty frame). An ASGI application has no other "
    "way to send a data frame, so only a daphne fix (`is not None`) can pass this."
)
DAPHNE_FAILS: dict[str, str] = {
    "1.1.1": EMPTY_MESSAGE_DROPPED,
    "1.2.1": EMPTY_MESSAGE_DROPPED,
    "6.1.1": EMPTY_MESSAGE_DROPPED,
    "6.1.2": EMPTY_MESSAGE_DROPPED,
}

Scenario = Callable[[WireClient], None]


def case_id(number: str) -> str:
    return "case_" + number.replace(".", "_")


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
        return [
            pytest.param(
                scenario,
                id=case_id(number),
                marks=[pytest.mark.xfail(strict=True, reason=DAPHNE_FAILS[number])] if number in DAPHNE_FAILS else [],
            )
            for number, scenario in self.cases
        ]
