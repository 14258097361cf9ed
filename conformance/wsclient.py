"""A WebSocket client that can break the rules, for the conformance cases.

wsproto does the opening handshake, builds the well-formed frames we send
(``message``, ``ping``, ``pong``, ``close``) and parses, and so checks, every
frame the server sends. ``frame`` builds any other frame byte by byte (struct
and masking here), as wrong as a case needs: reserved bits, reserved opcodes,
fragmented control frames, invalid UTF-8, bad close payloads.

Every wait has a deadline: a socket timeout, never a sleep.
"""

import os
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass

from wsproto.connection import ConnectionType
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed
from wsproto.handshake import H11Handshake

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# How long the server gets for anything we wait for: an echo, a pong, a close, a dropped connection.
TIMEOUT = 5.0

# Frames wsproto builds: whole messages and control frames only, so its
# outbound state (an unfinished fragmented message) never carries over.
_wsproto = FrameProtocol(client=True, extensions=[])


def message(data: str | bytes) -> bytes:
    """A whole text (str) or binary (bytes) message in one masked frame."""
    return bytes(_wsproto.send_data(data, fin=True))


def ping(payload: bytes | str = b"") -> bytes:
    return bytes(_wsproto.ping(_bytes(payload)))


def pong(payload: bytes | str = b"") -> bytes:
    return bytes(_wsproto.pong(_bytes(payload)))


def close(code: int | None = None, reason: str | None = None) -> bytes:
    """A well-formed Close; ``frame(CLOSE, close_payload(...))`` for the others."""
    return bytes(_wsproto.close(code, reason))


def frame(opcode: int, payload: bytes | str = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """Any client frame, masked with a fresh key as RFC 6455 §5.3 requires."""
    payload = _bytes(payload)
    length = len(payload)
    header = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    if length <= 125:
        header += bytes([0x80 | length])
    elif length <= 0xFFFF:
        header += struct.pack("!BH", 0x80 | 126, length)
    else:
        header += struct.pack("!BQ", 0x80 | 127, length)
    key = os.urandom(4)
    return header + key + mask(payload, key)


def mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    size = len(payload)
    keystream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")


def close_payload(code: int | None = None, reason: bytes | str = b"") -> bytes:
    """A Close frame's payload, with any code and any reason bytes."""
    return (b"" if code is None else struct.pack("!H", code)) + _bytes(reason)


def fragments(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)] or [b""]


def _bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


# What the server sends, as the client sees it.


@dataclass(frozen=True)
class Message:
    data: str | bytes

    def __repr__(self) -> str:
        kind = "text" if isinstance(self.data, str) else "binary"
        if len(self.data) <= 40:
            return f"Message({kind} {self.data!r})"
        return f"Message({kind} {self.data[:40]!r}... {len(self.data)} long)"


@dataclass(frozen=True)
class Pong:
    payload: bytes


@dataclass(frozen=True)
class Close:
    code: int | None  # None: a Close frame without a payload
    reason: str = ""


@dataclass(frozen=True)
class Dropped:
    """The TCP connection ended: ``eof`` (FIN) or ``reset`` (RST)."""

    how: str


class NothingReceived(AssertionError):
    pass


class HandshakeRejected(Exception):
    def __init__(self, status: int):
        super().__init__(f"the server refused the WebSocket handshake with HTTP {status}")
        self.status = status


