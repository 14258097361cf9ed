"""Autobahn 6.x, UTF-8 handling: valid text echoed however it is fragmented (even
inside a code point), and invalid UTF-8 (in one frame or spread over several, overlong
forms, surrogates, code points past U+10FFFF, truncated sequences) failing the
connection with 1007 as soon as the invalid octet arrives."""

import pytest
from cases import Cases
from wsclient import CONTINUATION, TEXT, Message, fragments, frame

CASES = Cases()
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # κόσμε
SURROGATE_EDITED = KOSME + b"\xed\xa0\x80" + b"edited"  # U+D800 between valid text


def text_frames(payload: bytes, size: int | None) -> list[bytes]:
    """A text message of raw UTF-8 octets, in one frame or in frames of ``size`` octets."""
    if size is None:
        return [frame(TEXT, payload)]
    parts = fragments(payload, size)
    return [
        frame(TEXT if index == 0 else CONTINUATION, part, fin=index == len(parts) - 1)
        for index, part in enumerate(parts)
    ]


def valid(payload: bytes, *, size: int | None = None):
    def scenario(ws):
        ws.send(*text_frames(payload, size))
        ws.expect(Message(payload.decode()))
        ws.close_handshake()

    return scenario


def invalid(payload: bytes, *, size: int | None = None):
    def scenario(ws):
        ws.send(*text_frames(payload, size))
        ws.expect_failure(1007)

    return scenario


# 6.1: empty payloads.


@CASES.add("6.1.1", "Send text message of length 0.")
def case_6_1_1(ws):
    ws.send(frame(TEXT, b""))
    # Then a marker, so that a missing echo shows at once, not after a timeout.
    ws.send(frame(TEXT, b"marker"))
    ws.expect(Message(""), Message("marker"))
    ws.close_handshake()


@CASES.add("6.1.2", "Send fragmented text message, 3 fragments each of length 0.")
def case_6_1_2(ws):
    ws.send(frame(TEXT, b"", fin=False), frame(CONTINUATION, b"", fin=False), frame(CONTINUATION, b""))
    ws.send(frame(TEXT, b"marker"))
    ws.expect(Message(""), Message("marker"))
    ws.close_handshake()


@CASES.add("6.1.3", "Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.")
def case_6_1_3(ws):
    ws.send(
        frame(TEXT, b"", fin=False), frame(CONTINUATION, "middle frame payload", fin=False), frame(CONTINUATION, b"")
    )
    ws.expect(Message("middle frame payload"))
    ws.close_handshake()


# 6.2: valid UTF-8, whole and split.

HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()
CASES.register("6.2.1", "Send a valid UTF-8 text message in one fragment.", valid(HELLO))


@CASES.add("6.2.2", "Send a valid UTF-8 text message in two fragments, split on a code point boundary.")
def case_6_2_2(ws):
    first, second = "Hello-µ@ßöä".encode(), "üàá-UTF-8!!".encode()
    ws.send(frame(TEXT, first, fin=False), frame(CONTINUATION, second))
    ws.expect(Message((first + second).decode()))
    ws.close_handshake()


CASES.register(
    "6.2.3",
    "Send a valid UTF-8 text message in fragments of 1 octet, most ending inside a code point.",
    valid(HELLO, size=1),
)
CASES.register("6.2.4", "Send the valid UTF-8 text message κόσμε in fragments of 1 octet.", valid(KOSME, size=1))

# 6.3: invalid UTF-8 (a surrogate), whole and split.
CASES.register("6.3.1", "Send invalid UTF-8 text message unfragmented.", invalid(SURROGATE_EDITED))
CASES.register("6.3.2", "Send invalid UTF-8 text message in fragments of 1 octet.", invalid(SURROGATE_EDITED, size=1))

