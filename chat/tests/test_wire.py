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
    command = command_parse({"command": "typing", "room": "lobby", "since": 3, "text": "hi"})
    assert command == Command(name="typing", room="lobby")


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


def test_the_largest_joined_frame_is_50_messages_of_at_most_24_5_kb_plus_the_members():
    """The README's bound: every character of a message escaped at its longest (a
    character outside the BMP is two \\uXXXX escapes), the longest slug, username and title."""
    from types import SimpleNamespace

    from realtime_common.consumers import frame_encode
    from rooms.selectors import HISTORY_LENGTH
    from rooms.wire import SLUG_MAX_LENGTH, TEXT_MAX_LENGTH, joined_frame, message_frame

    room = SimpleNamespace(slug="r" * SLUG_MAX_LENGTH, title="\U0001f600" * 100)
    user = SimpleNamespace(get_username=lambda: "u" * 150)
    message = SimpleNamespace(
        room=room,
        pk=10**12,
        user=user,
        text="\U0001f600" * TEXT_MAX_LENGTH,
        created=SimpleNamespace(isoformat=lambda: "2026-11-30T12:00:00.123456+00:00"),
    )
    one = len(frame_encode(frame=message_frame(message=message, seq=10**17)))
    assert one <= 24.5 * 1024
    members = ["u" * 150] * 100
    frame = joined_frame(
        room=room, history=[message_frame(message=message, seq=10**17)] * HISTORY_LENGTH, members=members, more=True
    )
    assert len(frame_encode(frame=frame)) <= HISTORY_LENGTH * 24.5 * 1024 + len(members) * 160 + 2048