class WireClient:
    """One WebSocket connection over a plain blocking socket."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        path: str = "/ws/echo/",
        origin: str | None = None,
        timeout: float = TIMEOUT,
        codeless_failures: bool = False,
    ):
        self.timeout = timeout
        # The server fails connections with a Close frame that carries no status code (granian):
        # allowed in place of the expected code (cases.CODELESS_FAILURES says why).
        self.codeless_failures = codeless_failures
        self._parser = FrameProtocol(client=True, extensions=[])
        self._events: deque = deque()
        self._partial: list[str | bytes] = []
        self._ended: Dropped | None = None
        self._closing = False
        self._unparsed = bytearray()
        self._closed_by_server = False
        # Octets the server sent after its Close, which must be none (RFC 6455 §5.5.1).
        self.after_close = 0
        # How the server failed the connection, for the summary: "dropped", "close <code>" or "close, no code".
        self.failure: str | None = None
        self.server_pings: list[bytes] = []
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._handshake(f"{host}:{port}", path, origin)
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self, host: str, path: str, origin: str | None) -> None:
        handshake = H11Handshake(ConnectionType.CLIENT)
        headers = [(b"Origin", origin.encode())] if origin else []
        self.sock.sendall(handshake.send(Request(host=host, target=path, extra_headers=headers)))
        deadline = time.monotonic() + self.timeout
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self._recv(deadline)
            if not chunk:
                raise ConnectionError(f"the server closed the connection during the handshake: {response!r}")
            response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        # Only the response head goes to wsproto; what follows it is already WebSocket frames.
        handshake.receive_data(head + b"\r\n\r\n")
        for event in handshake.events():
            if isinstance(event, RejectConnection):
                raise HandshakeRejected(event.status_code)
            if isinstance(event, AcceptConnection):
                self._feed(rest)
                return
        raise AssertionError(f"no handshake response in {head!r}")

    # Sending.

    def send(self, *frames: bytes, chop: int | None = None) -> None:
        """The frames in one write, or in writes of ``chop`` octets each."""
        data = b"".join(frames)
        for piece in fragments(data, chop) if chop else [data]:
            self._write(piece)

    def send_each(self, *frames: bytes) -> None:
        """One write per frame."""
        for data in frames:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._ended:
            return
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            # The server is gone (it may fail the connection mid-stream); what
            # it sent before is still to be read, and then its end.
            pass

    # Receiving.

    def receive(self, timeout: float | None = None) -> Message | Pong | Close | Dropped:
        """The next thing the server does. Its Pings are answered (RFC 6455 §5.5.2), not returned."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self._events:
            if self._ended:
                return self._ended
            try:
                data = self._recv(deadline)
            except TimeoutError:
                raise NothingReceived(
                    f"the server sent nothing and kept the connection open for {timeout:.1f}s"
                ) from None
            except ConnectionResetError:
                self._ended = Dropped("reset")
                continue
            if data:
                self._feed(data)
            else:
                self._ended = Dropped("eof")
        return self._events.popleft()

    def _recv(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        return self.sock.recv(65536)

    def _feed(self, data: bytes) -> None:
        """wsproto parses, and checks, one whole frame at a time: it stops at a Close,
        and what follows a Close must be seen to be counted."""
        if self._closed_by_server:
            self.after_close += len(data)
            return
        self._unparsed += data
        while not self._closed_by_server and (size := _frame_size(self._unparsed)):
            self._parser.receive_bytes(bytes(self._unparsed[:size]))
            del self._unparsed[:size]
            self._parse()
        if self._closed_by_server:
            self.after_close += len(self._unparsed)
            self._unparsed.clear()

    def _parse(self) -> None:
        try:
            for received in self._parser.received_frames():
                if received.opcode is Opcode.PING:
                    self.server_pings.append(bytes(received.payload))
                    if not self._closing:
                        self._write(pong(received.payload))
                elif received.opcode is Opcode.PONG:
                    self._events.append(Pong(bytes(received.payload)))
                elif received.opcode is Opcode.CLOSE:
                    code, reason = received.payload
                    self._events.append(Close(None if code == CloseReason.NO_STATUS_RCVD else int(code), reason))
                    self._closed_by_server = True
                else:
                    self._partial.append(received.payload)
                    if received.message_finished:
                        joiner = "" if isinstance(received.payload, str) else b""
                        self._events.append(Message(joiner.join(self._partial)))
                        self._partial = []
        except ParseFailed as exc:
            raise AssertionError(f"the server sent an invalid frame: {exc}") from None

    # What RFC 6455 requires, as assertions.

    def expect(self, *events, timeout: float | None = None) -> None:
        """Exactly these, in this order, next."""
        for wanted in events:
            got = self.receive(timeout)
            assert got == wanted, f"expected {wanted!r}, got {got!r}"

    def expect_open(self) -> None:
        """The connection is open and this side's frames so far were accepted: a Ping is answered."""
        probe = os.urandom(8).hex().encode()
        self.send(ping(probe))
        self.expect(Pong(probe))

    def expect_quiet(self, seconds: float) -> None:
        """Nothing happens for ``seconds``: for the only cases that cannot probe with a Ping (mid-frame)."""
        try:
            got = self.receive(seconds)
        except NothingReceived:
            return
        raise AssertionError(f"expected nothing yet, got {got!r}")

    def close_handshake(
        self, code: int | None = 1000, reason: str = "", *, replies=(1000,), frame_bytes: bytes | None = None
    ) -> None:
        """We start the closing handshake; the server must answer with a Close (§5.5.1)
        whose code is one of ``replies`` and then close the TCP connection (§7.1.1)."""
        self._closing = True
        self.send(frame_bytes if frame_bytes is not None else close(code, reason or None))
        got = self.receive()
        assert isinstance(got, Close), f"expected the server's Close, got {got!r}"
        assert got.code in replies, f"the server answered the Close with code {got.code}, expected one of {replies}"
        self.expect_end()

    def expect_end(self) -> None:
        """After its Close the server sends nothing more and closes the TCP connection (§7.1.1)."""
        end = self.receive()
        assert isinstance(end, Dropped), f"expected the server to close the TCP connection, got {end!r}"
        assert not self.after_close, f"the server sent {self.after_close} octets after its Close"

    def expect_failure(self, code: int, *, may_first=()) -> None:
        """The server must _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): close the
        TCP connection, after a Close with ``code`` if it sends one (a SHOULD), and
        act on nothing that came after the offending frame. ``may_first``: what may
        arrive before, in this order (the echo of a message sent before the offending
        frame: the server may or may not have had the time to send it)."""
        seen = []
        while True:
            got = self.receive()
            if isinstance(got, Dropped):
                self.failure = "dropped"
                return
            if isinstance(got, Close):
                codeless = got.code is None and self.codeless_failures
                assert got.code == code or codeless, (
                    f"the server failed the connection with code {got.code}, expected {code}"
                )
                self._closing = True
                self.send(close(got.code))
                self.expect_end()
                self.failure = "close, no code" if codeless else f"close {code}"
                return
            seen.append(got)
            assert seen == list(may_first[: len(seen)]), (
                f"expected the connection to be failed with {code}; the server sent {seen!r} instead"
            )

    def shutdown(self) -> None:
        self.sock.close()


def frames_write(*, ws: WireClient, frames: list[bytes], how: str) -> None:
    """Autobahn's three ways of writing a case's frames: ``how`` is "one write", "frame by
    frame" or (anything else) "octet by octet", where a server must reassemble every frame."""
    if how == "one write":
        ws.send(*frames)
    elif how == "frame by frame":
        ws.send_each(*frames)
    else:
        ws.send(*frames, chop=1)


def _frame_size(data: bytearray) -> int | None:
    """The size of the whole frame at the start of ``data``, once all of it is there."""
    if len(data) < 2:
        return None
    length, offset = data[1] & 0x7F, 2
    if length == 126:
        if len(data) < 4:
            return None
        (length,), offset = struct.unpack_from("!H", data, 2), 4
    elif length == 127:
        if len(data) < 10:
            return None
        (length,), offset = struct.unpack_from("!Q", data, 2), 10
    if data[1] & 0x80:
        offset += 4  # a masked frame, which wsproto then refuses: servers do not mask
    size = offset + length
    return size if len(data) >= size else None
