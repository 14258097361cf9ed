import pytest

from realtime_common.consumers import parse_frame
from realtime_common.throttle import TokenBucket


@pytest.mark.parametrize(
    ("text", "data", "code"),
    [(None, b"\x00", "binary_frame"), ("{nope", None, "bad_json"), ("[1, 2]", None, "bad_frame"), ('"x"', None, "bad_frame")],
)
def test_bad_frames_become_error_frames(text, data, code):
    content, error = parse_frame(text, data)
    assert content is None
    assert error["type"] == "error" and error["code"] == code and error["detail"]


def test_a_json_object_passes():
    assert parse_frame('{"type": "x"}', None) == ({"type": "x"}, None)


def test_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back at 2 a second
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
