import pytest

from realtime_common.consumers import ClientError, Flooding, FrameGuard, frame_receive
from realtime_common.throttle import TokenBucket


def receive(text=None, data=None, *, guard=None, read_only_detail=None) -> dict:
    return frame_receive(
        guard=guard or FrameGuard(rate=10, burst=10), read_only_detail=read_only_detail, text_data=text, bytes_data=data
    )


@pytest.mark.parametrize(
    ("text", "data", "code"),
    [
        (None, b"\x00", "binary_frame"),
        ("{nope", None, "bad_json"),
        ("[1, 2]", None, "bad_frame"),
        ('"x"', None, "bad_frame"),
        # Text no database stores: a lone surrogate; NUL, which Postgres refuses, in a value or a key.
        ('{"text": "a\\ud800"}', None, "bad_json"),
        ('{"text": "a\\u0000b"}', None, "bad_json"),
        ('{"\\u0000": 1}', None, "bad_json"),
    ],
)
def test_bad_frames_are_refused_with_their_code(text, data, code):
    with pytest.raises(ClientError) as refused:
        receive(text, data)
    assert refused.value.code == code
    assert refused.value.frame() == {"type": "error", "code": code, "detail": refused.value.detail}
    assert refused.value.detail


def test_a_json_object_passes():
    assert receive('{"type": "x"}') == {"type": "x"}


def test_a_socket_that_only_sends_refuses_every_frame_even_valid_ones():
    for text, data in [('{"type": "x"}', None), ("nope", None), (None, b"\x00")]:
        with pytest.raises(ClientError) as refused:
            receive(text, data, read_only_detail="Only sends.")
        assert (refused.value.code, refused.value.detail) == ("read_only", "Only sends.")


def test_frames_over_the_rate_are_refused_then_the_flood_is_closed_once_and_ignored(monkeypatch):
    from realtime_common import consumers

    monkeypatch.setattr(consumers, "REFUSAL_BURST", 2)
    monkeypatch.setattr(consumers, "REFUSALS_PER_SECOND", 0)
    guard = FrameGuard(rate=0, burst=3)
    outcomes = []
    for _ in range(8):
        try:
            receive("{}", guard=guard)
            outcomes.append("ok")
        except ClientError as refused:
            outcomes.append(refused.code)
        except Flooding as flooding:
            outcomes.append("close" if flooding.first else "ignored")
    assert outcomes == ["ok", "ok", "ok", "rate_limited", "rate_limited", "close", "ignored", "ignored"]


def test_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back at 2 a second
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(
    ("text", "data", "too_big"),
    [
        ("x" * 65536, None, False),
        ("x" * 65537, None, True),
        ("€" * 21845, None, False),
        ("€" * 21846, None, True),
        (None, b"\x00" * 65537, True),
    ],
)
def test_frames_over_64_kib_are_refused_before_anything_else(text, data, too_big):
    from realtime_common.consumers import Oversized

    guard = FrameGuard(rate=0, burst=0)  # would refuse anything it sees
    if too_big:
        with pytest.raises(Oversized):
            receive(text, data, guard=guard)
    else:
        with pytest.raises(ClientError):
            receive(text, data, guard=guard)


def test_json_nested_past_the_parsers_depth_is_bad_json_not_a_crash():
    with pytest.raises(ClientError) as refused:
        receive("[" * 6000 + "]" * 6000)
    assert refused.value.code == "bad_json"


@pytest.mark.parametrize("text", ['{"text": "\\ud800"}', '{"\\udfff": 1}', '{"a": [["x\\udc00y"]]}'])
def test_a_lone_surrogate_spelled_with_an_escape_is_bad_json(text):
    with pytest.raises(ClientError) as refused:
        receive(text)
    assert refused.value.code == "bad_json"


def test_an_escaped_surrogate_pair_is_a_character():
    assert receive('{"text": "\\ud83d\\ude00"}') == {"text": "\U0001f600"}


@pytest.mark.parametrize(
    "text", ['{"type":"ping"}', '{"type": "ping"}', ' { "type" : "ping" }\n', '{"type":"p\\u0069ng"}']
)
def test_the_heartbeat_is_recognised_however_spaced_even_where_every_frame_is_read_only(text):
    from realtime_common.consumers import Ping

    with pytest.raises(Ping):
        receive(text, read_only_detail="Only sends.")


@pytest.mark.parametrize(
    "text", ['{"type": "ping", "n": 1}', '{"type": "pong"}', '"ping"', '{"type":"ping"' + " " * 32 + "}"]
)
def test_anything_else_is_an_ordinary_frame(text):
    with pytest.raises(ClientError) as refused:
        receive(text, read_only_detail="Only sends.")
    assert refused.value.code == "read_only"


def test_the_heartbeat_counts_against_the_frame_rate():
    from realtime_common.consumers import Ping

    guard = FrameGuard(rate=0, burst=1)
    with pytest.raises(Ping):
        receive('{"type":"ping"}', guard=guard)
    with pytest.raises(ClientError) as refused:
        receive('{"type":"ping"}', guard=guard)
    assert refused.value.code == "rate_limited"
