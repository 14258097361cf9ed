"""A sent message is stored once and shown, or given back, never lost (chat/README.md, the chat
protocol: send). The page shows it as pending until its own message frame comes, and
sends it again, with the same client_id, after a reconnect: here, after the server
stopped between the send and its answer, and was started again on its port."""

import json
import re

import pytest
from pages import expect_live
from playwright.sync_api import Page, WebSocketRoute, expect
from test_chat import chat_as, message, open_chat, room, say, shell_output, unique


@pytest.fixture
def own_server(chat, own_server_of):
    return own_server_of(chat)


def stored_count(chat, text: str) -> int:
    code = f"from rooms.models import Message; print(Message.objects.filter(text={text!r}).count())"
    return int(shell_output(chat, code=code))


def expect_stored_once(chat, pages: list[Page], slug: str, text: str) -> None:
    for page in pages:
        expect(room(page, slug).locator(".message").filter(has_text=text)).to_have_count(1)  # pending or not
        expect(message(page, slug, text)).to_have_count(1)  # and not pending
    assert stored_count(chat, text) == 1


def expect_pending(page: Page, slug: str, text: str) -> None:
    shown = room(page, slug).locator(".message-pending").filter(has_text=text)
    expect(shown).to_contain_text("sending…")
    expect(room(page, slug).get_by_label("Message")).to_have_value("")


def test_a_message_sent_to_a_server_that_stopped_is_stored_once_it_is_back(new_page, chat, own_server):
    alice = chat_as(new_page, own_server.url, "alice", "pending")
    bob = chat_as(new_page, chat.urls[0], "bob", "pending")
    text = unique("Through the restart")

    own_server.freeze()  # before the send: it surely reads nothing of it
    say(alice, "pending", text)
    expect_pending(alice, "pending", text)
    own_server.restart()

    expect_live(alice)
    expect_stored_once(chat, [alice, bob], "pending", text)


def test_a_message_stored_whose_answer_was_lost_is_not_stored_again(new_page, chat, own_server):
    text = unique("Answer dropped")
    connections: list[WebSocketRoute] = []

    # alice's page talks to the server through this. On its first connection, the message
    # frame of the text and whatever comes after it are dropped, as by a connection that died
    # just after the server stored the message; its next connections are left alone.
    def relay(socket: WebSocketRoute) -> None:
        connections.append(socket)
        first, dropping = len(connections) == 1, []
        server = socket.connect_to_server()
        socket.on_message(server.send)

        def from_server(frame: str | bytes) -> None:
            if first and (dropping or (isinstance(frame, str) and '"type":"message"' in frame and text in frame)):
                dropping.append(frame)
            else:
                socket.send(frame)

        server.on_message(from_server)

    page = new_page(f"{own_server.url}/")
    page.route_web_socket(re.compile(r"/ws/chat/"), relay)
    alice = open_chat(page, own_server.url, "alice", "pending-stored")
    bob = chat_as(new_page, chat.urls[0], "bob", "pending-stored")

    say(alice, "pending-stored", text)
    expect(message(bob, "pending-stored", text)).to_be_visible()  # stored, and sent to every page
    expect_pending(alice, "pending-stored", text)  # but alice's page never got it
    own_server.restart()

    expect_live(alice)
    expect_stored_once(chat, [alice, bob], "pending-stored", text)


# Records when the page hands each send command to its socket (performance.now(), in ms).
SEND_TIMES = """
window.sendTimes = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data === 'string' && data.includes('"command":"send"')) window.sendTimes.push(performance.now());
  return send.call(this, data);
};
"""
# chat.js: pending messages go again one at a time, this far apart.
RESEND_INTERVAL_MS = 1200


def test_messages_written_offline_go_one_at_a_time_in_order(new_page, chat):
    url = chat.urls[0]
    page = new_page(f"{url}/")
    page.add_init_script(SEND_TIMES)
    open_chat(page, url, "alice", "pending-paced")
    page.context.set_offline(True)
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    texts = [unique(f"Written offline {n}") for n in range(3)]
    for text in texts:
        say(page, "pending-paced", text)
        expect_pending(page, "pending-paced", text)
    page.context.set_offline(False)

    expect(room(page, "pending-paced").locator(".message:not(.message-pending) .message-text")).to_have_text(texts)
    times = page.evaluate("window.sendTimes")
    assert len(times) == len(texts), times  # the sends while offline never reached a socket
    # Timers never fire early: the gaps are the page's pacing, whatever the machine's load.
    assert all(later - earlier >= RESEND_INTERVAL_MS - 1 for earlier, later in zip(times, times[1:])), times


def test_a_message_refused_unread_over_the_frame_rate_is_sent_again(new_page, chat):
    text = unique("Refused unread")
    refused: list[str] = []

    # The first frame that carries the text never reaches the server: the page is answered as the
    # socket's frame rate answers a frame it refuses before reading it, naming no message.
    def relay(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        server.on_message(socket.send)

        def from_page(frame: str | bytes) -> None:
            if not refused and isinstance(frame, str) and text in frame:
                refused.append(frame)
                socket.send(
                    json.dumps({"type": "error", "code": "rate_limited", "detail": "Too many frames: slow down."})
                )
            else:
                server.send(frame)

        socket.on_message(from_page)

    url = chat.urls[0]
    page = new_page(f"{url}/")
    page.route_web_socket(re.compile(r"/ws/chat/"), relay)
    open_chat(page, url, "alice", "pending-refused")

    say(page, "pending-refused", text)
    expect_stored_once(chat, [page], "pending-refused", text)
    assert len(refused) == 1


def test_a_lone_surrogate_or_nul_in_a_message_is_sent_as_text_the_server_stores(new_page, chat):
    page = chat_as(new_page, chat.urls[0], "alice", "pending-text")
    tag = unique("Odd")
    # A paste can bring half an emoji (a lone surrogate), or a NUL: a frame with either is refused unread.
    room(page, "pending-text").get_by_label("Message").evaluate(
        "(input, tag) => { input.value = tag + ' \\ud83d half\\u0000 an emoji'; }", tag
    )
    room(page, "pending-text").get_by_role("button", name="Send").click()

    expect(message(page, "pending-text", f"{tag} \ufffd half an emoji")).to_have_count(1)
    expect(room(page, "pending-text").locator(".message-pending")).to_have_count(0)


def test_a_page_with_a_pending_message_asks_before_it_is_closed(new_page, chat):
    # No send command reaches the server: the message stays pending.
    def relay(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        server.on_message(socket.send)
        socket.on_message(lambda frame: None if '"command":"send"' in str(frame) else server.send(frame))

    url = chat.urls[0]
    page = new_page(f"{url}/")
    page.route_web_socket(re.compile(r"/ws/chat/"), relay)
    open_chat(page, url, "alice", "pending-unload")
    text = unique("Not sent yet")
    say(page, "pending-unload", text)
    expect_pending(page, "pending-unload", text)

    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay on the page
    expect_pending(page, "pending-unload", text)
