"""Not Autobahn cases: the suite's check of a server's log (conftest.py, at the end of each
server's run) fails on a traceback, but on those a server logs by design for what a client sent
(cases.LOGGED_TRACEBACKS)."""

from cases import tracebacks_unexpected

UTF8_TRACEBACK = """ERROR:    Invalid UTF-8 sequence received from client.
Traceback (most recent call last):
  File "uvicorn/protocols/websockets/websockets_sansio_impl.py", line 294, in send_receive_event_to_app
UnicodeDecodeError: 'utf-8' codec can't decode byte 0xed in position 11: invalid continuation byte
INFO:     connection closed
"""
CRASH = """ERROR:    Exception in ASGI application
Traceback (most recent call last):
  File "realtime_common/consumers.py", line 281, in __call__
    raise KeyError("type")
KeyError: 'type'
"""


def test_a_traceback_logged_by_design_is_let_through():
    assert tracebacks_unexpected(text=UTF8_TRACEBACK, server="uvicorn") == []


def test_any_other_traceback_fails_the_run():
    assert tracebacks_unexpected(text=UTF8_TRACEBACK + CRASH, server="uvicorn") == ["KeyError: 'type'"]


def test_what_one_server_logs_by_design_is_a_crash_on_another():
    assert tracebacks_unexpected(text=UTF8_TRACEBACK, server="daphne") == [
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xed in position 11: invalid continuation byte"
    ]
