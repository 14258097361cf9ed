"""The liveblog publisher: posts saved by another process than the servers, as `manage.py post`,
the admin or a shell would. Stays up and takes requests, one JSON object a line on stdin:

    {"id": 1, "op": "posts", "args": {"count": 20, "rate": 4}}

Each post's body carries ``bench-post:<index> bench-ts:<time.time()>``, taken just before the
save, so a page's latency covers the save, the commit, the channel layer and the socket.
"""

import argparse
import json
import sys
import time
import traceback

from bench.sitescripts import django_start, line_print
from bench.wire import post_body


def liveblog_seq(*, liveblog) -> int | None:
    """The seq of the liveblog's newest event, which a page connects with (``?since=``); None if
    this version of the site has no way to tell (its sockets then go live from the handshake)."""
    try:
        from blog.wire import liveblog_stream
        from realtime_common.streams import stream_seq
    except ImportError:
        # Before realtime_common.streams, the liveblog kept its seq itself.
        return getattr(type(liveblog).objects.get(pk=liveblog.pk), "last_seq", None)
    return stream_seq(stream=liveblog_stream(liveblog_id=liveblog.pk))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slug", required=True)
    options = parser.parse_args()
    backend = django_start()
    from blog.models import Liveblog
    from blog.services import post_create

    liveblog, _ = Liveblog.objects.get_or_create(
        slug=options.slug, defaults={"title": "Bench", "description": "Load test"}
    )
    for line in sys.stdin:
        request = json.loads(line)
        reply = {"id": request.get("id")}
        try:
            if request["op"] == "status":
                reply["result"] = {
                    "backend": backend,
                    "liveblog": liveblog.slug,
                    "last_seq": liveblog_seq(liveblog=liveblog),
                }
            elif request["op"] == "posts":
                count, rate = request["args"]["count"], request["args"]["rate"]
                started = time.monotonic()
                durations = []
                for index in range(count):
                    time.sleep(max(0.0, started + index / rate - time.monotonic()))
                    save_started = time.monotonic()
                    post_create(liveblog=liveblog, body=post_body(index=index, ts=time.time()))
                    durations.append(time.monotonic() - save_started)
                reply["result"] = {
                    "published": count,
                    "elapsed_s": round(time.monotonic() - started, 3),
                    "save_ms_max": round(max(durations) * 1000, 2),
                    "save_ms_mean": round(sum(durations) / len(durations) * 1000, 2),
                }
            else:
                raise ValueError(f"unknown op {request['op']!r}")
            reply["ok"] = True
        except Exception:  # noqa: BLE001 - reported to the harness, which reports it
            reply["ok"] = False
            reply["error"] = traceback.format_exc()
        line_print(data=reply)


if __name__ == "__main__":
    main()
