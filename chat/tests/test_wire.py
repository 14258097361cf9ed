import pytest

from rooms.wire import Command, command_parse, since_parse


def test_commands_are_parsed_and_text_trimmed():
    assert command_parse({"command": "join", "room": "lobby"}) == Command(name="join", room="lobby")
    assert command_parse({"command": "join", "room": "lobby", "since": 0}).since == 0
    assert command_parse({"command": "send", "room": "a_b-1", "text": " hi \n"}) == Command(
        name="send", room="a_b-1", text="hi"
    )


def test_fields_a_command_does_not_use_are_ignored():
    command = command_parse({"command": "leave", "room": "lobby", "since": "x", "text": 5, "extra": True})
    assert command == Command(name="leave", room="lobby")


@pytest.mark.parametrize(
    ("query", "since"),
    [
        (b"", {}),
        (b"since=lobby:12,random:40", {"lobby": 12, "random": 40}),
        (b"since=lobby%3A12%2Crandom%3A40", {"lobby": 12, "random": 40}),
        (b"since=lobby:-1,:3,x,caf%C3%A9:1,random:7", {"random": 7}),
    ],
)
def test_since_query_parameter(query, since):
    assert since_parse(query) == since
