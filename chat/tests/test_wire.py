import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime_common.consumers import ClientError
from rooms.wire import Command, command_parse, since_parse

# chat/README.md, the chat protocol: a send's client_id is optional, 1 to 64 ASCII letters, digits, - and _.
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


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


def test_a_send_s_client_id_is_kept_and_is_optional():
    content = {"command": "send", "room": "lobby", "text": "hi"}
    assert command_parse({**content, "client_id": "9b2c-Z_0" * 8}).client_id == "9b2c-Z_0" * 8
    assert command_parse(content).client_id is None
    assert command_parse({**content, "client_id": None}).client_id is None
    # Only a send has one: other commands ignore the field.
    assert command_parse({"command": "typing", "room": "lobby", "client_id": "x"}).client_id is None


@pytest.mark.parametrize("client_id", ["", "x" * 65, "a b", "ü", "a/b", "a\n", 7, True, ["a"], {"a": 1}])
def test_a_bad_client_id_is_refused(client_id):
    with pytest.raises(ClientError) as refused:
        command_parse({"command": "send", "room": "lobby", "text": "hi", "client_id": client_id})
    assert refused.value.code == "invalid_client_id"


def test_a_refused_text_names_its_message_by_client_id():
    with pytest.raises(ClientError) as refused:
        command_parse({"command": "send", "room": "lobby", "text": " ", "client_id": "m-1"})
    assert refused.value.frame() == {
        "type": "error",
        "code": "invalid_text",
        "detail": refused.value.detail,
        "client_id": "m-1",
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5,
)


@given(
    client_id=json_values
    | st.from_regex(CLIENT_ID, fullmatch=True)
    | st.text(alphabet="Aa0_-", min_size=60, max_size=70)
)
def test_any_client_id_is_kept_exactly_when_the_readme_allows_it(client_id):
    content = {"command": "send", "room": "lobby", "text": "hi", "client_id": client_id}
    allowed = client_id is None or (isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id) is not None)
    try:
        assert command_parse(content).client_id == client_id and allowed
    except ClientError as refused:
        assert refused.code == "invalid_client_id" and not allowed


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
    """chat/README.md's bound: every character of a message escaped at its longest (a
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
        client_id="c" * 64,
        created=SimpleNamespace(isoformat=lambda: "2026-11-30T12:00:00.123456+00:00"),
    )
    one = len(frame_encode(frame=message_frame(message=message, seq=10**17)))
    assert one <= 24.5 * 1024
    members = ["u" * 150] * 100
    frame = joined_frame(
        room=room, history=[message_frame(message=message, seq=10**17)] * HISTORY_LENGTH, members=members, more=True
    )
    assert len(frame_encode(frame=frame)) <= HISTORY_LENGTH * 24.5 * 1024 + len(members) * 160 + 2048
