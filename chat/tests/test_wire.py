import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime_common.consumers import ClientError
from rooms.wire import AFTER_MAX_LENGTH, Command, command_parse, since_parse

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


def test_members_asks_for_the_names_after_one_or_from_the_first():
    assert command_parse({"command": "members", "room": "lobby", "after": "bob"}) == Command(
        name="members", room="lobby", after="bob"
    )
    for first in ({}, {"after": None}, {"after": ""}):
        assert command_parse({"command": "members", "room": "lobby", **first}).after == ""
    # Only members has one: other commands ignore the field.
    assert command_parse({"command": "typing", "room": "lobby", "after": 7}).after == ""


@pytest.mark.parametrize("after", ["x" * (AFTER_MAX_LENGTH + 1), 7, True, ["bob"], {"a": 1}])
def test_a_bad_after_is_refused(after):
    with pytest.raises(ClientError) as refused:
        command_parse({"command": "members", "room": "lobby", "after": after})
    assert refused.value.code == "invalid_after"


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


# chat/README.md, the chat protocol: after is optional (null or "": from the first), a string of at most 150.
@given(after=json_values | st.text(min_size=145, max_size=155))
def test_any_after_is_kept_exactly_when_the_readme_allows_it(after):
    content = {"command": "members", "room": "lobby", "after": after}
    allowed = after is None or (isinstance(after, str) and len(after) <= 150)
    try:
        assert command_parse(content).after == (after or "") and allowed
    except ClientError as refused:
        assert refused.code == "invalid_after" and not allowed


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


def test_the_largest_joined_frame_is_50_messages_of_at_most_24_5_kb_plus_the_members(settings):
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
    # At most CHAT_MEMBERS_LISTED of them, however many are in the room.
    members = ["u" * 150] * settings.CHAT_MEMBERS_LISTED
    history = [message_frame(message=message, seq=10**17)] * HISTORY_LENGTH
    frame = joined_frame(room=room, history=history, members=members, count=10**6, more=True)
    assert len(frame_encode(frame=frame)) <= HISTORY_LENGTH * 24.5 * 1024 + len(members) * 160 + 2048


def test_every_list_of_members_is_bounded_however_big_the_room(settings):
    """chat/README.md's bound: CHAT_MEMBERS_LISTED (100) usernames of at most 150 characters: 160 bytes
    each in ASCII (16 KB), 1.8 KB at the very worst (a letter outside the BMP is two \\uXXXX escapes)."""
    from realtime_common.consumers import frame_encode
    from rooms.wire import SLUG_MAX_LENGTH, members_frame, presence_change_frame, presence_members_frame

    slug, listed, count = "r" * SLUG_MAX_LENGTH, settings.CHAT_MEMBERS_LISTED, 10**6
    for name, each in [("u" * 150, 160), ("\U0001d400" * 150, 1803)]:
        names = [name] * listed
        frames = [
            presence_members_frame(slug=slug, members=names, count=count),
            presence_change_frame(slug=slug, joined=names[:60], left=names[60:], count=count),
            members_frame(slug=slug, after=name, members=names, count=count, more=True),
        ]
        assert max(len(frame_encode(frame=frame)) for frame in frames) <= listed * each + each + 256