# 6.4: fail fast, on the octet that makes the text invalid, not at the end of the message.
# The first part is valid; the second makes it invalid (U+110000, past the last code point).
FAST_PARTS = (KOSME, b"\xf4\x90\x80\x80", b"edited")
FAST_TEXT = b"".join(FAST_PARTS)
# The same, with the second part cut to the very octet that makes it invalid (\x90 after \xf4).
FAST_PARTS_SHORT = (FAST_TEXT[:12], FAST_TEXT[12:13], FAST_TEXT[13:])


def fail_fast_in_frames(parts: tuple[bytes, bytes, bytes]):
    """Three frames; the connection must be failed on the second, before the third is sent."""

    def scenario(ws):
        ws.send(frame(TEXT, parts[0], fin=False))
        ws.expect_open()  # the valid beginning is accepted (Autobahn waits 1 s here)
        ws.send(frame(CONTINUATION, parts[1], fin=False))
        ws.expect_failure(1007)

    return scenario


def fail_fast_in_one_frame(parts: tuple[bytes, bytes, bytes]):
    """One frame written in three parts; the connection must be failed on the second."""

    def scenario(ws):
        whole = frame(TEXT, b"".join(parts))
        header = len(whole) - len(FAST_TEXT)
        first_end = header + len(parts[0])
        ws.send(whole[:first_end])
        # Mid-frame no Ping can probe the connection: give the server a moment to misbehave.
        ws.expect_quiet(0.3)
        ws.send(whole[first_end : first_end + len(parts[1])])
        ws.expect_failure(1007)

    return scenario


CASES.register(
    "6.4.1",
    "Send invalid UTF-8 text message in 3 frames: valid, then the octets making it invalid, then the rest.",
    fail_fast_in_frames(FAST_PARTS),
)
CASES.register(
    "6.4.2",
    "Same as 6.4.1, the 2nd frame holding only the octet that makes the text invalid.",
    fail_fast_in_frames(FAST_PARTS_SHORT),
)
CASES.register("6.4.3", "Same as 6.4.1, in 3 chops of one frame.", fail_fast_in_one_frame(FAST_PARTS))
CASES.register("6.4.4", "Same as 6.4.2, in 3 chops of one frame.", fail_fast_in_one_frame(FAST_PARTS_SHORT))


# 6.5 to 6.23: Markus Kuhn's UTF-8 decoder stress test, as Autobahn numbers it, each
# sequence one text message in one frame: echoed if valid, the connection failed if not.

INCOMPLETE = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
              b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]  # fmt: skip


def noncharacters() -> list[bytes]:
    found = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for first in b"\xf0\xf1\xf2\xf3\xf4":
        for second in b"\x8f\x9f\xaf\xbf":
            if first == 0xF4 and second != 0x8F:
                continue  # past U+10FFFF
            for last in b"\xbe\xbf":
                sequence = bytes([first, second, 0xBF, last])
                if sequence not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):  # overlong
                    found.append(sequence)
    return found


