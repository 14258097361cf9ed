"""The load client: a process of its own (``python -m bench.client``), pinned to the client core,
holding many WebSocket connections with asyncio and ``websockets``.

The harness drives it over stdin/stdout, one JSON object a line: ``{"id", "op", "args"}`` in,
``{"id", "ok", "result" | "error", "client_cpu"}`` out. The connections stay open between
requests, so the harness can sample server CPU around each phase. Every reply carries the
client's own CPU use during the request, so a saturated client shows in the report.

Modules: ``state`` (the sockets and what they receive), ``ops`` (connecting, expecting,
publishing), ``chat`` and ``drawing`` (the chat's and the sketchpad's loads, the flood), and
``__main__`` (the request loop). Nothing but replies may go to stdout: logging goes to stderr.
"""