UTF8_SEQUENCES: list[tuple[str, list[tuple[bool, bytes]]]] = [
    ("Some valid UTF-8 sequences", [(True, b"hello\x24world"), (True, b"hello\xc2\xa2world"),
        (True, b"hello\xe2\x82\xacworld"), (True, b"hello\xf0\xa4\xad\xa2world"), (True, KOSME)]),
    ("All prefixes of a valid UTF-8 string that contains multi-byte code points",
        # Valid exactly when the prefix ends on a code point boundary.
        [(end in (2, 5, 7, 9, 11), KOSME[:end]) for end in range(1, len(KOSME) + 1)]),
    ("First possible sequence of a certain length", [(True, b"\x00"), (True, b"\xc2\x80"), (True, b"\xe0\xa0\x80"),
        (True, b"\xf0\x90\x80\x80")]),
    ("First possible sequence length 5/6 (invalid codepoints)", [(False, b"\xf8\x88\x80\x80\x80"),
        (False, b"\xfc\x84\x80\x80\x80\x80")]),
    ("Last possible sequence of a certain length", [(True, b"\x7f"), (True, b"\xdf\xbf"), (True, b"\xef\xbf\xbf"),
        (True, b"\xf4\x8f\xbf\xbf")]),
    ("Last possible sequence length 4/5/6 (invalid codepoints)", [(False, b"\xf7\xbf\xbf\xbf"),
        (False, b"\xfb\xbf\xbf\xbf\xbf"), (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")]),
    ("Other boundary conditions", [(True, b"\xed\x9f\xbf"), (True, b"\xee\x80\x80"), (True, b"\xef\xbf\xbd"),
        (True, b"\xf4\x8f\xbf\xbf"), (False, b"\xf4\x90\x80\x80")]),
    ("Unexpected continuation bytes", [(False, b"\x80"), (False, b"\xbf"), (False, b"\x80\xbf"), (False, b"\x80\xbf\x80"),
        (False, b"\x80\xbf\x80\xbf"), (False, b"\x80\xbf\x80\xbf\x80"), (False, b"\x80\xbf\x80\xbf\x80\xbf"),
        (False, bytes(range(0x80, 0xBF)))]),
    ("Lonely start characters", [(False, b"".join(bytes([octet, 0x20]) for octet in range(low, high)))
        for low, high in ((0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD))]),
    ("Sequences with last continuation byte missing", [(False, sequence) for sequence in INCOMPLETE]),
    ("Concatenation of incomplete sequences", [(False, b"".join(INCOMPLETE))]),
    ("Impossible bytes", [(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")]),
    ("Examples of an overlong ASCII character", [(False, b"\xc0\xaf"), (False, b"\xe0\x80\xaf"),
        (False, b"\xf0\x80\x80\xaf"), (False, b"\xf8\x80\x80\x80\xaf"), (False, b"\xfc\x80\x80\x80\x80\xaf")]),
    ("Maximum overlong sequences", [(False, b"\xc1\xbf"), (False, b"\xe0\x9f\xbf"), (False, b"\xf0\x8f\xbf\xbf"),
        (False, b"\xf8\x87\xbf\xbf\xbf"), (False, b"\xfc\x83\xbf\xbf\xbf\xbf")]),
    ("Overlong representation of the NUL character", [(False, b"\xc0\x80"), (False, b"\xe0\x80\x80"),
        (False, b"\xf0\x80\x80\x80"), (False, b"\xf8\x80\x80\x80\x80"), (False, b"\xfc\x80\x80\x80\x80\x80")]),
    ("Single UTF-16 surrogates", [(False, b"\xed\xa0\x80"), (False, b"\xed\xad\xbf"), (False, b"\xed\xae\x80"),
        (False, b"\xed\xaf\xbf"), (False, b"\xed\xb0\x80"), (False, b"\xed\xbe\x80"), (False, b"\xed\xbf\xbf")]),
    ("Paired UTF-16 surrogates", [(False, high + low) for high in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80",
        b"\xed\xaf\xbf") for low in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]),
    ("Non-character code points (valid UTF-8)", [(True, sequence) for sequence in noncharacters()]),
    ("Unicode specials (i.e. replacement char)", [(True, bytes([0xEF, 0xBF, last])) for last in range(0xB9, 0xC0)]),
]  # fmt: skip


def utf8_valid(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


for group, (title, sequences) in enumerate(UTF8_SEQUENCES, start=5):
    for number, (is_valid, payload) in enumerate(sequences, start=1):
        # The table is Autobahn's; Python's strict decoder must agree with it.
        assert is_valid == utf8_valid(payload), f"6.{group}.{number}: {payload!r}"
        if is_valid:
            CASES.register(f"6.{group}.{number}", f"{title}: valid, echoed: {payload.hex()}", valid(payload))
        else:
            CASES.register(
                f"6.{group}.{number}", f"{title}: invalid, connection failed: {payload.hex()}", invalid(payload)
            )


@pytest.mark.parametrize("scenario", CASES.params())
def test_utf8(ws, scenario):
    scenario(ws)
